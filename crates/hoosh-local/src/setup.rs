//! Config + model store → the local provider and its routing entry, and the
//! default models that are missing (with the command that fetches them).

use std::sync::Arc;
use std::time::Duration;

use hoosh_core::Placement;
use hoosh_core::config::{BreakerConfig, LocalConfig};
use hoosh_core::router::{ProviderEntry, Timeouts};
use hoosh_core::stats::ProviderStats;
use hoosh_models::{DEFAULT_IDS, ModelStore};

use crate::provider::LocalProvider;

/// How long a queued local request may wait for its first token.
const LOCAL_FIRST_BYTE: Duration = Duration::from_secs(300);

/// What [`build`] found.
pub struct Setup {
    pub entry: Option<Arc<ProviderEntry>>,
    pub provider: Option<Arc<LocalProvider>>,
    /// Default chat/embedding models not installed.
    pub missing_defaults: Vec<&'static str>,
    pub store_root: std::path::PathBuf,
}

/// Unloads idle models every few seconds. It holds only a weak reference, so
/// it ends by itself once the provider (and the gateway) is gone.
fn spawn_idle_sweeper(provider: std::sync::Weak<LocalProvider>, keep_alive: Duration) {
    let every = (keep_alive / 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(p) = provider.upgrade() else { return };
            p.unload_idle(keep_alive).await;
        }
    });
}

/// Opens the store, picks the models to serve, and loads them.
pub async fn build(cfg: &LocalConfig, breaker: &BreakerConfig) -> Result<Setup, String> {
    let store = match &cfg.models_dir {
        Some(dir) => ModelStore::new(dir.clone()),
        None => ModelStore::open_default().map_err(|e| e.to_string())?,
    };
    let installed = store.list().map_err(|e| e.to_string())?;
    let missing_defaults = DEFAULT_IDS.iter().copied().filter(|id| !installed.iter().any(|m| m.id == *id)).collect();
    for wanted in &cfg.models {
        if !installed.iter().any(|m| &m.id == wanted) {
            tracing::warn!(model = %wanted, "configured local model is not installed: run `hoosh pull {wanted}`");
        }
    }
    let chosen: Vec<_> =
        installed.into_iter().filter(|m| cfg.models.is_empty() || cfg.models.contains(&m.id)).collect();
    let store_root = store.root().to_path_buf();
    if chosen.is_empty() {
        return Ok(Setup { entry: None, provider: None, missing_defaults, store_root });
    }
    let provider = Arc::new(LocalProvider::new(store, cfg.clone(), chosen));
    if cfg.preload {
        for (id, err) in provider.preload().await {
            tracing::error!(model = %id, error = %err, "local model failed to load; requests for it will fail");
        }
    }
    if cfg.keep_alive_secs > 0 {
        spawn_idle_sweeper(Arc::downgrade(&provider), Duration::from_secs(cfg.keep_alive_secs));
    }
    let patterns = provider
        .models()
        .map(|(id, _)| glob::Pattern::new(&glob::Pattern::escape(id)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let entry = ProviderEntry {
        provider: provider.clone(),
        patterns,
        priority: cfg.priority,
        weight: 1,
        placement: Placement::InProcess,
        timeouts: Timeouts {
            first_byte: LOCAL_FIRST_BYTE,
            idle: Duration::from_secs(60),
            total: Duration::from_secs(1800),
            stream: Duration::from_secs(3600),
        },
        stats: Arc::new(ProviderStats::new(breaker.clone())),
    };
    Ok(Setup { entry: Some(Arc::new(entry)), provider: Some(provider), missing_defaults, store_root })
}
