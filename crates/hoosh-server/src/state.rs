//! The one cheap state handle every handler gets: `Clone` over `Arc<Inner>`.
//!
//! What a reload can change — the config, the router (providers, aliases,
//! strategy, prices) and the executor (retries, provider gates) — lives in
//! one [`Live`] snapshot behind an atomic pointer. A request takes the
//! snapshot once ([`AppState::live`]) and keeps it to the end, so a reload
//! never changes a request halfway and never drops one in flight. Keys,
//! budgets, limits and the ledger live in [`Gov`] and change in place.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use hoosh_core::config::{Config, ConfigError, Resolved};
use hoosh_core::executor::Executor;
use hoosh_core::router::{ProviderEntry, Router};

use crate::audit::Audit;
use crate::cache::ResponseCache;
use crate::governance::{self, Gov};
use hoosh_governance::MemoryStore;
use hoosh_types::openai::Model;
use tokio::time::Duration;

/// Reads the config again (file or environment), for a reload.
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    live: ArcSwap<Live>,
    pub started: Instant,
    /// Keys, budgets, rate limits, usage ledger.
    pub gov: Gov,
    /// The tamper-evident chain of security-relevant events.
    pub audit: Arc<Audit>,
    /// Exact-match answers to deterministic requests.
    pub cache: Arc<ResponseCache>,
    /// `/v1/models` answer, refreshed at most every [`MODELS_TTL`].
    pub models_cache: Mutex<Option<(Instant, Arc<Vec<Model>>)>>,
    /// Where a reload reads the config from; `None`: reloads are refused.
    pub config_source: Option<ConfigSource>,
    /// Reloads run one at a time.
    pub reload_lock: tokio::sync::Mutex<()>,
    /// Span export (`[telemetry] otlp_endpoint`); `None` when off.
    pub otlp: Option<Arc<crate::otlp::Exporter>>,
    /// The export loop, until [`crate::serve::run`] starts it.
    pub otlp_pending: Mutex<Option<crate::otlp::Pending>>,
    /// Every task the server spawns (probes, retention, provider calls that
    /// outlive their client); shutdown waits for them.
    pub tasks: tokio_util::task::TaskTracker,
    /// What each provider/model counts for a prompt, learned at settle.
    pub calibration: Arc<crate::pipeline::calibrate::Calibration>,
    /// Woken whenever a budget reservation settles: requests refused as
    /// contended near the end of a pool wait on it.
    pub budget_settled: Arc<tokio::sync::Notify>,
    /// Audio decodes running at once (`audio.max_concurrent_decodes`).
    pub decodes: crate::slots::Slots,
}

/// The reloadable part of the gateway, swapped whole.
pub struct Live {
    pub config: Config,
    pub router: Router,
    pub executor: Executor,
    /// 0 at start, +1 per applied reload.
    pub generation: u64,
}

impl Live {
    /// Router and executor for `config` (with what its validation
    /// `resolved`) over `entries`.
    pub fn build(
        config: Config,
        resolved: Resolved,
        entries: Vec<Arc<ProviderEntry>>,
        gov: &Gov,
        generation: u64,
    ) -> Live {
        let router = Router::new(
            entries,
            &config.model_aliases,
            config.routing.strategy,
            resolved.pricing,
            Duration::from_secs(config.routing.latency_stale_secs),
        );
        let mut executor = Executor::new(config.routing.clone());
        if let Some(gate) = governance::provider_gate(&config.governance, gov) {
            executor = executor.with_gate(gate);
        }
        Live { config, router, executor, generation }
    }
}

