//! Serving one accepted connection, with its timers:
//! - header read: hyper's own timer (`server.header_read_timeout_secs`),
//!   which on HTTP/1 also runs while a kept-alive connection waits;
//! - request body: an absolute deadline from the head ([`super::deadline`]);
//! - write: a stalled write closes the connection ([`super::stall`]);
//! - idle: no request in flight for `server.idle_timeout_secs` → a graceful
//!   close (HTTP/2 included, where no header timer runs between streams);
//!   before its first request, a connection gets the header timeout (one
//!   that connects and sends nothing never reaches hyper's timer).
//!
//! A request is "in flight" from its head until its response body is done
//! or dropped, so a long answer or a stream never counts as idle.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::deadline::DeadlineBody;
use super::stall::WriteStall;

/// The `[server]` timers, read once at start (they need a restart to change).
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    pub header_read: Duration,
    pub body_read: Duration,
    pub idle: Duration,
    pub write: Duration,
}

impl Timers {
    pub fn from_config(s: &hoosh_core::config::ServerConfig) -> Self {
        Timers {
            header_read: Duration::from_secs(s.header_read_timeout_secs),
            body_read: Duration::from_secs(s.body_read_timeout_secs),
            idle: Duration::from_secs(s.idle_timeout_secs),
            write: Duration::from_secs(s.write_timeout_secs),
        }
    }
}

/// The hyper connection builder: HTTP/1 and HTTP/2 (by preface), hyper's
/// timer on so its header read timeout runs.
pub fn builder(timers: &Timers) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1().timer(TokioTimer::new()).header_read_timeout(timers.header_read);
    b.http2().timer(TokioTimer::new());
    b
}

/// Serves `tcp` until it closes, the idle timer fires, or `shutdown` is
/// cancelled (then: a graceful close — in-flight requests finish).
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    timers: Timers,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let deadline = Instant::now() + timers.body_read;
            let mut req = req.map(|b| Body::new(DeadlineBody::new(b, deadline)));
            req.extensions_mut().insert(ConnectInfo(peer));
            let guard = Activity::begin(&activity);
            let mut app = app.clone();
            async move {
                let resp = app.call(req).await?;
                Ok::<_, Infallible>(resp.map(|body| InFlight { body, _guard: guard }))
            }
        })
    };
    let io = TokioIo::new(WriteStall::new(tcp, timers.write));
    let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
    // Until its first request, a connection gets the header timeout: a
    // client that connects and says nothing never reaches hyper's own timer
    // (the protocol is not known before its first bytes).
    let idle = tokio::time::sleep(timers.header_read.min(timers.idle));
    let mut idle = pin!(idle);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut idle, if !closing => match activity.idle_until(&timers) {
                None => {
                    tracing::debug!(%peer, "closing an idle connection");
                    crate::metrics::record_connection_closed("idle");
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                Some(next) => idle.as_mut().reset(next),
            },
        }
    }
}

/// What the idle timer reads: requests in flight on this connection, and
/// when the last one ended.
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `born` at which the connection last went quiet;
    /// [`NEVER`] before its first request.
    quiet_since_ms: AtomicU64,
}

const NEVER: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Activity { born: Instant::now(), in_flight: AtomicUsize::new(0), quiet_since_ms: AtomicU64::new(NEVER) }
    }

    fn begin(this: &Arc<Self>) -> Guard {
        this.in_flight.fetch_add(1, Ordering::AcqRel);
        let _ = this.quiet_since_ms.compare_exchange(NEVER, 0, Ordering::AcqRel, Ordering::Acquire);
        Guard(Arc::clone(this))
    }

    /// `None`: idle too long already (no first request within the header
    /// timeout, or none in flight for the idle timeout). Otherwise when to
    /// look again.
    fn idle_until(&self, timers: &Timers) -> Option<Instant> {
        let now = Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Some(now + timers.idle);
        }
        let due = match self.quiet_since_ms.load(Ordering::Acquire) {
            NEVER => self.born + timers.header_read.min(timers.idle),
            ms => self.born + Duration::from_millis(ms) + timers.idle,
        };
        (due > now).then_some(due)
    }
}

/// One request in flight; dropped with its response body.
struct Guard(Arc<Activity>);

impl Drop for Guard {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.born.elapsed().as_millis()).unwrap_or(NEVER - 1);
        self.0.quiet_since_ms.store(ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`Guard`] until done.
struct InFlight {
    body: Body,
    _guard: Guard,
}

impl http_body::Body for InFlight {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
