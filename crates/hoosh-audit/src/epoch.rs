//! Key epochs: which key may sign which entries.
//!
//! A chain is a run of epochs, one per signing key. The first entry's key
//! opens the first epoch; every later entry must be signed by the key in
//! force, which changes only two ways:
//!
//! - a `chain.rotate` entry, signed by the key in force, names the next key
//!   (`data.new_key_id`); from the entry after it on, only that key verifies.
//!   A key retired this way can no longer sign — or forge — anything later:
//!   the verifier refuses its signature there ([`crate::Reason::WrongKey`]).
//! - a `chain.key_changed` entry, signed by the *new* key, with
//!   `data.previous_key_id` the key in force and `data.new_key_id` its own
//!   `key_id`: the gateway writes one when it resumes a chain under a key
//!   the old key never named (the old key was not at hand to sign a
//!   rotation). The verifier accepts it only for a key that has never been
//!   in force in this chain — so a retired key cannot come back this way —
//!   and reports it ([`crate::Report::key_changes`]), since nothing but the
//!   verifier's trust in the new key vouches for it.
//!
//! Keys are named by `key_id`; the verifier only ever checks signatures with
//! the keys it was given, so a forger's key that happened to share an id
//! would still fail [`crate::Reason::BadSignature`].

use serde_json::Value;

use crate::entry::{Entry, kinds};

/// `data` field of `chain.rotate` and `chain.key_changed`: the key in force from the next entry.
pub const NEW_KEY_ID: &str = "new_key_id";
/// `data` field of `chain.key_changed`: the key in force before it.
pub const PREVIOUS_KEY_ID: &str = "previous_key_id";

/// The key that must sign the entry after `entry`: the one a `chain.rotate`
/// names (empty — no key — if the rotation is malformed), else `entry`'s own.
pub fn key_after(entry: &Entry) -> &str {
    if entry.kind == kinds::CHAIN_ROTATE {
        return entry.data.get(NEW_KEY_ID).and_then(Value::as_str).unwrap_or("");
    }
    &entry.key_id
}

/// Whether `entry` is a well-formed `chain.key_changed` handing over from `in_force`.
pub fn is_key_change_from(entry: &Entry, in_force: &str) -> bool {
    entry.kind == kinds::CHAIN_KEY_CHANGED
        && entry.data.get(PREVIOUS_KEY_ID).and_then(Value::as_str) == Some(in_force)
        && entry.data.get(NEW_KEY_ID).and_then(Value::as_str) == Some(entry.key_id.as_str())
}

/// A change of the key in force, as verification found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// The `chain.rotate` or `chain.key_changed` entry.
    pub seq: u64,
    pub from_key_id: String,
    pub to_key_id: String,
    /// A `chain.rotate` signed by the old key (true), or a `chain.key_changed`
    /// only the new key signed (false).
    pub signed_by_old_key: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainState, seal};
    use crate::entry::Draft;
    use crate::testutil::test_key;

    #[test]
    fn the_key_after_a_rotation_is_the_one_it_names() {
        let (old, new) = (test_key(1), test_key(2));
        let mut state = ChainState::genesis();
        let plain = seal(&mut state, Draft::new("admin.action"), 1, &old);
        assert_eq!(key_after(&plain), old.id());
        let rotate = seal(&mut state, Draft::new(kinds::CHAIN_ROTATE).field(NEW_KEY_ID, new.id()), 2, &old);
        assert_eq!(key_after(&rotate), new.id());
        let malformed = seal(&mut state, Draft::new(kinds::CHAIN_ROTATE).field(NEW_KEY_ID, 7), 3, &old);
        assert_eq!(key_after(&malformed), "", "a rotation naming no key lets no key follow");
        let change = seal(
            &mut state,
            Draft::new(kinds::CHAIN_KEY_CHANGED).field(PREVIOUS_KEY_ID, old.id()).field(NEW_KEY_ID, new.id()),
            4,
            &new,
        );
        assert!(is_key_change_from(&change, old.id()));
        assert!(!is_key_change_from(&change, new.id()));
        assert!(!is_key_change_from(&plain, old.id()));
    }
}
