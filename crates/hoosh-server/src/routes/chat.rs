//! `POST /v1/chat/completions`, blocking and streamed: decode, validate, and
//! run the pipeline; answers in OpenAI's chat shape.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hoosh_core::ChunkStream;
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse};

use crate::auth::Caller;
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::pipeline::chat::{ChatCall, ChatFormat};
use crate::state::AppState;
use crate::{pipeline, sse, validate};

/// OpenAI's chat completion and chunk shapes.
pub struct OpenAiChat;

impl ChatFormat for OpenAiChat {
    const ROUTE: &'static str = "chat";

    fn whole(&self, resp: ChatCompletionResponse) -> Response {
        Json(resp).into_response()
    }

    fn stream(&self, chunks: ChunkStream, req: &ChatCompletionRequest, keepalive: Duration) -> Response {
        sse::response(sse::events(chunks, req.wants_stream_usage(), sse::render_chat), keepalive)
    }
}

pub async fn chat_completions(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    validate::chat(&req)?;
    let call = ChatCall { req, format: OpenAiChat, cache_directive: ResponseCache::directive(&headers) };
    pipeline::run(&st, &caller, call).await
}
