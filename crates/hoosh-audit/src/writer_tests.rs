use std::sync::atomic::AtomicI64;

use super::*;
use crate::store::{AuditStore, Durability};
use crate::testutil::{TempDir, test_key};
use crate::verify::{Reason, Verifier, verify, verify_jsonl, verify_store};

fn manual_clock(start: i64) -> (Clock, Arc<AtomicI64>) {
    let t = Arc::new(AtomicI64::new(start));
    let read = Arc::clone(&t);
    (Arc::new(move || read.load(Ordering::SeqCst)), t)
}

/// A store in a fresh directory, removed when the `TempDir` drops.
fn temp_store(name: &str) -> (Arc<AuditStore>, TempDir) {
    let dir = TempDir::new(name);
    (Arc::new(AuditStore::open(dir.db()).unwrap()), dir)
}

fn fast() -> AuditOptions {
    AuditOptions {
        poll_interval: Duration::from_millis(1),
        initial_backoff: Duration::from_millis(1),
        ..AuditOptions::default()
    }
}

fn all(store: &AuditStore) -> Vec<Entry> {
    let mut out = Vec::new();
    store
        .range(0, &mut |e| {
            out.push(e);
            true
        })
        .unwrap();
    out
}

fn event(i: u64) -> Draft {
    Draft::new("inference.response").actor("key_a").request_id(format!("req-{i}")).field("tokens", i)
}

/// A closed chain of `n` events: seq 1 chain.start, 2..=n+1 events, n+2 chain.stop.
fn closed_chain(name: &str, n: u64) -> (Arc<AuditStore>, AuditKey, TempDir) {
    let (store, dir) = temp_store(name);
    let key = test_key(1);
    let (clock, _) = manual_clock(1_000);
    let log = AuditLog::open_with(store.clone(), key.clone(), clock, fast()).unwrap();
    for i in 0..n {
        log.record(event(i));
    }
    log.close();
    (store, key, dir)
}

fn problem(store: &AuditStore, keys: &[AuditKey], cp: Option<&Checkpoint>) -> Option<(u64, Reason)> {
    verify_store(store, keys, cp).unwrap().problem.map(|p| (p.seq, p.reason))
}

fn rewrite(store: &AuditStore, entry: &Entry) {
    put_row(store, entry.seq, entry);
}

/// Stores `entry`'s JSON under row `row_seq`, whatever seq the entry says.
fn put_row(store: &AuditStore, row_seq: u64, entry: &Entry) {
    let json = entry.to_json().replace('\'', "''");
    store.execute_raw(&format!("UPDATE audit SET json = '{json}' WHERE seq = {row_seq}")).unwrap();
}

