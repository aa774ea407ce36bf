//! The Anthropic Messages API (`/v1/messages`) through the real gateway
//! over HTTP, in front of an OpenAI-shaped mock vendor: the answer, stream
//! and error shapes Anthropic clients parse, a tool round trip, and the
//! promise that keys, budgets and the ledger hold exactly as they do for
//! `/v1/chat/completions` — written, where it matters, as a caller with a
//! valid key trying to get more than its budget through the other API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hoosh_governance::NewKey;
use hoosh_types::anthropic::MessagesRequest;
use serde_json::{Value, json};
use support::*;

/// POST `path` with the key in `x-api-key`, as the Anthropic SDKs send it.
async fn anthropic(gw: &Gateway, path: &str, key: Option<&str>, body: &Value) -> (u16, String) {
    let mut req = http()
        .post(gw.url(path))
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
        .json(body);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn message(gw: &Gateway, key: &str, body: &Value) -> (u16, Value) {
    let (status, text) = anthropic(gw, "/v1/messages?beta=true", Some(key), body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 64, "system": [{"type": "text", "text": "Be brief.",
        "cache_control": {"type": "ephemeral"}}], "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test]
async fn a_message_is_answered_in_anthropic_shape_and_ledgered_under_the_key() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (id, key) = key(&gw, NewKey { name: "claude-code".into(), ..Default::default() });
    let (status, body) = message(&gw, &key, &hello("mock-usage-11-7")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"), "{body}");
    assert_eq!(body["content"], json!([{"type": "text", "text": "echo: hello \u{e9}\u{1f600}"}]));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["input_tokens"], 11);
    assert_eq!(body["usage"]["output_tokens"], 7);
    // What reached the vendor: the system prompt first, the cap as the one output cap.
    let sent = mock.last_request().unwrap().body;
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(sent["max_completion_tokens"], 64);
    let row = ledger_rows(&gw).pop().unwrap();
    assert_eq!((row.key_id.as_deref(), row.route.as_str(), row.status), (Some(id.as_str()), "messages", 200));
    assert_eq!((row.prompt_tokens, row.completion_tokens), (11, 7));
}

#[tokio::test]
async fn a_streamed_message_is_anthropics_event_sequence() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey::default());
    let mut body = hello("mock-usage-11-7");
    body["stream"] = json!(true);
    let (status, text) = anthropic(&gw, "/v1/messages", Some(&key), &body).await;
    assert_eq!(status, 200, "{text}");
    let evs = named_events(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "ping", "content_block_start"], "{text}");
    assert_eq!(names[names.len() - 3..], ["content_block_stop", "message_delta", "message_stop"], "{text}");
    for (name, data) in &evs {
        assert_eq!(data["type"], name.as_str(), "the data names its event");
    }
    let streamed: String = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "echo: hello \u{e9}\u{1f600}");
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(
        (delta["usage"]["input_tokens"].as_u64(), delta["usage"]["output_tokens"].as_u64()),
        (Some(11), Some(7))
    );
}

