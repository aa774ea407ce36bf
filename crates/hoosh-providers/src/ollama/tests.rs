//! The Ollama adapter against the mock Ollama server over real HTTP, and the
//! pure conversions on fixtures of Ollama's documented shapes.

use std::time::Duration;

use futures_util::StreamExt;
use hoosh_core::params::{DroppedParams, ParamSupport, UnsupportedParamAction, plan};
use hoosh_core::{EmbedRequest, ErrorKind, Provider, ProviderError};
use hoosh_testkit::MockServer;
use hoosh_types::content::{OneOrMany, TextOrParts};
use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ContentPart, FinishReason, FunctionCall, FunctionDef,
    ImageUrl, InputAudio, JsonSchemaFormat, ResponseFormat, Role, Tool, ToolCall, ToolChoice, ToolChoiceMode, ToolKind,
};
use serde_json::{Value, json};

use super::{OllamaProvider, convert, wire};
use crate::adapter::AdapterConfig;

async fn setup() -> (MockServer, OllamaProvider) {
    let mock = hoosh_testkit::ollama::start().await;
    let cfg = AdapterConfig {
        name: "ollama".into(),
        preset: crate::presets::find("ollama").unwrap(),
        base_url: mock.url(),
        api_key: None,
        headers: reqwest::header::HeaderMap::new(),
        api_version: None,
        http: reqwest::Client::new(),
    };
    (mock, OllamaProvider::new(cfg))
}

fn req(model: &str, text: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: model.into(),
        messages: vec![ChatMessage::text(Role::User, text)],
        ..Default::default()
    }
}

fn none() -> DroppedParams {
    DroppedParams::default()
}

fn last_body(mock: &MockServer) -> Value {
    mock.last_request().unwrap().body
}

fn weather_tool() -> Tool {
    Tool {
        kind: ToolKind::Function,
        function: FunctionDef {
            name: "get_weather".into(),
            description: Some("Current weather".into()),
            parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
            strict: Some(true),
        },
    }
}

fn assistant_call(id: &str, name: &str, args: &str) -> ChatMessage {
    ChatMessage {
        role: Role::Assistant,
        content: None,
        name: None,
        tool_calls: Some(vec![ToolCall {
            id: id.into(),
            kind: ToolKind::Function,
            function: FunctionCall { name: name.into(), arguments: args.into() },
        }]),
        tool_call_id: None,
        refusal: None,
    }
}

fn tool_result(id: &str, text: &str) -> ChatMessage {
    ChatMessage { tool_call_id: Some(id.into()), ..ChatMessage::text(Role::Tool, text) }
}

async fn collect(p: &OllamaProvider, r: &ChatCompletionRequest) -> Vec<Result<ChatCompletionChunk, ProviderError>> {
    p.chat_stream(r, &none()).await.unwrap().collect().await
}

fn streamed_text(chunks: &[ChatCompletionChunk]) -> String {
    chunks.iter().flat_map(|c| &c.choices).filter_map(|c| c.delta.content.as_deref()).collect()
}

// ---- against the mock -------------------------------------------------------

#[tokio::test]
async fn chat_returns_text_and_usage() {
    let (mock, p) = setup().await;
    let resp = p.chat(&req("llama3.2", "hi"), &none()).await.unwrap();
    let choice = &resp.choices[0];
    assert_eq!(choice.message.role, Role::Assistant);
    assert_eq!(choice.message.content.as_deref(), Some("echo: hi \u{e9}\u{1f600}"));
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    assert!(resp.id.starts_with("chatcmpl-"), "{}", resp.id);
    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.model, "llama3.2");
    assert!(resp.created > 1_700_000_000);
    let usage = resp.usage.unwrap();
    assert!(usage.prompt_tokens > 0);
    assert_eq!(usage.completion_tokens, 3);
    assert_eq!(usage.total_tokens, usage.prompt_tokens + 3);

    let rec = mock.last_request().unwrap();
    assert_eq!(rec.uri, "/api/chat");
    assert_eq!(rec.body["stream"], false, "Ollama streams unless told not to");
    assert_eq!(rec.body["messages"], json!([{"role": "user", "content": "hi"}]));
    assert!(rec.body.get("options").is_none(), "no options were set: {}", rec.body);
}

