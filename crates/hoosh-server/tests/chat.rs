//! `/v1/chat/completions` through the real gateway over HTTP, in front of a
//! mock OpenAI server: shapes, streaming, tools, headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn non_streaming_chat_has_openai_shape_and_served_by_headers() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let resp = http().post(gw.url("/v1/chat/completions")).json(&chat_body("gpt-4o", "hello")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert!(h.get("x-request-id").is_some());
    assert_eq!(h["x-hoosh-provider"], "up");
    assert_eq!(h["x-hoosh-model"], "gpt-4o");
    assert_eq!(h["x-hoosh-attempts"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: hello \u{e9}\u{1f600}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // What reached the upstream: the same request, not a stream.
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["messages"][0]["content"], "hello");
    assert!(sent.body.get("stream").is_none());
}

#[tokio::test]
async fn caller_request_id_is_echoed() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let resp = http()
        .post(gw.url("/v1/chat/completions"))
        .header("x-request-id", "req-abc-123")
        .json(&chat_body("gpt-4o", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-abc-123");
    let resp = http()
        .post(gw.url("/v1/chat/completions"))
        .header("x-request-id", "req-err")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-request-id"], "req-err", "errors carry the id too");
}

#[tokio::test]
async fn streaming_sends_role_first_content_finish_done_and_usage_only_when_asked() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let mut body = chat_body("gpt-4o", "stream me");
    body["stream"] = json!(true);
    let resp = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = resp.text().await.unwrap();
    let chunks = sse_chunks(&text);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "echo: stream me \u{e9}\u{1f600}");
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "no usage unless asked");
    // Upstream was asked for usage anyway, for accounting.
    assert_eq!(mock.last_request().unwrap().body["stream_options"]["include_usage"], true);

    body["stream_options"] = json!({"include_usage": true});
    let text = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap().text().await.unwrap();
    let data = sse_data(&text);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn tool_call_round_trip_blocking_and_streamed() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let body = json!({"model": "mock-tool", "messages": [{"role": "user", "content": "weather?"}], "tools": tools,
        "tool_choice": "auto", "parallel_tool_calls": false});
    let r: Value = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["choices"][0]["finish_reason"], "tool_calls");
    let call = &r["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert!(r["choices"][0]["message"]["content"].is_null());

    // Send the result back: assistant tool_calls + tool message reach the upstream intact.
    let follow = json!({"model": "gpt-4o", "tools": tools, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "{\"temp\":21}"}]});
    let resp = http().post(gw.url("/v1/chat/completions")).json(&follow).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let sent = mock.last_request().unwrap().body;
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], call["id"]);
    assert_eq!(sent["messages"][2]["tool_call_id"], call["id"]);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text = http().post(gw.url("/v1/chat/completions")).json(&streamed).send().await.unwrap().text().await.unwrap();
    let chunks = sse_chunks(&text);
    let mut args = String::new();
    let mut name = None;
    for c in &chunks {
        for tc in c["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
            assert_eq!(tc["index"], 0);
            if let Some(n) = tc["function"]["name"].as_str() {
                name = Some(n.to_owned());
                assert_eq!(tc["id"], "call_mock_1");
            }
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(args, "{\"city\":\"Paris\"}");
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn every_documented_parameter_reaches_an_openai_upstream() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let body = json!({"model": "gpt-4o", "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]}],
        "max_completion_tokens": 50, "temperature": 0.2, "top_p": 0.9, "n": 1, "stop": ["END"], "seed": 42,
        "presence_penalty": 0.1, "frequency_penalty": 0.2, "logit_bias": {"50256": -100}, "user": "u1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": true}},
        "reasoning_effort": "low", "metadata": {"k": "v"}, "top_k": 5});
    let resp = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-hoosh-dropped-params").is_none());
    let sent = mock.last_request().unwrap().body;
    for k in [
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "user",
        "response_format",
        "reasoning_effort",
        "metadata",
        "top_k",
    ] {
        assert_eq!(sent[k], body[k], "{k}");
    }
    assert_eq!(sent["messages"], body["messages"]);
}

#[tokio::test]
async fn preset_policy_drops_and_reports_unsupported_params() {
    let mock = hoosh_testkit::openai::start().await;
    let mut p = hoosh_core::config::ProviderConfig::new("ds", "deepseek");
    p.base_url = Some(format!("{}/v1", mock.url()));
    p.api_key_file = Some(secret_file("sk-deepseek"));
    let gw = Gateway::start(config(vec![p])).await;
    let mut body = chat_body("deepseek-chat", "x");
    body["seed"] = json!(1);
    body["logit_bias"] = json!({"1": 1});
    body["max_completion_tokens"] = json!(9);
    body["messages"] = json!([{"role": "developer", "content": "sys"}, {"role": "user", "content": "x"}]);
    let resp = http().post(gw.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-hoosh-dropped-params"], "seed,logit_bias");
    let sent = mock.last_request().unwrap();
    assert!(sent.body.get("seed").is_none() && sent.body.get("logit_bias").is_none());
    assert_eq!(sent.body["max_tokens"], 9, "non-OpenAI servers get max_tokens");
    assert_eq!(sent.body["messages"][0]["role"], "system", "developer role mapped for non-OpenAI servers");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-deepseek"));

    // With the policy set to refuse, the same request is a 400 naming the parameter.
    let mut c = config(vec![gw.state.live().config.providers[0].clone()]);
    c.routing.unsupported_params = hoosh_core::params::UnsupportedParamAction::Refuse;
    let strict = Gateway::start(c).await;
    let resp = http().post(strict.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["param"], "seed");
    assert_eq!(err["error"]["code"], "unsupported_parameter");
}

#[tokio::test]
async fn legacy_completions_work_blocking_and_streamed() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let r: Value = http()
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": "gpt-4o", "prompt": "Say hi", "max_tokens": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["object"], "text_completion");
    assert_eq!(r["choices"][0]["text"], "echo: Say hi \u{e9}\u{1f600}");
    let text = http()
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": "gpt-4o", "prompt": "Say hi", "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let joined: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap()["choices"][0]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(joined, "echo: Say hi \u{e9}\u{1f600}");
    let resp = http()
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": "gpt-4o", "prompt": ["a", "b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn traceparent_reaches_the_upstream_with_the_callers_trace_id() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = http()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", sent)
        .json(&chat_body("m", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header = |rec: &hoosh_testkit::Recorded| {
        rec.headers.iter().find(|(k, _)| k == "traceparent").map(|(_, v)| v.clone()).expect("traceparent sent upstream")
    };
    let upstream = header(&mock.last_request().unwrap());
    let parts: Vec<&str> = upstream.split('-').collect();
    assert_eq!((parts[0], parts[1], parts[3]), ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01"), "{upstream}");
    assert_ne!(parts[2], "00f067aa0ba902b7", "the gateway's call is a new span");

    // Without one, a new trace starts; an invalid one is replaced.
    for incoming in [None, Some("garbage")] {
        let mut req = http().post(gw.url("/v1/chat/completions")).json(&chat_body("m", "x"));
        if let Some(v) = incoming {
            req = req.header("traceparent", v);
        }
        assert_eq!(req.send().await.unwrap().status(), 200);
        let fresh = header(&mock.last_request().unwrap());
        assert!(hoosh_core::trace::TraceContext::parse(&fresh).is_some(), "{fresh}");
        assert!(!fresh.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
    }
}
