//! `audit_rows`: audit-chain verification ([`verify`], [`verify_jsonl`]) of
//! rows an attacker with write access to the store or the export may have
//! written.
//!
//! The first byte picks the mode.
//!
//! - Raw rows (first byte ≡ 0 mod 4): the rest is a JSONL export, its last
//!   line also tried as a checkpoint. It is verified as it is; then the rows
//!   that parse, each naming a known key id re-hashed and re-signed so the
//!   sequence, link, prune and key-epoch checks are reached with the
//!   fuzzer's values: a chain that verifies must be gap-free, linked, and
//!   start at seq 1 or where one of its prune records says.
//! - Built chains (otherwise): the bytes drive an honest writer — plain
//!   entries with any JSON data (every double, deep nesting), rotations,
//!   `chain.key_changed`, prunes, a checkpoint — whose chain must verify,
//!   and verify the same from its JSONL export. Then one tampering the bytes
//!   choose — an edit, a flipped hash or signature bit, a deleted, swapped or
//!   replayed entry, a tail re-forged with a retired or an unknown key, a
//!   cut tail — must be caught where it was made (a lost end: exactly when a
//!   checkpoint or a lost prune record gives it away).

use std::sync::OnceLock;

use hoosh_audit::epoch::{NEW_KEY_ID, PREVIOUS_KEY_ID, key_after};
use hoosh_audit::{
    AuditKey, ChainState, Checkpoint, Draft, Entry, GENESIS_HASH, PruneRecord, kinds, read_jsonl, seal, verify,
    verify_jsonl,
};
use serde_json::{Map, Number, Value};

use crate::input::Input;

/// Keys the verifier is given; one more is a stranger's.
const GIVEN: usize = 3;
/// Entries a built chain has at most (before pruning).
const MAX_ENTRIES: usize = 12;

fn keys() -> &'static [AuditKey] {
    static KEYS: OnceLock<Vec<AuditKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (1..=GIVEN as u8 + 1)
            .map(|i| match AuditKey::from_bytes(vec![i; 32]) {
                Ok(k) => k,
                Err(e) => panic!("a 32-byte test key was refused: {e}"),
            })
            .collect()
    })
}

pub fn audit_rows(data: &[u8]) {
    let mut input = Input::new(data);
    if input.byte().is_multiple_of(4) {
        raw_rows(input.rest());
    } else {
        built_chain(&mut input);
    }
}

fn raw_rows(text: &[u8]) {
    let given = &keys()[..GIVEN];
    let checkpoint = text
        .split(|b| *b == b'\n')
        .rfind(|line| !line.trim_ascii().is_empty())
        .and_then(|line| std::str::from_utf8(line).ok())
        .and_then(|line| Checkpoint::from_json(line).ok());
    // Rows as found: any verdict, no panic. (A line that is not UTF-8 is an I/O error.)
    let _ = verify_jsonl(text, given, checkpoint.as_ref());

    let mut entries: Vec<Entry> = read_jsonl(text).filter_map(Result::ok).collect();
    for entry in &mut entries {
        if let Some(key) = given.iter().find(|k| k.id() == entry.key_id) {
            entry.hash = entry.compute_hash();
            entry.sig = key.sign(&entry.hash);
        }
    }
    let report = verify(entries.clone(), given, checkpoint.as_ref());
    if report.is_ok() && !entries.is_empty() {
        for pair in entries.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq.saturating_add(1), "accepted a seq jump: {report:?}");
            assert_eq!(pair[1].prev_hash, pair[0].hash, "accepted a broken link at seq {}", pair[1].seq);
        }
        assert!(start_authorized(&entries), "accepted a chain starting at seq {}", entries[0].seq);
        assert_eq!(report.entries_checked, entries.len() as u64);
    }
}

