//! A mock Anthropic Messages API: `POST /v1/messages` (JSON, and SSE with
//! the real event sequence) and `GET /v1/models`.
//!
//! It checks what the real API checks first: the `x-api-key` and
//! `anthropic-version` headers, a `max_tokens`, no `system` role inside
//! `messages`, and strict user/assistant alternation, answering in
//! Anthropic's error shape. Besides the shared [`Scenario`] names,
//! `mock-stream-overloaded` streams a little text and then an in-band
//! `overloaded_error` event, as Anthropic does under load.
//!
//! Two behaviours follow the request rather than the model name, as the
//! real API's do: with `thinking` enabled (or adaptive) the answer starts
//! with a signed `thinking` block (streamed: `thinking_delta`, then
//! `signature_delta`); a request with any `cache_control` reports
//! [`CACHE_READ`] prompt tokens read from the cache and [`CACHE_WRITE`]
//! written, beside `input_tokens`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::openai::{fail_or_delay, sse_response};
use crate::scenario::{Scenario, count_tokens, echo_pieces, echo_text};
use crate::server::{MockServer, Shared, StreamFault};

/// Model ids `/v1/models` lists.
pub const MODELS: &[&str] = &["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"];

/// The tool input `mock-tool` answers with, and its streamed fragments.
pub const TOOL_INPUT: &str = "{\"city\":\"Paris\"}";
const TOOL_FRAGMENTS: &[&str] = &["", "{\"city\"", ":\"Par", "is\"}"];

/// Prompt tokens a request with `cache_control` reports read from the cache.
pub const CACHE_READ: u64 = 100;
/// Prompt tokens a request with `cache_control` reports written to the cache.
pub const CACHE_WRITE: u64 = 20;
/// The signature of the mock's thinking block.
pub const THINKING_SIGNATURE: &str = "sig_mock_1";

/// `(cache_creation_input_tokens, cache_read_input_tokens)` for `body`.
fn cache_usage(body: &Value) -> (u64, u64) {
    if body.to_string().contains("\"cache_control\"") { (CACHE_WRITE, CACHE_READ) } else { (0, 0) }
}

fn thinks(body: &Value) -> bool {
    matches!(body["thinking"]["type"].as_str(), Some("enabled" | "adaptive"))
}

/// Text `mock-tool` says before its tool call, so that the tool_use block is
/// content block 1 while being tool call 0.
pub const TOOL_PREAMBLE: &str = "Let me check.";

pub fn router() -> Router<Arc<Shared>> {
    Router::new().route("/v1/messages", post(messages)).route("/v1/models", get(models))
}

pub async fn start() -> MockServer {
    MockServer::start(router()).await.unwrap_or_else(|e| panic!("mock anthropic: {e}"))
}

/// Anthropic's error envelope for `status`, with `Retry-After` when given.
pub fn error(status: u16, retry_after: Option<u64>) -> Response {
    let (kind, message) = match status {
        400 => ("invalid_request_error", "mock says: bad request"),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => ("permission_error", "Your API key does not have permission to use the specified resource."),
        404 => ("not_found_error", "model: not found"),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429 => ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    let mut resp = error_body(status, kind, message);
    if let Some(s) = retry_after
        && let Ok(v) = s.to_string().parse()
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn error_body(status: u16, kind: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({"type": "error", "error": {"type": kind, "message": message}}))).into_response()
}

/// 401 unless both headers every Anthropic call needs are present.
fn check_headers(headers: &HeaderMap) -> Option<Response> {
    for name in ["x-api-key", "anthropic-version"] {
        if headers.get(name).is_none_or(|v| v.is_empty()) {
            return Some(error_body(401, "authentication_error", &format!("{name}: header is required")));
        }
    }
    None
}

/// The checks the real API makes on a request's shape.
fn check_body(body: &Value) -> Option<Response> {
    let invalid = |msg: &str| Some(error_body(400, "invalid_request_error", msg));
    if !body["max_tokens"].is_u64() {
        return invalid("max_tokens: Field required");
    }
    let Some(msgs) = body["messages"].as_array() else {
        return invalid("messages: Field required");
    };
    let mut previous = "";
    for (i, m) in msgs.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if role != "user" && role != "assistant" {
            return invalid(&format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        }
        if role == previous {
            return invalid("messages: roles must alternate between \"user\" and \"assistant\"");
        }
        previous = role;
    }
    None
}

