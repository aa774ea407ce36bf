//! The one cheap state handle every handler gets: `Clone` over `Arc<Inner>`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use hoosh_core::config::Config;
use hoosh_core::executor::Executor;
use hoosh_core::pricing::Pricing;
use hoosh_core::router::{ProviderEntry, Router};

use crate::cache::ResponseCache;
use crate::governance::{self, Gov};
use hoosh_governance::MemoryStore;
use hoosh_types::openai::Model;
use tokio::time::Duration;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub router: Router,
    pub executor: Executor,
    pub started: Instant,
    /// Keys, budgets, rate limits, usage ledger.
    pub gov: Gov,
    /// Exact-match answers to deterministic requests.
    pub cache: Arc<ResponseCache>,
    /// `/v1/models` answer, refreshed at most every [`MODELS_TTL`].
    pub models_cache: Mutex<Option<(Instant, Arc<Vec<Model>>)>>,
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
    /// the gateway fails closed: no key authenticates.
    pub fn new(config: Config, entries: Vec<Arc<ProviderEntry>>) -> Self {
        let gov =
            governance::open_with_store(&config.governance, Arc::new(MemoryStore::new()), None).unwrap_or_else(|e| {
                tracing::error!(error = %e, "governance config rejected; every request will be refused");
                Gov::closed()
            });
        Self::with_governance(config, entries, gov)
    }

    /// State with the given governance (the binary opens it from the data
    /// directory).
    pub fn with_governance(config: Config, entries: Vec<Arc<ProviderEntry>>, gov: Gov) -> Self {
        let router = Router::new(
            entries,
            &config.model_aliases,
            config.routing.strategy,
            // Checked by `Config::validate`; an invalid override falls back
            // to the shipped table.
            Pricing::with_overrides(&config.pricing).unwrap_or_else(|_| Pricing::shipped()),
            Duration::from_secs(config.routing.latency_stale_secs),
        );
        let mut executor = Executor::new(config.routing.clone());
        if let Some(gate) = governance::provider_gate(&config.governance, &gov) {
            executor = executor.with_gate(gate);
        }
        let cache = Arc::new(ResponseCache::new(config.cache.clone()));
        AppState(Arc::new(Inner {
            config,
            router,
            executor,
            started: Instant::now(),
            cache,
            gov,
            models_cache: Mutex::new(None),
        }))
    }
}
