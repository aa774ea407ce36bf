//! The Anthropic adapter against the mock Anthropic server (real HTTP), and
//! the pure conversions of `convert.rs` on hand-written fixtures.

use std::time::Duration;

use futures_util::StreamExt;
use hoosh_core::params::{self, DroppedParams, ParamSupport, UnsupportedParamAction};
use hoosh_core::{ErrorKind, Provider, ProviderError, Secret};
use hoosh_testkit::MockServer;
use hoosh_testkit::anthropic::{self as mock, TOOL_INPUT, TOOL_PREAMBLE};
use hoosh_testkit::scenario::echo_text;
use hoosh_types::content::{OneOrMany, TextOrParts};
use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ContentPart, FinishReason, FunctionCall, FunctionDef,
    FunctionName, ImageUrl, NamedToolChoice, Role, Tool, ToolCall, ToolChoice, ToolChoiceMode, ToolKind,
};
use serde_json::{Value, json};

use super::convert::{self, StreamState};
use super::{AnthropicProvider, wire};
use crate::adapter::AdapterConfig;

fn config(mock: &MockServer, api_key: Option<&str>) -> AdapterConfig {
    AdapterConfig {
        name: "anthropic".into(),
        preset: crate::presets::find("anthropic").unwrap(),
        base_url: mock.url(),
        api_key: api_key.map(Secret::new),
        headers: crate::registry::parse_headers("mock", &[("anthropic-beta".into(), "mock-beta-1".into())]).unwrap(),
        api_version: None,
        http: reqwest::Client::new(),
    }
}

fn provider(mock: &MockServer) -> AnthropicProvider {
    AnthropicProvider::new(config(mock, Some("sk-ant-test")))
}

fn request(model: &str, messages: Vec<ChatMessage>) -> ChatCompletionRequest {
    ChatCompletionRequest { model: model.into(), messages, ..Default::default() }
}

fn user(text: &str) -> ChatMessage {
    ChatMessage::text(Role::User, text)
}

fn weather_tool() -> Tool {
    Tool {
        kind: ToolKind::Function,
        function: FunctionDef {
            name: "get_weather".into(),
            description: Some("Weather for a city".into()),
            parameters: Some(
                json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
            ),
            strict: None,
        },
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        kind: ToolKind::Function,
        function: FunctionCall { name: name.into(), arguments: arguments.into() },
    }
}

fn no_drops() -> DroppedParams {
    DroppedParams::default()
}

async fn collect(
    p: &AnthropicProvider,
    req: &ChatCompletionRequest,
) -> Vec<Result<ChatCompletionChunk, ProviderError>> {
    p.chat_stream(req, &no_drops()).await.unwrap().collect().await
}

fn last_body(mock: &MockServer) -> Value {
    mock.last_request().unwrap().body
}

// ---- against the mock ----

