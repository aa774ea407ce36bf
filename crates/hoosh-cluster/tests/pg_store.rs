//! The PostgreSQL store against a real server: schema migrated once (two
//! instances starting together included), records round-trip, the ledger
//! is idempotent, and rows written while the database is unreachable are
//! spilled, counted, and replayed exactly once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hoosh_testkit::stores;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoosh_cluster::{PgOptions, PgStore, migrate};
use hoosh_governance::{GroupBy, PoolId, Store, UsageRecord};

fn row(id: &str, key: &str, tokens: u64, ts_ms: i64) -> UsageRecord {
    UsageRecord {
        id: id.into(),
        request_id: format!("req-{id}"),
        ts_ms,
        key_id: Some(key.into()),
        model: "m".into(),
        prompt_tokens: tokens,
        cost_nanos: Some(tokens * 10),
        status: 200,
        route: "chat".into(),
        ..UsageRecord::default()
    }
}

fn open(url: &str, dir: &std::path::Path, instance: &str) -> Arc<PgStore> {
    PgStore::open(PgOptions {
        url: url.into(),
        migrate: true,
        spill_path: dir.join("ledger-spill.jsonl"),
        instance: instance.into(),
    })
    .unwrap()
}

#[test]
fn two_instances_migrate_one_schema_and_share_one_idempotent_ledger() {
    let url = stores::fresh_database();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Both start at once: the advisory lock makes one migrate and the other see it done.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| open(&url, d1.path(), "a"));
        let b = s.spawn(|| open(&url, d2.path(), "b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let conn = hoosh_cluster::PgConn::start(&url, "check").unwrap();
    assert_eq!(migrate::current(&conn).unwrap(), migrate::latest());

    assert_eq!(a.append_usage(&[row("1", "k", 5, 1000), row("2", "k", 7, 2000)]).unwrap(), 2);
    // A retried batch, through the other instance: counted once.
    assert_eq!(b.append_usage(&[row("2", "k", 7, 2000), row("3", "other", 1, 3000)]).unwrap(), 1);
    assert_eq!(b.usage_totals(&PoolId::Key("k".into()), 0).unwrap(), (12, 120));
    assert_eq!(a.usage_totals(&PoolId::Global, 1500).unwrap(), (8, 80));
    let by_key = a.usage_aggregate(GroupBy::Key, 0, 10_000).unwrap();
    assert_eq!(
        by_key.iter().map(|g| (g.group.clone(), g.requests)).collect::<Vec<_>>(),
        [(Some("k".into()), 2), (Some("other".into()), 1)]
    );
    let mut seen = Vec::new();
    b.usage_rows(0, 10_000, &mut |r| seen.push(r.id.clone())).unwrap();
    assert_eq!(seen, ["1", "2", "3"]);
    // A row without an id is a bug, refused whole.
    assert!(a.append_usage(&[row("", "k", 1, 1)]).is_err());
}

#[test]
fn records_written_by_one_instance_are_read_by_another() {
    let url = stores::fresh_database();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(&url, d1.path(), "a");
    let b = open(&url, d2.path(), "b");
    let spec = hoosh_governance::BudgetSpec { tokens: Some(100), usd: None, period: hoosh_governance::Period::Daily };
    a.put_budget(&PoolId::Global, Some(&spec)).unwrap();
    assert_eq!(b.load_budgets().unwrap(), [(PoolId::Global, spec)]);
    a.put_budget(&PoolId::Global, None).unwrap();
    assert!(b.load_budgets().unwrap().is_empty());
    let team: hoosh_governance::Team = serde_json::from_str(r#"{"name":"t","budget":{"tokens":5}}"#).unwrap();
    a.put_team(&team).unwrap();
    assert_eq!(b.load_teams().unwrap(), [team]);
    assert!(b.delete_team("t").unwrap());
    assert!(!a.delete_team("t").unwrap());
}

#[test]
fn rows_written_while_postgres_is_unreachable_are_spilled_and_replayed_once_in_order() {
    let url = stores::fresh_database();
    let target = url.split('@').nth(1).unwrap().split('/').next().unwrap().to_string();
    let relay = hoosh_testkit::relay::Relay::start(&target).unwrap();
    let relayed = url.replacen(&target, &format!("127.0.0.1:{}", relay.port), 1);
    let dir = tempfile::tempdir().unwrap();
    let store = open(&relayed, dir.path(), "a");
    store.append_usage(&[row("1", "k", 1, 1000)]).unwrap();

    relay.cut();
    // Taken (the writer is told so), kept on disk, and still counted against budgets.
    assert_eq!(store.append_usage(&[row("2", "k", 2, 2000), row("3", "k", 3, 3000)]).unwrap(), 2);
    assert_eq!(store.append_usage(&[row("4", "k", 4, 4000)]).unwrap(), 1);
    assert_eq!(store.spilled(), 3);
    // Records cannot be written meanwhile: an error, not a silent loss.
    assert!(store.delete_key("nope").is_err());

    relay.restore();
    // The idle replay (every second) empties the spill.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.spilled() > 0 {
        assert!(Instant::now() < deadline, "spill not replayed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Replaying again (a crash between commit and emptying the file) adds nothing.
    assert_eq!(store.append_usage(&[row("3", "k", 3, 3000)]).unwrap(), 0);
    let mut seen = Vec::new();
    store.usage_rows(0, 10_000, &mut |r| seen.push(r.id.clone())).unwrap();
    assert_eq!(seen, ["1", "2", "3", "4"]);
    assert_eq!(store.usage_totals(&PoolId::Key("k".into()), 0).unwrap(), (10, 100));
}

#[test]
fn an_older_schema_without_migrate_is_refused_with_the_fix() {
    let url = stores::fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let err =
        PgStore::open(PgOptions { url, migrate: false, spill_path: dir.path().join("s.jsonl"), instance: "a".into() })
            .unwrap_err()
            .to_string();
    assert!(err.contains("hoosh migrate"), "{err}");
}
