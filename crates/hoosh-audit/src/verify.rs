//! Offline verification of a chain: from a store file, a JSONL export, or
//! any iterator of entries in stored order.
//!
//! Each entry is checked, in this order: its `key_id` is one of the given keys
//! ([`Reason::UnknownKey`]); `hash` matches the canonical bytes
//! ([`Reason::Modified`]); `sig` is that key's HMAC of `hash`
//! ([`Reason::BadSignature`]); its seq follows the previous one
//! ([`Reason::MissingSequence`], [`Reason::Reordered`], [`Reason::Replayed`]);
//! `prev_hash` is the previous entry's `hash` ([`Reason::BrokenLink`]); the
//! key that signed it is the one in force at this point of the chain, see
//! [`crate::epoch`] ([`Reason::WrongKey`]).
//!
//! A seq jump is judged one entry later: if the skipped seq turns up next the
//! entries were [`Reason::Reordered`], otherwise it is missing. The chain must
//! start at seq 1 with the zero `prev_hash`, or at the `first_kept_seq` of a
//! valid `chain.prune` record whose `last_pruned_hash` is the first entry's
//! `prev_hash` (see [`crate::prune`]). With a [`Checkpoint`], its signature is
//! checked, the entry at its seq must have its `head_hash`
//! ([`Reason::CheckpointMismatch`]) and it must be signed by the key in force
//! at that entry or right after it (else [`Reason::CheckpointMismatch`]),
//! and the chain must reach it ([`Reason::TruncatedAfterCheckpoint`]). A
//! checkpoint older than the first kept entry of a pruned chain cannot be
//! compared; [`Report::checkpoint_matched`] says whether it was.
//!
//! Verification stops at the first problem: after one, nothing later can be
//! trusted anyway.

use std::io::BufRead;

use crate::chain_store::ChainStore;
use crate::checkpoint::Checkpoint;
use crate::entry::{Entry, GENESIS_HASH};
use crate::epoch::{self, KeyChange};
use crate::key::AuditKey;
use crate::prune::PruneRecord;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `hash` does not match the entry's contents (or the stored row no longer parses).
    Modified,
    /// `sig` is not the named key's signature of `hash`.
    BadSignature,
    /// `key_id` names none of the keys given.
    UnknownKey,
    /// A valid signature, but not by the key in force here: a key retired by
    /// `chain.rotate`, or a change of key nothing authorised.
    WrongKey { expected: String, found: String },
    /// Entries `expected..found` are absent.
    MissingSequence { expected: u64, found: u64 },
    /// This entry appears after a later one.
    Reordered,
    /// `prev_hash` is not the previous entry's `hash`.
    BrokenLink,
    /// The chain ends before a checkpoint it once reached.
    TruncatedAfterCheckpoint { checkpoint_seq: u64, last_seq: u64 },
    /// The checkpoint is not validly signed, or the entry at its seq has another hash.
    CheckpointMismatch,
    /// A seq seen before appears again.
    Replayed,
}

impl Reason {
    /// A stable machine-readable name (`modified`, `missing_sequence`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Modified => "modified",
            Reason::BadSignature => "bad_signature",
            Reason::UnknownKey => "unknown_key",
            Reason::WrongKey { .. } => "wrong_key",
            Reason::MissingSequence { .. } => "missing_sequence",
            Reason::Reordered => "reordered",
            Reason::BrokenLink => "broken_link",
            Reason::TruncatedAfterCheckpoint { .. } => "truncated_after_checkpoint",
            Reason::CheckpointMismatch => "checkpoint_mismatch",
            Reason::Replayed => "replayed",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Modified => write!(f, "the entry's contents do not match its hash (modified)"),
            Reason::BadSignature => write!(f, "the signature is not the named key's"),
            Reason::UnknownKey => write!(f, "signed by a key that was not given"),
            Reason::WrongKey { expected, found } => write!(
                f,
                "signed by key {found}, but the key in force here is {} (a retired key, or a key change no rotation authorised)",
                if expected.is_empty() { "none (a malformed rotation)" } else { expected }
            ),
            Reason::MissingSequence { expected, found } => {
                write!(f, "entries {expected}..{} are missing", found.saturating_sub(1).max(*expected))
            }
            Reason::Reordered => write!(f, "the entry appears after a later one (reordered)"),
            Reason::BrokenLink => write!(f, "prev_hash is not the previous entry's hash"),
            Reason::TruncatedAfterCheckpoint { checkpoint_seq, last_seq } => {
                write!(f, "the chain ends at {last_seq} but a checkpoint reached {checkpoint_seq} (truncated)")
            }
            Reason::CheckpointMismatch => write!(f, "the checkpoint's hash or signature does not match the chain"),
            Reason::Replayed => write!(f, "a sequence number seen before appears again (replayed)"),
        }
    }
}