#[tokio::test]
async fn chat_text_and_headers() {
    let mock = mock::start().await;
    let p = provider(&mock);
    let resp = p.chat(&request("claude-sonnet-4-5", vec![user("hi")]), &no_drops()).await.unwrap();

    assert_eq!(resp.id, "msg_mock");
    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.model, "claude-sonnet-4-5");
    assert!(resp.created > 1_700_000_000);
    assert_eq!(resp.choices[0].message.role, Role::Assistant);
    assert_eq!(resp.choices[0].message.content.as_deref(), Some(echo_text("hi").as_str()));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage = resp.usage.unwrap();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

    let rec = mock.last_request().unwrap();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.uri, "/v1/messages");
    assert_eq!(rec.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(rec.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(rec.header("anthropic-beta"), Some("mock-beta-1"));
    assert!(rec.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(rec.header("authorization"), None, "the key goes in x-api-key only");
    assert_eq!(
        rec.body,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
               "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    );
}

#[tokio::test]
async fn carries_sampling_params_and_the_output_cap() {
    let mock = mock::start().await;
    let mut req = request("claude-sonnet-4-5", vec![user("hi")]);
    req.max_completion_tokens = Some(300);
    req.max_tokens = Some(100);
    req.temperature = Some(0.5);
    req.top_p = Some(0.9);
    req.stop = Some(OneOrMany::Many(vec!["END".into(), "STOP".into()]));
    req.user = Some("user-42".into());
    provider(&mock).chat(&req, &no_drops()).await.unwrap();
    let body = last_body(&mock);
    assert_eq!(body["max_tokens"], 300, "max_completion_tokens wins");
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["stop_sequences"], json!(["END", "STOP"]));
    assert_eq!(body["metadata"], json!({"user_id": "user-42"}));
}

#[tokio::test]
async fn dropped_params_stay_out() {
    let mock = mock::start().await;
    let mut req = request("claude-sonnet-4-5", vec![user("hi")]);
    req.temperature = Some(0.5);
    req.user = Some("u".into());
    req.seed = Some(7);
    req.extra.insert("top_k".into(), json!(5));
    let support = ParamSupport::without(&["temperature", "user", "seed"]);
    let dropped = params::plan(&req, &support, UnsupportedParamAction::Drop).unwrap();
    provider(&mock).chat(&req, &dropped).await.unwrap();
    let body = last_body(&mock);
    for key in ["temperature", "metadata", "seed", "top_k"] {
        assert!(body.get(key).is_none(), "{key} was sent: {body}");
    }
}

#[tokio::test]
async fn system_and_developer_messages_are_lifted_in_order() {
    let mock = mock::start().await;
    let msgs = vec![
        ChatMessage::text(Role::System, "You are terse."),
        user("first"),
        ChatMessage::text(Role::Developer, "Answer in French."),
        user("second"),
        ChatMessage::text(Role::System, "Never apologise."),
    ];
    let resp = provider(&mock).chat(&request("claude-sonnet-4-5", msgs), &no_drops()).await.unwrap();
    let body = last_body(&mock);
    assert_eq!(
        body["system"],
        json!([
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Answer in French."},
            {"type": "text", "text": "Never apologise."}
        ])
    );
    // The two user turns around the developer message merge into one.
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]}])
    );
    assert_eq!(resp.choices[0].message.content.as_deref(), Some(echo_text("firstsecond").as_str()));
}

#[tokio::test]
async fn image_urls_become_image_blocks() {
    let mock = mock::start().await;
    let parts = vec![
        ContentPart::Text { text: "What is this?".into() },
        ContentPart::ImageUrl {
            image_url: ImageUrl { url: "data:image/png;base64,iVBORw0KGgo=".into(), detail: None },
        },
        ContentPart::ImageUrl {
            image_url: ImageUrl { url: "https://example.com/cat.jpg".into(), detail: Some("high".into()) },
        },
    ];
    let msg = ChatMessage { content: Some(TextOrParts::Parts(parts)), ..user("") };
    provider(&mock).chat(&request("claude-sonnet-4-5", vec![msg]), &no_drops()).await.unwrap();
    assert_eq!(
        last_body(&mock)["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
        ])
    );
}

#[tokio::test]
async fn tool_round_trip() {
    let mock = mock::start().await;
    let bare_tool = Tool {
        kind: ToolKind::Function,
        function: FunctionDef { name: "now".into(), description: None, parameters: None, strict: None },
    };
    let assistant = ChatMessage {
        content: Some(TextOrParts::Text("Checking both.".into())),
        tool_calls: Some(vec![call("call_1", "get_weather", r#"{"city": "Oslo"}"#), call("call_2", "now", "")]),
        ..ChatMessage::text(Role::Assistant, "")
    };
    let result =
        |id: &str, text: &str| ChatMessage { tool_call_id: Some(id.into()), ..ChatMessage::text(Role::Tool, text) };
    let mut req = request(
        "mock-tool",
        vec![
            user("Weather in Oslo, and the time?"),
            assistant,
            result("call_1", "-3C"),
            result("call_2", "09:00"),
            user("Thanks!"),
        ],
    );
    req.tools = Some(vec![weather_tool(), bare_tool]);
    req.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::Required));
    req.parallel_tool_calls = Some(false);

    let resp = provider(&mock).chat(&req, &no_drops()).await.unwrap();
    let body = last_body(&mock);
    assert_eq!(
        body["tools"],
        json!([
            {"name": "get_weather", "description": "Weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "now", "input_schema": {"type": "object", "properties": {}}}
        ])
    );
    assert_eq!(body["tool_choice"], json!({"type": "any", "disable_parallel_tool_use": true}));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo, and the time?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_2", "name": "now", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "-3C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "09:00"},
                {"type": "text", "text": "Thanks!"}
            ]}
        ])
    );

    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content.as_deref(), Some(TOOL_PREAMBLE));
    assert_eq!(choice.message.tool_calls, Some(vec![call("toolu_mock_1", "get_weather", TOOL_INPUT)]));
}