#[tokio::test]
async fn a_tool_round_trip_maps_both_ways() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey::default());
    let tools = json!([{"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let ask = json!({"role": "user", "content": "weather in Paris?"});
    let (status, body) =
        message(&gw, &key, &json!({"model": "mock-tool", "max_tokens": 100, "tools": tools, "messages": [ask]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "tool_use");
    let call = &body["content"][0];
    assert_eq!((call["type"].as_str(), call["name"].as_str()), (Some("tool_use"), Some("get_weather")));
    assert_eq!(call["input"], json!({"city": "Paris"}));

    // A server tool only Anthropic runs is left out for this vendor, and said so.
    let mut with_search = json!({"model": "m", "max_tokens": 10, "messages": [ask.clone()], "tools": tools});
    with_search["tools"].as_array_mut().unwrap().push(json!({"type": "web_search_20250305", "name": "web_search"}));
    let resp = http().post(gw.url("/v1/messages")).header("x-api-key", &key).json(&with_search).send().await.unwrap();
    assert_eq!(resp.headers()["x-hoosh-ingress-dropped"], "tools[web_search_20250305]");
    assert_eq!(mock.last_request().unwrap().body["tools"].as_array().unwrap().len(), 1);

    // Streamed: the arguments arrive as input_json_delta fragments.
    let streamed =
        json!({"model": "mock-tool", "max_tokens": 100, "stream": true, "tools": tools, "messages": [ask.clone()]});
    let (_, text) = anthropic(&gw, "/v1/messages", Some(&key), &streamed).await;
    let evs = named_events(&text);
    let start = evs.iter().find(|(n, _)| n == "content_block_start").unwrap();
    assert_eq!(start.1["content_block"]["type"], "tool_use");
    let json_text: String =
        evs.iter().filter_map(|(_, d)| d["delta"]["partial_json"].as_str().map(str::to_owned)).collect();
    assert_eq!(serde_json::from_str::<Value>(&json_text).unwrap(), json!({"city": "Paris"}));
    assert_eq!(evs.iter().find(|(n, _)| n == "message_delta").unwrap().1["delta"]["stop_reason"], "tool_use");

    // The result goes back: the vendor sees an assistant tool call and a tool message.
    let round = json!({"model": "m", "max_tokens": 100, "tools": tools, "messages": [
        ask,
        {"role": "assistant", "content": [{"type": "tool_use", "id": call["id"], "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "18°C, sunny"}]}
    ]});
    let (status, body) = message(&gw, &key, &round).await;
    assert_eq!(status, 200, "{body}");
    let sent = mock.last_request().unwrap().body;
    let roles: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool"]);
    assert_eq!(sent["messages"][1]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(sent["messages"][2], json!({"role": "tool", "content": "18°C, sunny", "tool_call_id": call["id"]}));
}

/// Every refusal on `/v1/messages` — from auth, the body decoder, the
/// router, admission and the vendor — comes in Anthropic's error shape
/// with the status Anthropic would use.
#[tokio::test]
async fn errors_come_in_anthropics_shape() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, narrow) = key(&gw, NewKey { models: vec!["gpt-4o".into()], ..Default::default() });
    let (_, broke) = key(&gw, budget_key(10));
    let (_, key) = key(&gw, NewKey::default());
    let cases: Vec<(&str, Option<&str>, Value, u16, &str)> = vec![
        ("no key", None, hello("m"), 401, "authentication_error"),
        ("a wrong key", Some("hk-not-a-key"), hello("m"), 401, "authentication_error"),
        (
            "no max_tokens",
            Some(&key),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            400,
            "invalid_request_error",
        ),
        (
            "an unknown block",
            Some(&key),
            json!({"model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "search_result", "x": 1}]}]}),
            400,
            "invalid_request_error",
        ),
        ("a model the key may not use", Some(&narrow), hello("claude-x"), 403, "permission_error"),
        ("over budget", Some(&broke), hello("m"), 429, "rate_limit_error"),
        ("a vendor that is down", Some(&key), hello("mock-error-503"), 502, "api_error"),
    ];
    for (what, k, body, status, kind) in cases {
        let (got, text) = anthropic(&gw, "/v1/messages", k, &body).await;
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert_eq!(got, status, "{what}: {text}");
        assert_eq!(v["type"], "error", "{what}: {text}");
        assert_eq!(v["error"]["type"], kind, "{what}: {text}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty(), "{what}");
    }
    // The OpenAI paths keep OpenAI's shape.
    let (status, v) = call(&gw, "POST", "/v1/chat/completions", None, Some(chat_body("m", "x"))).await;
    assert_eq!(status, 401);
    assert!(v["error"]["code"].is_string() && v.get("type").is_none(), "{v}");
}

/// A caller with a valid key and a token budget tries to spend more through
/// the Messages API than through chat completions would allow: smuggling
/// OpenAI's `n` and a larger `max_completion_tokens` into the body, in a
/// concurrent burst. Neither reaches the vendor; spend lands exactly on the
/// budget, as it does for `/v1/chat/completions`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_holds_through_the_messages_api_whatever_the_body_smuggles() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let mut body = json!({"model": "m", "max_tokens": 50, "n": 8, "max_completion_tokens": 100000,
        "messages": [{"role": "user", "content": "spend it all"}]});
    let typed: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
    let canonical = hoosh_server::ingress::anthropic::decode(typed).unwrap().req;
    let prompt = hoosh_server::pipeline::estimate::chat_prompt(&canonical);
    body["model"] = json!(format!("mock-bill-{prompt}"));
    let per_request = prompt + 50;
    let capacity = 7 * per_request;
    let (id, key) = key(&gw, budget_key(capacity));
    let client = http();
    let burst = (0..40).map(|_| {
        let req = client.post(gw.url("/v1/messages")).header("x-api-key", &key).json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(burst).await;
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert_eq!(ok, 7, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert_eq!(used(&gw, &id), (capacity, 0), "billed one cap each, never over");
    assert_eq!(ledger_tokens(&gw, &id), capacity);
    for r in mock.requests() {
        assert_eq!(r.body["max_completion_tokens"], 50, "the client's max_tokens is the one cap sent");
        assert!(r.body.get("n").is_none() && r.body.get("max_tokens").is_none(), "{}", r.body);
    }
}

/// The same question through both APIs is one kind of ledger row: same
/// key, provider, model, tokens and cost; only the route differs.
#[tokio::test]
async fn the_ledger_row_is_the_same_whichever_api_asked() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (id, key) = key(&gw, NewKey::default());
    let (status, _) = message(
        &gw,
        &key,
        &json!({"model": "mock-usage-30-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": "same"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let mut chat = chat_body("mock-usage-30-5", "same");
    chat["max_tokens"] = json!(64);
    let (status, _) = call(&gw, "POST", "/v1/chat/completions", Some(&key), Some(chat)).await;
    assert_eq!(status, 200);
    let rows = ledger_rows(&gw);
    let [a, b] = rows.as_slice() else { panic!("{rows:?}") };
    assert_eq!((a.route.as_str(), b.route.as_str()), ("messages", "chat"));
    assert_eq!(row_shape(a), row_shape(b));
    assert_eq!(a.key_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn count_tokens_costs_nothing_and_follows_the_allow_list() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, narrow) = key(&gw, NewKey { models: vec!["gpt-4o-mini".into()], ..Default::default() });
    let (_, key) = key(&gw, NewKey::default());
    let body = json!({"model": "gpt-4o", "system": "Be brief.", "messages": [{"role": "user", "content": "count me"}]});
    let (status, text) = anthropic(&gw, "/v1/messages/count_tokens", Some(&key), &body).await;
    assert_eq!(status, 200, "{text}");
    let n = serde_json::from_str::<Value>(&text).unwrap()["input_tokens"].as_u64().unwrap();
    assert!((5..50).contains(&n), "{n}");
    assert_eq!(mock.call_count(), 0, "no vendor was asked");
    assert!(ledger_rows(&gw).is_empty(), "nothing was charged");
    let (status, text) = anthropic(&gw, "/v1/messages/count_tokens", Some(&narrow), &body).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("permission_error"), "{text}");
}

#[tokio::test]
async fn the_warm_up_head_is_answered_without_a_key() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let resp = http().head(gw.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// A gateway whose only provider is the Anthropic mock.
async fn in_front_of_anthropic() -> (hoosh_testkit::MockServer, Gateway) {
    let mock = hoosh_testkit::anthropic::start().await;
    let gw = governed_with(&mock.url(), |c| {
        let mut p = hoosh_core::config::ProviderConfig::new("claude", "anthropic");
        p.base_url = Some(mock.url());
        p.models = Some(vec!["claude-*".into()]);
        p.api_key_file = Some(secret_file("sk-ant-test"));
        c.providers = vec![p];
    })
    .await;
    (mock, gw)
}

/// What Claude Code sends that has no canonical form: betas, cache_control,
/// a signed thinking block in the history, context management.
fn claude_code_body(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5", "max_tokens": 2000, "stream": stream,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "earlier", "signature": "sig_from_before"},
                {"type": "text", "text": "hello"}]},
            {"role": "user", "content": "again"}
        ]
    })
}

/// In front of Anthropic, the client's body goes out as it came (only the
/// served model, `stream` and the reserved cap are the gateway's), its
/// betas with it, and the answer comes back untouched — signature and
/// all — while the ledger meters the cache tokens.
#[tokio::test]
async fn in_front_of_anthropic_the_body_and_answer_pass_through_untranslated() {
    let (mock, gw) = in_front_of_anthropic().await;
    let (id, key) = key(&gw, NewKey::default());
    let sent = claude_code_body(false);
    let (status, text) = anthropic(&gw, "/v1/messages?beta=true", Some(&key), &sent).await;
    assert_eq!(status, 200, "{text}");
    let got = mock.last_request().unwrap();
    assert_eq!(got.body, sent, "the body went out untranslated");
    let beta = got.headers.iter().find(|(k, _)| k == "anthropic-beta").map(|(_, v)| v.as_str());
    assert_eq!(beta, Some("claude-code-20250219,interleaved-thinking-2025-05-14"));
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["id"], "msg_mock", "the vendor's own answer");
    assert_eq!(answer["content"][0]["signature"], hoosh_testkit::anthropic::THINKING_SIGNATURE);
    let usage = &answer["usage"];
    assert_eq!(usage["cache_read_input_tokens"], hoosh_testkit::anthropic::CACHE_READ);
    let row = ledger_rows(&gw).pop().unwrap();
    assert_eq!(row.key_id.as_deref(), Some(id.as_str()));
    assert_eq!(row.cached_tokens, hoosh_testkit::anthropic::CACHE_READ);
    let input = usage["input_tokens"].as_u64().unwrap();
    assert_eq!(
        row.prompt_tokens,
        input + hoosh_testkit::anthropic::CACHE_READ + hoosh_testkit::anthropic::CACHE_WRITE,
        "every prompt token is metered, cached ones included"
    );
}

#[tokio::test]
async fn in_front_of_anthropic_a_stream_is_the_vendors_own_events() {
    let (mock, gw) = in_front_of_anthropic().await;
    let (id, key) = key(&gw, NewKey::default());
    let (status, text) = anthropic(&gw, "/v1/messages", Some(&key), &claude_code_body(true)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(mock.last_request().unwrap().body["stream"], true);
    let evs = named_events(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..2], ["message_start", "content_block_start"], "{text}");
    assert_eq!(names.last(), Some(&"message_stop"));
    let signature = evs.iter().find(|(_, d)| d["delta"]["type"] == "signature_delta");
    assert_eq!(signature.unwrap().1["delta"]["signature"], hoosh_testkit::anthropic::THINKING_SIGNATURE);
    assert_eq!(evs[0].1["message"]["id"], "msg_mock");
    let row = ledger_rows(&gw).pop().unwrap();
    assert_eq!((row.key_id.as_deref(), row.status), (Some(id.as_str()), 200));
    assert_eq!(row.cached_tokens, hoosh_testkit::anthropic::CACHE_READ);
    assert!(row.completion_tokens > 0, "{row:?}");
}

/// A caller tries to slip past its reservation on the native path: the body
/// asks for far more output than the key's budget holds. The cap the
/// gateway reserved is what Anthropic is sent, and the answer is refused
/// before any call when even that does not fit.
#[tokio::test]
async fn in_front_of_anthropic_the_reserved_cap_is_the_one_sent() {
    let (mock, gw) = in_front_of_anthropic().await;
    let (_, key) = key(&gw, budget_key(1_000));
    let mut body = claude_code_body(false);
    body["max_tokens"] = json!(64_000);
    let (status, text) = anthropic(&gw, "/v1/messages", Some(&key), &body).await;
    assert_eq!(status, 429, "{text}");
    assert_eq!(mock.call_count(), 0);
    body["max_tokens"] = json!(300);
    let (status, text) = anthropic(&gw, "/v1/messages", Some(&key), &body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(mock.last_request().unwrap().body["max_tokens"], 300);
}
