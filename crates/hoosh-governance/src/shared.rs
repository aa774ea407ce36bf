//! The seam to state shared by several instances (`[state] backend =
//! "cluster"`). Admission runs here, in-process, first — allow-lists,
//! concurrency, and this instance's own view of rates and budgets, which
//! can only be looser than the cluster's, never stricter. The server then
//! asks the shared store for the same charges ([`SharedAsk`]), atomically
//! across instances, and attaches the answer to the [`crate::Admission`];
//! whenever the admission settles (finished or dropped), the attached
//! [`SharedSettle`] is told the actual cost, exactly once.
//!
//! The store itself (Redis) lives in `hoosh-cluster`; nothing here does I/O.

use std::fmt;

use crate::budget::{Amount, PoolId};
use crate::ratelimit::RateKind;

/// One budget pool a request is charged to, with its cap as this instance
/// knows it (definitions are shared through the database).
#[derive(Debug, Clone, PartialEq)]
pub struct SharedPool {
    pub id: PoolId,
    /// Token cap of the window; `None`: tokens are not capped.
    pub cap_tokens: Option<u64>,
    /// Dollar cap in nano-USD; `None`: not capped (or the request is exempt).
    pub cap_nanos: Option<u64>,
    /// Start of the pool's current window (unix ms) at admission.
    pub window_start: i64,
    /// When that window ends (`None`: a lifetime budget).
    pub window_end: Option<i64>,
}

/// One rate limit a request is charged against.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedRate {
    /// The limit key (`key:…`, `team:…`, `model:…`).
    pub key: String,
    pub kind: RateKind,
    pub count: u64,
    pub period_ms: u64,
    pub burst: u64,
    /// What this request costs (1 request, or its estimated tokens).
    pub cost: u64,
}

/// Everything one admitted request holds on the shared store.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedAsk {
    /// The admission's id: the lease's name on the shared store.
    pub lease: String,
    pub pools: Vec<SharedPool>,
    /// What is reserved in each pool.
    pub amount: Amount,
    /// How much more than `amount` the provider could still charge.
    pub at_risk: Amount,
    pub rates: Vec<SharedRate>,
    /// Concurrency caps it takes a slot of: `(limit key, max in flight)`.
    pub slots: Vec<(String, u32)>,
}

impl SharedAsk {
    /// Whether there is anything to hold: no pools, rates or slots means the
    /// shared store need not be asked.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty() && self.rates.is_empty() && self.slots.is_empty()
    }
}

/// Where an admission's actual cost goes when it settles. Must not block:
/// an admission may settle from a `Drop`.
pub trait SharedSettle: Send + Sync + fmt::Debug {
    /// `held`: whether the ask was granted by the shared store (a lease
    /// exists); `false` when it was admitted from local state alone (the
    /// store was unreachable) and only the usage is to be added.
    fn settle(&self, ask: SharedAsk, held: bool, actual: Amount);
}

/// A pool's counters as the shared store holds them (every instance's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolCounts {
    pub used_tokens: u64,
    pub used_nanos: u64,
    pub reserved_tokens: u64,
    pub reserved_nanos: u64,
    pub open: u64,
    pub at_risk_tokens: u64,
    pub at_risk_nanos: u64,
}