/// How long a merged model list is reused before providers are asked again.
pub const MODELS_TTL: Duration = Duration::from_secs(60);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// State with governance kept in memory (tests, embedding). If the
    /// `[governance]` config cannot be applied (a key's env var is unset),
    /// the gateway fails closed: no key authenticates. An invalid config is
    /// an error (every constructor validates).
    pub fn new(config: Config, entries: Vec<Arc<ProviderEntry>>) -> Result<Self, ConfigError> {
        let gov =
            governance::open_with_store(&config.governance, Arc::new(MemoryStore::new()), None).unwrap_or_else(|e| {
                tracing::error!(error = %e, "governance config rejected; every request will be refused");
                Gov::closed()
            });
        Self::with_governance(config, entries, gov)
    }

    /// State with the given governance (the binary opens it from the data
    /// directory) and no audit chain.
    pub fn with_governance(config: Config, entries: Vec<Arc<ProviderEntry>>, gov: Gov) -> Result<Self, ConfigError> {
        Self::build(config, entries, gov, Audit::disabled(), None)
    }

    /// State with governance and the audit chain; every finished request's
    /// ledger row also becomes an `inference` entry.
    pub fn with_audit(
        config: Config,
        entries: Vec<Arc<ProviderEntry>>,
        gov: Gov,
        audit: Audit,
    ) -> Result<Self, ConfigError> {
        Self::build(config, entries, gov, audit, None)
    }

    /// Everything, including where a reload reads the config from.
    pub fn build(
        config: Config,
        entries: Vec<Arc<ProviderEntry>>,
        gov: Gov,
        audit: Audit,
        config_source: Option<ConfigSource>,
    ) -> Result<Self, ConfigError> {
        let resolved = config.validate()?;
        // Answers that wait for their audit entry (a cluster's
        // ack_after_commit) get it committed alongside their ledger row.
        let acked = gov.cluster().is_some() && config.state.ack_after_commit;
        if let Some(tap) = audit.ledger_tap(acked) {
            gov.inner.ledger().set_tap(tap);
        }
        let cache = Arc::new(ResponseCache::new(config.cache.clone()));
        if let Some(cluster) = gov.cluster() {
            cluster.share_cache(&cache);
        }
        let budget_settled = Arc::new(tokio::sync::Notify::new());
        let wake = Arc::clone(&budget_settled);
        gov.inner.budgets().set_on_settle(Arc::new(move || wake.notify_waiters()));
        let (otlp, otlp_pending) = crate::otlp::exporter(&config.telemetry).unzip();
        let decode_slots = config.audio.max_concurrent_decodes;
        let decodes = crate::slots::Slots::new(decode_slots, decode_slots * 4);
        let live = Live::build(config, resolved, entries, &gov, 0);
        Ok(AppState(Arc::new(Inner {
            live: ArcSwap::from_pointee(live),
            started: Instant::now(),
            cache,
            gov,
            audit: Arc::new(audit),
            models_cache: Mutex::new(None),
            config_source,
            reload_lock: tokio::sync::Mutex::new(()),
            otlp,
            otlp_pending: Mutex::new(otlp_pending),
            tasks: tokio_util::task::TaskTracker::new(),
            calibration: Arc::default(),
            budget_settled,
            decodes,
        })))
    }

    /// Unix milliseconds on the server's one clock (governance's: a test
    /// may give it a manual one). Budget windows, key expiry, rate limits,
    /// ledger rows and audit retention all read it.
    pub fn now_ms(&self) -> i64 {
        self.gov.inner.clock().now_ms()
    }

    /// The current config, router and executor; hold it for a whole request.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Makes `live` current (a reload); requests already running keep theirs.
    pub(crate) fn swap_live(&self, live: Live) {
        self.live.store(Arc::new(live));
        *self.models_cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use hoosh_core::pricing::Price;

    use super::*;

    #[test]
    fn an_invalid_config_is_an_error_not_a_silent_fallback() {
        let mut config = Config::default();
        config.pricing.push(Price { model: "gpt-[".into(), input: 1.0, output: 1.0, ..Default::default() });
        let err = AppState::new(config, Vec::new()).err().expect("an invalid price glob is refused");
        assert!(err.to_string().contains("pricing"), "{err}");
    }
}
