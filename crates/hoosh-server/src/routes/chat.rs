//! `POST /v1/chat/completions`, blocking and streamed.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hoosh_core::router::Need;
use hoosh_types::openai::ChatCompletionRequest;
use tokio::time::Duration;

use super::served_by;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::{sse, validate};

pub async fn chat_completions(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    validate::chat(&req)?;
    let candidates = st.router.candidates(&req.model, Need::Chat)?;
    if req.stream {
        let out = st.executor.chat_stream(&candidates, &req).await?;
        let headers = served_by(&out);
        let events = sse::events(out.value, req.wants_stream_usage(), sse::render_chat);
        let keepalive = Duration::from_secs(st.config.server.sse_keepalive_secs.max(1));
        Ok((headers, sse::response(events, keepalive)).into_response())
    } else {
        let out = st.executor.chat(&candidates, &req).await?;
        let headers = served_by(&out);
        Ok((headers, Json(out.value)).into_response())
    }
}