#[test]
fn records_seal_into_a_chain_that_verifies() {
    let (store, key, _dir) = closed_chain("roundtrip", 10);
    let entries = all(&store);
    assert_eq!(entries.len(), 12);
    assert_eq!(entries[0].kind, "chain.start");
    assert_eq!(entries[11].kind, "chain.stop");
    assert_eq!(entries[1].request_id.as_deref(), Some("req-0"));
    let report = verify_store(&*store, std::slice::from_ref(&key), None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!((report.entries_checked, report.first_seq, report.head_seq), (12, 1, 12));
    assert_eq!(report.head_hash, entries[11].hash);
    assert_eq!(verify(entries, &[key], None).problem, None);
}

#[test]
fn an_edited_field_is_modified_and_a_rehashed_one_has_a_bad_signature() {
    let (store, key, _dir) = closed_chain("modify", 10);
    store.execute_raw("UPDATE audit SET json = json_set(json, '$.data.tokens', 999) WHERE seq = 5").unwrap();
    assert_eq!(problem(&store, std::slice::from_ref(&key), None), Some((5, Reason::Modified)));

    let (store, key, _dir) = closed_chain("rehash", 10);
    let mut e = all(&store).remove(4);
    e.data.insert("tokens".into(), 999.into());
    e.hash = e.compute_hash();
    rewrite(&store, &e);
    assert_eq!(problem(&store, std::slice::from_ref(&key), None), Some((5, Reason::BadSignature)));

    // Re-hashed and re-signed with another key, claiming the real key's id.
    let (store, key, _dir) = closed_chain("resign", 10);
    let mut e = all(&store).remove(6);
    e.data.insert("tokens".into(), 999.into());
    e.hash = e.compute_hash();
    e.sig = test_key(9).sign(&e.hash);
    rewrite(&store, &e);
    assert_eq!(problem(&store, &[key], None), Some((7, Reason::BadSignature)));
}

#[test]
fn unparsable_row_is_modified() {
    let (store, key, _dir) = closed_chain("garbage", 5);
    store.execute_raw("UPDATE audit SET json = 'not json' WHERE seq = 3").unwrap();
    assert_eq!(problem(&store, &[key], None), Some((3, Reason::Modified)));
}

#[test]
fn a_deleted_entry_is_a_missing_sequence() {
    let (store, key, _dir) = closed_chain("delete", 10);
    store.execute_raw("DELETE FROM audit WHERE seq = 5").unwrap();
    assert_eq!(problem(&store, &[key], None), Some((6, Reason::MissingSequence { expected: 5, found: 6 })));
}

#[test]
fn swapped_entries_are_reordered() {
    let (store, key, _dir) = closed_chain("swap", 10);
    let entries = all(&store);
    put_row(&store, 5, &entries[5]);
    put_row(&store, 6, &entries[4]);
    let seqs: Vec<u64> = all(&store).iter().map(|e| e.seq).take(7).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 6, 5, 7]);
    assert_eq!(problem(&store, &[key], None), Some((5, Reason::Reordered)));
}

#[test]
fn a_cut_tail_verifies_alone_but_not_against_the_checkpoint() {
    let (store, key, _dir) = closed_chain("truncate", 10);
    let cp = store.latest_checkpoint().unwrap().unwrap();
    assert_eq!(cp.seq, 12, "close checkpoints the head");
    assert_eq!(problem(&store, std::slice::from_ref(&key), Some(&cp)), None);
    store.execute_raw("DELETE FROM audit WHERE seq > 9").unwrap();
    assert_eq!(problem(&store, std::slice::from_ref(&key), None), None, "a shorter chain is still a chain");
    assert_eq!(
        problem(&store, &[key], Some(&cp)),
        Some((12, Reason::TruncatedAfterCheckpoint { checkpoint_seq: 12, last_seq: 9 }))
    );
}

#[test]
fn checkpoints_that_do_not_match_or_are_forged_are_reported() {
    let (store, key, _dir) = closed_chain("cpmismatch", 10);
    let real = store.latest_checkpoint().unwrap().unwrap();
    let wrong_head = Checkpoint::sign(5, [7; 32], 0, &key);
    assert_eq!(problem(&store, std::slice::from_ref(&key), Some(&wrong_head)), Some((5, Reason::CheckpointMismatch)));
    let forged = Checkpoint { seq: 20, ..real.clone() };
    assert_eq!(problem(&store, std::slice::from_ref(&key), Some(&forged)), Some((20, Reason::CheckpointMismatch)));
    let foreign = Checkpoint::sign(12, real.head_hash, 0, &test_key(5));
    assert_eq!(problem(&store, &[key], Some(&foreign)), Some((12, Reason::UnknownKey)));
}

