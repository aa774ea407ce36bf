//! Prometheus metrics: what is recorded where, and the `/metrics` scrape.
//!
//! Recorded as requests happen (the `metrics` facade; one process-wide
//! recorder, rendered by `metrics-exporter-prometheus`):
//! - `hoosh_http_requests_total{path,method,status}`, `hoosh_http_request_duration_seconds{path}`
//!   (to the response head; a stream's whole life is in the next group) and
//!   `hoosh_http_in_flight` — by [`track`], the outermost governed layer;
//! - the connection loop: `hoosh_http_connections` (open now),
//!   `hoosh_http_connection_cap_reached_total`, `hoosh_http_accept_errors_total`,
//!   `hoosh_http_connections_closed_total{reason}`;
//! - per settled request (`pipeline/meter.rs`): `hoosh_requests_total{route,model,provider,status}`,
//!   `hoosh_request_duration_seconds{route,model,provider}`,
//!   `hoosh_time_to_first_token_seconds{model,provider}` (streams),
//!   `hoosh_tokens_total{type=prompt|completion,model,provider}`,
//!   `hoosh_cost_nano_usd_total{model,provider}` (exact integer nano-dollars),
//!   `hoosh_unpriced_requests_total{model,provider}`,
//!   `hoosh_upstream_errors_total{provider,kind}` (the error a request ended with);
//! - refusals: `hoosh_rejections_total{reason}` (rate_limit, concurrency, budget,
//!   model_not_allowed) and `hoosh_auth_failures_total{code}`.
//!
//! Read at scrape time from live state: provider health, circuit state,
//! in-flight calls, latency EWMA, calls and failures (all attempts, retries
//! included); budget headroom per pool; the ledger's and the audit chain's queue depths.
//!
//! Model names come from clients, so the `model` label takes at most
//! [`MAX_MODEL_LABELS`] distinct values; the rest are counted as `other`.

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hoosh_core::breaker::CircuitState;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Distinct `model` label values kept before folding into `other`.
pub const MAX_MODEL_LABELS: usize = 200;

/// Latency buckets (seconds): 1 ms to 5 min.
const BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// The process-wide recorder, installed on first use. `None` if another
/// recorder was installed first (an embedding application's own).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let mut builder =
                PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS);
            if let Some(instance) = INSTANCE.get() {
                builder = builder.map(|b| b.add_global_label("instance", instance));
            }
            match builder.and_then(|b| b.install_recorder()) {
                Ok(h) => {
                    start_upkeep(h.clone());
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                    None
                }
            }
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder keeps every histogram sample until something drains it: a
/// scrape does, and so does this thread, so memory stays flat on a server
/// nobody scrapes (without it, ~40 bytes per request, forever).
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("hoosh-metrics".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started; histograms drain only when scraped");
    }
}

/// The `instance` label on every series (`hoosh serve --instance-id`).
static INSTANCE: OnceLock<String> = OnceLock::new();

/// Names this process in every series; call before [`init`] (later calls
/// and calls after the recorder exists change nothing).
pub fn set_instance(id: &str) {
    let _ = INSTANCE.set(id.to_owned());
}

/// Installs the recorder (idempotent); call before serving.
pub fn init() {
    let _ = handle();
}

/// `model` label value, with bounded cardinality. Every request asks, so the
/// common case (a model seen before) takes only a shared lock.
pub fn model_label(model: &str) -> String {
    static SEEN: OnceLock<RwLock<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if seen.read().unwrap_or_else(|p| p.into_inner()).contains(model) {
        return model.to_owned();
    }
    let mut seen = seen.write().unwrap_or_else(|p| p.into_inner());
    if seen.contains(model) {
        return model.to_owned();
    }
    if seen.len() < MAX_MODEL_LABELS {
        seen.insert(model.to_owned());
        return model.to_owned();
    }
    "other".to_owned()
}

/// Middleware: in-flight gauge, request count and duration per route.
/// Labels are bounded: `path` is the matched route (or `unmatched`), the
/// method one of the known ones (or `other`), the status a number.
pub async fn track(req: Request, next: Next) -> Response {
    let path = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = method_label(req.method());
    let started = Instant::now();
    // Decremented on drop: a client that leaves mid-request still leaves the gauge.
    let in_flight = InFlight::new("hoosh_http_in_flight");
    let resp = next.run(req).await;
    drop(in_flight);
    let status = resp.status().as_u16().to_string();
    counter!("hoosh_http_requests_total", "path" => path.clone(), "method" => method, "status" => status).increment(1);
    histogram!("hoosh_http_request_duration_seconds", "path" => path).record(started.elapsed().as_secs_f64());
    resp
}

