//! Spending caps: tokens and/or dollars per pool (the global pool, a team, a
//! key) per calendar window, enforced by reserve → settle.
//!
//! Why reservations: a request's cost is only known when it ends, but the
//! decision to let it start has to be made before. Admitting on `used` alone
//! lets N concurrent requests each see the same headroom and overspend N-fold;
//! instead each admission *reserves* its estimate, so `used + reserved` is
//! what is at stake, and the real cost replaces the estimate at settle.
//!
//! Invariants (property-tested below):
//! - `reserved` of a pool is exactly the sum of the amounts of its open
//!   reservations; nothing else changes it.
//! - At the moment a reservation is granted, `used + reserved ≤ capacity` in
//!   every capped dimension of every pool it touches. `used` alone may end
//!   above capacity when actual cost exceeds the estimate: that overrun is
//!   recorded, never forgiven, and blocks further reservations.
//! - A reservation is granted in all of its pools or in none: pools are locked
//!   in one global order (by [`PoolId`]), all are checked, then all are charged.
//!
//! Near the end of a pool, one at a time: a reservation may also carry an
//! *at risk* amount — how much more than reserved its provider could still
//! charge (a prompt it counts higher than the gateway's estimate). While
//! other reservations are open, a new one is only granted if the pool can
//! absorb every open reservation's risk as well; otherwise it is refused as
//! *contended* (the caller may wait for a settle and try again). A pool
//! with nothing open grants any reservation that fits. So when what is left
//! is less than what the requests in flight could overrun, requests run one
//! at a time and each settles before the next is let in: the pool ends at
//! most one request's overrun above its cap.
//!
//! Window roll (calendar windows, see [`Period`]): when `now` has entered a
//! later window, `used` starts again from 0; `reserved` is carried over
//! untouched. An in-flight request admitted at 23:59:59 therefore keeps its
//! hold on the new day's budget until it settles, and its actual cost is
//! charged to the window current *at settle time* — which is also where its
//! ledger row lands (rows are timestamped at the end of a request), so the
//! start-up rebuild from the ledger agrees with the live counters.
//!
//! Money is integer nano-USD (`u64`, 10⁻⁹ $): sums of many small prices are
//! exact and there is no float drift between the live counters and the ledger.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::{Clock, SystemClock};
pub use crate::period::Period;

pub const NANOS_PER_USD: u64 = 1_000_000_000;

/// Dollars (as configured or priced) to nano-USD, rounding to the nearest
/// nano-dollar; negative and NaN become 0, huge values saturate.
pub fn usd_to_nanos(usd: f64) -> u64 {
    // Float → int `as` saturates and maps NaN to 0, which is exactly what we want.
    (usd * NANOS_PER_USD as f64).round() as u64
}

/// Nano-USD to dollars, for display and headers only.
pub fn nanos_to_usd(nanos: u64) -> f64 {
    nanos as f64 / NANOS_PER_USD as f64
}

/// A cap on tokens and/or dollars per period. A dimension left `None` is not capped.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Prompt + completion tokens per window.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// US dollars per window.
    #[serde(default)]
    pub usd: Option<f64>,
    /// When the window starts over (default: never, a lifetime cap).
    #[serde(default)]
    pub period: Period,
}

/// What a request costs (or is expected to cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Amount {
    pub tokens: u64,
    pub nanos: u64,
}

impl Amount {
    pub const ZERO: Amount = Amount { tokens: 0, nanos: 0 };

    pub fn new(tokens: u64, nanos: u64) -> Self {
        Amount { tokens, nanos }
    }
}

/// Which budget pool: one per key, one per team, and one for the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PoolId {
    Global,
    Team(String),
    Key(String),
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolId::Global => f.write_str("global"),
            PoolId::Team(name) => write!(f, "team:{name}"),
            PoolId::Key(id) => write!(f, "key:{id}"),
        }
    }
}