#[tokio::test]
async fn invalid_tool_arguments_are_refused_before_sending() {
    let mock = mock::start().await;
    let assistant = ChatMessage {
        tool_calls: Some(vec![call("call_9", "get_weather", "{\"city\":")]),
        ..ChatMessage::text(Role::Assistant, "")
    };
    let req = request("claude-sonnet-4-5", vec![user("hi"), assistant]);
    let err = provider(&mock).chat(&req, &no_drops()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("get_weather") && err.message.contains("call_9"), "{}", err.message);
    assert_eq!(mock.call_count(), 0);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn stream_text_with_finish_and_usage() {
    let mock = mock::start().await;
    let p = provider(&mock);
    let mut req = request("claude-sonnet-4-5", vec![user("hi")]);
    req.stream = true;
    let chunks: Vec<ChatCompletionChunk> = collect(&p, &req).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(last_body(&mock)["stream"], true);

    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert!(
        chunks
            .iter()
            .all(|c| c.id == "msg_mock" && c.model == "claude-sonnet-4-5" && c.object == "chat.completion.chunk")
    );
    let text: String = chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.delta.content.as_deref()).collect();
    assert_eq!(text, echo_text("hi"));
    let finishes: Vec<_> = chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.finish_reason).collect();
    assert_eq!(finishes, [FinishReason::Stop]);

    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    let usage = last.usage.unwrap();
    assert!(usage.prompt_tokens > 0);
    assert_eq!(usage.completion_tokens, hoosh_testkit::scenario::count_tokens(&echo_text("hi")));
    let before_last = &chunks[chunks.len() - 2];
    assert_eq!(before_last.choices[0].finish_reason, Some(FinishReason::Stop));
}

#[tokio::test]
async fn stream_length_finish() {
    let mock = mock::start().await;
    let chunks = collect(&provider(&mock), &request("mock-length", vec![user("hi")])).await;
    let finishes: Vec<_> =
        chunks.iter().flat_map(|c| &c.as_ref().unwrap().choices).filter_map(|ch| ch.finish_reason).collect();
    assert_eq!(finishes, [FinishReason::Length]);
}

#[tokio::test]
async fn streamed_tool_call_fragments_reassemble() {
    let mock = mock::start().await;
    let mut req = request("mock-tool", vec![user("weather?")]);
    req.tools = Some(vec![weather_tool()]);
    let chunks: Vec<ChatCompletionChunk> =
        collect(&provider(&mock), &req).await.into_iter().map(Result::unwrap).collect();
    let calls: Vec<_> =
        chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.delta.tool_calls.as_ref()).flatten().collect();

    assert!(calls.iter().all(|d| d.index == 0), "tool call index counts tool calls, not content blocks");
    assert_eq!(calls[0].id.as_deref(), Some("toolu_mock_1"));
    assert_eq!(calls[0].kind, Some(ToolKind::Function));
    let f = calls[0].function.as_ref().unwrap();
    assert_eq!((f.name.as_deref(), f.arguments.as_deref()), (Some("get_weather"), Some("")));
    let args: String = calls.iter().filter_map(|d| d.function.as_ref()?.arguments.as_deref()).collect();
    assert_eq!(args, TOOL_INPUT);

    let text: String = chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.delta.content.as_deref()).collect();
    assert_eq!(text, TOOL_PREAMBLE);
    let finishes: Vec<_> = chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.finish_reason).collect();
    assert_eq!(finishes, [FinishReason::ToolCalls]);
    assert!(chunks.last().unwrap().usage.is_some());
}

#[tokio::test]
async fn mid_stream_cut_ends_with_an_error() {
    let mock = mock::start().await;
    let items = collect(&provider(&mock), &request("mock-cut", vec![user("hi")])).await;
    let (last, before) = items.split_last().unwrap();
    assert!(!before.is_empty() && before.iter().all(Result::is_ok));
    assert!(
        before
            .iter()
            .any(|c| { c.as_ref().unwrap().choices.iter().any(|ch| ch.delta.content.as_deref() == Some("echo")) })
    );
    assert_eq!(last.as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);
}