#[test]
fn a_replayed_entry_is_detected_in_the_store_and_in_an_export() {
    let (store, key, _dir) = closed_chain("replay", 10);
    let mut jsonl = Vec::new();
    crate::jsonl::export_jsonl(&*store, i64::MIN, &mut jsonl).unwrap();
    store.execute_raw("INSERT INTO audit (seq, json) SELECT 1000, json FROM audit WHERE seq = 5").unwrap();
    assert_eq!(problem(&store, std::slice::from_ref(&key), None), Some((5, Reason::Replayed)));

    let text = String::from_utf8(jsonl).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let replayed = [&lines[..7], &lines[4..5], &lines[7..]].concat().join("\n");
    let report = verify_jsonl(replayed.as_bytes(), &[key], None).unwrap();
    assert_eq!(report.problem.map(|p| (p.seq, p.reason)), Some((5, Reason::Replayed)));
}

#[test]
fn the_wrong_key_is_unknown_and_a_forged_key_id_is_a_bad_signature() {
    let (store, key, _dir) = closed_chain("wrongkey", 3);
    assert_eq!(problem(&store, &[test_key(2)], None), Some((1, Reason::UnknownKey)));
    let mut e = all(&store).remove(1);
    let other = test_key(2);
    e.sig = other.sign(&e.hash);
    rewrite(&store, &e);
    assert_eq!(problem(&store, &[key], None), Some((2, Reason::BadSignature)));
}

#[test]
fn jsonl_export_round_trips_and_a_partial_export_verifies_from_its_start() {
    let (store, key, _dir) = closed_chain("jsonl", 10);
    let mut out = Vec::new();
    assert_eq!(crate::jsonl::export_jsonl(&*store, i64::MIN, &mut out).unwrap(), 12);
    let back: Vec<Entry> = crate::jsonl::read_jsonl(out.as_slice()).map(Result::unwrap).collect();
    assert_eq!(back, all(&store));
    assert!(verify_jsonl(out.as_slice(), std::slice::from_ref(&key), None).unwrap().is_ok());

    // Only the tail: strict verification wants the start, a partial one does not.
    let tail = &back[5..];
    assert_eq!(
        verify(tail.to_vec(), std::slice::from_ref(&key), None).problem.map(|p| p.reason),
        Some(Reason::MissingSequence { expected: 1, found: 6 })
    );
    let keys = [key];
    let mut v = Verifier::new(&keys, None).starting_anywhere();
    for e in tail {
        assert!(v.check(e));
    }
    assert!(v.finish().is_ok());
    let mut since = Vec::new();
    assert_eq!(crate::jsonl::export_jsonl(&*store, 2_000, &mut since).unwrap(), 0);
}

#[test]
fn ten_thousand_records_from_eight_threads_are_contiguous_and_verify() {
    let (store, _dir) = temp_store("concurrent");
    let key = test_key(1);
    let (clock, _) = manual_clock(1_000);
    let log = Arc::new(AuditLog::open_with(store.clone(), key.clone(), clock, fast()).unwrap());
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..1250 {
                    log.record(event(t * 10_000 + i));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    log.flush();
    assert_eq!(log.queue_depth(), 0);
    let entries = all(&store);
    assert_eq!(entries.len(), 10_001);
    assert!(entries.iter().zip(1u64..).all(|(e, n)| e.seq == n));
    let report = verify_store(&*store, std::slice::from_ref(&key), None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.head_seq, 10_001);
    let cp = Checkpoint::from_json(&log.export_checkpoint().unwrap().unwrap()).unwrap();
    // A checkpoint follows the first commit that is 1000+ entries past the last one.
    assert!(cp.seq > 10_001 - 1000 && cp.seq <= 10_001, "{cp:?}");
    log.close();
    log.close();
    log.flush();
    log.record(Draft::new("late")); // logged, not written, no panic
    assert_eq!(store.len().unwrap(), 10_002);
}

#[test]
fn a_crashed_writer_is_resumed_from_the_last_durable_entry() {
    let (store, dir) = temp_store("crash");
    let key = test_key(1);
    let (clock, _) = manual_clock(1_000);
    let first = AuditLog::open_with(store.clone(), key.clone(), Arc::clone(&clock), fast()).unwrap();
    for i in 0..5 {
        first.record(event(i));
    }
    first.flush();
    first.abandon(); // no chain.stop, no checkpoint
    drop(first);
    assert_eq!(store.len().unwrap(), 6);

    let reopened = Arc::new(AuditStore::open(dir.db()).unwrap());
    let second = AuditLog::open_with(reopened.clone(), key.clone(), clock, fast()).unwrap();
    second.record(event(99));
    second.close();
    let entries = all(&reopened);
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds[5..], ["inference.response", "chain.start", "inference.response", "chain.stop"]);
    assert_eq!(entries[6].data["resumed_from_seq"], 6);
    assert!(verify_store(&*reopened, &[key], None).unwrap().is_ok());
}