impl FromStr for PoolId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "global" {
            return Ok(PoolId::Global);
        }
        match s.split_once(':') {
            Some(("team", name)) if !name.is_empty() => Ok(PoolId::Team(name.to_string())),
            Some(("key", id)) if !id.is_empty() => Ok(PoolId::Key(id.to_string())),
            _ => Err(format!("`{s}` is not a budget pool (expected `global`, `team:NAME` or `key:ID`)")),
        }
    }
}

impl Serialize for PoolId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PoolId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The dimension that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetLimit {
    Tokens,
    Usd,
}

impl fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetLimit::Tokens => "token",
            BudgetLimit::Usd => "usd",
        })
    }
}

/// A reservation did not fit; names the first pool (in [`PoolId`] order) that refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{limit_kind} budget of {pool} is exhausted")]
pub struct BudgetExceeded {
    pub pool: PoolId,
    /// When the pool's window starts over; `None` for a lifetime budget.
    pub resets_at: Option<i64>,
    pub limit_kind: BudgetLimit,
    /// The reservation fits, but not next to the risk of those in flight:
    /// it may be granted once they settle (see the module doc).
    pub contended: bool,
}

/// A pool's state for the admin API and for headers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    pub pool: PoolId,
    pub spec: BudgetSpec,
    pub window_start: i64,
    pub used_tokens: u64,
    pub used_nanos: u64,
    pub reserved_tokens: u64,
    pub reserved_nanos: u64,
    /// Reservations in flight, and what they could still overrun.
    pub open_reservations: u64,
    pub at_risk_tokens: u64,
    pub at_risk_nanos: u64,
    pub remaining_tokens: Option<u64>,
    pub remaining_usd: Option<f64>,
    pub resets_at: Option<i64>,
}

impl BudgetStatus {
    /// This status with the cluster's counters in place of this instance's
    /// own (the cap, window and reset stay).
    pub fn with_counts(self, c: crate::shared::PoolCounts) -> BudgetStatus {
        let left = |cap: Option<u64>, used: u64, reserved: u64| {
            cap.map(|cap| cap.saturating_sub(used.saturating_add(reserved)))
        };
        BudgetStatus {
            used_tokens: c.used_tokens,
            used_nanos: c.used_nanos,
            reserved_tokens: c.reserved_tokens,
            reserved_nanos: c.reserved_nanos,
            open_reservations: c.open,
            at_risk_tokens: c.at_risk_tokens,
            at_risk_nanos: c.at_risk_nanos,
            remaining_tokens: left(self.spec.tokens, c.used_tokens, c.reserved_tokens),
            remaining_usd: left(self.spec.usd.map(usd_to_nanos), c.used_nanos, c.reserved_nanos).map(nanos_to_usd),
            ..self
        }
    }
}

/// The headroom left in the tightest pool of a reservation, per dimension
/// (`None` where no pool caps it); for response headers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Remaining {
    pub tokens: Option<u64>,
    pub usd: Option<f64>,
}

#[derive(Debug)]
struct PoolState {
    spec: BudgetSpec,
    /// `spec.usd` in nano-USD, converted once.
    cap_nanos: Option<u64>,
    window_start: i64,
    /// Start of the next window, cached so the calendar math runs once per window.
    window_end: i64,
    used_tokens: u64,
    used_nanos: u64,
    reserved_tokens: u64,
    reserved_nanos: u64,
    /// Open reservations, and the sum of their at-risk amounts.
    open: u64,
    at_risk_tokens: u64,
    at_risk_nanos: u64,
}

impl PoolState {
    fn new(spec: BudgetSpec) -> Self {
        PoolState {
            spec,
            cap_nanos: spec.usd.map(usd_to_nanos),
            // Far in the past: the first roll moves it to the real window.
            window_start: i64::MIN,
            window_end: i64::MIN,
            used_tokens: 0,
            used_nanos: 0,
            reserved_tokens: 0,
            reserved_nanos: 0,
            open: 0,
            at_risk_tokens: 0,
            at_risk_nanos: 0,
        }
    }