#[tokio::test]
async fn empty_stream_is_interrupted() {
    let mock = mock::start().await;
    let items = collect(&provider(&mock), &request("mock-empty-stream", vec![user("hi")])).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);
}

#[tokio::test]
async fn in_band_overload_is_an_upstream_error() {
    let mock = mock::start().await;
    let items = collect(&provider(&mock), &request("mock-stream-overloaded", vec![user("hi")])).await;
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(err.message.contains("Overloaded"), "{}", err.message);
    assert!(items[..items.len() - 1].iter().all(Result::is_ok));
}

#[tokio::test]
async fn error_statuses_are_classified() {
    let mock = mock::start().await;
    let p = provider(&mock);
    let chat = |model: &'static str| {
        let p = &p;
        async move { p.chat(&request(model, vec![user("hi")]), &no_drops()).await.unwrap_err() }
    };

    let e = chat("mock-error-429-retry-3").await;
    assert_eq!((e.kind, e.status, e.retry_after), (ErrorKind::RateLimited, Some(429), Some(Duration::from_secs(3))));
    let e = chat("mock-error-529").await;
    assert_eq!((e.kind, e.status), (ErrorKind::Upstream, Some(529)));
    assert!(e.retryable());
    assert_eq!(e.message, "Overloaded");
    let e = chat("mock-error-500").await;
    assert_eq!(e.kind, ErrorKind::Upstream);
    let e = chat("mock-error-401").await;
    assert_eq!(e.kind, ErrorKind::Auth);
    let e = chat("mock-error-400").await;
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::BadRequest, "mock says: bad request"));
    let e = chat("mock-badjson").await;
    assert_eq!(e.kind, ErrorKind::InvalidResponse);

    // A stream that fails before its first byte fails the call itself.
    let e = p.chat_stream(&request("mock-error-503", vec![user("hi")]), &no_drops()).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::Upstream);
}

#[tokio::test]
async fn missing_key_is_an_auth_error() {
    let mock = mock::start().await;
    let p = AnthropicProvider::new(config(&mock, None));
    let e = p.chat(&request("claude-sonnet-4-5", vec![user("hi")]), &no_drops()).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Auth, Some(401)));
    assert!(e.message.contains("x-api-key"), "{}", e.message);
}

#[tokio::test]
async fn lists_models_and_capabilities() {
    let mock = mock::start().await;
    let p = provider(&mock);
    assert_eq!(p.list_models().await.unwrap(), mock::MODELS);
    let rec = mock.last_request().unwrap();
    assert_eq!((rec.method.as_str(), rec.uri.as_str()), ("GET", "/v1/models?limit=1000"));
    assert_eq!(rec.header("anthropic-version"), Some("2023-06-01"));
    assert!(p.health().await.is_ok());
    let caps = p.capabilities();
    assert!(caps.chat && !caps.embeddings);
    assert_eq!(p.family(), "anthropic");
}

#[tokio::test]
async fn base_url_with_v1_is_tolerated() {
    let mock = mock::start().await;
    let mut cfg = config(&mock, Some("k"));
    cfg.base_url = format!("{}/v1", mock.url());
    AnthropicProvider::new(cfg).chat(&request("claude-sonnet-4-5", vec![user("hi")]), &no_drops()).await.unwrap();
    assert_eq!(mock.last_request().unwrap().uri, "/v1/messages");
}

// ---- pure conversions ----

#[test]
fn tool_choice_mapping() {
    let mut req = request("m", vec![user("hi")]);
    req.tools = Some(vec![weather_tool()]);
    let drops = no_drops();
    let choice = |req: &ChatCompletionRequest| serde_json::to_value(convert::tool_choice(req, &drops)).unwrap();

    assert_eq!(choice(&req), Value::Null);
    req.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::Auto));
    assert_eq!(choice(&req), json!({"type": "auto"}));
    req.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::Required));
    assert_eq!(choice(&req), json!({"type": "any"}));
    req.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::None));
    assert_eq!(choice(&req), json!({"type": "none"}));
    req.tool_choice = Some(ToolChoice::Named(NamedToolChoice {
        kind: ToolKind::Function,
        function: FunctionName { name: "get_weather".into() },
    }));
    assert_eq!(choice(&req), json!({"type": "tool", "name": "get_weather"}));
    req.parallel_tool_calls = Some(false);
    assert_eq!(choice(&req), json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true}));
    req.tool_choice = None;
    assert_eq!(choice(&req), json!({"type": "auto", "disable_parallel_tool_use": true}));
    req.parallel_tool_calls = Some(true);
    assert_eq!(choice(&req), Value::Null);
}

