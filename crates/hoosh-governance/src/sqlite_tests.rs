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
fn a_retried_row_is_stored_once() {
    let dir = TempDir::new("retry");
    let store = SqliteStore::open(dir.db()).unwrap();
    let a = usage("req-1", T0, Some("key_a"), None);
    assert_eq!(store.append_usage(&[a.clone(), usage("req-2", T0, None, None)]).unwrap(), 2);
    // A batch whose commit reported failure is written again: same ids, no new rows.
    assert_eq!(store.append_usage(std::slice::from_ref(&a)).unwrap(), 0);
    assert_eq!(store.usage_totals(&PoolId::Global, 0).unwrap(), (240, 2_000));
    let mut rows = Vec::new();
    store.usage_rows(0, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
    assert_eq!(rows[0], a, "every field round-trips");
}

#[test]
fn rows_sharing_a_request_id_are_all_stored() {
    let dir = TempDir::new("same-request-id");
    let store = SqliteStore::open(dir.db()).unwrap();
    let rows: Vec<_> = (0..3).map(|i| usage("same-id", T0 + i, Some("key_a"), None)).collect();
    assert_eq!(store.append_usage(&rows).unwrap(), 3);
    assert_eq!(store.usage_totals(&PoolId::Key("key_a".into()), 0).unwrap(), (3 * 120, 3 * 1_000));
}

#[test]
fn a_row_without_an_id_is_refused_by_both_stores() {
    let dir = TempDir::new("no-id");
    let sqlite = SqliteStore::open(dir.db()).unwrap();
    let memory = MemoryStore::new();
    let idless = UsageRecord { id: String::new(), ..usage("req-x", T0, None, None) };
    let batch = [usage("req-ok", T0, None, None), idless];
    for store in [&sqlite as &dyn Store, &memory] {
        match store.append_usage(&batch) {
            Err(StoreError::MissingRowId { request_id }) => assert_eq!(request_id, "req-x"),
            other => panic!("expected MissingRowId, got {other:?}"),
        }
        assert_eq!(store.usage_totals(&PoolId::Global, 0).unwrap(), (0, 0), "the whole batch is refused");
    }
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
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(dir.path().exists());
}

/// The whole schema as the version 1 and 2 builds created it: the ledger's
/// `request_id` was its unique key; version 2 added `audio_ms`.
fn old_schema(version: i64) -> String {
    let audio_ms = if version >= 2 { ",\n    audio_ms          INTEGER NOT NULL DEFAULT 0" } else { "" };
    format!(
        "CREATE TABLE keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, record TEXT NOT NULL);
CREATE TABLE teams (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE budgets (pool TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE ledger (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    ts_ms             INTEGER NOT NULL,
    key_id            TEXT,
    team              TEXT,
    provider          TEXT,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    cost_nanos        INTEGER,
    latency_ms        INTEGER NOT NULL,
    ttft_ms           INTEGER,
    status            INTEGER NOT NULL,
    cache_hit         INTEGER NOT NULL,
    route             TEXT NOT NULL{audio_ms}
);
CREATE INDEX ledger_ts ON ledger (ts_ms);
CREATE INDEX ledger_key_ts ON ledger (key_id, ts_ms);
CREATE INDEX ledger_team_ts ON ledger (team, ts_ms);
PRAGMA user_version = {version};"
    )
}

/// Writes a version 1 or 2 database with three ledger rows (`old-1`..`old-3`,
/// inserted newest first so append order differs from id order) and a key.
fn write_old_database(path: &std::path::Path, version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&old_schema(version)).unwrap();
    for (request_id, ts, tokens) in [("old-3", T0 + 2, 30), ("old-1", T0, 10), ("old-2", T0, 20)] {
        conn.execute(
            "INSERT INTO ledger (request_id, ts_ms, key_id, model, prompt_tokens, completion_tokens, cached_tokens,
             cost_nanos, latency_ms, status, cache_hit, route)
             VALUES (?1, ?2, 'key_a', 'gpt-4o', ?3, 5, 0, 100, 3, 200, 0, 'chat')",
            rusqlite::params![request_id, ts, tokens],
        )
        .unwrap();
    }
    if version >= 2 {
        conn.execute("UPDATE ledger SET audio_ms = 1500 WHERE request_id = 'old-3'", []).unwrap();
    }
    conn.execute("INSERT INTO keys (id, hash, record) VALUES ('key_a', 'h', '{}')", []).unwrap();
}

/// Opens an old database and checks the ledger was rebuilt in place: rows,
/// order and values kept, ids from the old request ids, `request_id` no
/// longer unique.
fn check_migrated(version: i64) {
    let dir = TempDir::new(&format!("migrate-v{version}"));
    write_old_database(&dir.db(), version);
    let store = SqliteStore::open(dir.db()).unwrap();
    {
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(found, SCHEMA_VERSION);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger' AND sql IS NOT NULL")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for index in ["ledger_ts", "ledger_key_ts", "ledger_team_ts"] {
            assert!(indexes.iter().any(|i| i == index), "{index} missing from {indexes:?}");
        }
        assert!(!indexes.iter().any(|i| i == "ledger_request_id"), "dropped in version 5: {indexes:?}");
        let keys: i64 = conn.query_row("SELECT COUNT(*) FROM keys", [], |r| r.get(0)).unwrap();
        assert_eq!(keys, 1, "other tables are untouched");
    }
    let read = |store: &SqliteStore| {
        let mut rows = Vec::new();
        store
            .usage_rows(0, i64::MAX, &mut |r| {
                rows.push((r.id.clone(), r.request_id.clone(), r.ts_ms, r.prompt_tokens, r.audio_ms))
            })
            .unwrap();
        rows
    };
    let audio = if version >= 2 { 1_500 } else { 0 };
    let migrated = vec![
        // Same millisecond: the old append order (old-1 before old-2) is kept.
        ("old-1".to_owned(), "old-1".to_owned(), T0, 10, 0),
        ("old-2".to_owned(), "old-2".to_owned(), T0, 20, 0),
        ("old-3".to_owned(), "old-3".to_owned(), T0 + 2, 30, audio),
    ];
    assert_eq!(read(&store), migrated);
    // An old row retried by a writer that did not see its commit is still ignored.
    let retried = UsageRecord { id: "old-1".into(), ..usage("old-1", T0, Some("key_a"), None) };
    assert_eq!(store.append_usage(&[retried]).unwrap(), 0);
    // Two new rows with the same request id, one equal to an old one: all stored.
    let (a, b) = (usage("old-2", T0 + 3, Some("key_a"), None), usage("old-2", T0 + 4, Some("key_a"), None));
    assert_eq!(store.append_usage(&[a, b]).unwrap(), 2);
    assert_eq!(
        store.usage_totals(&PoolId::Key("key_a".into()), 0).unwrap(),
        (10 + 20 + 30 + 3 * 5 + 2 * 120, 3 * 100 + 2 * 1_000)
    );
    drop(store);
    // Opening again finds version 3 and changes nothing.
    let store = SqliteStore::open(dir.db()).unwrap();
    let rows = read(&store);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[..3], migrated[..]);
}

