//! Running the app: bind, set `TCP_NODELAY` on every accepted connection,
//! start health probes, and shut down gracefully — on the shutdown signal
//! stop accepting, let in-flight requests and streams finish until the grace
//! deadline, stop background tasks, flush the usage ledger, close the audit
//! chain, return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Serves `state` on `listener` until `shutdown` resolves, then drains for at
/// most `server.shutdown_grace_secs`.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live = state.live();
    let grace = Duration::from_secs(live.config.server.shutdown_grace_secs);
    let tracker = state.tasks.clone();
    let cancel = CancellationToken::new();
    crate::probes::spawn(&state, &tracker, cancel.clone());
    state.audit.spawn_retention(
        live.config.audit.retention_days,
        Arc::clone(state.gov.inner.clock()),
        &tracker,
        cancel.clone(),
    );
    crate::reload::spawn_on_sighup(&state, &tracker, cancel.clone());
    if let Some(export) = state.otlp_pending.lock().unwrap_or_else(|p| p.into_inner()).take() {
        export.spawn(&tracker, cancel.clone());
    }
    drop(live);

    let gov = state.gov.inner.clone();
    let audit = state.audit.clone();
    let app = crate::app(state);
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let signalled = CancellationToken::new();
    let trigger = signalled.clone();
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(
        async move {
            shutdown.await;
            trigger.cancel();
        },
    );
    let drained = async {
        signalled.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => r?,
        () = drained => tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; dropping open connections"),
    }
    cancel.cancel();
    tracker.close();
    // Background loops stop on `cancel`; provider calls whose clients left
    // settle as they finish, but get no more than another grace period.
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "provider calls still running after the grace period; stopping without their ledger rows"
        );
    }
    // Every request has settled (or was dropped and settled on drop): write
    // the ledger's last rows before returning.
    // Then close the audit chain: the ledger's last rows are its last
    // `inference` entries, followed by `chain.stop` and a checkpoint.
    let closed = tokio::task::spawn_blocking(move || {
        gov.close();
        audit.close();
    });
    if let Err(e) = closed.await {
        tracing::error!(error = %e, "flushing the usage ledger and audit chain failed");
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
