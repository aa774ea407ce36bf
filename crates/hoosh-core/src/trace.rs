//! W3C Trace Context (`traceparent`) for requests that cross the gateway.
//!
//! The server takes the caller's `traceparent` (or starts a new trace) and
//! runs the request inside [`scope`]; every upstream call made in that scope
//! sends a `traceparent` with the same trace id and a fresh span id, so an
//! upstream's traces join the caller's. Held in a task-local: the executor
//! calls providers on the request's own task.
//!
//! Format (version 00): `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`,
//! lowercase; all-zero ids are invalid.
//!
//! Spans: when the scope carries a [`SpanSink`] (OTLP export is on), the
//! server records its own span per request and every upstream call made in
//! the scope emits a client span ([`emit`]) whose id is the one sent
//! upstream, so the trace tree stays connected: caller → gateway → attempt →
//! upstream. Without a sink nothing is recorded.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static CURRENT: Scope;
}

#[derive(Clone)]
struct Scope {
    ctx: TraceContext,
    sink: Option<Arc<dyn SpanSink>>,
}

/// Where finished spans go (the OTLP exporter). Must not block.
pub trait SpanSink: Send + Sync {
    fn record(&self, span: SpanRecord);
}

/// OpenTelemetry span kinds used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Client,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

/// A finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, AttrValue)>,
    pub error: bool,
}

/// Wall-clock unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A new random span id.
pub fn new_span_id() -> [u8; 8] {
    random_nonzero()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = fastrand::u8(..);
        }
        if out.iter().any(|&b| b != 0) {
            return out;
        }
    }
}

fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl TraceContext {
    /// A new trace (sampled).
    pub fn root() -> Self {
        TraceContext { trace_id: random_nonzero(), parent_id: random_nonzero(), flags: 1 }
    }

    /// Parses a `traceparent` header; `None` when it is not valid version 00.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let ctx = TraceContext { trace_id: hex(trace)?, parent_id: hex(parent)?, flags: hex::<1>(flags)?[0] };
        let zero = ctx.trace_id.iter().all(|&b| b == 0) || ctx.parent_id.iter().all(|&b| b == 0);
        (!zero).then_some(ctx)
    }

    /// The same trace with a new span id: what one upstream call sends.
    pub fn child(&self) -> Self {
        TraceContext { parent_id: random_nonzero(), ..*self }
    }

    pub fn trace_id_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        push_hex(&mut s, &self.trace_id);
        s
    }

    /// The `traceparent` header value.
    pub fn header_value(&self) -> String {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.parent_id);
        s.push('-');
        push_hex(&mut s, &[self.flags]);
        s
    }
}

/// Appends `bytes` as lowercase hex (one per request and upstream call:
/// without `fmt` machinery).
fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Runs `fut` with `ctx` as the current trace.
pub async fn scope<F: Future>(ctx: TraceContext, fut: F) -> F::Output {
    CURRENT.scope(Scope { ctx, sink: None }, fut).await
}

/// [`scope`], with spans of upstream calls going to `sink`.
pub async fn scope_with_sink<F: Future>(ctx: TraceContext, sink: Option<Arc<dyn SpanSink>>, fut: F) -> F::Output {
    CURRENT.scope(Scope { ctx, sink }, fut).await
}

/// `fut` inside the current trace scope (context and sink): for work a
/// request hands to another task, whose upstream calls still belong to it.
pub fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let scope = CURRENT.try_with(Scope::clone).ok();
    async move {
        match scope {
            Some(s) => CURRENT.scope(s, fut).await,
            None => fut.await,
        }
    }
}

/// The trace of the request being served, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| c.ctx).ok()
}

/// Whether spans are being recorded in this scope.
pub fn recording() -> bool {
    CURRENT.try_with(|c| c.sink.is_some()).unwrap_or(false)
}

/// Hands a finished span to the scope's sink (nothing without one).
pub fn emit(span: SpanRecord) {
    let _ = CURRENT.try_with(|c| {
        if let Some(sink) = &c.sink {
            sink.record(span);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_version_00() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::parse(h).unwrap();
        assert_eq!(ctx.header_value(), h);
        let child = ctx.child();
        assert_eq!(child.trace_id, ctx.trace_id);
        assert_ne!(child.parent_id, ctx.parent_id);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        assert!(TraceContext::parse(&TraceContext::root().header_value()).is_some());
    }

    #[tokio::test]
    async fn the_scope_is_visible_inside_only() {
        assert_eq!(current(), None);
        let ctx = TraceContext::root();
        assert_eq!(scope(ctx, async { current() }).await, Some(ctx));
    }

    struct Collect(std::sync::Mutex<Vec<SpanRecord>>);
    impl SpanSink for Collect {
        fn record(&self, span: SpanRecord) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(span);
        }
    }

    #[tokio::test]
    async fn spans_reach_the_sink_of_their_scope_only() {
        let sink = Arc::new(Collect(std::sync::Mutex::new(Vec::new())));
        let span = |name: &str| SpanRecord {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_id: None,
            name: name.into(),
            kind: SpanKind::Client,
            start_unix_nanos: 1,
            end_unix_nanos: 2,
            attributes: Vec::new(),
            error: false,
        };
        emit(span("outside"));
        scope(TraceContext::root(), async { emit(span("no sink")) }).await;
        let as_dyn: Arc<dyn SpanSink> = sink.clone();
        let recorded = scope_with_sink(TraceContext::root(), Some(as_dyn), async {
            emit(span("kept"));
            recording()
        })
        .await;
        assert!(recorded && !recording());
        let names: Vec<String> = sink.0.lock().unwrap().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["kept"]);
    }
}