#[test]
fn tool_choice_needs_tools() {
    let mut req = request("m", vec![user("hi")]);
    req.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::Auto));
    let body = convert::messages_request(&req, &no_drops(), false).unwrap();
    assert!(body.tools.is_none() && body.tool_choice.is_none());
}

#[test]
fn tool_arguments_must_be_a_json_object() {
    let ok = convert::tool_use_block(&call("c", "f", " {\"a\":1} "), 1, 0).unwrap();
    assert_eq!(
        serde_json::to_value(ok).unwrap(),
        json!({"type": "tool_use", "id": "c", "name": "f", "input": {"a": 1}})
    );
    let empty = convert::tool_use_block(&call("c", "f", ""), 1, 0).unwrap();
    assert_eq!(serde_json::to_value(empty).unwrap()["input"], json!({}));

    let err = convert::tool_use_block(&call("call_7", "lookup", "{oops"), 3, 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.starts_with("messages[3]: tool_calls[1] (`lookup`, id `call_7`)"), "{}", err.message);
    let err = convert::tool_use_block(&call("c", "f", "[1,2]"), 0, 0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
}

#[test]
fn images_need_a_data_or_http_url() {
    let img = |url: &str| ImageUrl { url: url.into(), detail: None };
    let b = convert::image_block(&img("data:image/jpeg;base64,/9j/4A=="), 0).unwrap();
    assert_eq!(
        serde_json::to_value(b).unwrap(),
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4A=="}})
    );
    let err = convert::image_block(&img("file-abc123"), 2).unwrap_err();
    assert_eq!((err.kind, err.param.as_deref()), (ErrorKind::BadRequest, Some("messages[2]")));
}

#[test]
fn audio_input_is_unsupported() {
    let parts = vec![ContentPart::InputAudio {
        input_audio: hoosh_types::openai::InputAudio { data: "AAA=".into(), format: "wav".into() },
    }];
    let msg = ChatMessage { content: Some(TextOrParts::Parts(parts)), ..user("") };
    let err = convert::conversation(&[msg]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
}

#[test]
fn conversation_merges_turns_and_puts_tool_results_first() {
    let result = ChatMessage { tool_call_id: Some("t1".into()), ..ChatMessage::text(Role::Tool, "") };
    let msgs = vec![
        user("a"),
        ChatMessage::text(Role::Assistant, ""),
        user("b"),
        ChatMessage { tool_calls: Some(vec![call("t1", "f", "{}")]), ..ChatMessage::text(Role::Assistant, "") },
        user("c"),
        result,
    ];
    let turns = serde_json::to_value(convert::conversation(&msgs).unwrap()).unwrap();
    assert_eq!(
        turns,
        json!([
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}, {"type": "text", "text": "c"}]}
        ])
    );
    let missing_id = ChatMessage::text(Role::Tool, "x");
    assert_eq!(convert::conversation(&[missing_id]).unwrap_err().kind, ErrorKind::BadRequest);
}

#[test]
fn system_text_parts_are_joined_per_message() {
    let parts = vec![ContentPart::Text { text: "one ".into() }, ContentPart::Text { text: "two".into() }];
    let sys = ChatMessage { content: Some(TextOrParts::Parts(parts)), ..ChatMessage::text(Role::System, "") };
    let empty = ChatMessage::text(Role::Developer, "");
    let out = serde_json::to_value(convert::system(&[sys, empty, user("u")])).unwrap();
    assert_eq!(out, json!([{"type": "text", "text": "one two"}]));
    assert!(convert::system(&[user("u")]).is_none());
}

