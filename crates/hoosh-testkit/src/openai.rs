//! A mock OpenAI(-compatible) API: `/v1/chat/completions` (JSON and SSE),
//! `/v1/completions`, `/v1/embeddings`, `/v1/models`, the audio endpoints
//! (see [`crate::audio`]), and Azure's `/openai/deployments/{name}/...` paths.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::scenario::{Scenario, count_tokens, echo_pieces, echo_text};
use crate::server::{MockServer, Shared, StreamFault, stream_body};

/// Model ids `/v1/models` lists.
pub const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"];

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/openai/deployments/{deployment}/chat/completions", post(azure_chat))
        .route("/openai/deployments/{deployment}/embeddings", post(azure_embeddings))
        .merge(crate::audio::routes())
}

pub async fn start() -> MockServer {
    MockServer::start(router()).await.unwrap_or_else(|e| panic!("mock openai: {e}"))
}

/// The OpenAI error envelope with `Retry-After` when given.
pub fn error(status: u16, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, message) = match status {
        400 => ("invalid_request_error", "mock says: bad request"),
        401 => ("invalid_request_error", "Incorrect API key provided: sk-mock***"),
        404 => ("invalid_request_error", "The model does not exist"),
        429 => ("rate_limit_error", "Rate limit reached"),
        _ => ("server_error", "The server had an error while processing your request"),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    let mut resp = (code, Json(body)).into_response();
    if let Some(s) = retry_after
        && let Ok(v) = s.to_string().parse()
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn last_user_text(body: &Value) -> String {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let Some(m) = msgs.iter().rev().find(|m| m["role"] == "user") else { return String::new() };
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

/// Applies the failure part of a scenario; `None` means "answer normally".
pub async fn fail_or_delay(shared: &Shared, model: &str, render: fn(u16, Option<u64>) -> Response) -> Option<Response> {
    let before = shared.count_call(model);
    match Scenario::parse(model) {
        Scenario::Error { status, retry_after } => Some(render(status, retry_after)),
        Scenario::Flaky { failures } if before < failures => Some(render(503, None)),
        Scenario::Slow { delay } => {
            tokio::time::sleep(delay).await;
            None
        }
        Scenario::BadJson => {
            Some((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{not json").into_response())
        }
        _ => None,
    }
}

async fn azure_chat(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    Json(mut body): Json<Value>,
) -> Response {
    body["model"] = Value::String(deployment);
    chat(State(shared), Json(body)).await
}

async fn azure_embeddings(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    Json(mut body): Json<Value>,
) -> Response {
    body["model"] = Value::String(deployment);
    embeddings(State(shared), Json(body)).await
}

async fn chat(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(resp) = fail_or_delay(&shared, &model, error).await {
        return resp;
    }
    let mut scenario = Scenario::parse(&model);
    let mut user = last_user_text(&body);
    let prompt_tokens = count_tokens(&serde_json::to_string(&body["messages"]).unwrap_or_default());
    let mut tool_name = body["tools"][0]["function"]["name"].as_str().unwrap_or("get_weather").to_owned();
    let mut tool_args = "{\"city\":\"Paris\"}".to_owned();
    if scenario == Scenario::Agent {
        match agent_turn(&body) {
            AgentTurn::Call { name, arguments } => {
                (tool_name, tool_args, scenario) = (name, arguments, Scenario::Tool);
            }
            AgentTurn::Answer(text) => (user, scenario) = (text, Scenario::Echo),
        }
    }
    let stream = body["stream"].as_bool().unwrap_or(false);
    if !stream {
        let (message, finish) = match scenario {
            Scenario::Tool => (
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_mock_1", "type": "function",
                    "function": {"name": tool_name, "arguments": tool_args}}]}),
                "tool_calls",
            ),
            Scenario::Length => (json!({"role": "assistant", "content": "echo"}), "length"),
            _ => (json!({"role": "assistant", "content": echo_text(&user)}), "stop"),
        };
        let mut completion = count_tokens(message["content"].as_str().unwrap_or("x"));
        let mut prompt_tokens = prompt_tokens;
        if let Scenario::Usage { prompt, completion: c } = scenario {
            (prompt_tokens, completion) = (prompt, c);
        }
        if let Scenario::Bill { prompt, after } = scenario {
            tokio::time::sleep(after).await;
            (prompt_tokens, completion) = (prompt, billed_completion(&body));
        }
        return Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000u64, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion},
            "system_fingerprint": "fp_mock"
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000u64,
            "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    let mut completion_text = String::new();
    let finish = match scenario {
        Scenario::Tool => {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function",
                    "function": {"name": tool_name, "arguments": ""}}]}),
                Value::Null,
            ));
            // The arguments in three fragments, cut mid-token.
            let (a, rest) = tool_args.split_at(tool_args.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            for frag in [a, b, c] {
                events.push(chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]}), Value::Null));
            }
            "tool_calls"
        }
        Scenario::EmptyStream => return sse_response(Vec::new(), StreamFault::default()),
        _ => {
            for piece in echo_pieces(&user) {
                completion_text.push_str(&piece);
                events.push(chunk(json!({"content": piece}), Value::Null));
            }
            if scenario == Scenario::Length { "length" } else { "stop" }
        }
    };
    events.push(chunk(json!({}), Value::String(finish.into())));
    if body["stream_options"]["include_usage"].as_bool() == Some(true) {
        let (prompt_tokens, completion) = match scenario {
            Scenario::Usage { prompt, completion } => (prompt, completion),
            Scenario::Bill { prompt, .. } => (prompt, billed_completion(&body)),
            _ => (prompt_tokens, count_tokens(&completion_text)),
        };
        let u = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000u64,
            "model": model, "choices": [],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}});
        events.push(format!("data: {u}\n\n"));
    }
    events.push("data: [DONE]\n\n".into());
    let fault = match scenario {
        Scenario::Cut => StreamFault { cut_after: Some(3), ..Default::default() },
        Scenario::Stall { delay } => StreamFault { stall_after_first: Some(delay), ..Default::default() },
        _ => StreamFault::default(),
    };
    sse_response(events, fault)
}

