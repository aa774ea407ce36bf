//! Ollama's API (`/api/*`) through the real gateway over HTTP, in front of
//! an OpenAI-shaped mock vendor: chat and generate (whole and NDJSON),
//! embeddings, the model listings, errors in Ollama's shape, a tool round
//! trip — and, as a caller with a valid key trying to spend past its
//! budget with `num_predict: -1`, that the gateway's cap still reaches the
//! vendor and the budget holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hoosh_governance::NewKey;
use serde_json::{Value, json};
use support::*;

async fn post_raw(gw: &Gateway, key: Option<&str>, path: &str, body: &Value) -> (u16, String) {
    let mut req = http().post(gw.url(path)).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn lines(body: &str) -> Vec<Value> {
    body.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn chat_whole_and_streamed_in_ollamas_shape() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (id, key) = key(&gw, NewKey::default());
    let ask = json!({"model": "mock-usage-8-3", "messages": [{"role": "user", "content": "hello"}], "stream": false,
        "options": {"num_predict": 32, "temperature": 0.1}});
    let (status, text) = post_raw(&gw, Some(&key), "/api/chat", &ask).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["message"], json!({"role": "assistant", "content": "echo: hello \u{e9}\u{1f600}"}));
    assert_eq!((v["done"].as_bool(), v["done_reason"].as_str()), (Some(true), Some("stop")));
    assert_eq!((v["prompt_eval_count"].as_u64(), v["eval_count"].as_u64()), (Some(8), Some(3)));
    assert_eq!(mock.last_request().unwrap().body["max_completion_tokens"], 32);
    let row = ledger_rows(&gw).pop().unwrap();
    assert_eq!((row.key_id.as_deref(), row.route.as_str()), (Some(id.as_str()), "ollama.chat"));

    // No `stream` field: Ollama streams by default, as NDJSON.
    let mut streamed = ask.clone();
    streamed.as_object_mut().unwrap().remove("stream");
    let resp = http().post(gw.url("/api/chat")).bearer_auth(&key).json(&streamed).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let ls = lines(&resp.text().await.unwrap());
    let (last, parts) = ls.split_last().unwrap();
    assert!(parts.iter().all(|l| l["done"] == false));
    let text: String = parts.iter().map(|l| l["message"]["content"].as_str().unwrap()).collect();
    assert_eq!(text, "echo: hello \u{e9}\u{1f600}");
    assert_eq!((last["done"].as_bool(), last["eval_count"].as_u64()), (Some(true), Some(3)));
}

#[tokio::test]
async fn generate_and_a_load_request() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey::default());
    let (status, text) = post_raw(
        &gw,
        Some(&key),
        "/api/generate",
        &json!({"model": "m", "prompt": "hi", "system": "Be brief.", "stream": false}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["response"], "echo: hi \u{e9}\u{1f600}");
    assert_eq!(mock.last_request().unwrap().body["messages"][0], json!({"role": "system", "content": "Be brief."}));
    // An empty prompt loads the model: answered here, nothing called or charged.
    let calls = mock.call_count();
    let rows = ledger_rows(&gw).len();
    let (status, text) = post_raw(&gw, Some(&key), "/api/generate", &json!({"model": "m"})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["done_reason"], "load");
    assert_eq!((mock.call_count(), ledger_rows(&gw).len()), (calls, rows));
}

#[tokio::test]
async fn embeddings_new_and_legacy() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey::default());
    let (status, text) =
        post_raw(&gw, Some(&key), "/api/embed", &json!({"model": "text-embedding-3-small", "input": ["a", "b"]})).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    assert!(v["embeddings"][0][0].is_number());
    let (status, text) =
        post_raw(&gw, Some(&key), "/api/embeddings", &json!({"model": "text-embedding-3-small", "prompt": "a"})).await;
    assert_eq!(status, 200, "{text}");
    assert!(serde_json::from_str::<Value>(&text).unwrap()["embedding"][0].is_number());
    assert_eq!(ledger_rows(&gw).last().unwrap().route, "ollama.embed");
}

