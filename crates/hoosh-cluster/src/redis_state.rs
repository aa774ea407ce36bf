//! Budgets and rate limits shared by every instance, in Redis: each
//! admission's charges are made by one Lua script, atomically, so two
//! instances can never both take the last of a budget; each reservation is
//! a *lease* that its instance renews while the request runs, so a crashed
//! instance's holds are given back when they expire.
//!
//! Keys (all under one hash tag, so one script may touch them all):
//!
//! ```text
//! {ns}:{h}:used:{pool}:{window_start}  hash t, n      usage of a window (seeded from the ledger)
//! {ns}:{h}:res:{pool}                  hash t, n, open, rt, rn   held by open leases (across windows)
//! {ns}:{h}:lease:{id}                  hash pools, t, n, rt, rn, slots  what one lease holds
//! {ns}:{h}:leases                      zset id -> expiry (Redis time, ms)
//! {ns}:{h}:rl:{limit key}:{r|t}        string: GCRA theoretical arrival time (ms)
//! {ns}:{h}:conc:{limit key}            integer: requests in flight under a concurrency cap
//! ```
//!
//! Settles are queued and sent by a background task that retries until
//! Redis takes them (additions commute, so order does not matter); a settle
//! never blocks the request that made it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hoosh_governance::{
    Amount, BudgetExceeded, BudgetLimit, ConcurrencyLimited, Denied, LimitKey, PoolCounts, PoolId, RateKind,
    RateLimited, RateReport, RateStatus, Remaining, SharedAsk, SharedPool, SharedSettle, nanos_to_usd,
};
use parking_lot::Mutex;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

/// How many settles may wait for Redis; past this they are logged and
/// dropped (the ledger still has every row; a cold start re-seeds from it).
const SETTLE_QUEUE: usize = 100_000;

/// Reads what a pool has used in the window starting at `window_start`
/// from the ledger (tokens, nano-USD). Blocking; called off the runtime.
pub type SeedSource = Arc<dyn Fn(&PoolId, i64) -> Result<(u64, u64), String> + Send + Sync>;

/// The shared store could not be asked (Redis down or too slow).
#[derive(Debug, Clone, thiserror::Error)]
#[error("shared state (Redis) is unreachable: {0}")]
pub struct Unavailable(pub String);

/// What the shared store granted.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Granted {
    /// Headroom of the tightest pool after this reservation, cluster-wide.
    pub remaining: Remaining,
    pub rates: RateReport,
}

struct Scripts {
    reserve: Script,
    settle: Script,
    seed: Script,
    renew: Script,
}

struct SettleOp {
    ask: SharedAsk,
    held: bool,
    actual: Amount,
}

struct Inner {
    conn: ConnectionManager,
    prefix: String,
    ttl_ms: u64,
    scripts: Scripts,
    /// Leases granted here and not yet settled: renewed until they are.
    live: Mutex<HashSet<String>>,
    settles: mpsc::Sender<SettleOp>,
    /// Settles queued or being sent.
    pending: AtomicU64,
    seed: SeedSource,
    /// Whether the last call reached Redis (for health and the log).
    reachable: AtomicBool,
}

/// The handle the server holds; cheap to clone.
#[derive(Clone)]
pub struct RedisState(Arc<Inner>);

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState").field("prefix", &self.0.prefix).finish_non_exhaustive()
    }
}

/// The client for `url`, with the timeouts every hoosh connection uses: a
/// call that Redis does not answer in a second counts as Redis being down.
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, Unavailable> {
    let client = redis::Client::open(url).map_err(|e| Unavailable(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config).await.map_err(|e| Unavailable(e.to_string()))
}

/// One round trip to the Redis at `url`, and its version: for `hoosh state check`.
pub async fn probe(url: &str) -> Result<(Duration, String), Unavailable> {
    let mut conn = connect(url).await?;
    let started = std::time::Instant::now();
    let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| Unavailable(e.to_string()))?;
    let rtt = started.elapsed();
    let info: String =
        redis::cmd("INFO").arg("server").query_async(&mut conn).await.map_err(|e| Unavailable(e.to_string()))?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map_or_else(|| "unknown".to_string(), |v| v.trim().to_string());
    Ok((rtt, version))
}