enum AgentTurn {
    Call { name: String, arguments: String },
    Answer(String),
}

/// [`Scenario::Agent`]'s next step for a conversation.
fn agent_turn(body: &Value) -> AgentTurn {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    if let Some(last) = messages.last().filter(|m| m["role"] == "tool") {
        let said = match &last["content"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // The whole output on one line (tools add headers), cut at 300 characters.
        let flat = said.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect::<String>();
        return AgentTurn::Answer(format!("tool said: {flat}"));
    }
    if let Some((name, arguments)) = asked_call(&last_user_text(body)) {
        return AgentTurn::Call { name, arguments };
    }
    match body["tools"][0]["function"]["name"].as_str() {
        Some(name) => AgentTurn::Call { name: name.to_owned(), arguments: "{\"city\":\"Paris\"}".into() },
        None => AgentTurn::Answer("no tools offered".into()),
    }
}

/// `call <Tool> <json>` in a user's text: the tool and its arguments.
fn asked_call(text: &str) -> Option<(String, String)> {
    let rest = &text[text.rfind("call ")? + 5..];
    let (name, args) = rest.trim_start().split_once(' ')?;
    let args = args.trim();
    let end = args.rfind('}')? + 1;
    let json: Value = serde_json::from_str(&args[..end]).ok()?;
    Some((name.to_owned(), json.to_string()))
}

/// What a billing vendor charges for the output: `n ×` the cap it was
/// sent, or a long answer per choice when it was sent none.
fn billed_completion(body: &Value) -> u64 {
    let choices = body["n"].as_u64().unwrap_or(1).max(1);
    let cap = body["max_completion_tokens"].as_u64().or_else(|| body["max_tokens"].as_u64());
    choices * cap.unwrap_or(crate::scenario::UNCAPPED_COMPLETION)
}

/// A `text/event-stream` response streaming `events`.
pub fn sse_response(events: Vec<String>, fault: StreamFault) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(stream_body(events, fault))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn completions(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(resp) = fail_or_delay(&shared, &model, error).await {
        return resp;
    }
    let prompt = body["prompt"].as_str().unwrap_or_default().to_owned();
    let text = echo_text(&prompt);
    Json(json!({
        "id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000u64, "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": count_tokens(&prompt), "completion_tokens": count_tokens(&text),
                  "total_tokens": count_tokens(&prompt) + count_tokens(&text)}
    }))
    .into_response()
}

/// A deterministic embedding of `text`: 8 dims from its bytes, L2-normalized.
pub fn fake_embedding(text: &str, dims: usize) -> Vec<f32> {
    let n = dims.max(1);
    let mut v = vec![0f32; n];
    for (i, b) in text.bytes().enumerate() {
        v[i % n] += f32::from(b) / 255.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / norm).collect()
}

async fn embeddings(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(resp) = fail_or_delay(&shared, &model, error).await {
        return resp;
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let dims = body["dimensions"].as_u64().unwrap_or(8) as usize;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": fake_embedding(t, dims)}))
        .collect();
    let tokens: u64 = inputs.iter().map(|t| count_tokens(t)).sum();
    Json(json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
        .into_response()
}

async fn models() -> Response {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 1_700_000_000u64, "owned_by": "mock"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}
