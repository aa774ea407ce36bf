//! `POST /v1/completions` (legacy text completions): the prompt becomes a
//! chat request that runs the pipeline; answers in the completion shape.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use hoosh_core::ChunkStream;
use hoosh_core::convert::{chat_to_completion, chunk_to_completion, completion_to_chat};
use hoosh_types::content::OneOrMany;
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, CompletionRequest};

use crate::auth::Caller;
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::pipeline::chat::{ChatCall, ChatFormat};
use crate::state::AppState;
use crate::{pipeline, sse, validate};

fn render(chunk: ChatCompletionChunk) -> Option<Event> {
    let c = chunk_to_completion(chunk);
    let meaningful = c.usage.is_some() || c.choices.iter().any(|ch| !ch.text.is_empty() || ch.finish_reason.is_some());
    meaningful.then(|| Event::default().json_data(&c).unwrap_or_else(|_| Event::default().data("{}")))
}

/// OpenAI's legacy `text_completion` shapes.
pub struct LegacyCompletion;

impl ChatFormat for LegacyCompletion {
    const ROUTE: &'static str = "completions";

    fn whole(&self, resp: ChatCompletionResponse) -> Response {
        Json(chat_to_completion(resp)).into_response()
    }

    fn stream(&self, chunks: ChunkStream, req: &ChatCompletionRequest, keepalive: Duration) -> Response {
        sse::response(sse::events(chunks, req.wants_stream_usage(), render), keepalive)
    }
}

pub async fn completions(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let prompt = match &req.prompt {
        OneOrMany::One(p) => p.clone(),
        OneOrMany::Many(v) if v.len() == 1 => v[0].clone(),
        OneOrMany::Many(_) => {
            return Err(ApiError::invalid(
                "`prompt` must be a single string; send one request per prompt.",
                Some("prompt".to_owned()),
            ));
        }
    };
    let chat = completion_to_chat(&req, &prompt);
    validate::chat(&chat)?;
    let call = ChatCall { req: chat, format: LegacyCompletion, cache_directive: ResponseCache::directive(&headers) };
    pipeline::run(&st, &caller, call).await
}