#[tokio::test]
async fn options_and_json_mode_are_mapped() {
    let (mock, p) = setup().await;
    let mut r = req("llama3.2", "hi");
    r.max_tokens = Some(50);
    r.temperature = Some(0.2);
    r.top_p = Some(0.9);
    r.stop = Some(OneOrMany::One("END".into()));
    r.seed = Some(42);
    r.presence_penalty = Some(0.5);
    r.frequency_penalty = Some(0.25);
    r.response_format = Some(ResponseFormat::JsonObject);
    p.chat(&r, &none()).await.unwrap();
    let body = last_body(&mock);
    assert_eq!(
        body["options"],
        json!({"num_predict": 50, "temperature": 0.2, "top_p": 0.9, "stop": ["END"], "seed": 42,
            "presence_penalty": 0.5, "frequency_penalty": 0.25})
    );
    assert_eq!(body["format"], "json");

    r.max_completion_tokens = Some(20);
    r.response_format = Some(ResponseFormat::JsonSchema {
        json_schema: JsonSchemaFormat {
            name: "answer".into(),
            description: None,
            schema: Some(json!({"type": "object", "properties": {"a": {"type": "integer"}}})),
            strict: Some(true),
        },
    });
    p.chat(&r, &none()).await.unwrap();
    let body = last_body(&mock);
    assert_eq!(body["options"]["num_predict"], 20, "max_completion_tokens wins");
    assert_eq!(body["format"], json!({"type": "object", "properties": {"a": {"type": "integer"}}}));
}

#[tokio::test]
async fn dropped_params_are_not_sent() {
    let (mock, p) = setup().await;
    let mut r = req("llama3.2", "hi");
    r.seed = Some(1);
    r.temperature = Some(0.5);
    r.user = Some("u-1".into());
    r.extra.insert("top_k".into(), json!(5));
    let support = ParamSupport { unsupported: vec!["seed", "user"], passes_extra: false };
    let dropped = plan(&r, &support, UnsupportedParamAction::Drop).unwrap();
    p.chat(&r, &dropped).await.unwrap();
    let body = last_body(&mock);
    assert_eq!(body["options"], json!({"temperature": 0.5}));
    assert!(body.get("top_k").is_none() && body.get("user").is_none(), "{body}");
}

#[tokio::test]
async fn image_data_url_becomes_base64_images() {
    let (mock, p) = setup().await;
    let mut r = req("llava", "");
    r.messages[0].content = Some(TextOrParts::Parts(vec![
        ContentPart::Text { text: "what is ".into() },
        ContentPart::ImageUrl {
            image_url: ImageUrl { url: "data:image/png;base64,iVBORw0KGgo=".into(), detail: None },
        },
        ContentPart::Text { text: "this?".into() },
    ]));
    let resp = p.chat(&r, &none()).await.unwrap();
    assert_eq!(resp.choices[0].message.content.as_deref(), Some("echo: what is this? \u{e9}\u{1f600}"));
    let msg = &last_body(&mock)["messages"][0];
    assert_eq!(msg["content"], "what is this?");
    assert_eq!(msg["images"], json!(["iVBORw0KGgo="]));
}

#[tokio::test]
async fn http_image_url_is_refused_before_sending() {
    let (mock, p) = setup().await;
    let mut r = req("llava", "");
    r.messages[0].content = Some(TextOrParts::Parts(vec![ContentPart::ImageUrl {
        image_url: ImageUrl { url: "https://example.com/cat.png".into(), detail: None },
    }]));
    let err = p.chat(&r, &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("data:") && err.message.contains("messages[0]"), "{}", err.message);
    assert_eq!(mock.call_count(), 0);
}

#[tokio::test]
async fn tool_call_round_trip() {
    let (mock, p) = setup().await;
    let mut r = req("mock-tool", "weather in Paris?");
    r.tools = Some(vec![weather_tool()]);
    r.messages.push(assistant_call("call_abc", "get_weather", r#"{"city": "Paris"}"#));
    r.messages.push(tool_result("call_abc", "sunny, 24C"));
    r.messages.push(ChatMessage::text(Role::User, "and tomorrow?"));
    let resp = p.chat(&r, &none()).await.unwrap();

    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_0");
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);

    let body = last_body(&mock);
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]})
    );
    assert_eq!(body["messages"][2], json!({"role": "tool", "content": "sunny, 24C", "tool_name": "get_weather"}));
}

