//! `POST /v1/chat/completions`, blocking and streamed, governed: admitted
//! against the caller's limits and budgets, settled to the actual usage.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use hoosh_core::ChunkStream;
use hoosh_core::router::Need;
use hoosh_governance::Scope;
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse, Usage};
use tokio::time::Duration;

use super::served_by;
use crate::auth::Caller;
use crate::cache::{Answer, Verdict};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::metering::{self, Ask, Media, Metered, Served};
use crate::state::AppState;
use crate::{sse, validate};

pub async fn chat_completions(
    State(st): State<AppState>,
    caller: Caller,
    request_headers: HeaderMap,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Inference)?;
    validate::chat(&req)?;
    let live = st.live();
    let candidates = live.router.candidates(&req.model, Need::Chat)?;
    let cap = u64::from(req.output_cap().unwrap_or(live.config.governance.default_max_tokens));
    let prompt = metering::prompt_tokens(&candidates, &req);
    // Admitted first: a cache hit still counts toward rate limits.
    let meter = Metered::admit(
        &st,
        &live,
        &caller,
        Ask {
            route: "chat",
            model: &req.model,
            candidates: &candidates,
            prompt_estimate: prompt,
            output_cap: cap,
            media: Media::default(),
        },
    )?;
    meter.audit_content(&caller, || serde_json::json!(req.messages));
    let mut headers = meter.headers();
    let key = st.cache.key(&req, &request_headers, &caller.principal);
    let keepalive = Duration::from_secs(live.config.server.sse_keepalive_secs.max(1));
    if let Some(answer) = key.as_ref().and_then(|k| st.cache.get(k)) {
        let reply = match (answer.as_ref(), req.stream) {
            (Answer::Whole(r), false) => Some(Json(r.clone()).into_response()),
            (Answer::Stream(chunks), true) => {
                let replay: ChunkStream = Box::pin(futures_util::stream::iter(chunks.clone().into_iter().map(Ok)));
                let events = sse::events(replay, req.wants_stream_usage(), sse::render_chat);
                Some(sse::response(events, keepalive))
            }
            _ => None,
        };
        if let Some(reply) = reply {
            meter.settle_cache_hit();
            crate::metrics::record_cache(Verdict::Hit.as_str());
            headers.insert("x-hoosh-cache", HeaderValue::from_static(Verdict::Hit.as_str()));
            return Ok((headers, reply).into_response());
        }
    }
    let verdict = if key.is_some() { Verdict::Miss } else { Verdict::Bypass };
    crate::metrics::record_cache(verdict.as_str());
    headers.insert("x-hoosh-cache", HeaderValue::from_static(verdict.as_str()));
    if req.stream {
        let out = match live.executor.chat_stream(&candidates, &req).await {
            Ok(out) => out,
            Err(f) => return Err(meter.fail(f)),
        };
        headers.extend(served_by(&out));
        let upstream = match key {
            Some(k) => st.cache.record_stream(k, out.value),
            None => out.value,
        };
        let stream = meter.stream(upstream, out.entry.clone(), out.model.clone());
        let events = sse::events(stream, req.wants_stream_usage(), sse::render_chat);
        Ok((headers, sse::response(events, keepalive)).into_response())
    } else {
        let out = match live.executor.chat(&candidates, &req).await {
            Ok(out) => out,
            Err(f) => return Err(meter.fail(f)),
        };
        headers.extend(served_by(&out));
        let usage = out.value.usage.unwrap_or_else(|| counted_usage(prompt, &out.value));
        let served = Served { entry: &out.entry, model: &out.model, usage };
        if let Some(cost) = meter.settle(Some(served), 200) {
            headers.insert("x-hoosh-cost-usd", cost);
        }
        if let Some(k) = key {
            st.cache.put(k, Answer::Whole(out.value.clone()));
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
