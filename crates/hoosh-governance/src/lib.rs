//! hoosh-governance: who may call the gateway, how much, how fast, and what
//! it cost — virtual keys, budgets, rate and concurrency limits, and the
//! usage ledger. Pure logic plus storage; no HTTP. The server holds one
//! [`Governance`] and, per request, calls [`KeyRing::authenticate`], then
//! [`Governance::admit`], then [`Admission::finish`].
//!
//! Time is always a parameter (unix ms) or a [`Clock`], so every window,
//! refill and expiry is tested without sleeping.
//!
//! Layout (one job per file):
//! - [`key`]: key material — `hk-` + 43 base62 chars of OS entropy, SHA-256
//!   [`KeyHash`] with constant-time equality, display prefix.
//! - [`principal`]: stored records ([`KeyRecord`], [`Team`], [`Limits`],
//!   [`Scope`]) and the authenticated [`Principal`] with compiled model globs.
//! - [`keys`]: the [`KeyRing`] — authenticate by digest, master key, create /
//!   update / revoke / delete through the store.
//! - [`teams`]: team records, whose limits and budget their keys share.
//! - [`period`]: calendar windows in UTC (hour, day, ISO week, month) with
//!   hand-rolled civil-date math.
//! - [`budget`]: [`Budgets`] — token and nano-USD pools (global, team, key),
//!   atomic multi-pool reserve → settle, [`BudgetGuard`] that settles on drop.
//! - [`ratelimit`]: GCRA [`RateLimiter`] for RPM/TPM, all-or-none over a list,
//!   estimate correction, OpenAI `x-ratelimit-*` reporting.
//! - [`concurrency`]: in-flight caps with an RAII [`ConcurrencyPermit`].
//! - [`ledger`]: [`UsageRecord`] (keyed by a server-made UUIDv7 `id`; the
//!   caller's `request_id` is kept but not unique) and the [`Ledger`] writer
//!   thread (never blocks, never drops, batches, retries, flush/close).
//! - [`store`]: the [`Store`] trait; [`sqlite`] (WAL file) and [`memory`]
//!   implement it; [`csv`] streams the usage export.
//! - [`private_fs`]: the data directory (0700) and database files (0600):
//!   [`ensure_private_dir`] is shared by everything kept there.
//! - [`gate`]: [`Governance`] ties it together; [`Admission`] is one admitted
//!   request, finished (or dropped) exactly once.
//! - [`shared`]: the seam to state shared by several instances: what an
//!   admission asks of it ([`SharedAsk`]) and who settles it ([`SharedSettle`]).
//! - [`clock`]: [`Clock`], [`SystemClock`], [`ManualClock`].

pub mod budget;
pub mod clock;
pub mod concurrency;
pub mod csv;
pub mod gate;
pub mod key;
pub mod keys;
pub mod ledger;
pub mod memory;
pub mod period;
pub mod principal;
pub mod private_fs;
pub mod ratelimit;
pub mod responses;
pub mod shared;
pub mod sqlite;
pub mod store;
pub mod teams;
#[cfg(test)]
mod testutil;

pub use budget::{
    Amount, BudgetExceeded, BudgetGuard, BudgetLimit, BudgetSpec, BudgetStatus, Budgets, PoolId, Remaining,
    Reservation, nanos_to_usd, usd_to_nanos,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use concurrency::{Concurrency, ConcurrencyLimited, ConcurrencyPermit};
pub use gate::{Admission, AdmitRequest, Denied, GovError, Governance, Outcome};
pub use key::{KeyHash, generate_key, hash_key, key_prefix};
pub use keys::{AdminError, AuthError, KeyRing};
pub use ledger::{Ledger, LedgerOptions, LedgerTap, MAX_REQUEST_ID_BYTES, UsageRecord};
pub use memory::MemoryStore;
pub use period::Period;
pub use principal::{KeyPatch, KeyRecord, Limits, NewKey, Principal, Scope, Team};
pub use private_fs::ensure_private_dir;
pub use ratelimit::{Limit, LimitKey, RateKind, RateLimited, RateLimiter, RateReport, RateStatus, Taken, format_reset};
pub use responses::StoredResponse;
pub use shared::{PoolCounts, SharedAsk, SharedPool, SharedRate, SharedSettle};
pub use sqlite::SqliteStore;
pub use store::{GroupBy, Store, StoreError, UsageAggregate};
pub use teams::Teams;
