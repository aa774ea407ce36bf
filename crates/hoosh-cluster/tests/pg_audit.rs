//! The cluster's audit chain against a real PostgreSQL: writers appending
//! at once make one gap-free, verifiable chain; a batch retried after a
//! lost commit answer, or replayed from a spill file, is taken once; what
//! is written while the database is unreachable waits on disk and joins the
//! chain in order; a writer holding another key cannot append; edits made
//! in the database behind the gateway's back are caught.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoosh_audit::{
    Appended, AuditKey, AuditLog, AuditOptions, ChainState, ChainStore, Draft, Entry, Origin, Reason, seal,
    system_clock, verify_store,
};
use hoosh_cluster::{PgAuditStore, PgConn, migrate};
use hoosh_testkit::relay::Relay;
use hoosh_testkit::stores;

fn key(byte: u8) -> AuditKey {
    AuditKey::from_bytes(vec![byte; 32]).unwrap()
}

/// A fresh, migrated database.
fn database() -> String {
    let url = stores::fresh_database();
    let conn = PgConn::start(&url, "migrate").unwrap();
    migrate::migrate(&conn).unwrap();
    url
}

/// A store appending to `url`'s chain, spilling into `dir`, signing with `keys`.
fn store_at(url: &str, dir: &std::path::Path, instance: &str, keys: &[&AuditKey]) -> Arc<PgAuditStore> {
    let keys = keys.iter().map(|k| (*k).clone()).collect();
    PgAuditStore::open(url, dir.join("spill.jsonl"), instance, keys).unwrap()
}

/// Records `count` events as `writer`, pausing `pause` every `every` of
/// them so that several writers' batches interleave.
fn record_paced(log: &AuditLog, writer: &str, count: u64, every: u64, pause: Duration) {
    for n in 0..count {
        log.record(event(writer, n));
        if n % every == 0 {
            std::thread::sleep(pause);
        }
    }
}

fn options() -> AuditOptions {
    AuditOptions {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..AuditOptions::default()
    }
}

fn entries(store: &dyn ChainStore) -> Vec<Entry> {
    let mut all = Vec::new();
    store
        .range(0, &mut |e| {
            all.push(e);
            true
        })
        .unwrap();
    all
}

fn event(writer: &str, n: u64) -> Draft {
    Draft::new("admin.action").actor(writer).field("n", n)
}

/// `n` of each of `writer`'s events, in chain order.
fn numbers_of(all: &[Entry], writer: &str) -> Vec<u64> {
    all.iter().filter(|e| e.actor.as_deref() == Some(writer)).filter_map(|e| e.data["n"].as_u64()).collect()
}

/// Until `store`'s spill file is empty (its idle replay runs every second).
fn wait_replayed(store: &PgAuditStore) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.spilled() > 0 {
        assert!(Instant::now() < deadline, "the spill was not replayed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sql(url: &str, statement: &str) {
    let (url, statement) = (url.to_owned(), statement.to_owned());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute(&statement).unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn two_instances_appending_at_once_make_one_gap_free_chain_that_verifies() {
    let url = database();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let shared = key(7);
    let a = store_at(&url, d1.path(), "a", &[&shared]);
    let b = store_at(&url, d2.path(), "b", &[&shared]);
    let log_a = AuditLog::open_with(a.clone(), shared.clone(), system_clock(), options()).unwrap();
    let log_b = AuditLog::open_with(b.clone(), shared.clone(), system_clock(), options()).unwrap();
    std::thread::scope(|s| {
        for (log, name) in [(&log_a, "a"), (&log_b, "b")] {
            s.spawn(move || record_paced(log, name, 600, 50, Duration::from_millis(3)));
        }
    });
    log_a.close();
    log_b.close();

    let all = entries(a.as_ref());
    // 600 events each, and each log's chain.start and chain.stop.
    assert_eq!(all.len(), 1204);
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=1204).collect::<Vec<_>>());
    // Each instance's events in the order it recorded them, none twice.
    assert_eq!(numbers_of(&all, "a"), (0..600).collect::<Vec<_>>());
    assert_eq!(numbers_of(&all, "b"), (0..600).collect::<Vec<_>>());
    // The batches interleave: the chain really is shared.
    let switches = all.windows(2).filter(|w| w[0].actor != w[1].actor).count();
    assert!(switches > 4, "{switches} switches between writers");
    let checkpoint = b.latest_checkpoint().unwrap().expect("a checkpoint at close");
    let report = verify_store(b.as_ref(), std::slice::from_ref(&shared), Some(&checkpoint)).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!((report.first_seq, report.head_seq, report.checkpoint_matched), (1, 1204, true));
}

