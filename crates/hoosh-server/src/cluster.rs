//! `[state] backend = "cluster"`: this instance as one of several sharing
//! Redis and PostgreSQL. Opening puts governance on the PostgreSQL store,
//! connects the Redis counters and the pub/sub bus, and ties them together:
//! a key, team or budget written here is announced to the other instances,
//! which read the records again; a budget window Redis has not seen is
//! seeded from the ledger.
//!
//! On the request path, [`Cluster::hold`] is the shared half of the admit
//! phase: what this instance admitted is charged again on the shared
//! counters, which may still refuse it (another instance took the budget).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hoosh_cluster::{Bus, Event, PgOptions, PgStore, RedisState, SeedSource};
use hoosh_core::config::Config;
use hoosh_core::state_config::OnRedisDown;
use hoosh_governance::{
    Admission, BudgetStatus, Denied, Governance, LedgerOptions, PoolId, SharedSettle, Store, SystemClock,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::{Answer, ResponseCache};
use crate::governance::{self, Gov};
use crate::state::AppState;

/// The file, in the data directory, where ledger rows wait while
/// PostgreSQL is unreachable.
pub const SPILL_FILE: &str = "ledger-spill.jsonl";

/// This instance's handles on the shared state.
pub struct Cluster {
    pub instance: String,
    pub redis: RedisState,
    /// `redis` as what settles admissions (one allocation, shared).
    sink: Arc<dyn SharedSettle>,
    pub bus: Bus,
    pub on_redis_down: OnRedisDown,
    /// Another instance asked every instance to reload its config.
    pub reload_requested: Arc<Notify>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("instance", &self.instance).finish_non_exhaustive()
    }
}

/// Why the shared half of admission refused.
#[derive(Debug)]
pub enum Refusal {
    Denied(Denied),
    /// Redis could not be asked and `on_redis_down = "closed"`.
    Unavailable(String),
}

/// `hostname-pid`: the default `--instance-id`.
pub fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hoosh".into());
    format!("{host}-{}", std::process::id())
}

/// Opens governance on the cluster's stores. Both must be reachable at start.
pub async fn open(config: &Config, instance: &str, data_dir: Option<&Path>) -> Result<Gov, String> {
    let state = &config.state;
    let (Some(pg_url), Some(redis_url)) = (state.postgres_url.clone(), state.redis_url.clone()) else {
        return Err("state.backend = \"cluster\" needs state.postgres_url and state.redis_url".into());
    };
    let dir = governance::data_dir(&config.governance, data_dir)?;
    let options = PgOptions {
        url: pg_url,
        migrate: state.migrate_on_start,
        spill_path: dir.join(SPILL_FILE),
        instance: instance.to_owned(),
    };
    let store = tokio::task::spawn_blocking(move || PgStore::open(options))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    let shared: Arc<dyn Store> = store.clone();
    let gov_cfg = config.governance.clone();
    // Answers wait for their row's commit: no linger before it (rows that
    // arrive while a commit runs still share the next one).
    let ledger = LedgerOptions {
        linger: if state.ack_after_commit { Duration::ZERO } else { LedgerOptions::default().linger },
        ..LedgerOptions::default()
    };
    let gov = tokio::task::spawn_blocking(move || {
        governance::open_with_ledger(&gov_cfg, shared, None, Arc::new(SystemClock), ledger)
    })
    .await
    .map_err(|e| e.to_string())??;

    let weak = Arc::downgrade(&gov.inner);
    let seed: SeedSource = Arc::new(move |pool, from| {
        let gov = weak.upgrade().ok_or("shutting down")?;
        // Rows this instance has not committed yet must be in the sum.
        gov.ledger().flush();
        gov.store().usage_totals(pool, from).map_err(|e| e.to_string())
    });
    let ttl = Duration::from_millis(state.lease_ttl_ms);
    let redis =
        RedisState::connect(&redis_url, &state.namespace, ttl, seed).await.map_err(|e| format!("Redis: {e}"))?;

    let reload_requested = Arc::new(Notify::new());
    let records = Arc::new(Rereader { gov: Arc::downgrade(&gov.inner), running: false.into(), again: false.into() });
    let reload = Arc::clone(&reload_requested);
    let on_event: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(move |event| match event {
        Event::RecordsChanged => Arc::clone(&records).request(),
        Event::ReloadConfig => reload.notify_one(),
    });
    let bus = Bus::start(&redis_url, &state.namespace, instance, on_event).await.map_err(|e| format!("Redis: {e}"))?;
    let announce = bus.clone();
    let runtime = tokio::runtime::Handle::current();
    store.set_on_change(Box::new(move || {
        let bus = announce.clone();
        runtime.spawn(async move { bus.publish(Event::RecordsChanged).await });
    }));

    let cluster = Cluster {
        instance: instance.to_owned(),
        sink: Arc::new(redis.clone()),
        redis,
        bus,
        on_redis_down: state.on_redis_down,
        reload_requested,
    };
    gov.set_cluster(cluster);
    Ok(gov)
}

/// How often circuit state is exchanged with the other instances.
const CIRCUIT_SYNC: Duration = Duration::from_millis(500);

