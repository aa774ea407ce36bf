use std::sync::Arc;

use super::*;
use crate::budget::Period;
use crate::csv;
use crate::ledger::Ledger;
use crate::memory::MemoryStore;
use crate::principal::{KeyRecord, Limits, Team};
use crate::testutil::{TempDir, usage};

const T0: i64 = 1_717_200_000_000;

fn key_record(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.to_string(),
        name: "k".into(),
        hash: crate::key::hash_key(id),
        prefix: "hk-abcde".into(),
        team: Some("research".into()),
        models: vec!["gpt-*".into()],
        scopes: vec![crate::Scope::Inference],
        expires_at: Some(T0 + 1),
        metadata: serde_json::from_str(r#"{"owner": "ana"}"#).unwrap(),
        enabled: true,
        created_at: T0,
        limits: Limits { rpm: Some(10), tpm: None, max_concurrency: Some(2) },
        budget: Some(BudgetSpec { tokens: None, usd: Some(2.5), period: Period::Monthly }),
    }
}

#[test]
fn ledger_appends_from_many_threads_all_land_in_the_file() {
    let dir = TempDir::new("ledger");
    let store = Arc::new(SqliteStore::open(dir.db()).unwrap());
    let ledger = Arc::new(Ledger::open(store.clone()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                for i in 0..250 {
                    ledger.append(usage(&format!("req-{t}-{i}"), T0 + i, Some("key_a"), None));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    ledger.flush();
    assert_eq!(ledger.queue_depth(), 0);
    assert_eq!(store.usage_totals(&PoolId::Global, i64::MIN).unwrap(), (2000 * 120, 2000 * 1_000));
    let mut n = 0;
    let mut last = i64::MIN;
    store
        .usage_rows(i64::MIN, i64::MAX, &mut |r| {
            assert!(r.ts_ms >= last, "rows come in time order");
            last = r.ts_ms;
            n += 1;
        })
        .unwrap();
    assert_eq!(n, 2000);
    ledger.close();
}

#[test]
fn a_duplicate_request_id_is_not_counted_twice() {
    let dir = TempDir::new("dup");
    let store = SqliteStore::open(dir.db()).unwrap();
    let a = usage("req-1", T0, Some("key_a"), None);
    assert_eq!(store.append_usage(&[a.clone(), usage("req-2", T0, None, None)]).unwrap(), 2);
    assert_eq!(store.append_usage(std::slice::from_ref(&a)).unwrap(), 0);
    assert_eq!(store.usage_totals(&PoolId::Global, 0).unwrap(), (240, 2_000));
    let mut rows = Vec::new();
    store.usage_rows(0, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
    assert_eq!(rows[0], a, "every field round-trips");
}

/// A mixed ledger, written to both stores.
fn sample() -> Vec<UsageRecord> {
    let mut rows = vec![
        usage("r1", T0, Some("key_a"), Some("research")),
        usage("r2", T0 + 10, Some("key_a"), Some("research")),
        usage("r3", T0 + 20, Some("key_b"), None),
        usage("r4", T0 + 30, None, None),
        usage("r5", T0 + 5_000, Some("key_b"), Some("ops")),
    ];
    rows[1].cost_nanos = None; // unpriced
    rows[2].status = 502;
    rows[2].provider = None;
    rows[3].model = "llama-3".into();
    rows[3].cached_tokens = 40;
    rows[4].status = 499;
    rows
}

#[test]
fn aggregates_agree_with_the_memory_store_and_filter_by_time() {
    let dir = TempDir::new("agg");
    let sqlite = SqliteStore::open(dir.db()).unwrap();
    let memory = MemoryStore::new();
    sqlite.append_usage(&sample()).unwrap();
    memory.append_usage(&sample()).unwrap();
    for group in [GroupBy::Key, GroupBy::Team, GroupBy::Model, GroupBy::Provider] {
        let a = sqlite.usage_aggregate(group, T0, T0 + 1_000_000).unwrap();
        let b = memory.usage_aggregate(group, T0, T0 + 1_000_000).unwrap();
        assert_eq!(a, b, "{group:?}");
    }
    let by_key = sqlite.usage_aggregate(GroupBy::Key, T0, T0 + 1_000_000).unwrap();
    let groups: Vec<_> = by_key.iter().map(|g| g.group.as_deref()).collect();
    assert_eq!(groups, vec![None, Some("key_a"), Some("key_b")]);
    let a = &by_key[1];
    assert_eq!((a.requests, a.prompt_tokens, a.completion_tokens), (2, 200, 40));
    assert_eq!((a.cost_nanos, a.unpriced_requests, a.errors), (1_000, 1, 0));
    assert_eq!(a.cost_usd, 1e-6);
    assert_eq!(by_key[2].errors, 2);
    // The window is half-open: r5 at T0 + 5 000 is out of [T0, T0 + 5 000).
    let early = sqlite.usage_aggregate(GroupBy::Team, T0, T0 + 5_000).unwrap();
    assert_eq!(early.iter().map(|g| g.requests).sum::<u64>(), 4);
    assert!(early.iter().all(|g| g.group.as_deref() != Some("ops")));
    for pool in [PoolId::Global, PoolId::Key("key_b".into()), PoolId::Team("research".into())] {
        assert_eq!(sqlite.usage_totals(&pool, T0 + 10).unwrap(), memory.usage_totals(&pool, T0 + 10).unwrap());
    }
    assert_eq!(sqlite.usage_totals(&PoolId::Team("research".into()), T0 + 10).unwrap(), (120, 0));
}

#[test]
fn csv_export_streams_every_row_with_quoting() {
    let dir = TempDir::new("csv");
    let store = SqliteStore::open(dir.db()).unwrap();
    let mut rows = sample();
    rows[0].model = "weird,\"model\"".into();
    store.append_usage(&rows).unwrap();
    let mut out = Vec::new();
    assert_eq!(csv::export(&store, T0, T0 + 1_000, &mut out).unwrap(), 4);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines[0], csv::HEADER);
    assert_eq!(lines.len(), 5);
    assert!(lines[1].contains(",\"weird,\"\"model\"\"\","), "{}", lines[1]);
    assert!(lines[1].ends_with(",0.000001000,300,,200,false,chat,0.000"), "{}", lines[1]);
    assert!(lines[2].contains(",,300,"), "an unpriced row has an empty cost: {}", lines[2]);
}

#[test]
fn reopening_the_file_keeps_keys_teams_budgets_and_usage() {
    let dir = TempDir::new("reopen");
    let team = Team {
        name: "research".into(),
        budget: Some(BudgetSpec { tokens: Some(1_000_000), usd: None, period: Period::Weekly }),
        limits: Limits { rpm: Some(100), ..Limits::default() },
        metadata: serde_json::Map::new(),
    };
    {
        let store = SqliteStore::open(dir.db()).unwrap();
        store.put_key(&key_record("key_1")).unwrap();
        store.put_key(&key_record("key_2")).unwrap();
        let mut changed = key_record("key_2");
        changed.enabled = false;
        store.put_key(&changed).unwrap();
        assert!(store.delete_key("key_1").unwrap());
        assert!(!store.delete_key("key_1").unwrap());
        store.put_team(&team).unwrap();
        store
            .put_team(&Team {
                name: "gone".into(),
                budget: None,
                limits: Limits::default(),
                metadata: Default::default(),
            })
            .unwrap();
        assert!(store.delete_team("gone").unwrap());
        store
            .put_budget(&PoolId::Global, Some(&BudgetSpec { tokens: None, usd: Some(100.0), period: Period::Daily }))
            .unwrap();
        store.put_budget(&PoolId::Team("x".into()), Some(&BudgetSpec::default())).unwrap();
        store.put_budget(&PoolId::Team("x".into()), None).unwrap();
        store.append_usage(&sample()).unwrap();
    }
    let store = SqliteStore::open(dir.db()).unwrap();
    let keys = store.load_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0], KeyRecord { enabled: false, ..key_record("key_2") });
    assert_eq!(store.load_teams().unwrap(), vec![team]);
    assert_eq!(
        store.load_budgets().unwrap(),
        vec![(PoolId::Global, BudgetSpec { tokens: None, usd: Some(100.0), period: Period::Daily })]
    );
    assert_eq!(store.usage_totals(&PoolId::Global, i64::MIN).unwrap().0, 5 * 120);
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = TempDir::new("schema");
    drop(SqliteStore::open(dir.db()).unwrap());
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    match SqliteStore::open(dir.db()) {
        Err(StoreError::SchemaTooNew { found, supported }) => assert_eq!((found, supported), (3, 2)),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(dir.path().exists());
}

#[test]
fn a_version_1_ledger_gains_audio_ms_and_keeps_its_rows() {
    let dir = TempDir::new("migrate");
    {
        // The version-1 ledger exactly as that build created it.
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.execute_batch(
            "CREATE TABLE ledger (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, ts_ms INTEGER NOT NULL,
             key_id TEXT, team TEXT, provider TEXT, model TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
             completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost_nanos INTEGER,
             latency_ms INTEGER NOT NULL, ttft_ms INTEGER, status INTEGER NOT NULL, cache_hit INTEGER NOT NULL,
             route TEXT NOT NULL);
             INSERT INTO ledger (request_id, ts_ms, key_id, model, prompt_tokens, completion_tokens, cached_tokens,
             cost_nanos, latency_ms, status, cache_hit, route)
             VALUES ('old', 1717200000000, 'key_a', 'gpt-4o', 10, 5, 0, 100, 3, 200, 0, 'chat');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.db()).unwrap();
    let mut audio = usage("new", T0 + 1, Some("key_a"), None);
    audio.audio_ms = 12_345;
    audio.route = "audio.transcriptions".into();
    store.append_usage(&[audio]).unwrap();
    let mut rows = Vec::new();
    store.usage_rows(0, i64::MAX, &mut |r| rows.push((r.request_id.clone(), r.prompt_tokens, r.audio_ms))).unwrap();
    rows.sort();
    let prompt = usage("x", 0, None, None).prompt_tokens;
    assert_eq!(rows, [("new".to_owned(), prompt, 12_345), ("old".to_owned(), 10, 0)]);
    drop(store);
    // Opening again does not try to add the column twice.
    assert!(SqliteStore::open(dir.db()).is_ok());
}