fn built_chain(input: &mut Input) {
    let given = &keys()[..GIVEN];
    let stored = honest_chain(input);
    let checkpoint = input.bool().then(|| {
        let at = &stored[input.below(stored.len())];
        // Signed by the key that sealed its entry, or by the one a rotation there hands to.
        let signer = if input.bool() { key_after(at) } else { at.key_id.as_str() };
        let key = given.iter().find(|k| k.id() == signer).unwrap_or(&given[0]);
        Checkpoint::sign(at.seq, at.hash, at.ts_ms, key)
    });
    let cp = checkpoint.as_ref();

    let report = verify(stored.clone(), given, cp);
    assert!(report.is_ok(), "an honest chain failed: {:?}", report.problem);
    assert_eq!(report.entries_checked, stored.len() as u64);
    assert_eq!((report.first_seq, report.head_seq), (stored[0].seq, stored[stored.len() - 1].seq));
    assert_eq!(report.checkpoint_matched, cp.is_some());
    let expected_changes = stored
        .iter()
        .enumerate()
        .filter(|(i, e)| e.kind == kinds::CHAIN_ROTATE || (*i > 0 && e.kind == kinds::CHAIN_KEY_CHANGED))
        .count();
    assert_eq!(report.key_changes.len(), expected_changes, "{:?}", report.key_changes);
    let export: String = stored.iter().map(|e| e.to_json() + "\n").collect();
    match verify_jsonl(export.as_bytes(), given, cp) {
        Ok(from_text) => assert_eq!(from_text, report, "the JSONL export verifies differently:\n{export}"),
        Err(e) => panic!("reading an export failed: {e}"),
    }

    tamper(input, stored, cp);
}

/// The chain an honest writer leaves in its store.
fn honest_chain(input: &mut Input) -> Vec<Entry> {
    let keys = &keys()[..GIVEN];
    let mut state = ChainState::genesis();
    let mut in_force = input.below(GIVEN);
    let mut ever_in_force = vec![in_force];
    let mut all: Vec<Entry> = Vec::new();
    let mut first_kept = 0;
    let mut ts = 1_700_000_000_000i64;
    for _ in 0..=input.below(MAX_ENTRIES) {
        // Now and then the clock steps back; sealing keeps chain time monotonic.
        ts += input.below(2_000) as i64 - 500;
        let never_in_force = (0..GIVEN).find(|k| !ever_in_force.contains(k));
        let entry = match (input.byte() % 8, never_in_force) {
            (0, _) => {
                let to = (in_force + 1 + input.below(GIVEN - 1)) % GIVEN;
                let draft = Draft::new(kinds::CHAIN_ROTATE).field(NEW_KEY_ID, keys[to].id());
                let entry = seal(&mut state, draft, ts, &keys[in_force]);
                in_force = to;
                ever_in_force.push(to);
                entry
            }
            (1, Some(to)) => {
                let draft = Draft::new(kinds::CHAIN_KEY_CHANGED)
                    .field(PREVIOUS_KEY_ID, keys[in_force].id())
                    .field(NEW_KEY_ID, keys[to].id());
                in_force = to;
                ever_in_force.push(to);
                seal(&mut state, draft, ts, &keys[to])
            }
            (2, _) if first_kept < all.len() => {
                let through = first_kept + input.below(all.len() - first_kept);
                let record = PruneRecord::through(&all[through]);
                first_kept = through + 1;
                seal(&mut state, record.to_draft(), ts, &keys[in_force])
            }
            _ => seal(&mut state, plain_draft(input), ts, &keys[in_force]),
        };
        all.push(entry);
    }
    all.split_off(first_kept)
}

fn plain_draft(input: &mut Input) -> Draft {
    const KINDS: [&str; 6] =
        ["inference.response", "auth.failure", "key.created", "budget.changed", "config.reload", "admin.action"];
    let kind = match KINDS.get(input.below(KINDS.len() + 1)) {
        Some(k) => (*k).to_owned(),
        None => input.text(24),
    };
    let mut draft = Draft::new(kind);
    draft.actor = input.bool().then(|| input.text(24));
    draft.request_id = input.bool().then(|| input.text(40));
    for _ in 0..input.below(4) {
        let name = input.text(12);
        let value = value(input, 2);
        draft.data.insert(name, value);
    }
    draft
}

