//! `POST /v1/completions` (legacy text completions), served through the chat
//! path of whichever provider the model routes to.

use axum::Json;
use axum::extract::State;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use hoosh_core::convert::{chat_to_completion, chunk_to_completion, completion_to_chat};
use hoosh_core::router::Need;
use hoosh_types::content::OneOrMany;
use hoosh_types::openai::{ChatCompletionChunk, CompletionRequest};
use tokio::time::Duration;

use super::served_by;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::{sse, validate};

fn render(chunk: ChatCompletionChunk) -> Option<Event> {
    let c = chunk_to_completion(chunk);
    let meaningful = c.usage.is_some() || c.choices.iter().any(|ch| !ch.text.is_empty() || ch.finish_reason.is_some());
    meaningful.then(|| Event::default().json_data(&c).unwrap_or_else(|_| Event::default().data("{}")))
}

pub async fn completions(
    State(st): State<AppState>,
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
    let candidates = st.router.candidates(&chat.model, Need::Chat)?;
    if chat.stream {
        let out = st.executor.chat_stream(&candidates, &chat).await?;
        let headers = served_by(&out);
        let events = sse::events(out.value, chat.wants_stream_usage(), render);
        let keepalive = Duration::from_secs(st.config.server.sse_keepalive_secs.max(1));
        Ok((headers, sse::response(events, keepalive)).into_response())
    } else {
        let out = st.executor.chat(&candidates, &chat).await?;
        let headers = served_by(&out);
        Ok((headers, Json(chat_to_completion(out.value))).into_response())
    }
}
