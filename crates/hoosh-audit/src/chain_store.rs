//! [`ChainStore`]: where a chain is kept, as the writer, the verifier and
//! the exporters see it.
//!
//! Two kinds exist. One gateway keeps its chain in a SQLite file
//! ([`crate::AuditStore`]) and is its only writer: it seals entries against
//! the head it holds in memory and the store appends them as they are. The
//! instances of a cluster share one chain in PostgreSQL (`hoosh-cluster`):
//! each writer seals a batch against the head it last saw, and the store,
//! under a lock on the stored head, moves the batch behind it
//! ([`crate::chain::reseal`]), so sequence numbers stay gap-free and every
//! link holds whichever instance wrote the entry before.
//!
//! A batch may be retried after an error that hid a commit, so a shared
//! store must not take the same entries twice: each batch names its
//! [`Origin`] — the writer and where the batch starts in that writer's own
//! count — and the store remembers, per writer, how far it has taken.

use crate::ChainState;
use crate::checkpoint::Checkpoint;
use crate::entry::Entry;
use crate::key::AuditKey;
use crate::prune::PruneRecord;
use crate::store::StoreError;

/// Who sealed a batch: a writer (random per [`crate::AuditLog`]) and the
/// number of entries it had handed to the store before this batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub writer: u64,
    /// The batch's first entry is this writer's entry `first + 1`.
    pub first: u64,
}

/// What became of an appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// In the chain; the chain's head right after it (the batch's last entry).
    InChain(ChainState),
    /// Not in the chain yet but safe on this machine (the shared store could
    /// not be reached); it joins the chain, in order, when the store is back.
    Aside,
}

pub trait ChainStore: Send + Sync {
    /// Appends `batch` — sealed in order after the head its writer last saw —
    /// all or none, reseating it behind the stored head when another writer
    /// moved it (the entries are updated in place to what was stored).
    /// Entries of `origin` the store already took are not taken again.
    fn append(&self, batch: &mut [Entry], origin: Origin, key: &AuditKey) -> Result<Appended, StoreError>;

    /// Deletes every entry sealed before `ts_ms` after appending the signed
    /// `chain.prune` record that keeps the rest verifiable, all or none.
    /// `local` is the writer's view of the head, `now_ms` the record's time.
    /// Returns the record and the head after it; `None` when nothing was that old.
    fn prune_before(
        &self,
        ts_ms: i64,
        key: &AuditKey,
        now_ms: i64,
        local: ChainState,
    ) -> Result<Option<(PruneRecord, ChainState)>, StoreError>;

    /// The entry with the highest seq.
    fn head(&self) -> Result<Option<Entry>, StoreError>;

    /// Visits entries with seq ≥ `from_seq` in seq order until `visit` returns false.
    fn range(&self, from_seq: u64, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError>;

    /// Visits entries sealed at or after `ts_ms`, in seq order (ts never
    /// decreases along the chain, so this is a suffix of it).
    fn since(&self, ts_ms: i64, visit: &mut dyn FnMut(Entry) -> bool) -> Result<(), StoreError>;

    /// Number of stored entries.
    fn len(&self) -> Result<u64, StoreError>;

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;

    /// The checkpoint with the highest seq.
    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError>;
}
