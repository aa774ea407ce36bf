//! OTLP trace export through the real gateway: a real HTTP collector on
//! port 0 receives OTLP/JSON; the gateway's server span joins the caller's
//! trace, each upstream call is a client span under it whose id is the one
//! the upstream received in `traceparent`, and a stream's span ends with
//! the stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use serde_json::Value;
use support::*;

/// A collector that keeps every span it is sent.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let spans: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |axum::Json(body): axum::Json<Value>| {
            let keep = keep.clone();
            async move {
                for rs in body["resourceSpans"].as_array().unwrap() {
                    assert_eq!(rs["resource"]["attributes"][0]["value"]["stringValue"], "hoosh-test");
                    for ss in rs["scopeSpans"].as_array().unwrap() {
                        keep.lock().unwrap().extend(ss["spans"].as_array().unwrap().iter().cloned());
                    }
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].as_array().unwrap().iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

async fn spans_of(spans: &Arc<Mutex<Vec<Value>>>, trace: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let found: Vec<Value> = spans.lock().unwrap().iter().filter(|s| s["traceId"] == trace).cloned().collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} spans of trace {trace} arrived: {:?}", spans.lock().unwrap());
}

#[tokio::test]
async fn server_and_upstream_spans_join_the_callers_trace() {
    let (collector_url, spans) = collector().await;
    let mock = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("up", &mock.url())]);
    c.telemetry.otlp_endpoint = Some(collector_url);
    c.telemetry.service_name = "hoosh-test".into();
    c.telemetry.export_interval_ms = 20;
    let gw = Gateway::start(c).await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let r = http()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .json(&chat_body("gpt-4o-mini", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let found = spans_of(&spans, trace, 2).await;
    let server = found.iter().find(|s| s["kind"] == 2).expect("a server span");
    let client = found.iter().find(|s| s["kind"] == 3).expect("a client span");
    assert_eq!(server["parentSpanId"], caller_span);
    assert_eq!(server["name"], "POST /v1/chat/completions");
    assert_eq!(attr(server, "http.response.status_code").unwrap()["intValue"], "200");
    assert_eq!(attr(server, "hoosh.provider").unwrap()["stringValue"], "up");
    assert_eq!(server["status"]["code"], 1);
    assert_eq!(client["parentSpanId"], server["spanId"], "the upstream call is under the gateway's span");
    assert_eq!(attr(client, "http.response.status_code").unwrap()["intValue"], "200");
    let upstream = mock.last_request().unwrap();
    let sent = upstream.headers.iter().find(|(k, _)| k == "traceparent").map(|(_, v)| v.clone()).unwrap();
    assert_eq!(sent, format!("00-{trace}-{}-01", client["spanId"].as_str().unwrap()));
    let start: u64 = server["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = server["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(end >= start && start > 1_600_000_000_000_000_000);

    // A stream's server span lasts until its last chunk (the mock stalls 300 ms).
    let trace2 = "0af7651916cd43dd8448eb211c80319c";
    let body =
        serde_json::json!({"model": "mock-stall-300", "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let r = http()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{trace2}-b7ad6b7169203331-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("[DONE]"));
    let found = spans_of(&spans, trace2, 2).await;
    let server = found.iter().find(|s| s["kind"] == 2).unwrap();
    let client = found.iter().find(|s| s["kind"] == 3).unwrap();
    let server_end: u64 = server["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let client_end: u64 = client["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(server_end >= client_end + 250_000_000, "the server span covers the stalled stream");

    // A request with no traceparent starts a trace of its own, with a root server span.
    let before = spans.lock().unwrap().len();
    assert_eq!(http().get(gw.url("/v1/models")).send().await.unwrap().status(), 200);
    for _ in 0..100 {
        if spans.lock().unwrap().iter().skip(before).any(|s| s["name"] == "GET /v1/models") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = spans.lock().unwrap();
    let models = all.iter().skip(before).find(|s| s["name"] == "GET /v1/models").expect("a span for /v1/models");
    assert!(models.get("parentSpanId").is_none(), "{models}");
}
