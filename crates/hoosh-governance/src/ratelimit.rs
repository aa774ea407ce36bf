//! Requests-per-minute and tokens-per-minute limits with GCRA (the generic
//! cell rate algorithm).
//!
//! Why GCRA: each limited key needs O(1) state — one "theoretical arrival
//! time" (TAT), the instant at which the key's bucket would be empty again if
//! nothing more arrived. A request of cost `c` is admitted when pushing the
//! TAT forward by `c` emission intervals keeps it within the burst tolerance
//! of now. That is exact at the edges (the n-th request of a minute passes,
//! the (n+1)-th gets a precise `retry_after`), has none of the fixed window's
//! double burst around a window boundary, and needs no per-request log like a
//! sliding log. Token limits are the same algorithm with cost = tokens, and
//! because the state is a single number, correcting an estimate after the
//! fact is one addition ([`RateLimiter::correct`]).
//!
//! Arithmetic is exact: time is kept in units of `1/count` ms, so the emission
//! interval `period/count` is the integer `period_ms` and nothing is rounded
//! until a `retry_after` is reported (rounded up, so retrying then succeeds).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;

const SHARDS: usize = 16;
const MINUTE_MS: u64 = 60_000;

/// What a limit counts against: `key:…`, `team:…`, `model:…`, `provider:…`.
/// Cheap to clone (shared string), and it knows its shard so the limiter
/// never hashes it twice.
#[derive(Clone)]
pub struct LimitKey(Arc<KeyName>);

struct KeyName {
    shard: usize,
    name: Box<str>,
}

impl LimitKey {
    pub fn new(name: &str) -> Self {
        // FNV-1a only picks a lock shard; the maps themselves use SipHash.
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        LimitKey(Arc::new(KeyName { shard: (hash % SHARDS as u64) as usize, name: name.into() }))
    }

    pub fn key(id: &str) -> Self {
        Self::new(&format!("key:{id}"))
    }

    pub fn team(name: &str) -> Self {
        Self::new(&format!("team:{name}"))
    }

    pub fn model(name: &str) -> Self {
        Self::new(&format!("model:{name}"))
    }

    pub fn provider(name: &str) -> Self {
        Self::new(&format!("provider:{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0.name
    }

    fn shard(&self) -> usize {
        self.0.shard
    }
}

impl PartialEq for LimitKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.name == other.0.name
    }
}

impl Eq for LimitKey {}

impl Hash for LimitKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialOrd for LimitKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LimitKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(&other.0.name)
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for LimitKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Requests or tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateKind {
    Requests,
    Tokens,
}

impl RateKind {
    fn idx(self) -> usize {
        match self {
            RateKind::Requests => 0,
            RateKind::Tokens => 1,
        }
    }
}

impl fmt::Display for RateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RateKind::Requests => "request",
            RateKind::Tokens => "token",
        })
    }
}

/// `count` units per `period_ms`, of which up to `burst` may be spent at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub kind: RateKind,
    pub count: u64,
    pub period_ms: u64,
    pub burst: u64,
}

impl Limit {
    /// `n` requests per minute, all of which may arrive at once.
    pub fn rpm(n: u32) -> Self {
        Limit { kind: RateKind::Requests, count: u64::from(n), period_ms: MINUTE_MS, burst: u64::from(n) }
    }

    /// `n` tokens per minute, all of which may be spent at once.
    pub fn tpm(n: u64) -> Self {
        Limit { kind: RateKind::Tokens, count: n, period_ms: MINUTE_MS, burst: n }
    }

    pub fn with_burst(self, burst: u64) -> Self {
        Limit { burst, ..self }
    }

    /// Emission interval and burst tolerance in scaled units (1/count ms).
    fn interval(&self) -> i128 {
        i128::from(self.period_ms)
    }

    fn tolerance(&self) -> i128 {
        i128::from(self.burst) * self.interval()
    }

    fn scaled(&self, ms: i64) -> i128 {
        i128::from(ms) * i128::from(self.count)
    }
}

/// Refusal: which limit, and how long until the request would pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} rate limit of {limit} for {key} reached; retry in {}", format_reset(*retry_after_ms))]
pub struct RateLimited {
    pub key: LimitKey,
    pub retry_after_ms: u64,
    /// The limit's `count` (per period).
    pub limit: u64,
    pub kind: RateKind,
    /// The cost alone exceeds the burst: it will never pass, whatever the wait
    /// (e.g. a prompt larger than the whole TPM). `retry_after_ms` is then the period.
    pub too_large: bool,
}

/// A charge that was made; keep it to [`correct`](RateLimiter::correct) or refund it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub key: LimitKey,
    pub limit: Limit,
    pub cost: u64,
    /// The limit's state right after the charge, for headers.
    pub status: RateStatus,
}

/// One limit's state in the terms of OpenAI's `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateStatus {
    /// `x-ratelimit-limit-*`: the count per period.
    pub limit: u64,
    /// `x-ratelimit-remaining-*`: what could be spent right now.
    pub remaining: u64,
    /// `x-ratelimit-reset-*`: ms until the bucket is full again.
    pub reset_ms: u64,
}