#[tokio::test]
async fn stream_reassembles_text_exactly() {
    let (mock, p) = setup().await;
    let items = collect(&p, &req("llama3.2", "h\u{e9}llo w\u{f6}rld")).await;
    let chunks: Vec<ChatCompletionChunk> = items.into_iter().map(Result::unwrap).collect();

    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant), "role delta first");
    assert_eq!(streamed_text(&chunks), "echo: h\u{e9}llo w\u{f6}rld \u{e9}\u{1f600}");
    assert!(chunks.iter().all(|c| c.id == chunks[0].id && c.id.starts_with("chatcmpl-")));
    assert!(chunks.iter().all(|c| c.object == "chat.completion.chunk" && c.model == "llama3.2"));

    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage_chunk = chunks.last().unwrap();
    assert!(usage_chunk.choices.is_empty());
    let usage = usage_chunk.usage.unwrap();
    assert!(usage.prompt_tokens > 0);
    assert_eq!(usage.completion_tokens, 4);
    assert_eq!(chunks.iter().filter(|c| c.choices.iter().any(|ch| ch.finish_reason.is_some())).count(), 1);

    let rec = mock.last_request().unwrap();
    assert_eq!(rec.body["stream"], true);
}

#[tokio::test]
async fn stream_length_finish() {
    let (_mock, p) = setup().await;
    let chunks: Vec<ChatCompletionChunk> =
        collect(&p, &req("mock-length", "hi")).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(chunks[chunks.len() - 2].choices[0].finish_reason, Some(FinishReason::Length));
    let resp = p.chat(&req("mock-length", "hi"), &none()).await.unwrap();
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Length));
}

#[tokio::test]
async fn streamed_tool_call() {
    let (_mock, p) = setup().await;
    let mut r = req("mock-tool", "weather?");
    r.tools = Some(vec![weather_tool()]);
    let chunks: Vec<ChatCompletionChunk> = collect(&p, &r).await.into_iter().map(Result::unwrap).collect();
    let calls: Vec<_> =
        chunks.iter().flat_map(|c| &c.choices).filter_map(|c| c.delta.tool_calls.clone()).flatten().collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].index, 0);
    assert_eq!(calls[0].id.as_deref(), Some("call_0"));
    assert_eq!(calls[0].kind, Some(ToolKind::Function));
    let f = calls[0].function.as_ref().unwrap();
    assert_eq!(f.name.as_deref(), Some("get_weather"));
    assert_eq!(f.arguments.as_deref(), Some(r#"{"city":"Paris"}"#));
    assert_eq!(chunks[chunks.len() - 2].choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert!(chunks.last().unwrap().usage.is_some());
}

#[tokio::test]
async fn cut_stream_ends_with_an_error() {
    let (_mock, p) = setup().await;
    let items = collect(&p, &req("mock-cut", "hi")).await;
    let (last, rest) = items.split_last().unwrap();
    assert_eq!(last.as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);
    assert!(!rest.is_empty(), "content before the cut is delivered");
    for item in rest {
        let c = item.as_ref().unwrap();
        assert!(c.choices.iter().all(|ch| ch.finish_reason.is_none()));
    }
}

#[tokio::test]
async fn empty_stream_is_an_error() {
    let (_mock, p) = setup().await;
    let items = collect(&p, &req("mock-empty-stream", "hi")).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);
}

#[tokio::test]
async fn stalled_stream_delivers_first_chunk_then_waits() {
    let (_mock, p) = setup().await;
    let mut stream = p.chat_stream(&req("mock-stall-5000", "hi"), &none()).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), stream.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.choices[0].delta.role, Some(Role::Assistant));
    let content = stream.next().await.unwrap().unwrap();
    assert_eq!(content.choices[0].delta.content.as_deref(), Some("echo"));
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.next()).await.is_err(), "the mock stalls");
}

#[tokio::test]
async fn error_statuses_are_classified() {
    let (_mock, p) = setup().await;
    let err = p.chat(&req("mock-error-404", "hi"), &none()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::NotFound, Some(404)));
    assert!(err.message.contains("not found"), "{}", err.message);

    let err = p.chat(&req("mock-error-500", "hi"), &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(err.retryable());

    let err = p.chat_stream(&req("mock-error-429-retry-3", "hi"), &none()).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(err.message, "too many requests");

    let err = p.chat(&req("mock-badjson", "hi"), &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidResponse);
}