#[test]
fn rotation_signs_the_handover_with_the_old_key() {
    let (store, _dir) = temp_store("rotate");
    let (old, new) = (test_key(1), test_key(2));
    let (clock, _) = manual_clock(1_000);
    let log = AuditLog::open_with(store.clone(), old.clone(), clock, fast()).unwrap();
    log.record(event(1));
    log.rotate(new.clone()).unwrap();
    log.record(event(2));
    log.close();
    let entries = all(&store);
    let rotate = &entries[2];
    assert_eq!(rotate.kind, "chain.rotate");
    assert_eq!(rotate.key_id, old.id());
    assert_eq!(rotate.data["new_key_id"], new.id());
    assert_eq!(entries[3].key_id, new.id());
    assert!(verify_store(&*store, &[old.clone(), new.clone()], None).unwrap().is_ok());
    assert_eq!(problem(&store, std::slice::from_ref(&new), None), Some((1, Reason::UnknownKey)));
    assert_eq!(problem(&store, &[old], None), Some((4, Reason::UnknownKey)));
    // The close checkpoint is signed by the key in use.
    assert_eq!(store.latest_checkpoint().unwrap().unwrap().key_id, new.id());
}

#[test]
fn pruning_keeps_the_rest_verifiable_and_its_record_tamper_evident() {
    let (store, _dir) = temp_store("prune");
    let key = test_key(1);
    let (clock, now) = manual_clock(1_000);
    let log = AuditLog::open_with(store.clone(), key.clone(), clock, fast()).unwrap();
    for i in 0..5 {
        log.record(event(i)); // seq 2..=6 at t=1000
    }
    log.flush();
    now.store(2_000, Ordering::SeqCst);
    for i in 5..10 {
        log.record(event(i)); // seq 7..=11 at t=2000
    }
    assert_eq!(log.prune_before(500).unwrap(), None, "nothing that old");
    let record = log.prune_before(2_000).unwrap().unwrap();
    assert_eq!((record.first_kept_seq, record.last_pruned_seq), (7, 6));
    log.record(event(10));
    log.close();
    let entries = all(&store);
    assert_eq!(entries[0].seq, 7);
    let prune = entries.iter().find(|e| e.kind == "chain.prune").unwrap();
    assert_eq!(prune.seq, 12);
    assert_eq!(entries[0].prev_hash, record.last_pruned_hash);
    let report = verify_store(&*store, std::slice::from_ref(&key), None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.first_seq, 7);

    // Cutting more off the front than the prune record allows.
    let (s2, _dir2) = temp_store("prune-front");
    for e in &entries[1..] {
        s2.insert(std::slice::from_ref(e)).unwrap();
    }
    assert_eq!(
        problem(&s2, std::slice::from_ref(&key), None),
        Some((8, Reason::MissingSequence { expected: 7, found: 8 }))
    );

    // Editing the prune record to cover a deeper cut.
    store.execute_raw("UPDATE audit SET json = json_set(json, '$.data.first_kept_seq', 8) WHERE seq = 12").unwrap();
    assert_eq!(problem(&store, &[key], None), Some((12, Reason::Modified)));
}

