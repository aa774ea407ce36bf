//! A mock Gemini (Generative Language API v1beta):
//! `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse`, `:batchEmbedContents`, and
//! `GET /v1beta/models`. Like Google it wants the key in `x-goog-api-key`,
//! answers errors as `{"error":{"code","message","status","details"}}`, and
//! refuses request fields it does not know, so an adapter that sends a
//! snake_case key or an unsupported schema keyword fails here as it would
//! there.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::openai::{fail_or_delay, fake_embedding, sse_response};
use crate::scenario::{Scenario, count_tokens, echo_pieces, echo_text};
use crate::server::{MockServer, Shared, StreamFault};

/// Model names `GET /v1beta/models` lists (with Google's `models/` prefix).
pub const MODELS: &[&str] = &["models/gemini-2.0-flash", "models/gemini-2.5-pro", "models/text-embedding-004"];

/// A key the mock treats as wrong (Google answers a bad key with 400).
pub const INVALID_KEY: &str = "invalid-key";

const REQUEST_FIELDS: &[&str] =
    &["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"];

const GENERATION_CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
    "responseModalities",
    "mediaResolution",
];

/// Schema keywords Google rejects in function parameters and response schemas.
const REJECTED_SCHEMA_KEYS: &[&str] = &["additionalProperties", "$schema"];

pub fn router() -> Router<Arc<Shared>> {
    Router::new().route("/v1beta/models", get(models)).route("/v1beta/models/{model_and_method}", post(model_call))
}

pub async fn start() -> MockServer {
    MockServer::start(router()).await.unwrap_or_else(|e| panic!("mock gemini: {e}"))
}

fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Google's error envelope with the given message and details.
pub fn error_with(status: u16, message: &str, details: Vec<Value>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut error = json!({"code": status, "message": message, "status": status_name(status)});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    (code, Json(json!({ "error": error }))).into_response()
}

/// The error a scenario asks for. Like Google, a retry delay travels as a
/// `RetryInfo` detail in the body, not as a `Retry-After` header.
pub fn error(status: u16, retry_after: Option<u64>) -> Response {
    let message = match status {
        400 => "Invalid JSON payload received. Unknown name \"mock\": Cannot find field.",
        401 => "Request had invalid authentication credentials.",
        403 => "The caller does not have permission",
        404 => "models/mock is not found for API version v1beta, or is not supported for generateContent.",
        429 => "Resource has been exhausted (e.g. check quota).",
        503 => "The model is overloaded. Please try again later.",
        _ => {
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        }
    };
    let details = match retry_after {
        Some(secs) => {
            vec![json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{secs}s")})]
        }
        None => Vec::new(),
    };
    error_with(status, message, details)
}

/// Google's answers for a missing key (403) and a wrong one (400 with an
/// `API_KEY_INVALID` reason).
fn check_key(headers: &HeaderMap) -> Option<Response> {
    let key = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if key.is_empty() {
        return Some(error_with(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            Vec::new(),
        ));
    }
    if key == INVALID_KEY {
        return Some(error_with(
            400,
            "API key not valid. Please pass a valid API key.",
            vec![
                json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}),
            ],
        ));
    }
    None
}

async fn models(headers: HeaderMap) -> Response {
    if let Some(resp) = check_key(&headers) {
        return resp;
    }
    let models: Vec<Value> = MODELS
        .iter()
        .map(|name| {
            let embedding = name.contains("embedding");
            let methods = if embedding {
                json!(["embedContent", "batchEmbedContents"])
            } else {
                json!(["generateContent", "countTokens"])
            };
            json!({"name": name, "version": "001", "displayName": name.trim_start_matches("models/"),
                   "inputTokenLimit": 1_048_576, "outputTokenLimit": 8192, "supportedGenerationMethods": methods})
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

async fn model_call(
    State(shared): State<Arc<Shared>>,
    Path(model_and_method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(resp) = check_key(&headers) {
        return resp;
    }
    let Some((model, method)) = model_and_method.rsplit_once(':') else {
        return error_with(404, &format!("unknown method in `{model_and_method}`"), Vec::new());
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error_with(400, "Invalid JSON payload received.", Vec::new());
    };
    if let Some(resp) = fail_or_delay(&shared, model, error).await {
        return resp;
    }
    let sse = query.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    match method {
        "generateContent" => generate(model, &body, false),
        "streamGenerateContent" if sse => generate(model, &body, true),
        "streamGenerateContent" => error_with(400, "this mock streams only with ?alt=sse", Vec::new()),
        "batchEmbedContents" => batch_embed(model, &body),
        _ => error_with(404, &format!("Method `{method}` not found."), Vec::new()),
    }
}

/// The checks behind Google's most common 400s.
fn validate(body: &Value) -> Result<(), String> {
    let Some(obj) = body.as_object() else {
        return Err("Invalid JSON payload received.".into());
    };
    if let Some(k) = obj.keys().find(|k| !REQUEST_FIELDS.contains(&k.as_str())) {
        return Err(format!("Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."));
    }
    if let Some(cfg) = obj.get("generationConfig").and_then(Value::as_object)
        && let Some(k) = cfg.keys().find(|k| !GENERATION_CONFIG_FIELDS.contains(&k.as_str()))
    {
        return Err(format!(
            "Invalid JSON payload received. Unknown name \"{k}\" at 'generation_config': Cannot find field."
        ));
    }
    let contents = obj.get("contents").and_then(Value::as_array).cloned().unwrap_or_default();
    if contents.is_empty() {
        return Err("* GenerateContentRequest.contents: contents is not specified".into());
    }
    for c in &contents {
        if !matches!(c["role"].as_str(), Some("user" | "model")) {
            return Err("Please use a valid role: user, model.".into());
        }
        if c["parts"].as_array().is_none_or(Vec::is_empty) {
            return Err("* GenerateContentRequest.contents.parts: contents.parts must not be empty.".into());
        }
    }
    for schema in [&body["tools"], &body["generationConfig"]["responseSchema"]] {
        if let Some(k) = rejected_schema_key(schema) {
            return Err(format!("Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."));
        }
    }
    Ok(())
}

fn rejected_schema_key(v: &Value) -> Option<&'static str> {
    match v {
        Value::Object(map) => REJECTED_SCHEMA_KEYS
            .iter()
            .find(|k| map.contains_key(**k))
            .copied()
            .or_else(|| map.values().find_map(rejected_schema_key)),
        Value::Array(items) => items.iter().find_map(rejected_schema_key),
        _ => None,
    }
}

fn last_user_text(body: &Value) -> String {
    let contents = body["contents"].as_array().cloned().unwrap_or_default();
    let Some(c) = contents.iter().rev().find(|c| c["role"] == "user") else {
        return String::new();
    };
    c["parts"].as_array().into_iter().flatten().filter_map(|p| p["text"].as_str()).collect()
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion,
           "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]})
}

fn response(model: &str, parts: Value, finish: Option<&str>, usage: Value) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "mock-response-1"})
}