/// The `method` label: the methods the API uses, everything else `other`
/// (a method is any token a client cares to send).
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A gauge incremented now and decremented on drop, however the holder ends.
struct InFlight(&'static str);

impl InFlight {
    fn new(name: &'static str) -> Self {
        gauge!(name).increment(1.0);
        InFlight(name)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

/// One open client connection (`hoosh_http_connections`), for its life.
pub struct ConnectionOpen {
    _gauge: InFlight,
}

impl ConnectionOpen {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ConnectionOpen { _gauge: InFlight::new("hoosh_http_connections") }
    }
}

/// The accept loop reached `server.max_connections` and waits for one to close.
pub fn record_connection_cap() {
    counter!("hoosh_http_connection_cap_reached_total").increment(1);
}

/// `accept()` failed (out of file descriptors, say); the loop goes on.
pub fn record_accept_error() {
    counter!("hoosh_http_accept_errors_total").increment(1);
}

/// A panic was caught (`site`: handler, or a background task's name).
pub fn record_panic(site: &'static str) {
    counter!("hoosh_panics_total", "site" => site).increment(1);
}

/// The edge closed a connection (`reason`: idle).
pub fn record_connection_closed(reason: &'static str) {
    counter!("hoosh_http_connections_closed_total", "reason" => reason).increment(1);
}

/// What a settled request reports.
pub struct Settled<'a> {
    pub route: &'a str,
    pub model: &'a str,
    pub provider: &'a str,
    pub status: u16,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `None`: the model has no price.
    pub cost_nanos: Option<u64>,
    pub latency: Duration,
    pub ttft: Option<Duration>,
}

pub fn record_settled(s: &Settled<'_>) {
    let model = model_label(s.model);
    let provider = s.provider.to_owned();
    let route = s.route.to_owned();
    let labels = [("model", model.clone()), ("provider", provider.clone())];
    counter!("hoosh_requests_total", "route" => route.clone(), "model" => model.clone(), "provider" => provider.clone(),
        "status" => s.status.to_string())
    .increment(1);
    histogram!("hoosh_request_duration_seconds", "route" => route, "model" => model.clone(), "provider" => provider.clone())
        .record(s.latency.as_secs_f64());
    if let Some(t) = s.ttft {
        histogram!("hoosh_time_to_first_token_seconds", &labels).record(t.as_secs_f64());
    }
    if s.prompt_tokens > 0 {
        counter!("hoosh_tokens_total", "type" => "prompt", "model" => model.clone(), "provider" => provider.clone())
            .increment(s.prompt_tokens);
    }
    if s.completion_tokens > 0 {
        counter!("hoosh_tokens_total", "type" => "completion", "model" => model, "provider" => provider)
            .increment(s.completion_tokens);
    }
    match s.cost_nanos {
        Some(n) if n > 0 => counter!("hoosh_cost_nano_usd_total", &labels).increment(n),
        Some(_) => {}
        None => counter!("hoosh_unpriced_requests_total", &labels).increment(1),
    }
}

/// A request charged more tokens than it reserved: its provider counted
/// the prompt higher, ignored the cap, or reasoned past it. Budgets charge
/// it all the same; this shows how often and how much.
pub fn record_overrun(provider: &str, tokens: u64) {
    counter!("hoosh_budget_overruns_total", "provider" => provider.to_owned()).increment(1);
    counter!("hoosh_budget_overrun_tokens_total", "provider" => provider.to_owned()).increment(tokens);
}

/// A request that ended on an upstream error of `kind`.
pub fn record_upstream_error(provider: &str, kind: &str) {
    counter!("hoosh_upstream_errors_total", "provider" => provider.to_owned(), "kind" => kind.to_owned()).increment(1);
}

/// A request refused before it ran (`reason`: rate_limit, concurrency, budget, model_not_allowed).
pub fn record_rejection(reason: &'static str) {
    counter!("hoosh_rejections_total", "reason" => reason).increment(1);
}

/// The response cache's verdict on a chat request (`hit`, `miss`, `bypass`).
pub fn record_cache(verdict: &'static str) {
    counter!("hoosh_cache_requests_total", "result" => verdict).increment(1);
}

pub fn record_auth_failure(code: &'static str) {
    counter!("hoosh_auth_failures_total", "code" => code).increment(1);
}

/// `GET /metrics`: scrape-time gauges, then the Prometheus text.
pub async fn render(State(st): State<AppState>) -> Response {
    let live = st.live();
    for e in live.router.entries() {
        let s = e.stats.snapshot();
        let p = e.name().to_owned();
        gauge!("hoosh_provider_up", "provider" => p.clone()).set(if s.healthy { 1.0 } else { 0.0 });
        let circuit = match s.circuit {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        };
        gauge!("hoosh_provider_circuit_state", "provider" => p.clone()).set(circuit);
        gauge!("hoosh_provider_in_flight", "provider" => p.clone()).set(f64::from(s.in_flight));
        if let Some(ms) = s.ewma_ttfb_ms {
            gauge!("hoosh_provider_latency_ewma_seconds", "provider" => p.clone()).set(ms / 1000.0);
        }
        counter!("hoosh_provider_calls_total", "provider" => p.clone()).absolute(s.requests);
        counter!("hoosh_provider_failures_total", "provider" => p).absolute(s.failures);
    }
    let gov = &st.gov.inner;
    let now = st.now_ms();
    for pool in gov.budgets().pools() {
        let Some(b) = gov.budgets().snapshot(&pool, now) else { continue };
        if let Some(t) = b.remaining_tokens {
            gauge!("hoosh_budget_remaining_tokens", "pool" => pool.to_string()).set(t as f64);
        }
        if let Some(usd) = b.remaining_usd {
            gauge!("hoosh_budget_remaining_usd", "pool" => pool.to_string()).set(usd);
        }
    }
    gauge!("hoosh_ledger_queue_depth").set(gov.ledger().queue_depth() as f64);
    gauge!("hoosh_audit_queue_depth").set(st.audit.queue_depth() as f64);
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test in this binary that touches the label set.
    #[test]
    fn model_labels_are_bounded() {
        for i in 0..MAX_MODEL_LABELS + 50 {
            let label = model_label(&format!("spam-{i}"));
            let want = if i < MAX_MODEL_LABELS { format!("spam-{i}") } else { "other".into() };
            assert_eq!(label, want);
        }
        assert_eq!(model_label("spam-3"), "spam-3", "seen labels stay");
    }
}