#[test]
fn full_durability_store_opens_and_checkpoints_every_n() {
    let dir = TempDir::new("full");
    let store = Arc::new(AuditStore::open_with(dir.db(), Durability::Full).unwrap());
    let key = test_key(1);
    let (clock, _) = manual_clock(5);
    let options = AuditOptions { checkpoint_every: 10, max_batch: 4, ..fast() };
    let log = AuditLog::open_with(store.clone(), key.clone(), clock, options).unwrap();
    for i in 0..25 {
        log.record(event(i));
    }
    log.flush();
    let cp = store.latest_checkpoint().unwrap().unwrap();
    assert!(cp.seq >= 20, "{cp:?}");
    assert!(cp.signature_valid(&key));
    assert!(problem(&store, &[key], Some(&cp)).is_none());
}

/// A closed chain: two events under `old`, a rotation to `new`, two events under `new`.
fn rotated_chain(name: &str) -> (Arc<AuditStore>, AuditKey, AuditKey, TempDir) {
    let (store, dir) = temp_store(name);
    let (old, new) = (test_key(1), test_key(2));
    let (clock, _) = manual_clock(1_000);
    let log = AuditLog::open_with(store.clone(), old.clone(), clock, fast()).unwrap();
    log.record(event(1));
    log.record(event(2));
    log.rotate(new.clone()).unwrap(); // seq 4
    log.record(event(3));
    log.record(event(4));
    log.close(); // chain.stop at seq 7
    (store, old, new, dir)
}

/// `draft` sealed as the entry after `head`, by `key`: what a forger holding `key` can make.
fn forge_after(head: &Entry, draft: Draft, key: &AuditKey) -> Entry {
    let mut state = ChainState::after(head);
    crate::chain::seal(&mut state, draft, head.ts_ms, key)
}

#[test]
fn a_retired_key_cannot_sign_anything_after_its_rotation() {
    let (store, old, new, _dir) = rotated_chain("epoch");
    let keys = [old.clone(), new.clone()];
    let report = verify_store(&*store, &keys, None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        report.key_changes,
        [crate::KeyChange {
            seq: 4,
            from_key_id: old.id().into(),
            to_key_id: new.id().into(),
            signed_by_old_key: true
        }]
    );
    let entries = all(&store);
    let wrong = |seq| Some((seq, Reason::WrongKey { expected: new.id().into(), found: old.id().into() }));

    // Appending to the real chain with the retired key: linked, hashed, validly signed — and refused.
    let appended = forge_after(&entries[6], event(99), &old);
    store.insert(std::slice::from_ref(&appended)).unwrap();
    assert_eq!(problem(&store, &keys, None), wrong(8));

    // Rewriting an entry after the rotation, re-signing it and everything after with the retired key.
    let (store, ..) = rotated_chain("epoch-rewrite");
    let entries = all(&store);
    let mut forged = vec![forge_after(&entries[3], Draft::new("inference.response").field("tokens", 0), &old)];
    for e in &entries[5..] {
        let d = Draft {
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            request_id: e.request_id.clone(),
            data: e.data.clone(),
        };
        forged.push(forge_after(forged.last().unwrap(), d, &old));
    }
    for e in &forged {
        rewrite(&store, e);
    }
    assert_eq!(problem(&store, &keys, None), wrong(5));

    // Claiming an unsigned key change back to the retired key.
    let (store, ..) = rotated_chain("epoch-change-back");
    let entries = all(&store);
    let change = Draft::new(kinds::CHAIN_KEY_CHANGED)
        .field(crate::epoch::PREVIOUS_KEY_ID, new.id())
        .field(crate::epoch::NEW_KEY_ID, old.id());
    store.insert(&[forge_after(&entries[6], change, &old)]).unwrap();
    assert_eq!(problem(&store, &keys, None), wrong(8));

    // Cutting the rotation and everything after off, then carrying on under
    // the retired key, makes a valid chain — which a checkpoint kept from
    // before catches.
    let (store, ..) = rotated_chain("epoch-cut");
    let cp = store.latest_checkpoint().unwrap().unwrap();
    assert_eq!((cp.seq, cp.key_id.as_str()), (7, new.id()));
    let entries = all(&store);
    store.execute_raw("DELETE FROM audit WHERE seq >= 4").unwrap();
    let mut head = entries[2].clone();
    for i in 0..5 {
        head = forge_after(&head, event(100 + i), &old);
        store.insert(std::slice::from_ref(&head)).unwrap();
    }
    assert_eq!(problem(&store, &keys, None), None, "without a checkpoint, a rewritten tail is a chain");
    assert_eq!(problem(&store, &keys, Some(&cp)), Some((7, Reason::CheckpointMismatch)));
    // Nor can the retired key sign a checkpoint for that tail.
    let forged_cp = Checkpoint::sign(head.seq, head.hash, 0, &old);
    assert_eq!(problem(&store, &keys, Some(&forged_cp)), None, "its own tail under its own key verifies");
    let (real, ..) = rotated_chain("epoch-cp");
    let real_head = all(&real).pop().unwrap();
    let forged_cp = Checkpoint::sign(7, real_head.hash, 0, &old);
    assert_eq!(problem(&real, &keys, Some(&forged_cp)), Some((7, Reason::CheckpointMismatch)));
}