fn generate(model: &str, body: &Value, stream: bool) -> Response {
    if let Err(message) = validate(body) {
        return error_with(400, &message, Vec::new());
    }
    let scenario = Scenario::parse(model);
    let user = last_user_text(body);
    let prompt_text = format!("{} {}", body["systemInstruction"], body["contents"]);
    let prompt = count_tokens(&prompt_text);
    let tool_name = body["tools"][0]["functionDeclarations"][0]["name"].as_str().unwrap_or("get_weather").to_owned();
    let call = json!([{"functionCall": {"name": tool_name, "args": {"city": "Paris"}}}]);
    if !stream {
        let answer = match scenario {
            Scenario::Tool => response(model, call, Some("STOP"), usage(prompt, 5)),
            Scenario::Length => response(model, json!([{"text": "echo"}]), Some("MAX_TOKENS"), usage(prompt, 1)),
            _ => {
                let text = echo_text(&user);
                response(model, json!([{ "text": text }]), Some("STOP"), usage(prompt, count_tokens(&text)))
            }
        };
        return Json(answer).into_response();
    }
    let event = |v: Value| format!("data: {v}\r\n\r\n");
    let running = json!({"promptTokenCount": prompt, "totalTokenCount": prompt});
    let mut pieces = Vec::new();
    match scenario {
        Scenario::EmptyStream => return sse_response(Vec::new(), StreamFault::default()),
        Scenario::Tool => pieces.push(event(response(model, call, Some("STOP"), usage(prompt, 5)))),
        Scenario::Length => {
            pieces.push(event(response(model, json!([{"text": "echo"}]), Some("MAX_TOKENS"), usage(prompt, 1))));
        }
        _ => {
            let texts = echo_pieces(&user);
            let total = count_tokens(&texts.concat());
            let last = texts.len().saturating_sub(1);
            for (i, text) in texts.into_iter().enumerate() {
                let parts = json!([{ "text": text }]);
                if i < last {
                    pieces.push(event(response(model, parts, None, running.clone())));
                } else {
                    // Google ends with the last text, the finish reason and
                    // the full usage in one event; it is sent in two network
                    // pieces, split inside the text, to exercise reassembly.
                    let ev = event(response(model, parts, Some("STOP"), usage(prompt, total)));
                    let cut = ev.find('\u{1f600}').unwrap_or(ev.len() / 2);
                    let (a, b) = ev.split_at(cut);
                    pieces.push(a.to_owned());
                    pieces.push(b.to_owned());
                }
            }
        }
    }
    let fault = match scenario {
        Scenario::Cut => StreamFault { cut_after: Some(3), ..Default::default() },
        Scenario::Stall { delay } => StreamFault { stall_after_first: Some(delay), ..Default::default() },
        _ => StreamFault::default(),
    };
    sse_response(pieces, fault)
}

fn batch_embed(model: &str, body: &Value) -> Response {
    let requests = body["requests"].as_array().cloned().unwrap_or_default();
    if requests.is_empty() {
        return error_with(400, "* BatchEmbedContentsRequest.requests: requests is not specified", Vec::new());
    }
    let expected = format!("models/{model}");
    let mut embeddings = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        if r["model"].as_str() != Some(expected.as_str()) {
            return error_with(
                400,
                &format!("* BatchEmbedContentsRequest.requests[{i}].model: model must be `{expected}`, as in the URL"),
                Vec::new(),
            );
        }
        let text: String =
            r["content"]["parts"].as_array().into_iter().flatten().filter_map(|p| p["text"].as_str()).collect();
        let dims = r["outputDimensionality"].as_u64().unwrap_or(8) as usize;
        embeddings.push(json!({ "values": fake_embedding(&text, dims) }));
    }
    Json(json!({ "embeddings": embeddings })).into_response()
}
