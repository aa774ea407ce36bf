//! Sealing: turning a [`Draft`] into the next [`Entry`] of a chain.
//!
//! Pure (no I/O, no clock): the writer thread owns the [`ChainState`] and is
//! the only one that seals, which is what makes sequence numbers gap-free
//! without a lock on the caller's side. A store shared by several writers
//! [`reseal`]s a batch behind its stored head under its own lock.

use serde_json::{Map, Value};

use crate::entry::{Draft, Entry, GENESIS_HASH};
use crate::key::AuditKey;

/// Where the chain stands: the next entry's `seq` and `prev_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainState {
    pub next_seq: u64,
    pub head_hash: [u8; 32],
    /// `ts_ms` of the head; sealing never goes below it, so time along the
    /// chain never decreases even if the wall clock steps back.
    pub head_ts_ms: i64,
}

impl ChainState {
    /// An empty chain.
    pub fn genesis() -> ChainState {
        ChainState { next_seq: 1, head_hash: GENESIS_HASH, head_ts_ms: i64::MIN }
    }

    /// The state after `head`.
    pub fn after(head: &Entry) -> ChainState {
        ChainState { next_seq: head.seq.saturating_add(1), head_hash: head.hash, head_ts_ms: head.ts_ms }
    }
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState::genesis()
    }
}

/// Deepest nesting of `data` sealed as given (the `data` object is level 1).
/// A stored entry is read back with serde_json, which refuses documents more
/// than 127 levels deep: an entry deeper than that could never be verified,
/// so its `data` is replaced by a note saying so.
pub const MAX_DATA_DEPTH: usize = 100;

/// Levels of objects and arrays in `value` (a scalar is 0, `[]` is 1).
pub fn nesting_depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(nesting_depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(nesting_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Seals `draft` as the next entry (seq, prev_hash, hash, key_id, sig filled
/// in) at `ts_ms` (raised to the head's time if earlier), and advances `state`.
pub fn seal(state: &mut ChainState, mut draft: Draft, ts_ms: i64, key: &AuditKey) -> Entry {
    if 1 + draft.data.values().map(nesting_depth).max().unwrap_or(0) > MAX_DATA_DEPTH {
        draft.data = Map::from_iter([(
            "omitted".to_owned(),
            Value::from(format!("data nested deeper than {MAX_DATA_DEPTH} levels")),
        )]);
    }
    let mut entry = Entry {
        seq: 0,
        ts_ms,
        kind: draft.kind,
        actor: draft.actor,
        request_id: draft.request_id,
        data: draft.data,
        prev_hash: [0; 32],
        hash: [0; 32],
        key_id: String::new(),
        sig: [0; 32],
    };
    reseal(state, &mut entry, key);
    entry
}

/// Seals `entry` again as the next entry after `state` — same event and
/// time (raised to the head's if earlier), new place in the chain and
/// signature — and advances `state`. A chain several writers append to
/// needs this: a writer seals a batch against the head it last saw, and
/// the store moves it behind whatever the others appended meanwhile.
pub fn reseal(state: &mut ChainState, entry: &mut Entry, key: &AuditKey) {
    entry.seq = state.next_seq;
    entry.ts_ms = entry.ts_ms.max(state.head_ts_ms);
    entry.prev_hash = state.head_hash;
    if entry.key_id != key.id() {
        entry.key_id = key.id().to_string();
    }
    entry.hash = entry.compute_hash();
    entry.sig = key.sign(&entry.hash);
    *state = ChainState::after(entry);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::test_key;

    #[test]
    fn seals_a_linked_signed_chain_with_monotonic_time() {
        let key = test_key(1);
        let mut state = ChainState::genesis();
        let a = seal(&mut state, Draft::new("admin.action").actor("k1"), 100, &key);
        let b = seal(&mut state, Draft::new("auth.failure").field("ip", "10.0.0.1"), 90, &key);
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, GENESIS_HASH);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(b.ts_ms, 100, "time never goes backwards along the chain");
        assert_eq!(a.hash, a.compute_hash());
        assert!(key.verify(&b.hash, &b.sig));
        assert_eq!(b.key_id, key.id());
        assert_eq!(state, ChainState { next_seq: 3, head_hash: b.hash, head_ts_ms: 100 });
    }

    #[test]
    fn a_resealed_entry_links_behind_the_new_head_and_verifies() {
        let key = test_key(1);
        let mut theirs = ChainState::genesis();
        let other = seal(&mut theirs, Draft::new("admin.action").actor("b"), 500, &key);
        // Sealed against an empty chain, then moved behind the other writer's entry.
        let mut mine = ChainState::genesis();
        let mut entry = seal(&mut mine, Draft::new("admin.action").actor("a"), 400, &key);
        let before = entry.hash;
        reseal(&mut theirs, &mut entry, &key);
        assert_eq!((entry.seq, entry.prev_hash, entry.ts_ms), (2, other.hash, 500));
        assert_ne!(entry.hash, before);
        assert_eq!(entry.hash, entry.compute_hash());
        assert!(key.verify(&entry.hash, &entry.sig));
        assert_eq!(theirs, ChainState::after(&entry));
    }

    #[test]
    fn data_too_deep_to_read_back_is_replaced_and_the_entry_still_verifies() {
        let key = test_key(1);
        let nested = |levels: usize| (0..levels).fold(serde_json::json!(1), |v, _| serde_json::json!([v]));
        let mut state = ChainState::genesis();
        // data {body: [[...]]}: the data object, then `levels` arrays.
        let fits = seal(&mut state, Draft::new("admin.action").field("body", nested(MAX_DATA_DEPTH - 1)), 1, &key);
        assert!(fits.data.contains_key("body"));
        let deep = seal(&mut state, Draft::new("admin.action").field("body", nested(MAX_DATA_DEPTH)), 2, &key);
        assert_eq!(deep.data.keys().collect::<Vec<_>>(), ["omitted"]);
        let far = seal(&mut state, Draft::new("admin.action").field("body", nested(500)), 3, &key);
        for e in [fits, deep, far] {
            let back: Entry = serde_json::from_str(&e.to_json()).expect("reads back");
            assert_eq!(back.compute_hash(), e.hash);
        }
    }
}
