//! Running the app: accept connections (at most `server.max_connections`
//! at once), serve each with the edge's timers ([`crate::edge`]), start the
//! background tasks, and shut down gracefully — on the shutdown signal stop
//! accepting, let in-flight requests and streams finish until the grace
//! deadline, stop background tasks, flush the usage ledger, close the audit
//! chain, return.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::edge::connection::{self, Timers};
use crate::state::AppState;

/// Pause after an accept error (out of file descriptors, say) before the
/// next accept: the error is about the process, not one client.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `state` on `listener` until `shutdown` resolves, then drains for at
/// most `server.shutdown_grace_secs`.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live = state.live();
    let grace = Duration::from_secs(live.config.server.shutdown_grace_secs);
    let timers = Timers::from_config(&live.config.server);
    let max_connections = live.config.server.max_connections;
    let tracker = state.tasks.clone();
    let cancel = CancellationToken::new();
    crate::probes::spawn(&state, &tracker, cancel.clone());
    crate::housekeeping::spawn(&state, &tracker, cancel.clone());
    state.audit.spawn_retention(
        live.config.audit.retention_days,
        Arc::clone(state.gov.inner.clock()),
        &tracker,
        cancel.clone(),
    );
    crate::reload::spawn_on_sighup(&state, &tracker, cancel.clone());
    crate::reload::spawn_on_cluster_request(&state, &tracker, cancel.clone());
    crate::cluster::spawn_circuit_sync(&state, &tracker, cancel.clone());
    if let Some(export) = state.otlp_pending.lock().unwrap_or_else(|p| p.into_inner()).take() {
        export.spawn(&tracker, cancel.clone());
    }
    drop(live);

    let gov = state.gov.inner.clone();
    let cluster = state.gov.cluster().cloned();
    let audit = state.audit.clone();
    let app = crate::app(state);
    let signalled = CancellationToken::new();
    let trigger = signalled.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let connections = TaskTracker::new();
    accept(&listener, &app, timers, max_connections, &connections, &signalled).await;
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait()).await.is_err() {
        tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; dropping open connections");
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
    // Their shared counters too (a lease not settled expires anyway).
    if let Some(cluster) = cluster
        && !cluster.redis.drain(grace).await
    {
        tracing::warn!(pending = cluster.redis.pending_settles(), "shared settles not sent; their leases expire");
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

/// Accepts until `stop`: each connection holds one of `max` permits, so
/// beyond it the loop waits (clients queue in the kernel's backlog) rather
/// than failing. Accept errors are logged and never end the loop.
async fn accept(
    listener: &TcpListener,
    app: &axum::Router,
    timers: Timers,
    max: usize,
    connections: &TaskTracker,
    stop: &CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(max));
    let builder = Arc::new(connection::builder(&timers));
    loop {
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                crate::metrics::record_connection_cap();
                tokio::select! {
                    p = Arc::clone(&permits).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    () = stop.cancelled() => return,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    crate::metrics::record_accept_error();
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let conn = connection::serve(tcp, peer, app.clone(), Arc::clone(&builder), timers, stop.clone());
        connections.spawn(async move {
            let _open = crate::metrics::ConnectionOpen::new();
            conn.await;
            drop(permit);
        });
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed by this call,
/// not when the future is first polled: call it before announcing that the
/// gateway listens, so a signal sent right after is a graceful stop, never
/// the default action (kill, without draining or closing the audit chain).
pub fn signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &'static str| {
            signal(kind).inspect_err(|e| tracing::error!(error = %e, "cannot listen for {name}")).ok()
        };
        (install(SignalKind::interrupt(), "SIGINT"), install(SignalKind::terminate(), "SIGTERM"))
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(int) => {},
                () = wait(term) => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received; draining in-flight requests");
    }
}
