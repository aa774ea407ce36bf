//! Retention: the `chain.prune` record that lets a chain lose its oldest
//! entries and still verify.
//!
//! Before entries are deleted, a signed `chain.prune` entry is appended whose
//! `data` is `{"first_kept_seq": N, "last_pruned_seq": N-1, "last_pruned_hash":
//! "<hex>"}`. The deletion and that append are one transaction. A verifier
//! that finds the stored chain starting at some seq > 1 accepts the start only
//! if a valid prune record names that seq and the first kept entry's
//! `prev_hash` equals `last_pruned_hash`; anything else is entries missing from
//! the front. The prune record is itself a chained, signed entry, so editing
//! it shows up as [`crate::Reason::Modified`].
//!
//! The writer thread does the pruning (see [`crate::AuditLog::prune_before`]),
//! because the record needs the next seq.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::entry::{Draft, Entry, kinds};

/// The `data` of a `chain.prune` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneRecord {
    pub first_kept_seq: u64,
    pub last_pruned_seq: u64,
    #[serde(with = "crate::hex::digest")]
    pub last_pruned_hash: [u8; 32],
}

impl PruneRecord {
    /// The record for deleting everything up to and including `last_pruned`.
    pub fn through(last_pruned: &Entry) -> PruneRecord {
        PruneRecord {
            first_kept_seq: last_pruned.seq.saturating_add(1),
            last_pruned_seq: last_pruned.seq,
            last_pruned_hash: last_pruned.hash,
        }
    }

    /// The prune record carried by `entry`, if it is a `chain.prune` entry with well-formed data.
    pub fn from_entry(entry: &Entry) -> Option<PruneRecord> {
        if entry.kind != kinds::CHAIN_PRUNE {
            return None;
        }
        serde_json::from_value(Value::Object(entry.data.clone())).ok()
    }

    /// The draft to seal.
    pub fn to_draft(&self) -> Draft {
        let data = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        Draft { kind: kinds::CHAIN_PRUNE.to_string(), actor: None, request_id: None, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainState, seal};
    use crate::testutil::test_key;

    #[test]
    fn record_round_trips_through_an_entry() {
        let key = test_key(1);
        let mut state = ChainState::genesis();
        let old = seal(&mut state, Draft::new("admin.action"), 1, &key);
        let record = PruneRecord::through(&old);
        assert_eq!(record.first_kept_seq, 2);
        let entry = seal(&mut state, record.to_draft(), 2, &key);
        assert_eq!(entry.kind, "chain.prune");
        assert_eq!(PruneRecord::from_entry(&entry), Some(record));
        assert_eq!(PruneRecord::from_entry(&old), None);
    }
}