#[test]
fn response_with_thinking_tools_cache_and_unknown_blocks() {
    let w: wire::Response = serde_json::from_value(json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-opus-4-1",
        "content": [
            {"type": "thinking", "thinking": "The user wants", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "text", "text": "Sure, "},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
            {"type": "text", "text": "checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "a b", "n": 2}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 7, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 100}
    }))
    .unwrap();
    let resp = convert::chat_response(w, "requested");
    assert_eq!(
        (resp.id.as_str(), resp.model.as_str(), resp.object.as_str()),
        ("msg_01", "claude-opus-4-1", "chat.completion")
    );
    let m = &resp.choices[0].message;
    assert_eq!(m.content.as_deref(), Some("Sure, checking."));
    assert_eq!(m.reasoning_content.as_deref(), Some("The user wants"));
    assert_eq!(m.tool_calls, Some(vec![call("toolu_1", "lookup", r#"{"n":2,"q":"a b"}"#)]));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let u = resp.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (130, 7, 137));
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 100);
}

#[test]
fn tool_only_response_has_null_content() {
    let w: wire::Response = serde_json::from_value(json!({
        "id": "msg_02", "model": "m", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}
    }))
    .unwrap();
    let resp = convert::chat_response(w, "m");
    assert_eq!(resp.choices[0].message.content, None);
    assert!(resp.usage.unwrap().prompt_tokens_details.is_none());
}

#[test]
fn stop_reasons() {
    let reason = |s: &str| convert::finish_reason(serde_json::from_value(json!(s)).unwrap());
    assert_eq!(reason("end_turn"), FinishReason::Stop);
    assert_eq!(reason("stop_sequence"), FinishReason::Stop);
    assert_eq!(reason("max_tokens"), FinishReason::Length);
    assert_eq!(reason("tool_use"), FinishReason::ToolCalls);
    assert_eq!(reason("refusal"), FinishReason::ContentFilter);
    assert_eq!(reason("something_new"), FinishReason::Stop);
}

fn feed(state: &mut StreamState, events: &[Value]) -> Result<Vec<ChatCompletionChunk>, ProviderError> {
    let mut out = Vec::new();
    for e in events {
        out.extend(state.on_event(convert::parse_event(&e.to_string())?)?);
    }
    Ok(out)
}

#[test]
fn stream_events_with_thinking_two_tools_and_unknown_types() {
    let mut state = StreamState::new("requested", 42);
    let chunks = feed(
        &mut state,
        &[
            json!({"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant",
                "model": "claude-x", "content": [], "stop_reason": null,
                "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 3}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "some_future_event", "foo": 1}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t_a", "name": "a", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t_b", "name": "b", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"x\":1}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ],
    )
    .unwrap();
    assert!(state.is_done());
    assert!(chunks.iter().all(|c| c.id == "msg_s" && c.model == "claude-x" && c.created == 42));
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(chunks[1].choices[0].delta.reasoning_content.as_deref(), Some("hmm"));
    let calls: Vec<_> =
        chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.delta.tool_calls.as_ref()).flatten().collect();
    let idx: Vec<(u32, Option<&str>)> = calls.iter().map(|d| (d.index, d.id.as_deref())).collect();
    assert_eq!(idx, [(0, Some("t_a")), (0, None), (1, Some("t_b")), (1, None)]);
    let n = chunks.len();
    assert_eq!(chunks[n - 2].choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let u = chunks[n - 1].usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (8, 9));
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 3);
}

#[test]
fn stream_stop_without_stop_reason_still_finishes() {
    let mut state = StreamState::new("requested", 1);
    let chunks = feed(
        &mut state,
        &[
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}),
            json!({"type": "message_stop"}),
        ],
    )
    .unwrap();
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(chunks[0].model, "requested");
    assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("x"));
    assert_eq!(chunks[2].choices[0].finish_reason, Some(FinishReason::Stop));
    assert!(chunks[3].usage.is_some());
}

#[test]
fn stream_error_events() {
    let err = |kind: &str| {
        let mut state = StreamState::new("m", 1);
        feed(&mut state, &[json!({"type": "error", "error": {"type": kind, "message": "boom"}})]).unwrap_err()
    };
    assert_eq!(err("overloaded_error").kind, ErrorKind::Upstream);
    assert_eq!(err("api_error").kind, ErrorKind::StreamInterrupted);

    let mut state = StreamState::new("m", 1);
    let stray =
        json!({"type": "content_block_delta", "index": 4, "delta": {"type": "input_json_delta", "partial_json": "{"}});
    assert_eq!(feed(&mut state, &[stray]).unwrap_err().kind, ErrorKind::InvalidResponse);
    assert_eq!(convert::parse_event("{nope").unwrap_err().kind, ErrorKind::InvalidResponse);
}