    fn set_spec(&mut self, spec: BudgetSpec) {
        self.spec = spec;
        self.cap_nanos = spec.usd.map(usd_to_nanos);
    }

    /// Starts a new window if `now` has left the current one (see the module doc).
    fn roll(&mut self, now: i64) {
        if self.window_start <= now && now < self.window_end {
            return;
        }
        let start = self.spec.period.window_start(now);
        if start > self.window_start {
            self.window_start = start;
            self.used_tokens = 0;
            self.used_nanos = 0;
        }
        self.window_end = self.spec.period.next_reset(self.window_start).unwrap_or(i64::MAX);
    }

    /// Moves to `window_start` without touching usage (set, rebuild).
    fn place(&mut self, window_start: i64) {
        self.window_start = window_start;
        self.window_end = if window_start == i64::MIN {
            i64::MIN
        } else {
            self.spec.period.next_reset(window_start).unwrap_or(i64::MAX)
        };
    }

    /// `Err((limit, contended))` when `amount` may not be reserved now.
    fn check(&self, amount: Amount, at_risk: Amount, usd_exempt: bool) -> Result<(), (BudgetLimit, bool)> {
        let dims = [
            (
                self.spec.tokens,
                self.used_tokens,
                self.reserved_tokens,
                self.at_risk_tokens,
                amount.tokens,
                at_risk.tokens,
                BudgetLimit::Tokens,
            ),
            (
                if usd_exempt { None } else { self.cap_nanos },
                self.used_nanos,
                self.reserved_nanos,
                self.at_risk_nanos,
                amount.nanos,
                at_risk.nanos,
                BudgetLimit::Usd,
            ),
        ];
        for (cap, used, reserved, risk_open, want, risk, limit) in dims {
            let Some(cap) = cap else { continue };
            let at_stake = used.saturating_add(reserved).saturating_add(want);
            if at_stake > cap {
                // Only what is in flight stands in the way: it may settle
                // below its reservation, so this is worth waiting for.
                let transient = reserved > 0 && used.saturating_add(want) <= cap;
                return Err((limit, transient));
            }
            if self.open > 0 && at_stake.saturating_add(risk_open).saturating_add(risk) > cap {
                return Err((limit, true));
            }
        }
        Ok(())
    }

    fn remaining_tokens(&self) -> Option<u64> {
        self.spec.tokens.map(|cap| cap.saturating_sub(self.used_tokens.saturating_add(self.reserved_tokens)))
    }

    fn remaining_nanos(&self) -> Option<u64> {
        self.cap_nanos.map(|cap| cap.saturating_sub(self.used_nanos.saturating_add(self.reserved_nanos)))
    }

    fn status(&self, pool: &PoolId, now: i64) -> BudgetStatus {
        BudgetStatus {
            pool: pool.clone(),
            spec: self.spec,
            window_start: self.window_start,
            used_tokens: self.used_tokens,
            used_nanos: self.used_nanos,
            reserved_tokens: self.reserved_tokens,
            reserved_nanos: self.reserved_nanos,
            open_reservations: self.open,
            at_risk_tokens: self.at_risk_tokens,
            at_risk_nanos: self.at_risk_nanos,
            remaining_tokens: self.remaining_tokens(),
            remaining_usd: self.remaining_nanos().map(nanos_to_usd),
            resets_at: self.spec.period.next_reset(now),
        }
    }
}

#[derive(Debug)]
struct PoolCell {
    id: PoolId,
    state: Mutex<PoolState>,
}

/// One pool a reservation holds, and the window it was taken in.
#[derive(Debug)]
struct Held {
    cell: Arc<PoolCell>,
    window_start: i64,
}