#[test]
fn a_batch_retried_after_its_commit_answer_was_lost_is_taken_once() {
    let url = database();
    let dir = tempfile::tempdir().unwrap();
    let k = key(1);
    let store = store_at(&url, dir.path(), "a", &[&k]);
    let mut state = ChainState::genesis();
    let mut batch: Vec<Entry> = (0..3).map(|n| seal(&mut state, event("a", n), 1000 + n as i64, &k)).collect();
    let origin = Origin { writer: 42, first: 0 };
    let first = store.append(&mut batch, origin, &k).unwrap();
    // The writer never heard back and sends the same batch again, then a
    // batch that overlaps it by one entry.
    let again = store.append(&mut batch, origin, &k).unwrap();
    assert_eq!(first, again);
    let mut next: Vec<Entry> = batch[2..].to_vec();
    next.push(seal(&mut state, event("a", 3), 1003, &k));
    let Appended::InChain(head) = store.append(&mut next, Origin { writer: 42, first: 2 }, &k).unwrap() else {
        panic!("not in the chain")
    };
    assert_eq!(head.next_seq, 5);
    let all = entries(store.as_ref());
    assert_eq!(numbers_of(&all, "a"), [0, 1, 2, 3]);
    assert!(verify_store(store.as_ref(), &[k], None).unwrap().is_ok());
}

#[test]
fn entries_recorded_while_postgres_is_unreachable_wait_on_disk_and_join_the_chain_in_order() {
    let url = database();
    let target = url.split('@').nth(1).unwrap().split('/').next().unwrap().to_string();
    let relay = Relay::start(&target).unwrap();
    let relayed = relay.url(&url, &target);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let k = key(3);
    let cut_off = store_at(&relayed, d1.path(), "a", &[&k]);
    let other = store_at(&url, d2.path(), "b", &[&k]);
    let log_a = AuditLog::open_with(cut_off.clone(), k.clone(), system_clock(), options()).unwrap();
    let log_b = AuditLog::open_with(other.clone(), k.clone(), system_clock(), options()).unwrap();
    for n in 0..5 {
        log_a.record(event("a", n));
    }
    log_a.flush();
    assert_eq!(cut_off.spilled(), 0);

    relay.cut();
    for n in 5..40 {
        log_a.record(event("a", n));
        if n % 10 == 0 {
            // Each commit is a separate trip to the spill file.
            log_a.flush();
        }
    }
    // Flushed means safe: on disk here, since the chain cannot be reached.
    log_a.flush();
    assert_eq!(cut_off.spilled(), 35);
    assert!(log_a.queue_depth() == 0);
    // The other instance goes on appending meanwhile.
    for n in 0..10 {
        log_b.record(event("b", n));
    }
    log_b.flush();

    relay.restore();
    wait_replayed(&cut_off);
    log_a.record(event("a", 40));
    log_a.close();
    log_b.close();
    let all = entries(other.as_ref());
    assert_eq!(numbers_of(&all, "a"), (0..=40).collect::<Vec<_>>(), "every entry once, in order");
    assert_eq!(numbers_of(&all, "b"), (0..10).collect::<Vec<_>>());
    let report = verify_store(other.as_ref(), std::slice::from_ref(&k), None).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn a_spill_left_by_a_dead_process_joins_the_chain_before_the_next_start_and_only_once() {
    let url = database();
    let target = url.split('@').nth(1).unwrap().split('/').next().unwrap().to_string();
    let relay = Relay::start(&target).unwrap();
    let relayed = relay.url(&url, &target);
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill.jsonl");
    let k = key(4);
    let left = {
        let store = PgAuditStore::open(&relayed, spill.clone(), "a", vec![k.clone()]).unwrap();
        let mut state = ChainState::genesis();
        relay.cut();
        let mut batch: Vec<Entry> = (0..4).map(|n| seal(&mut state, event("gone", n), 10 + n as i64, &k)).collect();
        assert_eq!(store.append(&mut batch, Origin { writer: 9, first: 0 }, &k).unwrap(), Appended::Aside);
        assert_eq!(store.spilled(), 4);
        // The process dies here with its entries on disk.
        std::fs::read(&spill).unwrap()
    };
    relay.restore();
    let store = PgAuditStore::open(&url, spill.clone(), "a", vec![k.clone()]).unwrap();
    let log = AuditLog::open_with(store.clone(), k.clone(), system_clock(), options()).unwrap();
    log.close();
    let all = entries(store.as_ref());
    assert_eq!(numbers_of(&all, "gone"), [0, 1, 2, 3]);
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds[4..], ["chain.start", "chain.stop"], "the dead process's entries go first");
    drop(store);
    // A crash after the replay committed but before the file was emptied:
    // the same file is replayed again at the next start, and taken once.
    std::fs::write(&spill, &left).unwrap();
    let store = PgAuditStore::open(&url, spill, "a", vec![k.clone()]).unwrap();
    let log = AuditLog::open_with(store.clone(), k.clone(), system_clock(), options()).unwrap();
    log.close();
    assert_eq!(store.spilled(), 0);
    let all = entries(store.as_ref());
    assert_eq!(numbers_of(&all, "gone"), [0, 1, 2, 3]);
    assert_eq!(all.len(), 8, "4 replayed once, and two starts and stops");
    assert!(verify_store(store.as_ref(), &[k], None).unwrap().is_ok());
}