/// A JSON value of any kind, nested at most `depth` more levels — or a deep
/// thin one, up to 255 levels, past what the writer seals as given.
fn value(input: &mut Input, depth: u8) -> Value {
    match input.byte() % 10 {
        0 => Value::Null,
        1 => Value::Bool(input.bool()),
        2 => Value::from(input.u64()),
        3 => Value::from(input.u64() as i64),
        4 | 5 => Number::from_f64(f64::from_bits(input.u64())).map_or(Value::Null, Value::Number),
        6 => Value::String(input.text(32)),
        7 if depth > 0 => Value::Array((0..input.below(4)).map(|_| value(input, depth - 1)).collect()),
        8 if depth > 0 => {
            let mut map = Map::new();
            for _ in 0..input.below(4) {
                let name = input.text(8);
                map.insert(name, value(input, depth - 1));
            }
            Value::Object(map)
        }
        9 => (0..input.byte()).fold(Value::from(1), |inner, _| Value::Array(vec![inner])),
        _ => Value::String(String::new()),
    }
}

/// Whether a chain may start where `entries` does: at seq 1 from genesis,
/// or where a `chain.prune` record in it names its first entry.
fn start_authorized(entries: &[Entry]) -> bool {
    let Some(first) = entries.first() else { return true };
    (first.seq == 1 && first.prev_hash == GENESIS_HASH)
        || entries
            .iter()
            .filter_map(PruneRecord::from_entry)
            .any(|r| r.first_kept_seq == first.seq && r.last_pruned_hash == first.prev_hash)
}

/// Whether a chain that lost entries at its ends still verifies: it starts
/// where it may, and reaches the checkpoint, if any.
fn ends_cut_unnoticed(kept: &[Entry], cp: Option<&Checkpoint>) -> bool {
    let head = kept.last().map_or(0, |e| e.seq);
    start_authorized(kept) && cp.is_none_or(|cp| cp.seq <= head)
}