/// Budget held for one in-flight request. Not `Clone` and consumed by
/// [`Budgets::settle`], so it can be settled at most once; wrap it in a
/// [`BudgetGuard`] so that it is settled at least once.
///
/// It points at the pool states themselves, so settling always returns the
/// hold to the state it was taken from, even if the pool was reconfigured meanwhile.
#[derive(Debug)]
#[must_use = "a reservation holds budget until it is settled"]
pub struct Reservation {
    held: Vec<Held>,
    amount: Amount,
    /// How much more than `amount` the request could still be charged.
    at_risk: Amount,
    remaining: Remaining,
}

impl Reservation {
    /// The reserved (estimated) amount, held in every pool.
    pub fn amount(&self) -> Amount {
        self.amount
    }

    /// What the request could still be charged beyond [`Reservation::amount`].
    pub fn at_risk(&self) -> Amount {
        self.at_risk
    }

    /// The pools that had a budget and so hold this reservation.
    pub fn pools(&self) -> impl Iterator<Item = &PoolId> {
        self.held.iter().map(|h| &h.cell.id)
    }

    /// The window `pool` was in when the reservation was taken.
    pub fn window_start(&self, pool: &PoolId) -> Option<i64> {
        self.held.iter().find(|h| &h.cell.id == pool).map(|h| h.window_start)
    }

    /// Headroom of the tightest pool right after this reservation was granted.
    pub fn remaining(&self) -> Remaining {
        self.remaining
    }
}

/// All budget pools. Pools without a budget are simply absent: reserving
/// against them is a no-op, so callers always pass key, team and global.
pub struct Budgets {
    pools: RwLock<HashMap<PoolId, Arc<PoolCell>>>,
    /// Only for settling guards dropped without an explicit time.
    clock: Arc<dyn Clock>,
    on_settle: RwLock<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl Default for Budgets {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Budgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budgets").field("pools", &self.pools.read().len()).finish()
    }
}

impl Budgets {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Budgets { pools: RwLock::new(HashMap::new()), clock, on_settle: RwLock::new(None) }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Sets (or, with `None`, removes) a pool's budget. Changing the spec of an
    /// existing pool keeps its usage and reservations. Returns `true` when the
    /// pool's usage should be rebuilt from the ledger: the pool is new, or its
    /// period changed so the current window means something else.
    pub fn set(&self, pool: PoolId, spec: Option<BudgetSpec>) -> bool {
        let Some(spec) = spec else {
            self.remove(&pool);
            return false;
        };
        let mut pools = self.pools.write();
        match pools.get(&pool) {
            Some(cell) => {
                let mut state = cell.state.lock();
                let period_changed = state.spec.period != spec.period;
                state.set_spec(spec);
                if period_changed {
                    state.place(i64::MIN);
                }
                period_changed
            }
            None => {
                let cell = Arc::new(PoolCell { id: pool.clone(), state: Mutex::new(PoolState::new(spec)) });
                pools.insert(pool, cell);
                true
            }
        }
    }

    /// Forgets a pool. Open reservations against it settle harmlessly into the detached state.
    pub fn remove(&self, pool: &PoolId) -> bool {
        self.pools.write().remove(pool).is_some()
    }

    pub fn contains(&self, pool: &PoolId) -> bool {
        self.pools.read().contains_key(pool)
    }