/// The first thing wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub seq: u64,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub entries_checked: u64,
    /// seq of the first entry (1 unless pruned); 0 when there were none.
    pub first_seq: u64,
    /// seq and hash of the last entry accepted; 0 and zeros when there were none.
    pub head_seq: u64,
    pub head_hash: [u8; 32],
    /// Every change of signing key along the checked part of the chain.
    pub key_changes: Vec<KeyChange>,
    /// A checkpoint was given and the chain holds its entry with its hash.
    /// False for one older than the first kept entry of a pruned chain.
    pub checkpoint_matched: bool,
    /// The first problem found; `None` means the chain verified.
    pub problem: Option<Problem>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies `entries`, in stored order, against `keys` (looked up by `key_id`).
pub fn verify(entries: impl IntoIterator<Item = Entry>, keys: &[AuditKey], checkpoint: Option<&Checkpoint>) -> Report {
    let mut v = Verifier::new(keys, checkpoint);
    for entry in entries {
        if !v.check(&entry) {
            break;
        }
    }
    v.finish()
}

/// Verifies a whole store; a row that no longer parses is [`Reason::Modified`].
pub fn verify_store(
    store: &dyn ChainStore,
    keys: &[AuditKey],
    checkpoint: Option<&Checkpoint>,
) -> Result<Report, StoreError> {
    let mut v = Verifier::new(keys, checkpoint);
    match store.range(0, &mut |entry| v.check(&entry)) {
        Ok(()) => {}
        Err(StoreError::Corrupt { seq, .. }) => v.fail(seq, Reason::Modified),
        Err(e) => return Err(e),
    }
    Ok(v.finish())
}

/// Verifies a JSONL export; a line that does not parse is [`Reason::Modified`]
/// (with the seq the line should have had).
pub fn verify_jsonl(
    reader: impl BufRead,
    keys: &[AuditKey],
    checkpoint: Option<&Checkpoint>,
) -> Result<Report, std::io::Error> {
    let mut v = Verifier::new(keys, checkpoint);
    for item in crate::jsonl::read_jsonl(reader) {
        match item {
            Ok(entry) => {
                if !v.check(&entry) {
                    break;
                }
            }
            Err(crate::jsonl::JsonlError::Io(e)) => return Err(e),
            Err(crate::jsonl::JsonlError::Parse { .. }) => {
                let seq = v.expected.unwrap_or(1);
                v.fail(seq, Reason::Modified);
                break;
            }
        }
    }
    Ok(v.finish())
}

/// Incremental verifier: [`Verifier::check`] each entry in order, then [`Verifier::finish`].
pub struct Verifier<'a> {
    keys: &'a [AuditKey],
    checkpoint: Option<&'a Checkpoint>,
    /// Accept whatever the first entry is (for a partial export): no genesis/prune check.
    start_anywhere: bool,
    checked: u64,
    first: Option<(u64, [u8; 32])>,
    /// Satisfied by seq 1 on genesis, or by a matching prune record.
    start_ok: bool,
    /// The highest `first_kept_seq` of valid prune records below the start.
    pruned_until: u64,
    expected: Option<u64>,
    head_seq: u64,
    head_hash: [u8; 32],
    /// A jump from `expected` to `found`, judged at the next entry.
    gap: Option<(u64, u64)>,
    /// The key that must sign the next entry; `None` before the first.
    in_force: Option<String>,
    /// Keys that have been in force (a `chain.key_changed` may not bring one back).
    epoch_keys: Vec<String>,
    key_changes: Vec<KeyChange>,
    checkpoint_matched: bool,
    problem: Option<Problem>,
}

