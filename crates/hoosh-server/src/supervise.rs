//! Background tasks that outlive a panic. [`supervise`] runs a task made by
//! a factory; if it panics, the panic is logged and counted
//! (`hoosh_panics_total{site=<task>}`) and a fresh task is started after
//! [`RESTART_DELAY`] — a bug in one round of health probes must not leave
//! every provider's health frozen for the life of the process. A task that
//! returns (its cancel token fired) is not restarted.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pause before a panicked task is started again.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

pub fn supervise<F, Fut>(tracker: &TaskTracker, cancel: CancellationToken, name: &'static str, mut make: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tracker.spawn(async move {
        loop {
            match tokio::spawn(make()).await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    let panic = e.into_panic();
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(task = name, panic = %what, "background task panicked; restarting it");
                    crate::metrics::record_panic(name);
                }
                Err(_) => return,
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(RESTART_DELAY) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_until_it_finishes() {
        let tracker = TaskTracker::new();
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        supervise(&tracker, CancellationToken::new(), "test", move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(n >= 2, "run {n} fails");
            }
        });
        tracker.close();
        tracker.wait().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "two panics, then a clean run");
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_stops_the_restarts() {
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        cancel.cancel();
        supervise(&tracker, cancel, "test", || async { panic!("always") });
        tracker.close();
        tracker.wait().await;
    }
}