impl RedisState {
    /// Connects, and starts the settle and lease-renewal tasks (on the
    /// current runtime). `namespace` separates clusters sharing one Redis.
    pub async fn connect(
        url: &str,
        namespace: &str,
        lease_ttl: Duration,
        seed: SeedSource,
    ) -> Result<RedisState, Unavailable> {
        let conn = connect(url).await?;
        let (tx, rx) = mpsc::channel(SETTLE_QUEUE);
        let state = RedisState(Arc::new(Inner {
            conn,
            prefix: format!("{namespace}:{{h}}:"),
            ttl_ms: u64::try_from(lease_ttl.as_millis()).unwrap_or(u64::MAX),
            scripts: Scripts {
                reserve: lease_script(include_str!("../lua/reserve.lua")),
                settle: lease_script(include_str!("../lua/settle.lua")),
                seed: Script::new(include_str!("../lua/seed.lua")),
                renew: lease_script(include_str!("../lua/renew.lua")),
            },
            live: Mutex::new(HashSet::new()),
            settles: tx,
            pending: AtomicU64::new(0),
            seed,
            reachable: AtomicBool::new(true),
        }));
        tokio::spawn(settle_loop(Arc::downgrade(&state.0), rx));
        tokio::spawn(renew_loop(Arc::downgrade(&state.0)));
        Ok(state)
    }

    /// Reserves `ask` cluster-wide: `Ok(Ok(_))` granted (a lease now holds
    /// it), `Ok(Err(_))` refused as this instance would refuse it,
    /// `Err(_)` Redis could not be asked.
    pub async fn reserve(&self, ask: &SharedAsk) -> Result<Result<Granted, Denied>, Unavailable> {
        let inner = &self.0;
        let mut seeded = 0;
        loop {
            let reply: Vec<i64> = self.invoke_reserve(ask).await?;
            match reply.first() {
                Some(0) => {
                    inner.live.lock().insert(ask.lease.clone());
                    return Ok(Ok(granted(ask, &reply)));
                }
                Some(1) if seeded < ask.pools.len() + 1 => {
                    let pool = pool_at(ask, reply.get(1))?;
                    self.seed(pool).await?;
                    seeded += 1;
                }
                Some(2) => return Ok(Err(rate_refusal(ask, &reply)?)),
                Some(3) => return Ok(Err(budget_refusal(ask, &reply)?)),
                Some(4) => return Ok(Err(concurrency_refusal(ask, &reply)?)),
                _ => return Err(Unavailable(format!("unexpected reply from the reserve script: {reply:?}"))),
            }
        }
    }

    async fn invoke_reserve(&self, ask: &SharedAsk) -> Result<Vec<i64>, Unavailable> {
        let inner = &self.0;
        let mut call = inner.scripts.reserve.prepare_invoke();
        call.key(self.key("leases")).key(self.key(&format!("lease:{}", ask.lease)));
        for pool in &ask.pools {
            call.key(self.used_key(&pool.id, pool.window_start)).key(self.key(&format!("res:{}", pool.id)));
        }
        for rate in &ask.rates {
            call.key(self.rate_key(&rate.key, rate.kind));
        }
        for (key, _) in &ask.slots {
            call.key(self.key(&format!("conc:{key}")));
        }
        call.arg(&inner.prefix)
            .arg(&ask.lease)
            .arg(inner.ttl_ms)
            .arg(ask.amount.tokens)
            .arg(ask.amount.nanos)
            .arg(ask.at_risk.tokens)
            .arg(ask.at_risk.nanos)
            .arg(ask.pools.len())
            .arg(ask.rates.len())
            .arg(ask.slots.len());
        for pool in &ask.pools {
            call.arg(cap(pool.cap_tokens)).arg(cap(pool.cap_nanos));
        }
        for rate in &ask.rates {
            call.arg(rate.count).arg(rate.period_ms).arg(rate.burst).arg(rate.cost);
        }
        for (_, max) in &ask.slots {
            call.arg(*max);
        }
        let mut conn = inner.conn.clone();
        self.observe(call.invoke_async(&mut conn).await)
    }

    /// Starts `pool`'s window from the ledger, unless it has started.
    async fn seed(&self, pool: &SharedPool) -> Result<(), Unavailable> {
        let source = Arc::clone(&self.0.seed);
        let (id, from) = (pool.id.clone(), pool.window_start);
        let (tokens, nanos) = tokio::task::spawn_blocking(move || source(&id, from))
            .await
            .map_err(|e| Unavailable(format!("reading the ledger: {e}")))?
            .map_err(|e| Unavailable(format!("reading the ledger: {e}")))?;
        let ttl = pool.window_end.map_or(0, |end| (end - wall_ms()).max(0) + DAY_MS);
        let mut conn = self.0.conn.clone();
        let result: Result<i64, _> = self
            .0
            .scripts
            .seed
            .key(self.used_key(&pool.id, pool.window_start))
            .arg(tokens)
            .arg(nanos)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await;
        let seeded = self.observe(result)?;
        if seeded == 1 {
            tracing::info!(pool = %pool.id, tokens, usd = nanos_to_usd(nanos), "shared budget window seeded from the ledger");
        }
        Ok(())
    }

