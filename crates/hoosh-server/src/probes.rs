//! Background health probes: every interval, each provider's `health()` is
//! called (concurrently, with a deadline) and the verdict stored in its
//! stats, where routing reads it. Probe tasks are tracked and stop on
//! shutdown.

use std::sync::Arc;

use hoosh_core::config::HealthConfig;
use hoosh_core::router::ProviderEntry;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn spawn(entries: &[Arc<ProviderEntry>], cfg: &HealthConfig, tracker: &TaskTracker, cancel: CancellationToken) {
    if cfg.interval_secs == 0 {
        return;
    }
    let interval = Duration::from_secs(cfg.interval_secs);
    let deadline = Duration::from_secs(cfg.timeout_secs.max(1));
    for entry in entries {
        let entry = entry.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let verdict = tokio::time::timeout(deadline, entry.provider.health()).await;
                match verdict {
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
        });
    }
}
