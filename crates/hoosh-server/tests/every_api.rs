//! One request pipeline whatever API a request speaks: the same question
//! asked through OpenAI chat, Anthropic Messages, OpenAI Responses and
//! Ollama chat is admitted by the same limits, lands as the same ledger row
//! and the same audit entry — only the route says which API it came
//! through. Written also as a caller with a valid key and a rate limit who
//! hopes each API has its own bucket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hoosh_governance::{Limits, NewKey};
use serde_json::{Value, json};
use support::*;

/// (path, body) asking `text` of `model` through each client API.
fn every_api(model: &str, text: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            "/v1/chat/completions",
            json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": text}]}),
        ),
        ("/v1/messages", json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": text}]})),
        ("/v1/responses", json!({"model": model, "max_output_tokens": 20, "input": text, "store": false})),
        (
            "/api/chat",
            json!({"model": model, "stream": false, "options": {"num_predict": 20},
            "messages": [{"role": "user", "content": text}]}),
        ),
    ]
}

#[tokio::test]
async fn every_api_shares_one_rate_limit_bucket() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey { limits: Limits { rpm: Some(4), ..Default::default() }, ..Default::default() });
    for (path, body) in every_api("m", "hi") {
        let (status, answer) = call(&gw, "POST", path, Some(&key), Some(body)).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    // The fifth request of the minute is refused, whichever API it uses.
    for (path, body) in every_api("m", "one more") {
        let (status, answer) = call(&gw, "POST", path, Some(&key), Some(body)).await;
        assert_eq!(status, 429, "{path}: {answer}");
    }
}

#[tokio::test]
async fn every_api_makes_the_same_ledger_row_and_audit_entry() {
    let mock = hoosh_testkit::openai::start().await;
    let dir = std::env::temp_dir().join(format!("hoosh-every-api-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = config(vec![openai("up", &mock.url())]);
    c.governance.master_key_env = "HOOSH_TEST_MASTER_KEY_UNSET".into();
    c.governance.master_key_file = Some(secret_file(MASTER));
    c.routing.max_retries = 0;
    c.audit.key_file = Some(secret_file(&"cd".repeat(32)));
    let gw = Gateway::start_audited(c, &dir).await;
    let (id, key) = key(&gw, NewKey::default());
    for (path, body) in every_api("mock-usage-21-6", "same question") {
        let (status, answer) = call(&gw, "POST", path, Some(&key), Some(body)).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let rows = ledger_rows(&gw);
    let routes: Vec<&str> = rows.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(routes, ["chat", "messages", "responses", "ollama.chat"]);
    for r in &rows {
        assert_eq!(row_shape(r), row_shape(&rows[0]), "{r:?}");
    }
    assert_eq!(rows[0].key_id.as_deref(), Some(id.as_str()));

    // The audit chain: one `inference` entry per request, equal but for the
    // route and the ids that are each request's own.
    gw.state.gov.inner.ledger().flush();
    let (status, page) = call(&gw, "GET", "/admin/audit?kind=inference&limit=100", Some(MASTER), None).await;
    assert_eq!(status, 200, "{page}");
    let entries: Vec<&Value> = page["data"].as_array().unwrap().iter().filter(|e| e["kind"] == "inference").collect();
    assert_eq!(entries.len(), 4, "{page}");
    let stripped = |e: &Value| {
        let mut d = e["data"].clone();
        let o = d.as_object_mut().unwrap();
        for k in ["route", "ledger_id", "latency_ms", "ttft_ms"] {
            o.remove(k);
        }
        (e["actor"].clone(), d)
    };
    let routes: Vec<&str> = entries.iter().map(|e| e["data"]["route"].as_str().unwrap()).collect();
    assert_eq!(routes, ["chat", "messages", "responses", "ollama.chat"]);
    for e in &entries {
        assert_eq!(stripped(e), stripped(entries[0]), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
