//! `GET /metrics`: Prometheus text with the request, token, rejection,
//! provider and budget series, scraped without a key. One test in its own
//! binary: the recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hoosh_governance::{BudgetSpec, NewKey};
use serde_json::json;
use support::*;

#[tokio::test]
async fn metrics_cover_requests_tokens_rejections_and_providers() {
    let mock = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("up", &mock.url())]);
    c.governance.master_key_env = "HOOSH_TEST_MASTER_KEY_UNSET".into();
    c.governance.master_key_file = Some(secret_file("hk-metrics-test-master-key-0123456789abcdef"));
    let gw = Gateway::start(c).await;
    let spec = NewKey {
        name: "m".into(),
        budget: Some(BudgetSpec { tokens: Some(200), ..Default::default() }),
        ..Default::default()
    };
    let (_, key) = gw.state.gov.inner.keys().create(spec, gw.state.now_ms()).unwrap();
    let client = http();
    let chat =
        |body: serde_json::Value| client.post(gw.url("/v1/chat/completions")).bearer_auth(&key).json(&body).send();

    let mut small = chat_body("mock-usage-7-3", "hi");
    small["max_tokens"] = json!(5);
    assert_eq!(chat(small.clone()).await.unwrap().status(), 200);
    let mut stream = small.clone();
    stream["stream"] = json!(true);
    let r = chat(stream).await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    let mut big = small.clone();
    big["max_tokens"] = json!(500);
    assert_eq!(chat(big).await.unwrap().status(), 429, "over the 200-token budget");
    let anon = client.post(gw.url("/v1/chat/completions")).json(&small).send().await.unwrap();
    assert_eq!(anon.status(), 401);

    let resp = client.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "public by default");
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    let has = |needle: &str| {
        assert!(text.lines().any(|l| l.contains(needle)), "missing `{needle}` in:\n{text}");
    };
    has(r#"hoosh_requests_total{route="chat",model="mock-usage-7-3",provider="up",status="200"} 2"#);
    has(r#"hoosh_tokens_total{type="prompt",model="mock-usage-7-3",provider="up"} 14"#);
    has(r#"hoosh_tokens_total{type="completion",model="mock-usage-7-3",provider="up"} 6"#);
    has(r#"hoosh_unpriced_requests_total{model="mock-usage-7-3",provider="up"} 2"#);
    has("hoosh_time_to_first_token_seconds_bucket");
    has("hoosh_request_duration_seconds_bucket");
    has(r#"hoosh_rejections_total{reason="budget"} 1"#);
    has(r#"hoosh_auth_failures_total{code="missing_api_key"} 1"#);
    has(r#"hoosh_http_requests_total{path="/v1/chat/completions",method="POST",status="401"} 1"#);
    has(r#"hoosh_provider_up{provider="up"} 1"#);
    has(r#"hoosh_provider_circuit_state{provider="up"} 0"#);
    has(r#"hoosh_provider_calls_total{provider="up"} 2"#);
    has("hoosh_budget_remaining_tokens{pool=\"key:");
    has("hoosh_ledger_queue_depth");
    has("hoosh_audit_queue_depth");
    // Sampled (no temperature 0): the cache stood aside for both answered requests.
    has(r#"hoosh_cache_requests_total{result="bypass"} 2"#);

    // A client that gives up mid-request leaves the in-flight gauge as it
    // found it: only the scrape itself is in flight afterwards.
    let mut slow = small.clone();
    slow["model"] = json!("mock-slow-3000");
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(200), chat(slow)).await;
    assert!(gave_up.is_err(), "the slow answer came early");
    let started = std::time::Instant::now();
    loop {
        let text = client.get(gw.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if text.lines().any(|l| l == "hoosh_http_in_flight 1") {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "in-flight gauge left up:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