#[test]
fn a_version_2_database_is_migrated_in_place() {
    check_migrated(2);
}

#[test]
fn a_version_1_database_is_migrated_in_place_and_gains_audio_ms() {
    check_migrated(1);
}

#[test]
fn a_version_4_database_loses_the_request_id_index_and_keeps_its_rows() {
    let dir = TempDir::new("migrate-v4");
    {
        let store = SqliteStore::open(dir.db()).unwrap();
        store.append_usage(&[UsageRecord { id: "row-1".into(), ..usage("same", T0, None, None) }]).unwrap();
        store.append_usage(&[UsageRecord { id: "row-2".into(), ..usage("same", T0 + 1, None, None) }]).unwrap();
    }
    // Put the file back as version 4 left it: the index there, user_version 4.
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.execute_batch("CREATE INDEX ledger_request_id ON ledger (request_id); PRAGMA user_version = 4;").unwrap();
    drop(conn);

    let store = SqliteStore::open(dir.db()).unwrap();
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let index: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'ledger_request_id'", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!((index, version), (0, SCHEMA_VERSION));
    let mut ids = Vec::new();
    store.usage_rows(0, i64::MAX, &mut |r| ids.push((r.id.clone(), r.request_id.clone()))).unwrap();
    assert_eq!(ids, [("row-1".to_string(), "same".to_string()), ("row-2".to_string(), "same".to_string())]);
}

#[test]
fn stored_responses_survive_a_reopen_and_are_pruned_by_age() {
    let dir = TempDir::new("responses");
    let path = dir.path().join("hoosh.db");
    let stored = |id: &str, created_ms: i64| crate::StoredResponse {
        id: id.into(),
        owner: "key_a".into(),
        created_ms,
        response: serde_json::json!({"id": id, "output": [{"type": "message"}]}),
        conversation: serde_json::json!([{"role": "user", "content": "hi"}]),
        input_items: serde_json::json!(["hi"]),
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        store.put_response(&stored("resp_old", 1_000)).unwrap();
        store.put_response(&stored("resp_new", 5_000)).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_response("resp_new").unwrap(), Some(stored("resp_new", 5_000)));
    assert_eq!(store.prune_responses(2_000).unwrap(), 1);
    assert_eq!(store.get_response("resp_old").unwrap(), None);
    assert!(store.delete_response("resp_new").unwrap());
    assert!(!store.delete_response("resp_new").unwrap());
}
