//! Bad client input and upstream failures: each gets the right status and an
//! OpenAI-shaped body, and the server stays up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::*;

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    let e = &body["error"];
    assert!(e["message"].is_string() && e["type"].is_string(), "not OpenAI-shaped: {body}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "param and code present (maybe null): {body}");
    (status, body["error"].clone())
}

#[tokio::test]
async fn bad_client_input_matrix() {
    let mock = hoosh_testkit::openai::start().await;
    let mut p = openai("up", &mock.url());
    p.models = Some(vec!["gpt-*".into()]);
    let mut c = config(vec![p]);
    c.server.body_limit_bytes = 64 * 1024;
    let gw = Gateway::start(c).await;
    let url = gw.url("/v1/chat/completions");
    let raw = |body: Vec<u8>| http().post(&url).header("content-type", "application/json").body(body).send();

    let (s, e) = error_of(raw(b"{\"model\": ".to_vec()).await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(e["message"].as_str().unwrap().contains("not valid JSON"));

    let (s, e) = error_of(raw(br#"{"model":"gpt-4o","messages":"hi"}"#.to_vec()).await.unwrap()).await;
    assert_eq!((s, e["param"].as_str()), (400, Some("messages")));

    let (s, e) =
        error_of(raw(br#"{"model":"gpt-4o","messages":[],"temperature":"warm"}"#.to_vec()).await.unwrap()).await;
    assert_eq!((s, e["param"].as_str()), (400, Some("temperature")));

    let (s, e) = error_of(raw(br#"{"model":"gpt-4o","messages":[]}"#.to_vec()).await.unwrap()).await;
    assert_eq!((s, e["param"].as_str()), (400, Some("messages")));

    let (s, e) = error_of(raw(br#"{"messages":[{"role":"user","content":"x"}]}"#.to_vec()).await.unwrap()).await;
    assert_eq!((s, e["param"].as_str()), (400, Some("model")));

    let (s, e) =
        error_of(raw(br#"{"model":"gpt-4o","messages":[{"role":"wizard","content":"x"}]}"#.to_vec()).await.unwrap())
            .await;
    assert_eq!((s, e["param"].as_str()), (400, Some("messages[0].role")));

    let (s, e) =
        error_of(raw(br#"{"model":"gpt-4o","messages":[{"role":"tool","content":"x"}]}"#.to_vec()).await.unwrap())
            .await;
    assert_eq!((s, e["param"].as_str()), (400, Some("messages[0].tool_call_id")));

    let (s, e) = error_of(
        raw(br#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"temperature":2.5}"#.to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["param"].as_str()), (400, Some("temperature")));

    let (s, e) = error_of(
        raw(br#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#.to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["param"].as_str()), (400, Some("stop")));

    // Invalid UTF-8 inside a JSON string.
    let mut bad = br#"{"model":"gpt-4o","messages":[{"role":"user","content":""#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(br#""}]}"#);
    let (s, _) = error_of(raw(bad).await.unwrap()).await;
    assert_eq!(s, 400);

    // Exactly at the limit is parsed (and fails as JSON); one byte over is 413.
    let (s, _) = error_of(raw(vec![b' '; 64 * 1024 - 1].into_iter().chain([b'x']).collect()).await.unwrap()).await;
    assert_eq!(s, 400);
    let (s, e) = error_of(raw(vec![b' '; 64 * 1024 + 1]).await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (413, Some("payload_too_large")));

    let (s, e) = error_of(http().post(&url).json(&chat_body("no-such-model", "x")).send().await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("model_not_found")));

    let (s, e) = error_of(http().get(&url).send().await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (405, Some("method_not_allowed")));

    let (s, e) = error_of(http().post(gw.url("/v1/nope")).send().await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("unknown_url")));

    // Still up, and still serving.
    assert_eq!(http().get(gw.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(http().post(&url).json(&chat_body("gpt-4o", "x")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn upstream_statuses_map_to_the_right_client_answer() {
    let mock = hoosh_testkit::openai::start().await;
    let mut p = openai("up", &mock.url());
    p.api_key_file = Some(secret_file("sk-very-secret-key-123"));
    let gw = Gateway::start(config(vec![p])).await;
    let url = gw.url("/v1/chat/completions");
    let send = |model: &str| http().post(&url).json(&chat_body(model, "x")).send();

    let resp = send("mock-error-401").await.unwrap();
    let text = resp.text().await.unwrap();
    assert!(!text.contains("sk-very-secret"), "the key never comes back: {text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["error"]["code"], "upstream_auth_failed");
    assert!(e["error"]["message"].as_str().unwrap().contains("credentials"));
    assert_eq!(send("mock-error-401").await.unwrap().status(), 502);

    let resp = send("mock-error-400").await.unwrap();
    assert_eq!(resp.status(), 400);
    let (_, e) = error_of(resp).await;
    assert!(e["message"].as_str().unwrap().contains("mock says: bad request"), "provider message forwarded: {e}");

    let resp = send("mock-error-429-retry-2").await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(error_of(resp).await.1["code"], "rate_limit_exceeded");

    let resp = send("mock-error-429-retry-3600").await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "60", "capped for clients");

    let resp = send("mock-error-500").await.unwrap();
    assert_eq!(resp.status(), 502);
    let (_, e) = error_of(resp).await;
    assert!(!e["message"].as_str().unwrap().contains("The server had an error"), "5xx bodies are generic");

    let resp = send("mock-error-503-retry-1").await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");

    let resp = send("mock-badjson").await.unwrap();
    assert_eq!(error_of(resp).await.1["code"], "upstream_invalid_response");

    let resp = send("mock-error-404").await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn upstream_timeout_is_504_and_refused_connection_502() {
    let mock = hoosh_testkit::openai::start().await;
    let mut slow = openai("slow", &mock.url());
    slow.total_timeout_secs = 1;
    slow.first_byte_timeout_secs = 1;
    let mut c = config(vec![slow]);
    c.routing.max_retries = 0;
    let gw = Gateway::start(c).await;
    let resp =
        http().post(gw.url("/v1/chat/completions")).json(&chat_body("mock-slow-3000", "x")).send().await.unwrap();
    assert_eq!(resp.status(), 504);

    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let gw = Gateway::start(config(vec![openai("dead", &format!("http://127.0.0.1:{port}"))])).await;
    let resp = http().post(gw.url("/v1/chat/completions")).json(&chat_body("gpt-4o", "x")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(error_of(resp).await.1["code"], "upstream_unreachable");
}

#[tokio::test]
async fn failover_to_a_second_provider_via_alias() {
    let a = hoosh_testkit::openai::start().await;
    let b = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("a", &a.url()), openai("b", &b.url())]);
    c.model_aliases.insert("smart".into(), vec!["a/mock-error-503".into(), "b/gpt-4o".into()]);
    let gw = Gateway::start(c).await;
    let resp = http().post(gw.url("/v1/chat/completions")).json(&chat_body("smart", "x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-hoosh-provider"], "b");
    assert_eq!(resp.headers()["x-hoosh-attempts"], "3");
    assert_eq!(a.call_count(), 2);

    let mut body = chat_body("smart", "x");
    body["stream"] = json!(true);
    let resp = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-hoosh-provider"], "b", "streams fail over before the first byte");
    assert_eq!(sse_data(&resp.text().await.unwrap()).last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn mid_stream_death_ends_with_an_error_event_not_a_stop() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let mut body = chat_body("mock-cut", "x");
    body["stream"] = json!(true);
    let resp = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let data = sse_data(&resp.text().await.unwrap());
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "server_error", "{data:?}");
    assert!(!data.iter().any(|d| d == "[DONE]"));
    assert!(!data.iter().any(|d| d.contains("\"finish_reason\":\"stop\"")));
}

#[tokio::test]
async fn mid_stream_stall_past_idle_timeout_ends_with_an_error_event() {
    let mock = hoosh_testkit::openai::start().await;
    let mut p = openai("up", &mock.url());
    p.idle_timeout_secs = 1;
    let gw = Gateway::start(config(vec![p])).await;
    let mut body = chat_body("mock-stall-3000", "x");
    body["stream"] = json!(true);
    let text = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap().text().await.unwrap();
    let data = sse_data(&text);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{data:?}");
}