#[tokio::test]
async fn listings_and_errors_in_ollamas_shape() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed_with(&mock.url(), |c| c.providers[0].models = Some(vec!["gpt-4o".into(), "mock-*".into()])).await;
    let (_, key) = key(&gw, NewKey::default());
    let (status, tags) = call(&gw, "GET", "/api/tags", Some(&key), None).await;
    assert_eq!(status, 200);
    assert!(tags["models"].as_array().unwrap().iter().any(|m| m["name"] == "gpt-4o"), "{tags}");
    let (status, show) = call(&gw, "POST", "/api/show", Some(&key), Some(json!({"model": "gpt-4o"}))).await;
    assert_eq!(status, 200);
    assert!(show["capabilities"].as_array().unwrap().contains(&json!("completion")));
    let (_, version) = call(&gw, "GET", "/api/version", Some(&key), None).await;
    assert!(version["version"].is_string());
    let (_, ps) = call(&gw, "GET", "/api/ps", Some(&key), None).await;
    assert!(ps["models"].is_array());

    let errors = [
        ("no key", None, "/api/chat", json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}), 401),
        ("unknown model", Some(key.as_str()), "/api/show", json!({"model": "nope"}), 404),
        (
            "unknown model",
            Some(key.as_str()),
            "/api/chat",
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}], "stream": false}),
            404,
        ),
        (
            "bad role",
            Some(key.as_str()),
            "/api/chat",
            json!({"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]}),
            400,
        ),
    ];
    for (what, k, path, body, status) in errors {
        let (got, text) = post_raw(&gw, k, path, &body).await;
        assert_eq!(got, status, "{what}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()), "{what}: Ollama's shape: {text}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{what}: only `error`: {text}");
    }
}

#[tokio::test]
async fn a_tool_round_trip() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey::default());
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let ask = json!({"role": "user", "content": "weather?"});
    for stream in [false, true] {
        let (status, text) = post_raw(
            &gw,
            Some(&key),
            "/api/chat",
            &json!({"model": "mock-tool", "messages": [ask], "tools": tools, "stream": stream}),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let last = lines(&text).pop().unwrap();
        let calls = &last["message"]["tool_calls"];
        assert_eq!(calls[0]["function"]["name"], "get_weather", "stream {stream}: {text}");
        assert_eq!(calls[0]["function"]["arguments"], json!({"city": "Paris"}), "arguments as an object");
    }
    let round = json!({"model": "m", "stream": false, "tools": tools, "messages": [ask,
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"}]});
    let (status, text) = post_raw(&gw, Some(&key), "/api/chat", &round).await;
    assert_eq!(status, 200, "{text}");
    let sent = mock.last_request().unwrap().body;
    let id = sent["messages"][1]["tool_calls"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(sent["messages"][2], json!({"role": "tool", "content": "sunny", "tool_call_id": id}));
}

/// `num_predict: -1` asks Ollama for no limit. Through hoosh the gateway's
/// default cap is reserved and sent, so a burst cannot spend past the key's
/// budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unlimited_num_predict_still_gets_the_gateways_cap() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let default = u64::from(gw.state.live().config.governance.default_max_tokens);
    let mut body = json!({"model": "m", "stream": false, "options": {"num_predict": -1},
        "messages": [{"role": "user", "content": "never stop"}]});
    let typed = serde_json::from_value(body.clone()).unwrap();
    let canonical = hoosh_server::ingress::ollama::request::chat(typed).unwrap();
    let prompt = hoosh_server::pipeline::estimate::chat_prompt(&canonical);
    body["model"] = json!(format!("mock-bill-{prompt}"));
    let capacity = 3 * (prompt + default);
    let (id, key) = key(&gw, budget_key(capacity));
    let client = http();
    let burst = (0..12).map(|_| {
        let req = client.post(gw.url("/api/chat")).bearer_auth(&key).json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(burst).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(used(&gw, &id), (capacity, 0));
    assert_eq!(mock.last_request().unwrap().body["max_completion_tokens"], default);
}