#[tokio::test]
async fn flaky_upstream_recovers() {
    let (_mock, p) = setup().await;
    let r = req("mock-flaky-1", "hi");
    assert_eq!(p.chat(&r, &none()).await.unwrap_err().kind, ErrorKind::Upstream);
    assert!(p.chat(&r, &none()).await.is_ok());
}

#[tokio::test]
async fn embeddings_one_vector_per_input_in_order() {
    let (mock, p) = setup().await;
    let inputs = vec!["alpha".to_owned(), "beta gamma".to_owned(), "delta".to_owned()];
    let r = EmbedRequest { model: "nomic-embed-text".into(), input: inputs.clone(), dimensions: Some(4), user: None };
    let resp = p.embed(&r).await.unwrap();
    assert_eq!(resp.vectors.len(), 3);
    for (v, text) in resp.vectors.iter().zip(&inputs) {
        assert_eq!(v, &hoosh_testkit::openai::fake_embedding(text, 4));
    }
    assert_eq!(resp.usage.prompt_tokens, 4);
    let rec = mock.last_request().unwrap();
    assert_eq!(rec.uri, "/api/embed");
    assert_eq!(rec.body, json!({"model": "nomic-embed-text", "input": inputs, "dimensions": 4}));
}

#[tokio::test]
async fn lists_models_and_checks_health() {
    let (mock, p) = setup().await;
    assert_eq!(p.list_models().await.unwrap(), hoosh_testkit::ollama::MODELS);
    p.health().await.unwrap();
    assert_eq!(mock.last_request().unwrap().uri, "/api/version");
    let caps = p.capabilities();
    assert!(caps.chat && caps.embeddings);
    assert_eq!(p.family(), "ollama");
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    let (mock, p) = setup().await;
    drop(mock);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = p.list_models().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connect);
}

// ---- pure conversions -------------------------------------------------------

#[test]
fn request_body_snapshot() {
    let mut r = req("qwen2.5:7b", "hi");
    r.messages.insert(0, ChatMessage::text(Role::Developer, "be brief"));
    r.messages.insert(0, ChatMessage::text(Role::System, "you are hoosh"));
    r.max_tokens = Some(8);
    r.tools = Some(vec![weather_tool()]);
    r.extra.insert("keep_alive".into(), json!("5m"));
    let body = serde_json::to_value(convert::chat_body(&r, &none(), true).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "qwen2.5:7b",
            "messages": [
                {"role": "system", "content": "you are hoosh"},
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"}
            ],
            "stream": true,
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "options": {"num_predict": 8},
            "keep_alive": "5m"
        })
    );
}

#[test]
fn tool_choice_none_withholds_tools() {
    let mut r = req("m", "hi");
    r.tools = Some(vec![weather_tool()]);
    r.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::None));
    assert!(convert::chat_body(&r, &none(), false).unwrap().tools.is_none());
    r.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::Auto));
    assert!(convert::chat_body(&r, &none(), false).unwrap().tools.is_some());
}

#[test]
fn invalid_tool_arguments_name_the_call() {
    let mut r = req("m", "hi");
    r.messages.push(assistant_call("call_xyz", "lookup", "{not json"));
    let err = convert::chat_body(&r, &none(), false).unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("call_xyz") && err.message.contains("lookup"), "{}", err.message);

    let mut r = req("m", "hi");
    r.messages.push(assistant_call("call_arr", "lookup", "[1, 2]"));
    assert_eq!(convert::chat_body(&r, &none(), false).unwrap_err().kind, ErrorKind::BadRequest);
}

#[test]
fn empty_tool_arguments_are_an_empty_object() {
    let mut r = req("m", "hi");
    r.messages.push(assistant_call("c1", "now", ""));
    let body = convert::chat_body(&r, &none(), false).unwrap();
    let calls = body.messages[1].tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].function.arguments, json!({}));
}

#[test]
fn tool_result_without_known_call_uses_its_name() {
    let mut r = req("m", "hi");
    r.messages.push(ChatMessage { name: Some("clock".into()), ..tool_result("unknown", "12:00") });
    r.messages.push(tool_result("also-unknown", "?"));
    let body = convert::chat_body(&r, &none(), false).unwrap();
    assert_eq!(body.messages[1].tool_name.as_deref(), Some("clock"));
    assert_eq!(body.messages[2].tool_name, None);
}