    /// The shared response cache's answer under `digest`, if any.
    pub async fn cache_get(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, Unavailable> {
        let mut conn = self.0.conn.clone();
        let found: redis::RedisResult<Option<Vec<u8>>> =
            redis::cmd("GET").arg(self.cache_key(digest)).query_async(&mut conn).await;
        self.observe(found)
    }

    /// Stores an answer in the shared response cache for `ttl`.
    pub async fn cache_put(&self, digest: &[u8; 32], answer: Vec<u8>, ttl: Duration) -> Result<(), Unavailable> {
        let mut conn = self.0.conn.clone();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let stored: redis::RedisResult<()> =
            redis::cmd("SET").arg(self.cache_key(digest)).arg(answer).arg("PX").arg(ms).query_async(&mut conn).await;
        self.observe(stored)
    }

    /// `{ns}:cache:` and the raw digest (outside the lease hash tag: cache
    /// entries may spread over a Redis cluster's slots).
    fn cache_key(&self, digest: &[u8; 32]) -> Vec<u8> {
        let ns = self.0.prefix.trim_end_matches("{h}:");
        let mut key = Vec::with_capacity(ns.len() + 6 + 32);
        key.extend_from_slice(ns.as_bytes());
        key.extend_from_slice(b"cache:");
        key.extend_from_slice(digest);
        key
    }

    /// The cluster's counters of each `(pool, window start)`; `None` for a
    /// window no instance has used yet (its usage is still only in the ledger).
    pub async fn pool_counts(&self, pools: &[(PoolId, i64)]) -> Result<Vec<Option<PoolCounts>>, Unavailable> {
        if pools.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (pool, window_start) in pools {
            pipe.cmd("HMGET").arg(self.used_key(pool, *window_start)).arg("t").arg("n");
            pipe.cmd("HMGET").arg(self.key(&format!("res:{pool}"))).arg(&["t", "n", "open", "rt", "rn"][..]);
        }
        let mut conn = self.0.conn.clone();
        type Used = (Option<u64>, Option<u64>);
        type Held = (Option<u64>, Option<u64>, Option<u64>, Option<u64>, Option<u64>);
        let replies: redis::RedisResult<Vec<(Used, Held)>> = pipe.query_async(&mut conn).await;
        let replies = self.observe(replies)?;
        Ok(replies
            .into_iter()
            .map(|((t, n), (rt, rn, open, art, arn))| {
                let (Some(t), Some(n)) = (t, n) else { return None };
                Some(PoolCounts {
                    used_tokens: t,
                    used_nanos: n,
                    reserved_tokens: rt.unwrap_or(0),
                    reserved_nanos: rn.unwrap_or(0),
                    open: open.unwrap_or(0),
                    at_risk_tokens: art.unwrap_or(0),
                    at_risk_nanos: arn.unwrap_or(0),
                })
            })
            .collect())
    }

    /// Tells the other instances `provider`'s circuit opened here, for `open_for`.
    pub async fn circuit_opened(&self, provider: &str, instance: &str, open_for: Duration) -> Result<(), Unavailable> {
        let mut conn = self.0.conn.clone();
        let ms = u64::try_from(open_for.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(self.circuit_key(provider))
            .arg(instance)
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await;
        self.observe(set)
    }

    /// For each of `providers`, how long its circuit stays open by another
    /// instance's account (`None`: not open, or open only by `instance`'s own).
    pub async fn circuits_open(
        &self,
        providers: &[&str],
        instance: &str,
    ) -> Result<Vec<Option<Duration>>, Unavailable> {
        if providers.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in providers {
            pipe.cmd("GET").arg(self.circuit_key(p)).cmd("PTTL").arg(self.circuit_key(p));
        }
        let mut conn = self.0.conn.clone();
        let replies: redis::RedisResult<Vec<(Option<String>, i64)>> = pipe.query_async(&mut conn).await;
        let replies = self.observe(replies)?;
        Ok(replies
            .into_iter()
            .map(|(by, ms)| match by {
                Some(by) if by != instance => u64::try_from(ms).ok().filter(|ms| *ms > 0).map(Duration::from_millis),
                _ => None,
            })
            .collect())
    }

    fn circuit_key(&self, provider: &str) -> String {
        format!("{}circuit:{provider}", self.0.prefix.trim_end_matches("{h}:"))
    }

    /// Whether the last call reached Redis.
    pub fn reachable(&self) -> bool {
        self.0.reachable.load(Ordering::Relaxed)
    }

    /// Settles not yet taken by Redis.
    pub fn pending_settles(&self) -> u64 {
        self.0.pending.load(Ordering::Relaxed)
    }

    /// Waits (up to `limit`) until every queued settle reached Redis; for shutdown.
    pub async fn drain(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending_settles() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    fn observe<T>(&self, result: redis::RedisResult<T>) -> Result<T, Unavailable> {
        let was = self.0.reachable.swap(result.is_ok(), Ordering::Relaxed);
        match result {
            Ok(v) => {
                if !was {
                    tracing::warn!("shared state (Redis) is reachable again");
                }
                Ok(v)
            }
            Err(e) => {
                if was {
                    tracing::error!(error = %e, "shared state (Redis) is unreachable");
                }
                Err(Unavailable(e.to_string()))
            }
        }
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.0.prefix)
    }

    fn used_key(&self, pool: &PoolId, window_start: i64) -> String {
        self.key(&format!("used:{pool}:{window_start}"))
    }

    fn rate_key(&self, key: &str, kind: RateKind) -> String {
        let kind = match kind {
            RateKind::Requests => 'r',
            RateKind::Tokens => 't',
        };
        self.key(&format!("rl:{key}:{kind}"))
    }
}

impl SharedSettle for RedisState {
    fn settle(&self, ask: SharedAsk, held: bool, actual: Amount) {
        let inner = &self.0;
        inner.live.lock().remove(&ask.lease);
        inner.pending.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = inner.settles.try_send(SettleOp { ask, held, actual }) {
            inner.pending.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(
                error = %e,
                "shared settle queue is full ({SETTLE_QUEUE}); this request's usage reaches the shared counters \
                 only through the ledger (at the next window or cold start)"
            );
        }
    }
}

const DAY_MS: i64 = 86_400_000;

/// A script that works on leases: the shared helpers, then its body.
fn lease_script(body: &str) -> Script {
    Script::new(&format!("{}\n{body}", include_str!("../lua/common.lua")))
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn cap(v: Option<u64>) -> i64 {
    v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn pool_at<'a>(ask: &'a SharedAsk, index: Option<&i64>) -> Result<&'a SharedPool, Unavailable> {
    index
        .and_then(|i| usize::try_from(*i).ok())
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| ask.pools.get(i))
        .ok_or_else(|| Unavailable("the reserve script named no pool".into()))
}

fn granted(ask: &SharedAsk, reply: &[i64]) -> Granted {
    let opt = |v: Option<&i64>| v.and_then(|v| u64::try_from(*v).ok());
    let remaining = Remaining { tokens: opt(reply.get(1)), usd: opt(reply.get(2)).map(nanos_to_usd) };
    let mut rates = RateReport::default();
    for (rate, used_us) in ask.rates.iter().zip(reply.iter().skip(3)) {
        rates.tighten(rate.kind, rate_status(rate.count, rate.period_ms, rate.burst, *used_us));
    }
    Granted { remaining, rates }
}

/// A limit's state from the part of its burst in use (µs of its period).
fn rate_status(count: u64, period_ms: u64, burst: u64, used_us: i64) -> RateStatus {
    if count == 0 {
        return RateStatus { limit: 0, remaining: 0, reset_ms: 0 };
    }
    let used_ms = used_us.max(0) as f64 / 1000.0;
    let interval = period_ms as f64 / count as f64;
    let tolerance = burst as f64 * interval;
    let remaining = if used_ms >= tolerance { 0 } else { ((tolerance - used_ms) / interval + 1e-9).floor() as u64 };
    RateStatus { limit: count, remaining: remaining.min(burst), reset_ms: used_ms.ceil() as u64 }
}

fn rate_refusal(ask: &SharedAsk, reply: &[i64]) -> Result<Denied, Unavailable> {
    let rate = reply
        .get(1)
        .and_then(|i| usize::try_from(*i).ok())
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| ask.rates.get(i))
        .ok_or_else(|| Unavailable("the reserve script named no rate".into()))?;
    Ok(Denied::RateLimited(RateLimited {
        key: LimitKey::new(&rate.key),
        retry_after_ms: reply.get(2).and_then(|v| u64::try_from(*v).ok()).unwrap_or(rate.period_ms),
        limit: rate.count,
        kind: rate.kind,
        too_large: reply.get(3) == Some(&1),
    }))
}