#[test]
fn an_instance_with_another_key_cannot_append_to_the_cluster_chain() {
    let url = database();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let good = key(5);
    let a = store_at(&url, d1.path(), "a", &[&good]);
    let log = AuditLog::open_with(a.clone(), good.clone(), system_clock(), options()).unwrap();
    log.record(event("a", 0));
    log.flush();
    // Someone with a valid gateway config but their own key.
    let intruder = key(6);
    let b = store_at(&url, d2.path(), "b", &[&intruder]);
    let mut state = ChainState::after(&a.head().unwrap().unwrap());
    let mut forged = vec![seal(&mut state, event("b", 0), 1, &intruder)];
    // Kept aside on b's disk, never in the chain.
    assert_eq!(b.append(&mut forged, Origin { writer: 1, first: 0 }, &intruder).unwrap(), Appended::Aside);
    log.close();
    let all = entries(a.as_ref());
    assert!(numbers_of(&all, "b").is_empty());
    assert!(verify_store(a.as_ref(), &[good], None).unwrap().is_ok());
}

#[test]
fn edits_made_in_the_database_are_caught_and_pruning_keeps_the_chain_verifiable() {
    let url = database();
    let dir = tempfile::tempdir().unwrap();
    let k = key(8);
    let store = store_at(&url, dir.path(), "a", &[&k]);
    let clock_ms = Arc::new(std::sync::atomic::AtomicI64::new(1_000));
    let clock: hoosh_audit::Clock = {
        let c = Arc::clone(&clock_ms);
        Arc::new(move || c.load(std::sync::atomic::Ordering::Relaxed))
    };
    let log = AuditLog::open_with(store.clone(), k.clone(), clock, options()).unwrap();
    for n in 0..10 {
        log.record(event("a", n));
        log.flush();
        clock_ms.fetch_add(1_000, std::sync::atomic::Ordering::Relaxed);
    }
    // Pruning: a signed record keeps what is left verifiable.
    let record = log.prune_before(5_500).unwrap().expect("old entries");
    log.flush();
    let report = verify_store(store.as_ref(), std::slice::from_ref(&k), None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.first_seq, record.first_kept_seq);
    log.close();

    // An administrator of the database edits an entry...
    let victim = entries(store.as_ref())[3].clone();
    sql(&url, &format!("UPDATE audit SET json = replace(json, '\"n\":', '\"n\":1') WHERE seq = {}", victim.seq));
    let problem = verify_store(store.as_ref(), std::slice::from_ref(&k), None).unwrap().problem.unwrap();
    assert_eq!((problem.seq, problem.reason), (victim.seq, Reason::Modified));
    // ...or deletes one.
    sql(&url, &format!("UPDATE audit SET json = '{}' WHERE seq = {}", victim.to_json(), victim.seq));
    assert!(verify_store(store.as_ref(), std::slice::from_ref(&k), None).unwrap().is_ok());
    sql(&url, &format!("DELETE FROM audit WHERE seq = {}", victim.seq + 1));
    let problem = verify_store(store.as_ref(), &[k], None).unwrap().problem.unwrap();
    assert_eq!(problem.reason.code(), "missing_sequence");
}

