//! A mock Ollama server speaking the native API: `POST /api/chat` (JSON, or
//! NDJSON when `stream` is true or absent, as in Ollama), `POST /api/embed`,
//! `GET /api/tags` and `GET /api/version`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::openai::{fail_or_delay, fake_embedding};
use crate::scenario::{Scenario, count_tokens, echo_pieces, echo_text};
use crate::server::{MockServer, Shared, StreamFault};

/// Model names `/api/tags` lists.
pub const MODELS: &[&str] = &["llama3.2:latest", "qwen2.5:7b", "nomic-embed-text:latest"];

/// The version `/api/version` reports.
pub const VERSION: &str = "0.6.5";

/// Ollama stamps every answer; a fixed time keeps recordings stable.
const CREATED_AT: &str = "2024-07-01T12:00:00.000000Z";

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/chat", post(chat))
        .route("/api/embed", post(embed))
        .route("/api/tags", get(tags))
        .route("/api/version", get(version))
}

pub async fn start() -> MockServer {
    MockServer::start(router()).await.unwrap_or_else(|e| panic!("mock ollama: {e}"))
}

/// Ollama's error body, `{"error": "..."}`, with `Retry-After` when given.
pub fn error(status: u16, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match status {
        400 => "invalid request: mock says no",
        404 => "model not found, try pulling it first",
        429 => "too many requests",
        503 => "server busy, please try again.  maximum pending requests exceeded",
        _ => "llama runner process has terminated: exit status 2",
    };
    let mut resp = (code, Json(json!({"error": message}))).into_response();
    if let Some(s) = retry_after
        && let Ok(v) = s.to_string().parse()
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn last_user_text(body: &Value) -> String {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    msgs.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or_default().to_owned()
}

fn line(model: &str, message: Value) -> Value {
    json!({"model": model, "created_at": CREATED_AT, "message": message, "done": false})
}

/// The last object of an answer: Ollama's counts and timings (nanoseconds).
fn done_line(model: &str, message: Value, done_reason: &str, prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "model": model, "created_at": CREATED_AT, "message": message, "done": true, "done_reason": done_reason,
        "total_duration": 1_234_567_890u64, "load_duration": 12_345_678u64,
        "prompt_eval_count": prompt_tokens, "prompt_eval_duration": 23_456_789u64,
        "eval_count": completion_tokens, "eval_duration": 345_678_901u64
    })
}

async fn chat(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(resp) = fail_or_delay(&shared, &model, error).await {
        return resp;
    }
    let scenario = Scenario::parse(&model);
    let user = last_user_text(&body);
    let prompt_tokens = count_tokens(&serde_json::to_string(&body["messages"]).unwrap_or_default());
    let tool_name = body["tools"][0]["function"]["name"].as_str().unwrap_or("get_weather").to_owned();
    let tool_message = json!({"role": "assistant", "content": "",
        "tool_calls": [{"function": {"name": tool_name, "arguments": {"city": "Paris"}}}]});
    let done_reason = if scenario == Scenario::Length { "length" } else { "stop" };
    if body["stream"].as_bool() == Some(false) {
        let message = match scenario {
            Scenario::Tool => tool_message,
            Scenario::Length => json!({"role": "assistant", "content": "echo"}),
            _ => json!({"role": "assistant", "content": echo_text(&user)}),
        };
        let completion = count_tokens(message["content"].as_str().unwrap_or("x"));
        return Json(done_line(&model, message, done_reason, prompt_tokens, completion)).into_response();
    }
    let mut lines = Vec::new();
    let mut completion_text = String::new();
    match scenario {
        Scenario::EmptyStream => return ndjson_response(Vec::new(), StreamFault::default()),
        Scenario::Tool => lines.push(line(&model, tool_message)),
        _ => {
            for piece in echo_pieces(&user) {
                completion_text.push_str(&piece);
                lines.push(line(&model, json!({"role": "assistant", "content": piece})));
            }
        }
    }
    let completion = count_tokens(if completion_text.is_empty() { "x" } else { &completion_text });
    let last = json!({"role": "assistant", "content": ""});
    lines.push(done_line(&model, last, done_reason, prompt_tokens, completion));
    let lines: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
    let (pieces, fault) = match scenario {
        Scenario::Cut => (whole(lines), StreamFault { cut_after: Some(2), ..Default::default() }),
        Scenario::Stall { delay } => {
            (whole(lines), StreamFault { stall_after_first: Some(delay), ..Default::default() })
        }
        _ => (split_mid_char(lines), StreamFault::default()),
    };
    ndjson_response(pieces, fault)
}

fn whole(lines: Vec<String>) -> Vec<Bytes> {
    lines.into_iter().map(Bytes::from).collect()
}

/// Each line sent as two network pieces, cut inside its first multi-byte
/// character when it has one, so clients must reassemble both lines and
/// characters.
fn split_mid_char(lines: Vec<String>) -> Vec<Bytes> {
    let mut out = Vec::new();
    for l in lines {
        let at = l.char_indices().find(|(_, c)| c.len_utf8() > 1).map_or(l.len() / 2, |(i, _)| i + 1);
        let bytes = Bytes::from(l);
        out.push(bytes.slice(..at));
        out.push(bytes.slice(at..));
    }
    out
}

/// An `application/x-ndjson` response streaming `pieces`. The same pacing
/// and faults as [`crate::server::stream_body`], over bytes rather than
/// strings because a piece may end inside a character.
fn ndjson_response(pieces: Vec<Bytes>, fault: StreamFault) -> Response {
    let stream = futures_util::stream::unfold((0usize, pieces, fault), |(i, pieces, fault)| async move {
        if i == usize::MAX {
            return None;
        }
        if fault.cut_after == Some(i) {
            return Some((Err(std::io::Error::other("mock cut the stream")), (usize::MAX, pieces, fault)));
        }
        let piece = pieces.get(i)?.clone();
        if i == 1
            && let Some(d) = fault.stall_after_first
        {
            tokio::time::sleep(d).await;
        } else if i > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Some((Ok::<_, std::io::Error>(piece), (i + 1, pieces, fault)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn embed(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
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
    let embeddings: Vec<Vec<f32>> = inputs.iter().map(|t| fake_embedding(t, dims)).collect();
    let tokens: u64 = inputs.iter().map(|t| count_tokens(t)).sum();
    Json(json!({"model": model, "embeddings": embeddings, "total_duration": 14_143_917u64,
        "load_duration": 1_019_500u64, "prompt_eval_count": tokens}))
    .into_response()
}

async fn tags() -> Response {
    let models: Vec<Value> = MODELS
        .iter()
        .map(|m| {
            json!({"name": m, "model": m, "modified_at": CREATED_AT, "size": 2_019_393_189u64,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                    "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}})
        })
        .collect();
    Json(json!({"models": models})).into_response()
}

async fn version() -> Response {
    Json(json!({"version": VERSION})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_end_inside_multibyte_characters() {
        let lines = vec!["{\"a\":\"x \u{e9}\u{1f600}\"}\n".to_owned(), "{\"done\":true}\n".to_owned()];
        let pieces = split_mid_char(lines.clone());
        assert_eq!(pieces.len(), 4);
        assert!(std::str::from_utf8(&pieces[0]).is_err(), "the first piece ends inside `\u{e9}`");
        assert!(std::str::from_utf8(&pieces[2]).is_ok());
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(joined, lines.concat().into_bytes());
    }
}