fn concurrency_refusal(ask: &SharedAsk, reply: &[i64]) -> Result<Denied, Unavailable> {
    let (key, max) = reply
        .get(1)
        .and_then(|i| usize::try_from(*i).ok())
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| ask.slots.get(i))
        .ok_or_else(|| Unavailable("the reserve script named no concurrency cap".into()))?;
    Ok(Denied::Concurrency(ConcurrencyLimited { key: LimitKey::new(key), max: *max }))
}

fn budget_refusal(ask: &SharedAsk, reply: &[i64]) -> Result<Denied, Unavailable> {
    let pool = pool_at(ask, reply.get(1))?;
    Ok(Denied::Budget(BudgetExceeded {
        pool: pool.id.clone(),
        resets_at: pool.window_end,
        limit_kind: if reply.get(2) == Some(&2) { BudgetLimit::Usd } else { BudgetLimit::Tokens },
        contended: reply.get(3) == Some(&1),
    }))
}

/// Sends queued settles, many at once, retrying each until Redis takes it.
async fn settle_loop(state: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<SettleOp>) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        let Some(inner) = state.upgrade() else { return };
        let handle = RedisState(inner);
        let mut delay = Duration::from_millis(50);
        while !batch.is_empty() {
            let results = futures_util::future::join_all(batch.iter().map(|op| handle.send_settle(op))).await;
            let mut kept = Vec::new();
            for (op, ok) in batch.drain(..).zip(results) {
                if ok.is_ok() {
                    handle.0.pending.fetch_sub(1, Ordering::Relaxed);
                } else {
                    kept.push(op);
                }
            }
            batch = kept;
            if !batch.is_empty() {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

impl RedisState {
    async fn send_settle(&self, op: &SettleOp) -> Result<(), Unavailable> {
        let now = wall_ms();
        let mut call = self.0.scripts.settle.prepare_invoke();
        call.key(self.key("leases")).key(self.key(&format!("lease:{}", op.ask.lease)));
        for pool in &op.ask.pools {
            // Charged to the window current at settle, as the ledger row is.
            let window = match pool.window_end {
                Some(end) if now >= end => end,
                _ => pool.window_start,
            };
            call.key(self.used_key(&pool.id, window));
        }
        // A request admitted on local state alone charged no shared rate.
        let token_rates: Vec<_> = op
            .ask
            .rates
            .iter()
            .filter(|r| op.held && r.kind == RateKind::Tokens && r.cost != op.actual.tokens)
            .collect();
        for rate in &token_rates {
            call.key(self.rate_key(&rate.key, rate.kind));
        }
        call.arg(&self.0.prefix)
            .arg(&op.ask.lease)
            .arg(op.ask.pools.len())
            .arg(token_rates.len())
            .arg(op.actual.tokens)
            .arg(op.actual.nanos);
        for rate in &token_rates {
            let delta = i128::from(op.actual.tokens) - i128::from(rate.cost);
            call.arg(rate.count).arg(rate.period_ms).arg(i64::try_from(delta).unwrap_or(0));
        }
        let mut conn = self.0.conn.clone();
        let result: redis::RedisResult<i64> = call.invoke_async(&mut conn).await;
        self.observe(result).map(drop)
    }
}

/// Renews this instance's leases three times per TTL, and reclaims the
/// expired leases of instances that stopped.
async fn renew_loop(state: std::sync::Weak<Inner>) {
    loop {
        let period = match state.upgrade() {
            Some(inner) => Duration::from_millis((inner.ttl_ms / 3).max(100)),
            None => return,
        };
        tokio::time::sleep(period).await;
        let Some(inner) = state.upgrade() else { return };
        let ids: Vec<String> = inner.live.lock().iter().cloned().collect();
        let handle = RedisState(inner);
        // At least one call, even with nothing to renew: it also reclaims expired leases.
        let chunks: Vec<&[String]> = if ids.is_empty() { vec![&[]] } else { ids.chunks(512).collect() };
        for chunk in chunks {
            let mut call = handle.0.scripts.renew.prepare_invoke();
            call.key(handle.key("leases")).arg(&handle.0.prefix).arg(handle.0.ttl_ms);
            for id in chunk {
                call.arg(id);
            }
            let mut conn = handle.0.conn.clone();
            let result: redis::RedisResult<i64> = call.invoke_async(&mut conn).await;
            if handle.observe(result).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_status_reads_the_used_part_of_the_burst() {
        // 60 rpm, 10 used: 50 left, full again in 10 s.
        let s = rate_status(60, 60_000, 60, 10_000_000);
        assert_eq!((s.limit, s.remaining, s.reset_ms), (60, 50, 10_000));
        // All used.
        assert_eq!(rate_status(60, 60_000, 60, 60_000_000).remaining, 0);
        // Nothing used.
        assert_eq!(rate_status(60, 60_000, 60, 0).remaining, 60);
    }
}
