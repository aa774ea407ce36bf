//! Middleware: the request's W3C trace context. The caller's `traceparent`
//! is kept (a new trace starts when it is absent or invalid), its trace id
//! is recorded on the request's log span, and the rest of the request runs
//! inside [`hoosh_core::trace::scope`], so every upstream call carries it on.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use hoosh_core::trace::{self, TraceContext};

pub async fn propagate(req: Request, next: Next) -> Response {
    let ctx = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .unwrap_or_else(TraceContext::root);
    tracing::Span::current().record("trace_id", ctx.trace_id_hex());
    trace::scope(ctx, next.run(req)).await
}
