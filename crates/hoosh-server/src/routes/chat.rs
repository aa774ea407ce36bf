//! `POST /v1/chat/completions`, blocking and streamed, governed: admitted
//! against the caller's limits and budgets, settled to the actual usage.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hoosh_core::router::Need;
use hoosh_governance::Scope;
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse, Usage};
use tokio::time::Duration;

use super::served_by;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::metering::{self, Metered, Served};
use crate::state::AppState;
use crate::{sse, validate};

pub async fn chat_completions(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Inference)?;
    validate::chat(&req)?;
    let candidates = st.router.candidates(&req.model, Need::Chat)?;
    let cap = u64::from(req.output_cap().unwrap_or(st.gov.default_max_tokens));
    let prompt = metering::prompt_tokens(&candidates, &req);
    let meter = Metered::admit(&st, &caller, "chat", &req.model, &candidates, prompt, cap)?;
    let mut headers = meter.headers();
    if req.stream {
        let out = match st.executor.chat_stream(&candidates, &req).await {
            Ok(out) => out,
            Err(f) => return Err(meter.fail(f)),
        };
        headers.extend(served_by(&out));
        let stream = meter.stream(out.value, out.entry.clone(), out.model.clone());
        let events = sse::events(stream, req.wants_stream_usage(), sse::render_chat);
        let keepalive = Duration::from_secs(st.config.server.sse_keepalive_secs.max(1));
        Ok((headers, sse::response(events, keepalive)).into_response())
    } else {
        let out = match st.executor.chat(&candidates, &req).await {
            Ok(out) => out,
            Err(f) => return Err(meter.fail(f)),
        };
        headers.extend(served_by(&out));
        let usage = out.value.usage.unwrap_or_else(|| counted_usage(prompt, &out.value));
        let served = Served { entry: &out.entry, model: &out.model, usage };
        if let Some(cost) = meter.settle(Some(served), 200) {
            headers.insert("x-hoosh-cost-usd", cost);
        }
        Ok((headers, Json(out.value)).into_response())
    }
}

/// Usage for a provider that reported none: the prompt estimate and the
/// answer's text counted the same way.
pub fn counted_usage(prompt: u64, resp: &ChatCompletionResponse) -> Usage {
    let completion: u64 = resp
        .choices
        .iter()
        .map(|c| {
            let text = c.message.content.clone().unwrap_or_default();
            metering::estimate_inputs(&[text])
        })
        .sum();
    Usage::new(prompt, completion)
}