    /// Every pool with a budget.
    pub fn pools(&self) -> Vec<PoolId> {
        let mut ids: Vec<PoolId> = self.pools.read().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Restores a pool's used amounts for `window_start` (from the ledger at
    /// start-up). Reservations are left alone. `false` if the pool has no budget.
    pub fn rebuild(&self, pool: &PoolId, used_tokens: u64, used_nanos: u64, window_start: i64) -> bool {
        let Some(cell) = self.pools.read().get(pool).cloned() else {
            return false;
        };
        let mut state = cell.state.lock();
        state.used_tokens = used_tokens;
        state.used_nanos = used_nanos;
        state.place(window_start);
        true
    }

    /// The pool's state as of `now` (rolling its window if due).
    pub fn snapshot(&self, pool: &PoolId, now: i64) -> Option<BudgetStatus> {
        let cell = self.pools.read().get(pool).cloned()?;
        let mut state = cell.state.lock();
        state.roll(now);
        Some(state.status(&cell.id, now))
    }

    /// Reserves `amount` in every pool of `pools` that has a budget, or in none.
    /// Fits when `used + reserved + amount ≤ capacity` in each capped dimension.
    pub fn reserve(&self, pools: &[PoolId], amount: Amount, now: i64) -> Result<Reservation, BudgetExceeded> {
        self.reserve_inner(pools.iter(), amount, Amount::ZERO, false, now)
    }

    /// [`Budgets::reserve`] of a request that could be charged up to
    /// `at_risk` more than `amount` (see the module doc).
    pub fn reserve_at_risk(
        &self,
        pools: &[PoolId],
        amount: Amount,
        at_risk: Amount,
        now: i64,
    ) -> Result<Reservation, BudgetExceeded> {
        self.reserve_inner(pools.iter(), amount, at_risk, false, now)
    }

    /// [`Budgets::reserve`] without the dollar check, for requests that cost
    /// nothing (a local model): they still count against token caps, and the
    /// nanos they do carry are still held and charged.
    pub fn reserve_usd_exempt(
        &self,
        pools: &[PoolId],
        amount: Amount,
        now: i64,
    ) -> Result<Reservation, BudgetExceeded> {
        self.reserve_inner(pools.iter(), amount, Amount::ZERO, true, now)
    }

    /// [`Budgets::reserve`] wrapped in a guard that settles on drop.
    pub fn reserve_guarded(
        self: &Arc<Self>,
        pools: &[PoolId],
        amount: Amount,
        usd_exempt: bool,
        now: i64,
    ) -> Result<BudgetGuard, BudgetExceeded> {
        self.guard_over(pools.iter(), amount, Amount::ZERO, usd_exempt, now)
    }

    /// [`Budgets::reserve_guarded`] over borrowed pool ids (no clones on the request path).
    pub(crate) fn guard_over<'p>(
        self: &Arc<Self>,
        pools: impl Iterator<Item = &'p PoolId>,
        amount: Amount,
        at_risk: Amount,
        usd_exempt: bool,
        now: i64,
    ) -> Result<BudgetGuard, BudgetExceeded> {
        let reservation = self.reserve_inner(pools, amount, at_risk, usd_exempt, now)?;
        Ok(BudgetGuard::new(Arc::clone(self), reservation))
    }

