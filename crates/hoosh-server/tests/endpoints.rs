//! Models, embeddings, health/readiness/providers, and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn models_are_merged_filtered_by_globs_and_include_aliases() {
    let a = hoosh_testkit::openai::start().await;
    let b = hoosh_testkit::openai::start().await;
    let mut pa = openai("a", &a.url());
    pa.models = Some(vec!["gpt-4o*".into()]);
    let mut pb = openai("b", &b.url());
    pb.models = Some(vec!["text-embedding-*".into(), "my-fixed-model".into()]);
    let mut c = config(vec![pa, pb]);
    c.model_aliases.insert("fast".into(), vec!["a/gpt-4o-mini".into()]);
    let gw = Gateway::start(c).await;
    let list: Value = http().get(gw.url("/v1/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<(String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["owned_by"].as_str().unwrap().to_owned()))
        .collect();
    assert!(ids.contains(&("gpt-4o".into(), "a".into())), "{ids:?}");
    assert!(ids.contains(&("gpt-4o-mini".into(), "a".into())));
    assert!(ids.contains(&("text-embedding-3-small".into(), "b".into())));
    assert!(ids.contains(&("my-fixed-model".into(), "b".into())), "literal patterns are listed");
    assert!(ids.contains(&("fast".into(), "hoosh".into())), "aliases are listed");
    assert!(!ids.iter().any(|(id, o)| id == "gpt-4o" && o == "b"), "b's gpt-4o is outside b's globs");
    assert_eq!(list["data"][0]["object"], "model");

    let m: Value = http().get(gw.url("/v1/models/gpt-4o")).send().await.unwrap().json().await.unwrap();
    assert_eq!((m["id"].as_str(), m["owned_by"].as_str()), (Some("gpt-4o"), Some("a")));
    let m: Value = http().get(gw.url("/v1/models/gpt-4o-2024-08-06")).send().await.unwrap().json().await.unwrap();
    assert_eq!(m["owned_by"], "a", "routable by glob though not listed");
    let resp = http().get(gw.url("/v1/models/claude-3")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn embeddings_float_and_base64_agree() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let body = json!({"model": "text-embedding-3-small", "input": ["one", "two", "three"]});
    let f: Value = http().post(gw.url("/v1/embeddings")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(f["object"], "list");
    assert_eq!(f["data"].as_array().unwrap().len(), 3);
    assert_eq!(f["data"][2]["index"], 2);
    let floats: Vec<f32> = serde_json::from_value(f["data"][1]["embedding"].clone()).unwrap();
    assert_eq!(floats, hoosh_testkit::openai::fake_embedding("two", 8));

    let mut b64 = body.clone();
    b64["encoding_format"] = json!("base64");
    let r: Value = http().post(gw.url("/v1/embeddings")).json(&b64).send().await.unwrap().json().await.unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(r["data"][1]["embedding"].as_str().unwrap()).unwrap();
    let decoded: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(decoded, floats);

    let single: Value = http()
        .post(gw.url("/v1/embeddings"))
        .json(&json!({"model": "text-embedding-3-small", "input": "solo", "dimensions": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(single["data"][0]["embedding"].as_array().unwrap().len(), 4);

    let resp = http().post(gw.url("/v1/embeddings")).json(&json!({"model": "x", "input": []})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http().post(gw.url("/v1/embeddings")).json(&json!({"model": "x", "input": [""]})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let many: Vec<String> = (0..2049).map(|i| i.to_string()).collect();
    let resp = http().post(gw.url("/v1/embeddings")).json(&json!({"model": "x", "input": many})).send().await.unwrap();
    assert_eq!(resp.status(), 400, "one over the 2048-input limit");
}

#[tokio::test]
async fn health_ready_and_providers() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let h: Value = http().get(gw.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(http().get(gw.url("/ready")).send().await.unwrap().status(), 200);
    http().post(gw.url("/v1/chat/completions")).json(&chat_body("gpt-4o", "x")).send().await.unwrap();
    let p: Value = http().get(gw.url("/v1/providers")).send().await.unwrap().json().await.unwrap();
    let up = &p["data"][0];
    assert_eq!(up["name"], "up");
    assert_eq!(up["circuit"], "closed");
    assert_eq!(up["requests"], 1);
    assert!(up["latency_ewma_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(p["strategy"], "priority");

    let empty = Gateway::start(config(vec![])).await;
    assert_eq!(http().get(empty.url("/ready")).send().await.unwrap().status(), 503);
    assert_eq!(http().get(empty.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn health_probes_mark_a_dead_provider_and_route_around_it() {
    let good = hoosh_testkit::openai::start().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut c = config(vec![openai("dead", &format!("http://127.0.0.1:{port}")), {
        let mut p = openai("good", &good.url());
        p.priority = 20;
        p
    }]);
    c.health.interval_secs = 1;
    let gw = Gateway::start(c).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p: Value = http().get(gw.url("/v1/providers")).send().await.unwrap().json().await.unwrap();
    assert_eq!(p["data"][0]["healthy"], false, "{p}");
    let resp = http().post(gw.url("/v1/chat/completions")).json(&chat_body("gpt-4o", "x")).send().await.unwrap();
    assert_eq!(resp.headers()["x-hoosh-provider"], "good");
    assert_eq!(resp.headers()["x-hoosh-attempts"], "1", "the dead one is not even tried");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let mut body = chat_body("mock-stall-800", "bye");
    body["stream"] = json!(true);
    let resp = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let reading = tokio::spawn(async move { resp.text().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = gw.url("/health");
    let stopped = tokio::spawn(gw.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(http().get(&url).send().await.is_err(), "no new connections after the signal");
    let text = reading.await.unwrap();
    assert_eq!(sse_data(&text).last().unwrap(), "[DONE]", "the in-flight stream completed");
    stopped.await.unwrap().unwrap();
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let mock = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("up", &mock.url())]);
    c.server.sse_keepalive_secs = 1;
    let gw = Gateway::start(c).await;
    let mut body = chat_body("mock-stall-2500", "x");
    body["stream"] = json!(true);
    let text = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(": keep-alive"), "{text}");
    assert_eq!(sse_data(&text).last().unwrap(), "[DONE]");
}