#[test]
fn resuming_under_a_key_nobody_named_is_an_unsigned_change_and_cannot_go_back() {
    let (store, dir) = temp_store("keychange");
    let (k1, k2) = (test_key(1), test_key(2));
    let (clock, _) = manual_clock(1_000);
    let open = |key: &AuditKey| {
        let store = Arc::new(AuditStore::open(dir.db()).unwrap());
        let log = AuditLog::open_with(store, key.clone(), Arc::clone(&clock), fast()).unwrap();
        log.record(event(1));
        log.close();
    };
    open(&k1);
    open(&k2);
    let entries = all(&store);
    let change = entries.iter().find(|e| e.kind == kinds::CHAIN_KEY_CHANGED).unwrap();
    assert_eq!((change.seq, change.key_id.as_str()), (4, k2.id()));
    assert_eq!(entries[4].kind, "chain.start", "the change comes first, then the start");
    let keys = [k1.clone(), k2.clone()];
    let report = verify_store(&*store, &keys, None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        report.key_changes,
        [crate::KeyChange { seq: 4, from_key_id: k1.id().into(), to_key_id: k2.id().into(), signed_by_old_key: false }]
    );
    // Back to k1 without a rotation: k1 was in force before, so this is refused.
    open(&k1);
    assert_eq!(
        problem(&store, &keys, None),
        Some((8, Reason::WrongKey { expected: k2.id().into(), found: k1.id().into() }))
    );
}

#[test]
fn a_rotation_at_the_head_hands_over_on_restart_without_another_change() {
    let (store, dir) = temp_store("rotate-crash");
    let (old, new) = (test_key(1), test_key(2));
    let (clock, _) = manual_clock(1_000);
    let log = AuditLog::open_with(store.clone(), old.clone(), Arc::clone(&clock), fast()).unwrap();
    log.rotate(new.clone()).unwrap();
    log.abandon(); // crashed right after the rotation
    drop(log);
    let reopened = Arc::new(AuditStore::open(dir.db()).unwrap());
    let log = AuditLog::open_with(reopened.clone(), new.clone(), clock, fast()).unwrap();
    log.close();
    let kinds: Vec<String> = all(&reopened).into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["chain.start", "chain.rotate", "chain.start", "chain.stop"]);
    let report = verify_store(&*reopened, &[old, new], None).unwrap();
    assert!(report.is_ok() && report.key_changes.iter().all(|c| c.signed_by_old_key), "{report:?}");
}