    fn reserve_inner<'p>(
        &self,
        pools: impl Iterator<Item = &'p PoolId>,
        amount: Amount,
        at_risk: Amount,
        usd_exempt: bool,
        now: i64,
    ) -> Result<Reservation, BudgetExceeded> {
        // A dollar-exempt request holds no dollars, so risks none.
        let at_risk = if usd_exempt { Amount::new(at_risk.tokens, 0) } else { at_risk };
        let mut cells: Vec<Arc<PoolCell>> = {
            let map = self.pools.read();
            pools.filter_map(|p| map.get(p).cloned()).collect()
        };
        // One global lock order makes concurrent multi-pool reservations deadlock-free.
        cells.sort_by(|a, b| a.id.cmp(&b.id));
        cells.dedup_by(|a, b| a.id == b.id);

        let mut remaining_tokens: Option<u64> = None;
        let mut remaining_nanos: Option<u64> = None;
        let mut window_starts = Vec::with_capacity(cells.len());
        {
            let mut guards: Vec<_> = cells.iter().map(|c| c.state.lock()).collect();
            // Every pool is checked: a pool that is spent outranks one that
            // is only contended, so nobody waits for what cannot come.
            let mut refusal: Option<BudgetExceeded> = None;
            for (cell, state) in cells.iter().zip(guards.iter_mut()) {
                state.roll(now);
                if let Err((limit_kind, contended)) = state.check(amount, at_risk, usd_exempt)
                    && refusal.as_ref().is_none_or(|r| r.contended && !contended)
                {
                    refusal = Some(BudgetExceeded {
                        pool: cell.id.clone(),
                        resets_at: state.spec.period.next_reset(now),
                        limit_kind,
                        contended,
                    });
                }
            }
            if let Some(r) = refusal {
                return Err(r);
            }
            for state in guards.iter_mut() {
                state.reserved_tokens = state.reserved_tokens.saturating_add(amount.tokens);
                state.reserved_nanos = state.reserved_nanos.saturating_add(amount.nanos);
                state.open += 1;
                state.at_risk_tokens = state.at_risk_tokens.saturating_add(at_risk.tokens);
                state.at_risk_nanos = state.at_risk_nanos.saturating_add(at_risk.nanos);
                window_starts.push(state.window_start);
                remaining_tokens = min_opt(remaining_tokens, state.remaining_tokens());
                remaining_nanos = min_opt(remaining_nanos, state.remaining_nanos());
            }
        }
        let held =
            cells.into_iter().zip(window_starts).map(|(cell, window_start)| Held { cell, window_start }).collect();
        let remaining = Remaining { tokens: remaining_tokens, usd: remaining_nanos.map(nanos_to_usd) };
        Ok(Reservation { held, amount, at_risk, remaining })
    }

    /// Ends a reservation: its hold is released and `actual` is charged to the
    /// window current at `now` (even if it exceeds the estimate).
    pub fn settle(&self, reservation: Reservation, actual: Amount, now: i64) {
        let (amount, at_risk) = (reservation.amount, reservation.at_risk);
        let touched = !reservation.held.is_empty();
        for held in reservation.held {
            let mut state = held.cell.state.lock();
            state.roll(now);
            state.reserved_tokens = state.reserved_tokens.saturating_sub(amount.tokens);
            state.reserved_nanos = state.reserved_nanos.saturating_sub(amount.nanos);
            state.open = state.open.saturating_sub(1);
            state.at_risk_tokens = state.at_risk_tokens.saturating_sub(at_risk.tokens);
            state.at_risk_nanos = state.at_risk_nanos.saturating_sub(at_risk.nanos);
            state.used_tokens = state.used_tokens.saturating_add(actual.tokens);
            state.used_nanos = state.used_nanos.saturating_add(actual.nanos);
        }
        if touched && let Some(hook) = self.on_settle.read().as_ref() {
            hook();
        }
    }

    /// Called after every settle that released budget: a caller refused as
    /// contended waits for it to try again.
    pub fn set_on_settle(&self, hook: Arc<dyn Fn() + Send + Sync>) {
        *self.on_settle.write() = Some(hook);
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Settles a reservation exactly once: explicitly with [`BudgetGuard::settle`],
/// or on drop (a panic, a cancelled future, a client that went away) with
/// whatever was last [`record`](BudgetGuard::record)ed, 0 if nothing.
#[derive(Debug)]
pub struct BudgetGuard {
    budgets: Arc<Budgets>,
    reservation: Option<Reservation>,
    actual: Amount,
}

impl BudgetGuard {
    pub fn new(budgets: Arc<Budgets>, reservation: Reservation) -> Self {
        BudgetGuard { budgets, reservation: Some(reservation), actual: Amount::ZERO }
    }

    /// The cost so far (replaces the previous value; streams record running totals).
    pub fn record(&mut self, actual: Amount) {
        self.actual = actual;
    }

    pub fn recorded(&self) -> Amount {
        self.actual
    }

    pub fn reservation(&self) -> Option<&Reservation> {
        self.reservation.as_ref()
    }

    /// Settles with the recorded amount at `now`.
    pub fn settle(mut self, now: i64) {
        if let Some(r) = self.reservation.take() {
            self.budgets.settle(r, self.actual, now);
        }
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        if let Some(r) = self.reservation.take() {
            let now = self.budgets.clock.now_ms();
            self.budgets.settle(r, self.actual, now);
        }
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
