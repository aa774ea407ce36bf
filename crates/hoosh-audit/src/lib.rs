//! hoosh-audit: a durable, tamper-evident audit chain. Every security-relevant
//! event (a response served, an auth failure, a key or budget change, a config
//! reload) becomes an [`Entry`] that carries the SHA-256 of the one before it
//! and an HMAC-SHA256 signature, so editing, deleting, reordering or replaying
//! stored entries — or cutting the tail off, given a [`Checkpoint`] — is
//! detected by [`verify()`], offline, from the store or a JSONL export.
//!
//! The gateway holds one [`AuditLog`] and calls [`AuditLog::record`], which
//! never blocks; a writer thread seals and commits in batches. Time is always
//! a parameter (unix ms, or a [`Clock`]) so tests never sleep.
//!
//! Layout (one job per file):
//! - [`entry`]: [`Entry`], [`Draft`] and [`canonical_bytes`] — the exact
//!   on-disk format and what is hashed (the format's reference doc).
//! - [`key`]: [`AuditKey`] — from `HOOSH_AUDIT_KEY`, a file, or generated once
//!   into `<data_dir>/audit.key` (0600); key id; HMAC sign/verify.
//! - [`chain`]: [`ChainState`], [`seal`] and [`reseal`] — pure: draft → next entry.
//! - [`epoch`]: which key may sign which entries: `chain.rotate` retires a
//!   key for everything after it.
//! - [`chain_store`]: [`ChainStore`] — where a chain is kept: one gateway's
//!   file, or a database the instances of a cluster share (`hoosh-cluster`).
//! - [`store`]: [`AuditStore`] — entries and checkpoints in a WAL SQLite file.
//! - [`writer`]: [`AuditLog`] — the writer thread: resume after a crash,
//!   batch, flush, close, key rotation, pruning.
//! - [`checkpoint`]: signed [`Checkpoint`]s of the head, against truncation.
//! - [`prune`]: the `chain.prune` [`PruneRecord`] that keeps a pruned chain verifiable.
//! - [`verify`](mod@verify): [`verify()`], [`verify_store`], [`verify_jsonl`] → [`Report`].
//! - [`jsonl`]: [`export_jsonl`] / [`read_jsonl`].
//! - [`hex`]: lowercase hex and the serde adapter for digests.

pub mod chain;
pub mod chain_store;
pub mod checkpoint;
pub mod entry;
pub mod epoch;
pub mod hex;
pub mod jsonl;
pub mod key;
pub mod prune;
pub mod store;
#[cfg(test)]
mod testutil;
pub mod verify;
pub mod writer;

pub use chain::{ChainState, reseal, seal};
pub use chain_store::{Appended, ChainStore, Origin};
pub use checkpoint::Checkpoint;
pub use entry::{Draft, Entry, GENESIS_HASH, canonical_bytes, kinds};
pub use epoch::KeyChange;
pub use jsonl::{JsonlError, export_jsonl, read_jsonl};
pub use key::{AuditKey, KeyError, KeySource};
pub use prune::PruneRecord;
pub use store::{AuditStore, Durability, StoreError};
pub use verify::{Problem, Reason, Report, Verifier, verify, verify_jsonl, verify_store};
pub use writer::{AuditLog, AuditOptions, Clock, LogError, system_clock};