#[test]
fn pruning_while_two_instances_append_leaves_one_chain_that_verifies() {
    let url = database();
    let (d1, d2, d3) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let k = key(9);
    let (a, b, c) = (
        store_at(&url, d1.path(), "a", &[&k]),
        store_at(&url, d2.path(), "b", &[&k]),
        store_at(&url, d3.path(), "c", &[&k]),
    );
    let log_a = AuditLog::open_with(a.clone(), k.clone(), system_clock(), options()).unwrap();
    let log_b = AuditLog::open_with(b.clone(), k.clone(), system_clock(), options()).unwrap();
    let pruner = AuditLog::open_with(c.clone(), k.clone(), system_clock(), options()).unwrap();
    let mut pruned = 0;
    std::thread::scope(|s| {
        for (log, name) in [(&log_a, "a"), (&log_b, "b")] {
            s.spawn(move || record_paced(log, name, 400, 20, Duration::from_millis(4)));
        }
        // A third instance's retention runs again and again meanwhile, each
        // time cutting everything older than "now".
        for _ in 0..15 {
            std::thread::sleep(Duration::from_millis(20));
            if pruner.prune_before(system_clock()()).unwrap().is_some() {
                pruned += 1;
            }
        }
    });
    log_a.close();
    log_b.close();
    pruner.close();
    assert!(pruned > 3, "only {pruned} prunes ran");
    let report = verify_store(c.as_ref(), std::slice::from_ref(&k), None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    // Whatever survived is contiguous: seq first..head with nothing missing.
    let all = entries(c.as_ref());
    assert_eq!(all.len() as u64, report.head_seq - report.first_seq + 1);
}

#[test]
fn a_key_rotated_while_postgres_is_unreachable_signs_exactly_what_follows_it_once_replayed() {
    let url = database();
    let target = url.split('@').nth(1).unwrap().split('/').next().unwrap().to_string();
    let relay = Relay::start(&target).unwrap();
    let relayed = relay.url(&url, &target);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (old, new) = (key(10), key(11));
    let cut_off = store_at(&relayed, d1.path(), "a", &[&new, &old]);
    let other = store_at(&url, d2.path(), "b", &[&old]);
    let log_a = AuditLog::open_with(cut_off.clone(), old.clone(), system_clock(), options()).unwrap();
    let log_b = AuditLog::open_with(other.clone(), old.clone(), system_clock(), options()).unwrap();
    log_a.record(event("a", 0));
    log_a.flush();
    relay.cut();
    log_a.record(event("a", 1));
    log_a.rotate(new.clone()).unwrap();
    log_a.record(event("a", 2));
    log_a.flush();
    assert!(cut_off.spilled() >= 3);
    // Another instance (the old key only) appends meanwhile, so the replay must reseal.
    log_b.record(event("b", 0));
    log_b.close();
    relay.restore();
    wait_replayed(&cut_off);
    log_a.record(event("a", 3));
    log_a.close();
    let all = entries(other.as_ref());
    assert_eq!(numbers_of(&all, "a"), [0, 1, 2, 3]);
    let rotate = all.iter().position(|e| e.kind == "chain.rotate").expect("the rotation is in the chain");
    assert!(all[..=rotate].iter().all(|e| e.key_id == old.id()), "up to the rotation: the old key");
    assert!(all[rotate + 1..].iter().all(|e| e.key_id == new.id()), "after it: the new key only");
    let report = verify_store(other.as_ref(), &[new, old], None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.key_changes.len(), 1);
    assert!(report.key_changes[0].signed_by_old_key);
}

#[test]
fn a_writer_that_waited_for_the_lock_appends_behind_what_the_holder_committed() {
    let url = database();
    let dir = tempfile::tempdir().unwrap();
    let k = key(12);
    let store = store_at(&url, dir.path(), "a", &[&k]);
    let mut state = ChainState::genesis();
    let mut first = vec![seal(&mut state, event("a", 0), 1, &k)];
    store.append(&mut first, Origin { writer: 1, first: 0 }, &k).unwrap();
    // Another instance holds the chain's lock while it appends an entry…
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut tx = holder.transaction().unwrap();
    tx.query_one("SELECT one FROM audit_lock WHERE one FOR UPDATE", &[]).unwrap();
    let mut theirs = state;
    let other = seal(&mut theirs, event("b", 0), 2, &k);
    tx.execute(
        "INSERT INTO audit (seq, ts_ms, json) VALUES ($1, $2, $3)",
        &[&(other.seq as i64), &other.ts_ms, &other.to_json()],
    )
    .unwrap();
    // …while this one's append waits for the lock, sealed against the old head.
    let waiting = std::thread::spawn({
        let (store, k) = (store.clone(), k.clone());
        let mut batch = vec![seal(&mut state, event("a", 1), 3, &k)];
        move || store.append(&mut batch, Origin { writer: 1, first: 1 }, &k).map(|r| (r, batch))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "the append did not wait for the lock");
    tx.commit().unwrap();
    let (appended, batch) = waiting.join().unwrap().unwrap();
    // It saw the committed entry and went behind it, not onto a head it read before waiting.
    assert_eq!(appended, Appended::InChain(ChainState::after(&batch[0])));
    assert_eq!((batch[0].seq, batch[0].prev_hash), (3, other.hash));
    assert!(verify_store(store.as_ref(), &[k], None).unwrap().is_ok());
}
