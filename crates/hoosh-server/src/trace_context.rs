//! Middleware: the request's W3C trace context. The caller's `traceparent`
//! is kept (a new trace starts when it is absent or invalid), its trace id
//! is recorded on the request's log span, and the rest of the request runs
//! inside [`hoosh_core::trace::scope`], so every upstream call carries it on.
//!
//! With OTLP export on ([`crate::otlp`]), the gateway's own server span gets
//! a new span id under the caller's; upstream calls become client spans
//! under it; the server span ends when the response body does (a stream's
//! last byte, or the client hanging up), carrying the route, status,
//! provider, model, attempts and cost.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use hoosh_core::trace::{self, AttrValue, SpanKind, SpanRecord, SpanSink, TraceContext};

use crate::state::AppState;

/// The trace id on the request's log span, when that span is logged at all
/// (formatting it for a disabled span was ~0.7 % of a proxied request).
fn tag_span(ctx: &TraceContext) {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("trace_id", ctx.trace_id_hex());
    }
}

pub async fn propagate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let caller = req.headers().get("traceparent").and_then(|v| v.to_str().ok()).and_then(TraceContext::parse);
    let Some(sink) = st.otlp.clone() else {
        let ctx = caller.unwrap_or_else(TraceContext::root);
        tag_span(&ctx);
        return trace::scope(ctx, next.run(req)).await;
    };
    let base = caller.unwrap_or_else(TraceContext::root);
    let ctx = TraceContext { parent_id: trace::new_span_id(), ..base };
    tag_span(&ctx);
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let mut attributes =
        vec![("http.request.method", AttrValue::Str(method.clone())), ("http.route", AttrValue::Str(route.clone()))];
    if let Some(id) = header(req.headers(), "x-request-id") {
        attributes.push(("hoosh.request_id", AttrValue::Str(id)));
    }
    let start = trace::now_unix_nanos();
    let sink_dyn: Arc<dyn SpanSink> = sink;
    let response = trace::scope_with_sink(ctx, Some(Arc::clone(&sink_dyn)), next.run(req)).await;
    let status = response.status().as_u16();
    attributes.push(("http.response.status_code", AttrValue::Int(i64::from(status))));
    if let Some(served) = response.extensions().get::<crate::pipeline::ServedBy>() {
        if let Some(p) = &served.provider {
            attributes.push(("hoosh.provider", AttrValue::Str(p.clone())));
        }
        if let Some(m) = &served.model {
            attributes.push(("gen_ai.response.model", AttrValue::Str(m.clone())));
        }
        if served.provider.is_some() {
            attributes.push(("hoosh.attempts", AttrValue::Int(i64::from(served.attempts))));
        }
        if let Some(c) = served.cost {
            attributes.push(("hoosh.cost_usd", AttrValue::Str(c.header_value())));
        }
        if let Some(v) = served.cache {
            attributes.push(("hoosh.cache", AttrValue::Str(v.as_str().to_owned())));
        }
    }
    let span = SpanRecord {
        trace_id: ctx.trace_id,
        span_id: ctx.parent_id,
        parent_id: caller.map(|c| c.parent_id),
        name: format!("{method} {route}"),
        kind: SpanKind::Server,
        start_unix_nanos: start,
        end_unix_nanos: 0,
        attributes,
        error: status >= 500,
    };
    let guard = EndOnDrop { span: Some(span), sink: sink_dyn };
    let streaming = header(response.headers(), "content-type").is_some_and(|t| t.starts_with("text/event-stream"));
    if !streaming {
        // Dropped here: the span ends with the response head.
        return response;
    }
    let (parts, body) = response.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _held = &guard;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Ends and records the server span when dropped.
struct EndOnDrop {
    span: Option<SpanRecord>,
    sink: Arc<dyn SpanSink>,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if let Some(mut span) = self.span.take() {
            span.end_unix_nanos = trace::now_unix_nanos();
            self.sink.record(span);
        }
    }
}
