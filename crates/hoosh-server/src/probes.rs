//! Background health probes: every `health.interval_secs`, each provider of
//! the live router has its `health()` called (all at once, each with a
//! deadline) and the verdict stored in its stats, where routing reads it.
//! The provider list and the interval are read each round, so a reload's
//! providers are probed from the next round on. The task is supervised
//! (restarted if it panics) and stops on shutdown.

use std::sync::Arc;

use futures_util::future::join_all;
use hoosh_core::router::ProviderEntry;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::AppState;

/// How often a gateway with probing off checks whether a reload turned it on.
const OFF_RECHECK: Duration = Duration::from_secs(5);

pub fn spawn(state: &AppState, tracker: &TaskTracker, cancel: CancellationToken) {
    let state = state.clone();
    let stop = cancel.clone();
    crate::supervise::supervise(tracker, stop, "probes", move || probe_loop(state.clone(), cancel.clone()));
}

async fn probe_loop(state: AppState, cancel: CancellationToken) {
    loop {
        let live = state.live();
        let cfg = live.config.health.clone();
        let wait = if cfg.interval_secs == 0 { OFF_RECHECK } else { Duration::from_secs(cfg.interval_secs) };
        if cfg.interval_secs > 0 {
            let deadline = Duration::from_secs(cfg.timeout_secs.max(1));
            let entries: Vec<Arc<ProviderEntry>> = live.router.entries().to_vec();
            drop(live);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = join_all(entries.iter().map(|e| probe(e, deadline))) => {}
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn probe(entry: &ProviderEntry, deadline: Duration) {
    match tokio::time::timeout(deadline, entry.provider.health()).await {
        Ok(Ok(())) => entry.stats.set_healthy(true, None),
        Ok(Err(e)) => {
            tracing::warn!(provider = entry.name(), error = %e, "health probe failed");
            entry.stats.set_healthy(false, Some(format!("probe: {e}")));
        }
        Err(_) => {
            tracing::warn!(provider = entry.name(), "health probe timed out");
            entry.stats.set_healthy(false, Some(format!("probe: no answer within {deadline:?}")));
        }
    }
}
