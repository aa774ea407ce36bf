//! The OpenAI Responses API: `POST /v1/responses` (whole and streamed),
//! `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items`. A request is decoded into the
//! canonical chat request (continuing a stored conversation when it names
//! `previous_response_id`), runs the pipeline, and is answered as a
//! response object or its event lifecycle; `store` (default true) keeps the
//! answer for the key that made it.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hoosh_core::ChunkStream;
use hoosh_governance::Scope;
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use hoosh_types::responses::ResponsesRequest;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::ingress::report_dropped;
use crate::ingress::responses::response::{self, Echo};
use crate::ingress::responses::stored::{self, Keep};
use crate::ingress::responses::{self as ingress, Decoded, Tools, stream};
use crate::pipeline::chat::{ChatCall, ChatFormat};
use crate::state::AppState;
use crate::{pipeline, sse, validate};

/// The Responses API's shapes for one request.
pub struct OpenAiResponses {
    echo: Echo,
    tools: Tools,
    dropped: Vec<String>,
    keep: Option<Keep>,
}

impl ChatFormat for OpenAiResponses {
    const ROUTE: &'static str = "responses";

    fn whole(&self, resp: ChatCompletionResponse) -> Response {
        let object = response::encode(&resp, &self.echo, &self.tools);
        if let Some(keep) = self.keep.clone() {
            keep.save(&object);
        }
        report_dropped(Json(object).into_response(), &self.dropped)
    }

    fn stream(&self, chunks: ChunkStream, _req: &ChatCompletionRequest, keepalive: Duration) -> Response {
        let translator = stream::Translator::new(self.echo.clone(), self.tools.clone());
        let keep = self.keep.clone();
        let events = stream::events(chunks, translator, move |finished| {
            if let Some(keep) = keep {
                keep.save(finished);
            }
        });
        report_dropped(sse::response(events, keepalive), &self.dropped)
    }
}

pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ResponsesRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Inference)?;
    let owner = caller.principal.id().to_owned();
    let store = st.gov.inner.store();
    let previous = match &req.previous_response_id {
        Some(id) => stored::conversation(&stored::load(store, id, &owner).await?),
        None => Vec::new(),
    };
    let echo = Echo::new(&req);
    let keep_it = req.store.unwrap_or(true);
    let input_items = stored::input_items(req.input.as_ref());
    let has_instructions = req.instructions.as_deref().is_some_and(|s| !s.is_empty());
    let Decoded { req, dropped, tools } = ingress::decode(req, previous)?;
    validate::chat(&req)?;
    let keep = keep_it.then(|| Keep {
        store: std::sync::Arc::clone(store),
        owner,
        now_ms: st.now_ms(),
        // `instructions` apply to this request only: the first message, left out.
        conversation: req.messages.iter().skip(usize::from(has_instructions)).cloned().collect(),
        input_items,
    });
    let format = OpenAiResponses { echo, tools, dropped, keep };
    let call = ChatCall { req, format, cache_directive: ResponseCache::directive(&headers) };
    pipeline::run(&st, &caller, call).await
}

pub async fn get(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Inference)?;
    let found = stored::load(st.gov.inner.store(), &id, caller.principal.id()).await?;
    Ok(Json(found.response))
}

pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Inference)?;
    let store = st.gov.inner.store();
    stored::load(store, &id, caller.principal.id()).await?;
    let (store, key) = (std::sync::Arc::clone(store), id.clone());
    tokio::task::spawn_blocking(move || store.delete_response(&key))
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({"id": id, "object": "response", "deleted": true})))
}

pub async fn input_items(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Inference)?;
    let found = stored::load(st.gov.inner.store(), &id, caller.principal.id()).await?;
    let data = found.input_items.as_array().cloned().unwrap_or_default();
    let first = data.first().and_then(|i| i.get("id")).cloned();
    let last = data.last().and_then(|i| i.get("id")).cloned();
    Ok(Json(json!({"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": false})))
}
