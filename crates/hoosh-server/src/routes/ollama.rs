//! Ollama's API (`/api/*`), so Ollama clients — editors, Open WebUI, the
//! `ollama` libraries — reach every model hoosh routes, remote or local:
//! `POST /api/chat`, `POST /api/generate`, `POST /api/embed` and the older
//! `POST /api/embeddings` run the pipeline; `GET /api/tags`,
//! `POST /api/show`, `GET /api/ps` and `GET /api/version` describe what is
//! served. Errors are Ollama's `{"error": …}` (see `ingress::shape_errors`).

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hoosh_core::router::Need;
use hoosh_core::{ChunkStream, EmbedRequest, Placement};
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::ingress::ollama::request::{self, ChatRequest, GenerateRequest};
use crate::ingress::ollama::response::{Frame, Shape, created_at};
use crate::pipeline::chat::{ChatCall, ChatFormat};
use crate::pipeline::embed::{EmbedCall, EmbedFormat};
use crate::routes::models;
use crate::state::AppState;
use crate::{pipeline, validate};

/// The Ollama API version reported to clients that check it: the one whose
/// wire format this module follows.
pub const OLLAMA_API_VERSION: &str = "0.12.0";

/// Ollama's answer shapes, for `/api/chat` and `/api/generate`.
pub struct OllamaFormat(Frame);

impl ChatFormat for OllamaFormat {
    const ROUTE: &'static str = "ollama.chat";

    fn whole(&self, resp: ChatCompletionResponse) -> Response {
        Json(self.0.whole(&resp)).into_response()
    }

    fn stream(&self, chunks: ChunkStream, _req: &ChatCompletionRequest, _keepalive: Duration) -> Response {
        self.0.clone().stream(chunks)
    }
}

async fn run_chat(
    st: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    req: ChatCompletionRequest,
    shape: Shape,
) -> Result<Response, ApiError> {
    validate::chat(&req)?;
    let frame = Frame { shape, model: req.model.clone(), started: Instant::now() };
    let call = ChatCall { req, format: OllamaFormat(frame), cache_directive: ResponseCache::directive(headers) };
    pipeline::run(st, caller, call).await
}

pub async fn chat(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let req = request::chat(req)?;
    run_chat(&st, &caller, &headers, req, Shape::Chat).await
}

/// An empty prompt asks Ollama to load the model: answered at once, with
/// nothing run and nothing charged.
pub async fn generate(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    if req.prompt.is_empty() && req.images.as_ref().is_none_or(Vec::is_empty) {
        caller.live.router.candidates(&req.model, Need::Chat)?;
        let line = json!({"model": req.model, "created_at": created_at(), "response": "", "done": true,
            "done_reason": "load"});
        return Ok(Json(line).into_response());
    }
    let req = request::generate(req);
    run_chat(&st, &caller, &headers, req, Shape::Generate).await
}

#[derive(Debug, Deserialize)]
pub struct EmbedBody {
    model: String,
    input: Value,
}

#[derive(Debug, Deserialize)]
pub struct LegacyEmbedBody {
    model: String,
    prompt: String,
}

pub async fn embed(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<EmbedBody>,
) -> Result<Response, ApiError> {
    let input = match body.input {
        Value::String(s) => vec![s],
        Value::Array(a) => {
            a.into_iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().ok_or_else(|| {
                ApiError::invalid("`input` must be a string or a list of strings.", Some("input".into()))
            })?
        }
        _ => return Err(ApiError::invalid("`input` must be a string or a list of strings.", Some("input".into()))),
    };
    embed_with(&st, &caller, body.model, input, EmbedFormat::Ollama).await
}

pub async fn embeddings(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<LegacyEmbedBody>,
) -> Result<Response, ApiError> {
    embed_with(&st, &caller, body.model, vec![body.prompt], EmbedFormat::OllamaLegacy).await
}

async fn embed_with(
    st: &AppState,
    caller: &Caller,
    model: String,
    input: Vec<String>,
    format: EmbedFormat,
) -> Result<Response, ApiError> {
    let req = hoosh_types::openai::EmbeddingRequest {
        model: model.clone(),
        input: hoosh_types::content::OneOrMany::Many(input.clone()),
        encoding_format: None,
        dimensions: None,
        user: None,
    };
    validate::embeddings(&req)?;
    let call = EmbedCall { call: EmbedRequest { model, input, dimensions: None, user: None }, format };
    pipeline::run(st, caller, call).await
}

/// One model as `/api/tags` and `/api/ps` list it. Sizes and digests are
/// the runtime's business; hoosh reports what it knows.
fn model_entry(name: &str, owner: &str) -> Value {
    json!({
        "name": name, "model": name, "modified_at": "1970-01-01T00:00:00Z", "size": 0, "digest": "",
        "details": {"parent_model": "", "format": "", "family": owner, "families": [owner],
                    "parameter_size": "", "quantization_level": ""},
    })
}

pub async fn tags(State(st): State<AppState>) -> Json<Value> {
    let models: Vec<Value> = models::merged(&st).await.iter().map(|m| model_entry(&m.id, &m.owned_by)).collect();
    Json(json!({ "models": models }))
}

/// The in-process models loaded now.
pub async fn ps(State(st): State<AppState>) -> Json<Value> {
    let live = st.live();
    let mut models = Vec::new();
    for e in live.router.entries().iter().filter(|e| e.placement == Placement::InProcess) {
        for m in e.literal_models() {
            if e.provider.model_loaded(m) == Some(true) {
                let mut entry = model_entry(m, e.name());
                entry["expires_at"] = json!("2262-04-11T23:47:16Z");
                entry["size_vram"] = json!(0);
                models.push(entry);
            }
        }
    }
    Json(json!({ "models": models }))
}

#[derive(Debug, Deserialize)]
pub struct ShowBody {
    #[serde(alias = "name")]
    model: String,
}

pub async fn show(State(st): State<AppState>, ApiJson(body): ApiJson<ShowBody>) -> Result<Json<Value>, ApiError> {
    let live = st.live();
    let chat = live.router.candidates(&body.model, Need::Chat).ok();
    let embeds = live.router.candidates(&body.model, Need::Embeddings).ok();
    let owner = match chat.as_deref().or(embeds.as_deref()).and_then(|c| c.first()) {
        Some(c) => c.entry.name().to_owned(),
        None => return Err(ApiError::ModelNotFound(body.model)),
    };
    let mut capabilities = Vec::new();
    if chat.is_some() {
        capabilities.extend(["completion", "tools"]);
    }
    if embeds.is_some() {
        capabilities.push("embedding");
    }
    let details = model_entry(&body.model, &owner)["details"].clone();
    Ok(Json(json!({
        "modelfile": "", "parameters": "", "template": "", "details": details,
        "model_info": {}, "capabilities": capabilities,
    })))
}

pub async fn version() -> Json<Value> {
    Json(json!({ "version": OLLAMA_API_VERSION }))
}