/// The most constraining request limit and token limit that applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RateReport {
    pub requests: Option<RateStatus>,
    pub tokens: Option<RateStatus>,
}

impl RateReport {
    /// Keeps whichever status has less remaining (the later reset on a tie).
    pub fn tighten(&mut self, kind: RateKind, status: RateStatus) {
        let slot = match kind {
            RateKind::Requests => &mut self.requests,
            RateKind::Tokens => &mut self.tokens,
        };
        let tighter = match slot {
            None => true,
            Some(cur) => (status.remaining, u64::MAX - status.reset_ms) < (cur.remaining, u64::MAX - cur.reset_ms),
        };
        if tighter {
            *slot = Some(status);
        }
    }

    /// The `x-ratelimit-*` header pairs, in OpenAI's names.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(6);
        if let Some(s) = self.requests {
            out.push(("x-ratelimit-limit-requests", s.limit.to_string()));
            out.push(("x-ratelimit-remaining-requests", s.remaining.to_string()));
            out.push(("x-ratelimit-reset-requests", format_reset(s.reset_ms)));
        }
        if let Some(s) = self.tokens {
            out.push(("x-ratelimit-limit-tokens", s.limit.to_string()));
            out.push(("x-ratelimit-remaining-tokens", s.remaining.to_string()));
            out.push(("x-ratelimit-reset-tokens", format_reset(s.reset_ms)));
        }
        out
    }
}