/// One tampering of an honest `stored` chain, and what verification must say.
fn tamper(input: &mut Input, mut stored: Vec<Entry>, cp: Option<&Checkpoint>) {
    let given = &keys()[..GIVEN];
    let at = input.below(stored.len());
    let seq_at = stored[at].seq;
    // Caught at `at`: every entry before it still checks.
    let caught_at = |chain: Vec<Entry>, what: &str| {
        let report = verify(chain, given, cp);
        assert!(
            !report.is_ok() && report.entries_checked == at as u64,
            "{what} at index {at} (seq {seq_at}) was not caught there: {report:?}"
        );
    };
    match input.byte() % 8 {
        1 => {
            let entry = &mut stored[at];
            match input.byte() % 7 {
                0 => entry.seq = entry.seq.wrapping_add(1 + input.below(3) as u64),
                1 => entry.ts_ms ^= 1 << input.below(63),
                2 => entry.kind.push('x'),
                3 => entry.actor = if entry.actor.is_some() { None } else { Some(String::new()) },
                4 => {
                    entry.data.insert("\u{0}tampered".into(), Value::from(1));
                }
                5 => entry.prev_hash[input.below(32)] ^= 1 << input.below(8),
                _ => {
                    let other = (key_index(&entry.key_id) + 1 + input.below(GIVEN - 1)) % GIVEN;
                    entry.key_id = given[other].id().into();
                }
            }
            caught_at(stored, "an edited entry");
        }
        2 => {
            let entry = &mut stored[at];
            let (byte, bit) = (input.below(32), 1 << input.below(8));
            if input.bool() {
                entry.hash[byte] ^= bit;
            } else {
                entry.sig[byte] ^= bit;
            }
            caught_at(stored, "a flipped hash or signature bit");
        }
        3 if stored.len() >= 2 => {
            stored.remove(at);
            let report = verify(stored.clone(), given, cp);
            if at > 0 && at < stored.len() {
                assert!(!report.is_ok(), "a deleted entry at seq {seq_at} went unnoticed");
            } else {
                assert_eq!(report.is_ok(), ends_cut_unnoticed(&stored, cp), "deleted seq {seq_at}: {report:?}");
            }
        }
        4 if at + 1 < stored.len() => {
            stored.swap(at, at + 1);
            assert!(!verify(stored, given, cp).is_ok(), "swapped entries at seq {seq_at} went unnoticed");
        }
        5 => {
            stored.insert(at + 1, stored[at].clone());
            assert!(!verify(stored, given, cp).is_ok(), "a replayed entry at seq {seq_at} went unnoticed");
        }
        6 => {
            // Keys that signed something before `at` but are no longer in force there.
            let in_force = at.checked_sub(1).map(|before| key_after(&stored[before]).to_owned());
            let retired: Vec<usize> = (0..GIVEN)
                .filter(|k| {
                    let id = given[*k].id();
                    stored[..at].iter().any(|e| e.key_id == id) && in_force.as_deref() != Some(id)
                })
                .collect();
            let forger = retired.get(input.below(retired.len())).copied().unwrap_or(GIVEN);
            let mut state = match at.checked_sub(1) {
                Some(before) => ChainState::after(&stored[before]),
                None => ChainState { next_seq: stored[0].seq, head_hash: stored[0].prev_hash, head_ts_ms: i64::MIN },
            };
            let tail: Vec<Entry> = stored.drain(at..).collect();
            for e in tail {
                let draft = Draft { kind: e.kind, actor: e.actor, request_id: e.request_id, data: e.data };
                stored.push(seal(&mut state, draft, e.ts_ms, &keys()[forger]));
            }
            let what =
                if forger == GIVEN { "a tail forged with an unknown key" } else { "a tail forged with a retired key" };
            caught_at(stored, what);
        }
        7 => {
            stored.truncate(at + 1);
            let report = verify(stored.clone(), given, cp);
            assert_eq!(report.is_ok(), ends_cut_unnoticed(&stored, cp), "cut after seq {seq_at}: {report:?}");
        }
        _ => {}
    }
}

fn key_index(key_id: &str) -> usize {
    keys().iter().position(|k| k.id() == key_id).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_and_tampering_on_a_few_chains() {
        for mode in 0..=255u8 {
            for tampering in 0..8u8 {
                // mode, entry count, first key, then per entry: clock, op; then checkpoint, tampering.
                let data = [mode | 1, 6, 0, 1, 100, 0, 3, 0, 0, 50, 0, mode, 20, 0, 2, 9, 0, 1, tampering, 2, 1, 1];
                audit_rows(&data);
            }
        }
    }

    #[test]
    fn raw_rows_of_an_export() {
        let key = &keys()[0];
        let mut state = ChainState::genesis();
        let export: String = (0..3)
            .map(|i| seal(&mut state, Draft::new("admin.action").field("i", i), 1, key).to_json() + "\n")
            .collect();
        audit_rows(&[[0].as_slice(), export.as_bytes()].concat());
        assert!(verify_jsonl(export.as_bytes(), &keys()[..GIVEN], None).is_ok_and(|r| r.is_ok()));
    }

    /// The committed raw seeds are chains that verify (with their checkpoint,
    /// for the one that ends in one), so mutations start from valid rows.
    #[test]
    fn the_raw_seeds_verify() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/audit_rows");
        for name in ["raw_export_rotations", "raw_export_checkpoint", "raw_export_pruned"] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let text = &bytes[1..];
            let checkpoint = text
                .split(|b| *b == b'\n')
                .rfind(|l| !l.is_empty())
                .and_then(|l| Checkpoint::from_json(std::str::from_utf8(l).unwrap()).ok());
            let entries: Vec<Entry> = read_jsonl(text).filter_map(Result::ok).collect();
            let report = verify(entries, &keys()[..GIVEN], checkpoint.as_ref());
            assert!(report.is_ok(), "{name}: {report:?}");
            assert_eq!(report.checkpoint_matched, checkpoint.is_some(), "{name}");
        }
    }
}