#[test]
fn the_backlog_stays_bounded_when_callers_refuse_while_overloaded() {
    let (store, _dir) = temp_store("backlog");
    let key = test_key(1);
    let (clock, _) = manual_clock(1_000);
    // The writer never wakes by itself during the flood: a disk that has stalled.
    let options = AuditOptions { max_backlog: 100, poll_interval: Duration::from_secs(3600), ..fast() };
    let log = Arc::new(AuditLog::open_with(store.clone(), key.clone(), clock, options).unwrap());
    assert_eq!(log.max_backlog(), 100);
    log.flush(); // chain.start committed: the writer goes back to sleep
    let threads = 8u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut recorded = 0u64;
                for i in 0..1000 {
                    // What the edge does: refuse (503) instead of recording.
                    if !log.overloaded() {
                        log.record(event(t * 10_000 + i));
                        recorded += 1;
                    }
                }
                recorded
            })
        })
        .collect();
    let recorded: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let depth = log.queue_depth();
    assert!(log.overloaded());
    // The writer may have taken what arrived before it fell asleep; after that
    // nothing wakes it, so the queue fills to the bound and stays there.
    assert!(depth <= recorded, "depth {depth} > recorded {recorded}");
    // Each caller that saw room records once: the bound plus one per concurrent caller.
    assert!((100..100 + threads).contains(&depth), "depth {depth}");
    log.flush();
    assert_eq!(log.queue_depth(), 0);
    assert!(!log.overloaded());
    log.close();
    let events = all(&store).iter().filter(|e| e.kind == "inference.response").count() as u64;
    assert_eq!(events, recorded, "every accepted draft was written");
    assert!(verify_store(&*store, &[key], None).unwrap().is_ok());
}

#[test]
fn checkpoint_now_signs_the_head_with_the_key_in_force() {
    let (store, _dir) = temp_store("cpnow");
    let (old, new) = (test_key(1), test_key(2));
    let (clock, _) = manual_clock(1_000);
    let options = AuditOptions { checkpoint_every: 0, ..fast() };
    let log = AuditLog::open_with(store.clone(), old.clone(), clock, options).unwrap();
    log.record(event(1));
    log.record(event(2));
    let cp = log.checkpoint_now().unwrap().unwrap();
    assert_eq!((cp.seq, cp.key_id.as_str()), (3, old.id()));
    assert_eq!(cp.head_hash, store.head().unwrap().unwrap().hash);
    assert_eq!(store.latest_checkpoint().unwrap(), Some(cp.clone()));
    log.rotate(new.clone()).unwrap();
    let after_rotate = log.checkpoint_now().unwrap().unwrap();
    assert_eq!((after_rotate.seq, after_rotate.key_id.as_str()), (4, new.id()), "signed by the key in force");
    log.record(event(3));
    log.close();
    let keys = [old, new];
    for cp in [&cp, &after_rotate] {
        let report = verify_store(&*store, &keys, Some(cp)).unwrap();
        assert!(report.is_ok() && report.checkpoint_matched, "{report:?}");
    }
}

#[test]
fn on_committed_runs_once_the_drafts_before_it_are_stored_without_waiting_for_a_poll() {
    let (store, _dir) = temp_store("notify");
    let (clock, _) = manual_clock(1_000);
    // A poll interval far longer than the test: only the wake-up can explain a prompt answer.
    let options = AuditOptions { poll_interval: Duration::from_secs(60), ..fast() };
    let log = AuditLog::open_with(store.clone(), test_key(1), clock, options).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..20 {
        log.record(event(i));
        let (store, tx) = (Arc::clone(&store), tx.clone());
        log.on_committed(Box::new(move || {
            let _ = tx.send((i, store.len().unwrap()));
        }));
    }
    for _ in 0..20 {
        let (i, stored) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // chain.start plus every event up to this one.
        assert!(stored > i + 1, "waiter {i} ran with {stored} entries stored");
    }
    log.close();
    let (tx, rx) = std::sync::mpsc::channel();
    log.on_committed(Box::new(move || tx.send(()).unwrap()));
    rx.recv_timeout(Duration::from_secs(1)).unwrap();
}