/// A duration the way OpenAI's reset headers (Go durations) write it:
/// `20ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`.
pub fn format_reset(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    let mut secs = s.to_string();
    if milli > 0 {
        let frac = format!("{milli:03}");
        secs.push('.');
        secs.push_str(frac.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

#[derive(Debug, Clone, Copy)]
struct Gcra {
    /// Theoretical arrival time in units of 1/`count` ms.
    tat: i128,
    /// The `count` the TAT is scaled by.
    count: u64,
    /// The emission interval in those units, for corrections.
    period_ms: u64,
}

impl Gcra {
    /// The TAT in the units of `limit` (the limit may have been reconfigured).
    fn tat_for(&self, limit: &Limit) -> i128 {
        rescale(self.tat, self.count, limit.count)
    }
}

fn rescale(tat: i128, from_count: u64, to_count: u64) -> i128 {
    if from_count == to_count || from_count == 0 { tat } else { tat * i128::from(to_count) / i128::from(from_count) }
}

/// Per key: the request state and the token state.
type Shard = HashMap<LimitKey, [Option<Gcra>; 2]>;

/// All GCRA states, sharded so that unrelated keys rarely share a lock.
pub struct RateLimiter {
    shards: Vec<Mutex<Shard>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("shards", &self.shards.len()).finish()
    }
}

impl RateLimiter {
    pub fn new() -> Self {
        RateLimiter { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    /// Locks every shard the keys live in, in ascending order (deadlock-free).
    fn lock<'a, 'k>(&'a self, keys: impl Iterator<Item = &'k LimitKey>) -> [Option<MutexGuard<'a, Shard>>; SHARDS] {
        let mut needed = [false; SHARDS];
        for k in keys {
            needed[k.shard()] = true;
        }
        let mut locked = [const { None }; SHARDS];
        for (i, slot) in locked.iter_mut().enumerate() {
            if needed[i] {
                *slot = Some(self.shards[i].lock());
            }
        }
        locked
    }

    /// Charges every `(key, limit, cost)` or none: if any would be exceeded,
    /// nothing is charged and the refusal with the longest wait is returned.
    pub fn check_and_take(&self, items: &[(LimitKey, Limit, u64)], now: i64) -> Result<Vec<Taken>, RateLimited> {
        let mut locked = self.lock(items.iter().map(|(k, _, _)| k));
        let mut new_tats: Vec<i128> = Vec::with_capacity(items.len());
        let mut refusal: Option<RateLimited> = None;
        for (i, (key, limit, cost)) in items.iter().enumerate() {
            let now_s = limit.scaled(now);
            // An earlier item of the same list on the same (key, kind) counts first.
            let earlier = (0..i).rev().find(|&j| items[j].0 == *key && items[j].1.kind == limit.kind);
            let tat = match earlier {
                Some(j) => rescale(new_tats[j], items[j].1.count, limit.count),
                None => locked[key.shard()]
                    .as_ref()
                    .and_then(|s| s.get(key))
                    .and_then(|states| states[limit.kind.idx()])
                    .map_or(now_s, |g| g.tat_for(limit)),
            };
            let tat = tat.max(now_s);
            let new_tat = tat + i128::from(*cost) * limit.interval();
            new_tats.push(new_tat);
            let refused = if *cost > limit.burst || limit.count == 0 {
                Some(RateLimited {
                    key: key.clone(),
                    retry_after_ms: limit.period_ms,
                    limit: limit.count,
                    kind: limit.kind,
                    too_large: true,
                })
            } else if new_tat - now_s > limit.tolerance() {
                let wait = new_tat - now_s - limit.tolerance();
                Some(RateLimited {
                    key: key.clone(),
                    retry_after_ms: ceil_div(wait, i128::from(limit.count)),
                    limit: limit.count,
                    kind: limit.kind,
                    too_large: false,
                })
            } else {
                None
            };
            if let Some(r) = refused
                && refusal.as_ref().is_none_or(|cur| r.retry_after_ms > cur.retry_after_ms)
            {
                refusal = Some(r);
            }
        }
        if let Some(r) = refusal {
            return Err(r);
        }
        let mut taken = Vec::with_capacity(items.len());
        for ((key, limit, cost), new_tat) in items.iter().zip(new_tats) {
            if let Some(shard) = locked[key.shard()].as_mut() {
                let state = Some(Gcra { tat: new_tat, count: limit.count, period_ms: limit.period_ms });
                match shard.get_mut(key) {
                    Some(states) => states[limit.kind.idx()] = state,
                    None => {
                        let mut states = [None, None];
                        states[limit.kind.idx()] = state;
                        shard.insert(key.clone(), states);
                    }
                }
            }
            let status = status_of(limit, new_tat, now);
            taken.push(Taken { key: key.clone(), limit: *limit, cost: *cost, status });
        }
        Ok(taken)
    }

    /// Replaces an estimated token charge on `key` by the actual count: refunds
    /// when fewer were used, charges (possibly into debt) when more.
    pub fn correct(&self, key: &LimitKey, estimated: u64, actual: u64, now: i64) {
        self.adjust(key, RateKind::Tokens, i128::from(actual) - i128::from(estimated), now);
    }

    /// Gives back charges that were taken for a request that was then refused
    /// elsewhere (e.g. by a budget).
    pub fn refund(&self, taken: &[Taken], now: i64) {
        for t in taken {
            self.adjust(&t.key, t.limit.kind, -i128::from(t.cost), now);
        }
    }

    fn adjust(&self, key: &LimitKey, kind: RateKind, delta_units: i128, now: i64) {
        if delta_units == 0 {
            return;
        }
        let mut shard = self.shards[key.shard()].lock();
        if let Some(g) = shard.get_mut(key).and_then(|states| states[kind.idx()].as_mut()) {
            let now_s = i128::from(now) * i128::from(g.count);
            // Flooring at now: a refund can refill the bucket, never overfill it.
            g.tat = (g.tat.max(now_s) + delta_units * i128::from(g.period_ms)).max(now_s);
        }
    }

    /// The current state of each limit without charging anything.
    pub fn status(&self, items: &[(LimitKey, Limit)], now: i64) -> RateReport {
        let mut report = RateReport::default();
        for (key, limit) in items {
            let shard = self.shards[key.shard()].lock();
            let state = shard.get(key).and_then(|states| states[limit.kind.idx()]);
            drop(shard);
            let tat = state.map_or(i128::from(i64::MIN), |g| g.tat_for(limit));
            report.tighten(limit.kind, status_of(limit, tat, now));
        }
        report
    }

    /// Drops states whose bucket is full again (indistinguishable from no state).
    pub fn prune(&self, now: i64) {
        let busy = |g: &Option<Gcra>| g.is_some_and(|g| g.tat > i128::from(now) * i128::from(g.count));
        for shard in &self.shards {
            shard.lock().retain(|_, states| {
                for state in states.iter_mut() {
                    if !busy(state) {
                        *state = None;
                    }
                }
                states.iter().any(Option::is_some)
            });
        }
    }

    /// How many (key, kind) states exist; for tests and metrics.
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| s.lock().values().map(|st| st.iter().flatten().count()).sum::<usize>()).sum()
    }
}

fn status_of(limit: &Limit, tat: i128, now: i64) -> RateStatus {
    let now_s = limit.scaled(now);
    let used = (tat - now_s).max(0);
    let tolerance = limit.tolerance();
    let remaining = if used >= tolerance { 0 } else { div(tolerance - used, limit.interval().max(1)) };
    RateStatus {
        limit: limit.count,
        remaining: remaining.min(limit.burst),
        reset_ms: if limit.count == 0 { 0 } else { ceil_div(used, i128::from(limit.count)) },
    }
}

/// `a / b` for non-negative operands, on u64 when they fit (i128 division is
/// a slow library call, and this runs per limit per request).
fn div(a: i128, b: i128) -> u64 {
    match (u64::try_from(a), u64::try_from(b)) {
        (Ok(a), Ok(b)) if b > 0 => a / b,
        _ if b > 0 && a > 0 => u64::try_from(a / b).unwrap_or(u64::MAX),
        _ => 0,
    }
}

fn ceil_div(a: i128, b: i128) -> u64 {
    match (u64::try_from(a), u64::try_from(b)) {
        (Ok(a), Ok(b)) if b > 0 => a.div_ceil(b),
        _ if b > 0 && a > 0 => u64::try_from((a + b - 1) / b).unwrap_or(u64::MAX),
        _ => 0,
    }
}

#[cfg(test)]
#[path = "ratelimit_tests.rs"]
mod tests;
