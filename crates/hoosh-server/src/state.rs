//! The one cheap state handle every handler gets: `Clone` over `Arc<Inner>`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use hoosh_core::config::Config;
use hoosh_core::executor::Executor;
use hoosh_core::pricing::Pricing;
use hoosh_core::router::{ProviderEntry, Router};
use hoosh_types::openai::Model;
use tokio::time::Duration;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub router: Router,
    pub executor: Executor,
    pub started: Instant,
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
    pub fn new(config: Config, entries: Vec<Arc<ProviderEntry>>) -> Self {
        let router = Router::new(
            entries,
            &config.model_aliases,
            config.routing.strategy,
            Pricing::shipped(),
            Duration::from_secs(config.routing.latency_stale_secs),
        );
        let executor = Executor::new(config.routing.clone());
        AppState(Arc::new(Inner { config, router, executor, started: Instant::now(), models_cache: Mutex::new(None) }))
    }
}