/// Shares circuit breakers with the other instances until `cancel`: a
/// circuit this instance opens is announced (a Redis key that lives for the
/// open period), and one another instance opened is opened here for what
/// is left of it — so a failing provider is skipped cluster-wide, not
/// re-discovered by each instance's own failures.
pub fn spawn_circuit_sync(st: &AppState, tracker: &TaskTracker, cancel: CancellationToken) {
    let Some(cluster) = st.gov.cluster().cloned() else { return };
    let st = st.clone();
    tracker.spawn(async move {
        let mut announced: HashMap<String, u64> = HashMap::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(CIRCUIT_SYNC) => {}
            }
            let live = st.live();
            let open_for = Duration::from_secs(live.config.circuit_breaker.open_secs);
            let entries = live.router.entries();
            for e in entries {
                let opened = e.stats.opened_here();
                let seen = announced.entry(e.name().to_owned()).or_insert(0);
                if opened > *seen {
                    *seen = opened;
                    let _ = cluster.redis.circuit_opened(e.name(), &cluster.instance, open_for).await;
                }
            }
            let names: Vec<&str> = entries.iter().map(|e| e.name()).collect();
            let Ok(open) = cluster.redis.circuits_open(&names, &cluster.instance).await else { continue };
            for (e, remaining) in entries.iter().zip(open) {
                if let Some(remaining) = remaining {
                    e.stats.trip_remote(remaining.min(open_for));
                }
            }
        }
    });
}

/// `statuses` as the cluster sees them: each pool's used and reserved
/// amounts from the shared counters (every instance's), where Redis has
/// them; this instance's own view otherwise (Redis away, or a window no
/// instance has used yet).
pub async fn budget_view(st: &AppState, statuses: Vec<BudgetStatus>) -> Vec<BudgetStatus> {
    let Some(cluster) = st.gov.cluster() else { return statuses };
    let pools: Vec<(PoolId, i64)> = statuses.iter().map(|s| (s.pool.clone(), s.window_start)).collect();
    match cluster.redis.pool_counts(&pools).await {
        Ok(counts) => statuses
            .into_iter()
            .zip(counts)
            .map(|(status, c)| match c {
                Some(c) => status.with_counts(c),
                None => status,
            })
            .collect(),
        Err(_) => statuses,
    }
}

/// Longest a request waits for the shared cache before going upstream.
const CACHE_WAIT: Duration = Duration::from_millis(100);

/// Re-reads keys, teams and budgets when another instance changed them:
/// at most one read running and one more queued, however many changes are
/// announced at once (a burst of key creations is one or two reads).
struct Rereader {
    gov: std::sync::Weak<Governance>,
    running: AtomicBool,
    again: AtomicBool,
}

impl Rereader {
    fn request(self: Arc<Self>) {
        self.again.store(true, Ordering::SeqCst);
        if self.running.swap(true, Ordering::SeqCst) {
            return; // the running read will go again
        }
        tokio::task::spawn_blocking(move || {
            loop {
                self.again.store(false, Ordering::SeqCst);
                let Some(gov) = self.gov.upgrade() else { return };
                if let Err(e) = gov.reload_shared() {
                    tracing::warn!(error = %e, "reading keys, teams and budgets from PostgreSQL");
                }
                self.running.store(false, Ordering::SeqCst);
                // A change announced during the read: read again, unless
                // another request already started one.
                if !self.again.load(Ordering::SeqCst) || self.running.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
        });
    }
}

impl Cluster {
    /// The shared cache's answer for `key` (a local miss asks here). Redis
    /// slow or away is a miss, never an error.
    pub async fn cache_get(&self, key: &[u8; 32]) -> Option<Answer> {
        let found = tokio::time::timeout(CACHE_WAIT, self.redis.cache_get(key)).await.ok()?.ok()??;
        serde_json::from_slice(&found).ok()
    }

    /// Makes `cache` send every answer it stores to the shared tier too.
    pub fn share_cache(&self, cache: &ResponseCache) {
        let redis = self.redis.clone();
        let runtime = tokio::runtime::Handle::current();
        cache.set_shared_put(Box::new(move |key, json, ttl| {
            let redis = redis.clone();
            runtime.spawn(async move {
                let _ = redis.cache_put(&key, json, ttl).await;
            });
        }));
    }

    /// Charges what `admission` holds here on the shared counters too. A
    /// refusal withdraws the admission (nothing stays charged anywhere);
    /// Redis out of reach refuses or, with `on_redis_down = "open"`, admits
    /// on local state and adds the usage to the shared counters later.
    pub async fn hold(&self, gov: &Governance, mut admission: Admission, now: i64) -> Result<Admission, Refusal> {
        let ask = gov.shared_ask(&admission, now);
        if ask.is_empty() {
            return Ok(admission);
        }
        match self.redis.reserve(&ask).await {
            Ok(Ok(granted)) => {
                if !ask.pools.is_empty() {
                    admission.set_remaining(granted.remaining);
                }
                if !ask.rates.is_empty() {
                    admission.set_rate_status(granted.rates);
                }
                admission.attach_shared(Arc::clone(&self.sink), ask, true);
                Ok(admission)
            }
            Ok(Err(denied)) => {
                admission.withdraw(now);
                Err(Refusal::Denied(denied))
            }
            Err(e) => match self.on_redis_down {
                OnRedisDown::Closed => {
                    admission.withdraw(now);
                    Err(Refusal::Unavailable(e.0))
                }
                OnRedisDown::Open => {
                    ::metrics::counter!("hoosh_shared_state_fallbacks_total").increment(1);
                    admission.attach_shared(Arc::clone(&self.sink), ask, false);
                    Ok(admission)
                }
            },
        }
    }
}
