//! `POST /v1/completions` (legacy text completions), served through the chat
//! path of whichever provider the model routes to.

use axum::Json;
use axum::extract::State;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use hoosh_core::convert::{chat_to_completion, chunk_to_completion, completion_to_chat};
use hoosh_core::router::Need;
use hoosh_governance::Scope;
use hoosh_types::content::OneOrMany;
use hoosh_types::openai::{ChatCompletionChunk, CompletionRequest};
use tokio::time::Duration;

use super::served_by;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::metering::{self, Ask, Media, Metered, Served};
use crate::state::AppState;
use crate::{sse, validate};

fn render(chunk: ChatCompletionChunk) -> Option<Event> {
    let c = chunk_to_completion(chunk);
    let meaningful = c.usage.is_some() || c.choices.iter().any(|ch| !ch.text.is_empty() || ch.finish_reason.is_some());
    meaningful.then(|| Event::default().json_data(&c).unwrap_or_else(|_| Event::default().data("{}")))
}

pub async fn completions(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Inference)?;
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
    let live = st.live();
    let candidates = live.router.candidates(&chat.model, Need::Chat)?;
    let cap = u64::from(chat.output_cap().unwrap_or(live.config.governance.default_max_tokens));
    let prompt = metering::prompt_tokens(&candidates, &chat);
    let meter = Metered::admit(
        &st,
        &live,
        &caller,
        Ask {
            route: "completions",
            model: &chat.model,
            candidates: &candidates,
            prompt_estimate: prompt,
            output_cap: cap,
            media: Media::default(),
        },
    )?;
    meter.audit_content(&caller, || serde_json::json!(chat.messages));
    let mut headers = meter.headers();
    if chat.stream {
        let out = match live.executor.chat_stream(&candidates, &chat).await {
            Ok(out) => out,
            Err(f) => return Err(meter.fail(f)),
        };
        headers.extend(served_by(&out));
        let stream = meter.stream(out.value, out.entry.clone(), out.model.clone());
        let events = sse::events(stream, chat.wants_stream_usage(), render);
        let keepalive = Duration::from_secs(live.config.server.sse_keepalive_secs.max(1));
        Ok((headers, sse::response(events, keepalive)).into_response())
    } else {
        let out = match live.executor.chat(&candidates, &chat).await {
            Ok(out) => out,
            Err(f) => return Err(meter.fail(f)),
        };
        headers.extend(served_by(&out));
        let usage = out.value.usage.unwrap_or_else(|| super::chat::counted_usage(prompt, &out.value));
        if let Some(cost) = meter.settle(Some(Served { entry: &out.entry, model: &out.model, usage }), 200) {
            headers.insert("x-hoosh-cost-usd", cost);
        }
        Ok((headers, Json(chat_to_completion(out.value))).into_response())
    }
}