impl<'a> Verifier<'a> {
    pub fn new(keys: &'a [AuditKey], checkpoint: Option<&'a Checkpoint>) -> Verifier<'a> {
        let mut v = Verifier {
            keys,
            checkpoint,
            start_anywhere: false,
            checked: 0,
            first: None,
            start_ok: false,
            pruned_until: 1,
            expected: None,
            head_seq: 0,
            head_hash: GENESIS_HASH,
            gap: None,
            in_force: None,
            epoch_keys: Vec::new(),
            key_changes: Vec::new(),
            checkpoint_matched: false,
            problem: None,
        };
        if let Some(cp) = checkpoint {
            match keys.iter().find(|k| k.id() == cp.key_id) {
                None => v.fail(cp.seq, Reason::UnknownKey),
                Some(key) if !cp.signature_valid(key) => v.fail(cp.seq, Reason::CheckpointMismatch),
                Some(_) => {}
            }
        }
        v
    }

    /// For a partial export (e.g. `since` a time): the first entry is taken
    /// as given, so only the links after it are checked.
    pub fn starting_anywhere(mut self) -> Verifier<'a> {
        self.start_anywhere = true;
        self
    }

    fn fail(&mut self, seq: u64, reason: Reason) {
        if self.problem.is_none() {
            self.problem = Some(Problem { seq, reason });
        }
    }

    /// Checks the next entry; false once a problem is found (stop feeding).
    pub fn check(&mut self, entry: &Entry) -> bool {
        if self.problem.is_some() {
            return false;
        }
        if let Err(reason) = self.check_one(entry) {
            self.fail(entry.seq, reason);
            return false;
        }
        self.checked += 1;
        self.problem.is_none()
    }

    fn check_one(&mut self, entry: &Entry) -> Result<(), Reason> {
        let key = self.keys.iter().find(|k| k.id() == entry.key_id).ok_or(Reason::UnknownKey)?;
        if entry.compute_hash() != entry.hash {
            return Err(Reason::Modified);
        }
        if !key.verify(&entry.hash, &entry.sig) {
            return Err(Reason::BadSignature);
        }
        match self.expected {
            None => {
                self.first = Some((entry.seq, entry.prev_hash));
                if entry.seq == 1 {
                    if entry.prev_hash != GENESIS_HASH {
                        return Err(Reason::BrokenLink);
                    }
                    self.start_ok = true;
                }
            }
            Some(expected) => {
                if let Some((gap_from, gap_to)) = self.gap {
                    if (gap_from..gap_to).contains(&entry.seq) {
                        return Err(Reason::Reordered);
                    }
                    self.fail(gap_to, Reason::MissingSequence { expected: gap_from, found: gap_to });
                    return Ok(());
                }
                if entry.seq < expected {
                    return Err(Reason::Replayed);
                }
                if entry.seq > expected {
                    // Judged at the next entry; the link cannot be checked across a gap.
                    self.gap = Some((expected, entry.seq));
                } else if entry.prev_hash != self.head_hash {
                    return Err(Reason::BrokenLink);
                }
            }
        }
        if self.gap.is_none() {
            // Across a gap the missing entries are the problem (they may hold the rotation).
            self.check_epoch(entry)?;
        }
        let after = epoch::key_after(entry);
        if let Some(cp) = self.checkpoint
            && cp.seq == entry.seq
        {
            // Signed by the key that sealed the head, or by the one a rotation at the head handed to.
            if cp.head_hash != entry.hash || (cp.key_id != entry.key_id && cp.key_id != after) {
                return Err(Reason::CheckpointMismatch);
            }
            self.checkpoint_matched = true;
        }
        if let Some(record) = PruneRecord::from_entry(entry) {
            self.note_prune(&record);
        }
        if after != entry.key_id {
            self.key_changes.push(KeyChange {
                seq: entry.seq,
                from_key_id: entry.key_id.clone(),
                to_key_id: after.to_owned(),
                signed_by_old_key: true,
            });
            self.epoch_keys.push(after.to_owned());
        }
        self.in_force = Some(after.to_owned());
        self.expected = Some(entry.seq.saturating_add(1));
        self.head_seq = entry.seq;
        self.head_hash = entry.hash;
        Ok(())
    }

    /// The entry is signed by the key in force, or opens the chain, or is an
    /// unsigned `chain.key_changed` to a key never in force before.
    fn check_epoch(&mut self, entry: &Entry) -> Result<(), Reason> {
        match &self.in_force {
            None => self.epoch_keys.push(entry.key_id.clone()),
            Some(required) if *required == entry.key_id => {}
            Some(required) => {
                if !epoch::is_key_change_from(entry, required) || self.epoch_keys.contains(&entry.key_id) {
                    return Err(Reason::WrongKey { expected: required.clone(), found: entry.key_id.clone() });
                }
                self.key_changes.push(KeyChange {
                    seq: entry.seq,
                    from_key_id: required.clone(),
                    to_key_id: entry.key_id.clone(),
                    signed_by_old_key: false,
                });
                self.epoch_keys.push(entry.key_id.clone());
            }
        }
        Ok(())
    }

    fn note_prune(&mut self, record: &PruneRecord) {
        let Some((first_seq, first_prev)) = self.first else { return };
        if record.first_kept_seq == first_seq && record.last_pruned_hash == first_prev {
            self.start_ok = true;
        } else if record.first_kept_seq <= first_seq {
            self.pruned_until = self.pruned_until.max(record.first_kept_seq);
        }
    }

    /// The report; call after the last entry.
    pub fn finish(mut self) -> Report {
        if let Some((expected, found)) = self.gap.take() {
            self.fail(found, Reason::MissingSequence { expected, found });
        }
        if let Some((first_seq, _)) = self.first
            && !self.start_ok
            && !self.start_anywhere
        {
            let reason = if self.pruned_until == first_seq {
                // A prune record names this start but with another hash.
                Reason::BrokenLink
            } else {
                Reason::MissingSequence { expected: self.pruned_until, found: first_seq }
            };
            self.fail(first_seq, reason);
        }
        if let Some(cp) = self.checkpoint {
            let first_seq = self.first.map_or(0, |f| f.0);
            if self.head_seq < cp.seq && cp.seq >= first_seq {
                self.fail(cp.seq, Reason::TruncatedAfterCheckpoint { checkpoint_seq: cp.seq, last_seq: self.head_seq });
            }
        }
        Report {
            entries_checked: self.checked,
            first_seq: self.first.map_or(0, |f| f.0),
            head_seq: self.head_seq,
            head_hash: self.head_hash,
            key_changes: self.key_changes,
            checkpoint_matched: self.checkpoint_matched,
            problem: self.problem,
        }
    }
}
