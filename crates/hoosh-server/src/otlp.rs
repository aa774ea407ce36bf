//! OpenTelemetry trace export over OTLP/HTTP with JSON encoding
//! (`POST <endpoint>/v1/traces`), on when `telemetry.otlp_endpoint` is set.
//!
//! Spans are handed over without blocking ([`SpanSink::record`]: a bounded
//! channel; when it is full the span is dropped and counted in
//! `hoosh_otlp_spans_dropped_total`). One task batches them — up to
//! [`MAX_BATCH`] or `export_interval_ms` — and posts them; a failed post is
//! logged and its spans dropped (telemetry never holds up or fails a
//! request). On shutdown the queue is drained and sent.
//!
//! The wire shape: `resourceSpans[].resource.attributes` (`service.name`),
//! `scopeSpans[].spans[]` with hex `traceId`/`spanId`/`parentSpanId`,
//! `kind` (2 server, 3 client), nanosecond times as decimal strings, typed
//! attribute values, and `status.code` (1 ok, 2 error).

use std::sync::Arc;
use std::time::Duration;

use hoosh_core::config::TelemetryConfig;
use hoosh_core::trace::{AttrValue, SpanKind, SpanRecord, SpanSink};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spans per request to the collector at most.
pub const MAX_BATCH: usize = 512;
/// Spans waiting for export at most; more are dropped.
const QUEUE: usize = 8192;

/// The exporter's sending side: what the request path holds.
pub struct Exporter {
    tx: mpsc::Sender<SpanRecord>,
}

impl SpanSink for Exporter {
    fn record(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            metrics::counter!("hoosh_otlp_spans_dropped_total").increment(1);
        }
    }
}

/// The export loop, started by [`crate::serve::run`].
pub struct Pending {
    rx: mpsc::Receiver<SpanRecord>,
    cfg: TelemetryConfig,
    url: String,
}

/// The exporter for `cfg`, or `None` when export is off.
pub fn exporter(cfg: &TelemetryConfig) -> Option<(Arc<Exporter>, Pending)> {
    let endpoint = cfg.otlp_endpoint.as_ref()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    Some((Arc::new(Exporter { tx }), Pending { rx, cfg: cfg.clone(), url }))
}

impl Pending {
    /// Runs until `cancel`, then sends what is still queued.
    pub fn spawn(mut self, tracker: &TaskTracker, cancel: CancellationToken) {
        tracker.spawn(async move {
            let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "OTLP export disabled: cannot build an HTTP client");
                    return;
                }
            };
            let interval = Duration::from_millis(self.cfg.export_interval_ms.max(10));
            let mut batch = Vec::with_capacity(MAX_BATCH);
            loop {
                let deadline = tokio::time::sleep(interval);
                tokio::pin!(deadline);
                let stop = loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break true,
                        () = &mut deadline => break false,
                        got = self.rx.recv() => match got {
                            Some(span) => {
                                batch.push(span);
                                if batch.len() >= MAX_BATCH {
                                    break false;
                                }
                            }
                            None => break true,
                        },
                    }
                };
                if stop {
                    while let Ok(span) = self.rx.try_recv() {
                        batch.push(span);
                    }
                }
                for chunk in batch.chunks(MAX_BATCH) {
                    self.post(&client, chunk).await;
                }
                batch.clear();
                if stop {
                    return;
                }
            }
        });
    }

    async fn post(&self, client: &reqwest::Client, spans: &[SpanRecord]) {
        if spans.is_empty() {
            return;
        }
        let mut req = client.post(&self.url).json(&encode(&self.cfg.service_name, spans));
        for (k, v) in &self.cfg.otlp_headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                metrics::counter!("hoosh_otlp_spans_exported_total").increment(spans.len() as u64);
            }
            Ok(r) => {
                tracing::warn!(status = r.status().as_u16(), spans = spans.len(), "OTLP collector refused spans");
                metrics::counter!("hoosh_otlp_spans_dropped_total").increment(spans.len() as u64);
            }
            Err(e) => {
                tracing::warn!(error = %e, spans = spans.len(), "OTLP export failed");
                metrics::counter!("hoosh_otlp_spans_dropped_total").increment(spans.len() as u64);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OTLP/JSON `ExportTraceServiceRequest` for `spans`.
pub fn encode(service_name: &str, spans: &[SpanRecord]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let attributes: Vec<Value> = s
                .attributes
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        AttrValue::Str(t) => json!({"stringValue": t}),
                        AttrValue::Int(i) => json!({"intValue": i.to_string()}),
                    };
                    json!({"key": k, "value": value})
                })
                .collect();
            let mut span = json!({
                "traceId": hex(&s.trace_id),
                "spanId": hex(&s.span_id),
                "name": s.name,
                "kind": match s.kind { SpanKind::Server => 2, SpanKind::Client => 3 },
                "startTimeUnixNano": s.start_unix_nanos.to_string(),
                "endTimeUnixNano": s.end_unix_nanos.to_string(),
                "attributes": attributes,
                "status": {"code": if s.error { 2 } else { 1 }},
            });
            if let Some(p) = s.parent_id {
                span["parentSpanId"] = json!(hex(&p));
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service_name}}]},
        "scopeSpans": [{"scope": {"name": "hoosh", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}],
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_otlp_json_shape() {
        let span = SpanRecord {
            trace_id: [0xab; 16],
            span_id: [0x01; 8],
            parent_id: Some([0x02; 8]),
            name: "POST /v1/chat/completions".into(),
            kind: SpanKind::Server,
            start_unix_nanos: 1_700_000_000_000_000_000,
            end_unix_nanos: 1_700_000_000_500_000_000,
            attributes: vec![
                ("http.response.status_code", AttrValue::Int(200)),
                ("gen_ai.system", AttrValue::Str("openai".into())),
            ],
            error: false,
        };
        let v = encode("hoosh-test", &[span]);
        let rs = &v["resourceSpans"][0];
        assert_eq!(rs["resource"]["attributes"][0]["value"]["stringValue"], "hoosh-test");
        let s = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "ab".repeat(16));
        assert_eq!(s["spanId"], "01".repeat(8));
        assert_eq!(s["parentSpanId"], "02".repeat(8));
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["attributes"][0], json!({"key": "http.response.status_code", "value": {"intValue": "200"}}));
        assert_eq!(s["attributes"][1]["value"], json!({"stringValue": "openai"}));
        assert_eq!(s["status"]["code"], 1);
    }
}