fn last_user_text(body: &Value) -> String {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let Some(m) = msgs.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

async fn messages(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(resp) = check_headers(&headers) {
        return resp;
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(resp) = fail_or_delay(&shared, &model, error).await {
        return resp;
    }
    if let Some(resp) = check_body(&body) {
        return resp;
    }
    let scenario = Scenario::parse(&model);
    let user = last_user_text(&body);
    let prompt = format!("{} {}", body["system"], body["messages"]);
    let input_tokens = count_tokens(&prompt);
    let tool_name = body["tools"][0]["name"].as_str().unwrap_or("get_weather").to_owned();
    let (cache_write, cache_read) = cache_usage(&body);
    if body["stream"].as_bool() == Some(true) {
        return stream(&model, &scenario, &user, &tool_name, input_tokens, thinks(&body), (cache_write, cache_read));
    }
    let (mut content, stop) = match scenario {
        Scenario::Tool => (
            json!([
                {"type": "text", "text": TOOL_PREAMBLE},
                {"type": "tool_use", "id": "toolu_mock_1", "name": tool_name, "input": {"city": "Paris"}}
            ]),
            "tool_use",
        ),
        Scenario::Length => (json!([{"type": "text", "text": "echo"}]), "max_tokens"),
        _ => (json!([{"type": "text", "text": echo_text(&user)}]), "end_turn"),
    };
    if thinks(&body)
        && let Some(blocks) = content.as_array_mut()
    {
        blocks.insert(0, json!({"type": "thinking", "thinking": "mock thought", "signature": THINKING_SIGNATURE}));
    }
    let output_tokens = content.as_array().map_or(1, |blocks| {
        blocks
            .iter()
            .map(|b| count_tokens(&b["text"].as_str().map_or_else(|| b["input"].to_string(), str::to_owned)))
            .sum()
    });
    Json(json!({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}
    }))
    .into_response()
}

fn event(data: Value) -> String {
    let name = data["type"].as_str().unwrap_or("message").to_owned();
    format!("event: {name}\ndata: {data}\n\n")
}

fn text_delta(index: u32, text: &str) -> String {
    event(json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}))
}

fn stream(
    model: &str,
    scenario: &Scenario,
    user: &str,
    tool_name: &str,
    input_tokens: u64,
    thinking: bool,
    (cache_write, cache_read): (u64, u64),
) -> Response {
    if *scenario == Scenario::EmptyStream {
        return sse_response(Vec::new(), StreamFault::default());
    }
    let mut events = vec![event(json!({"type": "message_start", "message": {
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                  "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}}}))];
    if thinking {
        // A signed thinking block first: the text block is then block 1.
        events.push(event(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
        events.push(event(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "mock thought"}})));
        events.push(event(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": THINKING_SIGNATURE}})));
        events.push(event(json!({"type": "content_block_stop", "index": 0})));
    }
    let text = u32::from(thinking);
    events.push(event(
        json!({"type": "content_block_start", "index": text, "content_block": {"type": "text", "text": ""}}),
    ));
    events.push(event(json!({"type": "ping"})));
    let mut completion = String::new();
    let stop = match scenario {
        Scenario::Tool => {
            events.push(text_delta(text, TOOL_PREAMBLE));
            events.push(event(json!({"type": "content_block_stop", "index": text})));
            events.push(event(json!({"type": "content_block_start", "index": text + 1, "content_block": {
                "type": "tool_use", "id": "toolu_mock_1", "name": tool_name, "input": {}}})));
            for frag in TOOL_FRAGMENTS {
                events.push(event(json!({"type": "content_block_delta", "index": text + 1,
                    "delta": {"type": "input_json_delta", "partial_json": frag}})));
            }
            events.push(event(json!({"type": "content_block_stop", "index": text + 1})));
            completion = format!("{TOOL_PREAMBLE} {TOOL_INPUT}");
            "tool_use"
        }
        _ => {
            for piece in echo_pieces(user) {
                completion.push_str(&piece);
                events.push(text_delta(text, &piece));
            }
            events.push(event(json!({"type": "content_block_stop", "index": text})));
            if *scenario == Scenario::Length { "max_tokens" } else { "end_turn" }
        }
    };
    if model == "mock-stream-overloaded" {
        events.truncate(5);
        events.push(event(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})));
        return sse_response(events, StreamFault::default());
    }
    events.push(event(json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": count_tokens(&completion)}})));
    events.push(event(json!({"type": "message_stop"})));
    let fault = match scenario {
        // After message_start, the block start, the ping and two text deltas.
        Scenario::Cut => StreamFault { cut_after: Some(5), ..Default::default() },
        Scenario::Stall { delay } => StreamFault { stall_after_first: Some(*delay), ..Default::default() },
        _ => StreamFault::default(),
    };
    sse_response(events, fault)
}

async fn models(headers: HeaderMap) -> Response {
    if let Some(resp) = check_headers(&headers) {
        return resp;
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}))
        .collect();
    Json(json!({"data": data, "has_more": false, "first_id": MODELS.first(), "last_id": MODELS.last()})).into_response()
}