#[test]
fn audio_input_is_unsupported() {
    let mut r = req("m", "");
    r.messages[0].content = Some(TextOrParts::Parts(vec![ContentPart::InputAudio {
        input_audio: InputAudio { data: "AAAA".into(), format: "wav".into() },
    }]));
    assert_eq!(convert::chat_body(&r, &none(), false).unwrap_err().kind, ErrorKind::Unsupported);
}

#[test]
fn response_with_thinking_and_several_calls() {
    let w: wire::ChatResponse = serde_json::from_value(json!({
        "model": "qwen3", "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": "", "thinking": "need two lookups",
            "tool_calls": [
                {"function": {"name": "a", "arguments": {"x": 1}}},
                {"function": {"index": 1, "name": "b", "arguments": {}}}
            ]},
        "done": true, "done_reason": "stop", "prompt_eval_count": 12, "eval_count": 7
    }))
    .unwrap();
    let resp = convert::chat_response(w, "requested").unwrap();
    assert_eq!(resp.model, "qwen3");
    let msg = &resp.choices[0].message;
    assert_eq!(msg.reasoning_content.as_deref(), Some("need two lookups"));
    let calls = msg.tool_calls.as_ref().unwrap();
    assert_eq!(
        calls.iter().map(|c| (c.id.as_str(), c.function.arguments.as_str())).collect::<Vec<_>>(),
        [("call_0", r#"{"x":1}"#), ("call_1", "{}")]
    );
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(resp.usage.unwrap().total_tokens, 19);
}

#[test]
fn response_without_message_is_invalid() {
    let w: wire::ChatResponse = serde_json::from_value(json!({"model": "m", "done": true})).unwrap();
    assert_eq!(convert::chat_response(w, "m").unwrap_err().kind, ErrorKind::InvalidResponse);
}

#[test]
fn stream_state_over_fixture_lines() {
    let mut s = convert::StreamState::new("requested");
    let a = s
        .line(r#"{"model":"qwen3","created_at":"t","message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}"#)
        .unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(a[1].choices[0].delta.reasoning_content.as_deref(), Some("hmm"));
    assert_eq!(a[1].model, "qwen3");

    let b = s.line(r#"{"model":"qwen3","message":{"role":"assistant","content":"Hi"},"done":false}"#).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].choices[0].delta.content.as_deref(), Some("Hi"));

    let c = s
        .line(r#"{"model":"qwen3","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{"q":"x"}}}]},"done":false}"#)
        .unwrap();
    let d = s
        .line(r#"{"model":"qwen3","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"g","arguments":{}}}]},"done":false}"#)
        .unwrap();
    let idx = |chunks: &[ChatCompletionChunk]| {
        let t = &chunks[0].choices[0].delta.tool_calls.as_ref().unwrap()[0];
        (t.index, t.id.clone().unwrap())
    };
    assert_eq!(idx(&c), (0, "call_0".to_owned()));
    assert_eq!(idx(&d), (1, "call_1".to_owned()));
    assert!(s.end().is_err(), "not done yet");

    let e = s
        .line(r#"{"model":"qwen3","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":9}"#)
        .unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(e[1].usage.unwrap().total_tokens, 14);
    assert!(s.is_done() && s.end().is_ok());
    assert!(s.line("{}").unwrap().is_empty(), "lines after done are ignored");
}

#[test]
fn stream_error_and_garbage_lines() {
    let mut s = convert::StreamState::new("m");
    let err = s.line(r#"{"error":"an error was encountered while running the model"}"#).unwrap_err();
    assert_eq!(err.kind, ErrorKind::StreamInterrupted);
    assert_eq!(err.message, "an error was encountered while running the model");

    let mut s = convert::StreamState::new("m");
    assert_eq!(s.line("not json").unwrap_err().kind, ErrorKind::InvalidResponse);
}

#[test]
fn embed_count_mismatch_is_invalid() {
    let w = wire::EmbedResponse { embeddings: vec![vec![0.1, 0.2]], prompt_eval_count: Some(3) };
    assert_eq!(convert::embed_response(w, 3).unwrap_err().kind, ErrorKind::InvalidResponse);
}

#[test]
fn model_names_fall_back_to_model_field() {
    let w: wire::TagList = serde_json::from_value(json!({"models": [
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 1},
        {"model": "phi4:latest"}
    ]}))
    .unwrap();
    assert_eq!(convert::model_names(w), ["llama3.2:latest", "phi4:latest"]);
}
