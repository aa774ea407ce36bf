//! `POST /v1/messages` (Anthropic Messages, blocking and streamed) and
//! `POST /v1/messages/count_tokens`: decode into the canonical request, run
//! the pipeline, answer in Anthropic's shapes. The client's body rides along
//! (`req.native`): an Anthropic provider sends it untranslated and its
//! answer comes back untouched; any other provider gets the translation. `anthropic-version`,
//! `anthropic-beta` and `?beta=true` are accepted; the key comes as
//! `x-api-key` or `Authorization: Bearer` (see `auth`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hoosh_core::ChunkStream;
use hoosh_core::router::Need;
use hoosh_governance::{Denied, Scope};
use hoosh_types::anthropic::MessagesRequest;
use hoosh_types::native::{NativeApi, NativeRequest};
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::extract::{ApiJson, from_value, parse};
use crate::ingress::anthropic::{self, Decoded, response, stream};
use crate::ingress::report_dropped;
use crate::pipeline::chat::{ChatCall, ChatFormat};
use crate::pipeline::estimate;
use crate::state::AppState;
use crate::{pipeline, sse, validate};

/// Anthropic's message and event shapes. `dropped` names what the request
/// carried that no non-Anthropic target can run (server tools); it is
/// reported in `x-hoosh-ingress-dropped`.
pub struct AnthropicMessages {
    dropped: Vec<String>,
}

impl ChatFormat for AnthropicMessages {
    const ROUTE: &'static str = "messages";

    fn whole(&self, resp: ChatCompletionResponse) -> Response {
        match resp.native {
            // An Anthropic provider's own answer, untouched.
            Some(native) => Json(native.as_ref()).into_response(),
            None => report_dropped(Json(response::encode(resp)).into_response(), &self.dropped),
        }
    }

    fn stream(&self, chunks: ChunkStream, req: &ChatCompletionRequest, keepalive: Duration) -> Response {
        report_dropped(sse::response(stream::events(chunks, &req.model), keepalive), &self.dropped)
    }
}

/// Client headers an Anthropic provider gets as sent (the betas the body
/// may rely on).
const FORWARDED: [&str; 1] = ["anthropic-beta"];

pub async fn messages(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let body = Value::Object(body);
    let typed: MessagesRequest = from_value(&body)?;
    let Decoded { mut req, dropped } = anthropic::decode(typed)?;
    validate::chat(&req)?;
    let Value::Object(body) = body else { unreachable!("built as an object above") };
    let forwarded = FORWARDED
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), headers.get(*name)?.to_str().ok()?.to_owned())))
        .collect();
    req.native = Some(Arc::new(NativeRequest { api: NativeApi::AnthropicMessages, body, headers: forwarded }));
    let call =
        ChatCall { req, format: AnthropicMessages { dropped }, cache_directive: ResponseCache::directive(&headers) };
    pipeline::run(&st, &caller, call).await
}

/// `{"input_tokens": N}`: the prompt as the gateway counts it for
/// admission — by the model's own tokenizer where one is known, else the
/// same upper-bound estimate budgets reserve. Calls no provider and costs
/// nothing; the model must be one the caller may use.
pub async fn count_tokens(caller: Caller, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Inference)?;
    // The same body as a message, without `max_tokens`.
    let mut value: Value = parse(&body)?;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("max_tokens").or_insert(json!(1));
        obj.remove("stream");
    }
    let req: MessagesRequest = parse(&serde_json::to_vec(&value).unwrap_or_default())?;
    let Decoded { req, .. } = anthropic::decode(req)?;
    validate::chat(&req)?;
    let candidates = caller.live.router.candidates(&req.model, Need::Chat)?;
    let candidates: Vec<_> =
        candidates.into_iter().filter(|c| caller.principal.allows_served(c.entry.name(), &c.model)).collect();
    if candidates.is_empty() {
        return Err(Denied::ModelNotAllowed { model: req.model }.into());
    }
    let (tokens, _) = estimate::prompt_tokens(&candidates, &req);
    Ok(Json(json!({ "input_tokens": tokens })))
}
