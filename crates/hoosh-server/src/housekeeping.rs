//! Periodic pruning of the maps that grow with traffic, so none grows with
//! the number of distinct callers ever seen: rate-limiter states whose
//! bucket is full again (indistinguishable from none) and expired cache
//! answers; and stored Responses answers past their retention (30 days),
//! deleted off the async runtime. Every [`INTERVAL`], supervised, stops on
//! shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::AppState;

pub const INTERVAL: Duration = Duration::from_secs(30);

pub fn spawn(state: &AppState, tracker: &TaskTracker, cancel: CancellationToken) {
    let state = state.clone();
    let stop = cancel.clone();
    crate::supervise::supervise(tracker, cancel, "housekeeping", move || {
        let (state, stop) = (state.clone(), stop.clone());
        async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(INTERVAL) => {}
                }
                sweep(&state);
                let store = std::sync::Arc::clone(state.gov.inner.store());
                let before = state.now_ms() - hoosh_governance::responses::RESPONSE_RETENTION_MS;
                let pruned = tokio::task::spawn_blocking(move || store.prune_responses(before)).await;
                if let Ok(Err(e)) = pruned {
                    tracing::warn!(error = %e, "could not prune stored responses");
                }
            }
        }
    });
}

/// One round; also what tests call.
pub fn sweep(state: &AppState) {
    state.gov.inner.limits().prune(state.now_ms());
    state.cache.prune_expired();
}
