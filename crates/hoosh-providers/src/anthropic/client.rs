//! The Anthropic provider: URLs, auth headers, and the HTTP calls. A request
//! that came through hoosh's own Messages API carries the client's body
//! (`req.native`); it is sent untranslated, and the answer and every stream
//! event handed back verbatim beside the canonical form the gateway meters.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{Stream, StreamExt};
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{Capabilities, ChunkStream, ErrorKind, Provider, ProviderError};
use hoosh_types::native::{NativeApi, NativeEvent, NativeRequest};
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse};
use hoosh_types::unix_now;
use serde_json::Value;

use super::{convert, wire};
use crate::adapter::AdapterConfig;
use crate::http;
use crate::sse::{SseEvent, sse_events};

/// Pages of `GET /v1/models` read at most; a guard against an upstream that
/// keeps saying `has_more`.
const MAX_MODEL_PAGES: usize = 10;

pub struct AnthropicProvider {
    cfg: AdapterConfig,
    support: ParamSupport,
}

impl AnthropicProvider {
    pub fn new(cfg: AdapterConfig) -> Self {
        let support = cfg.param_support();
        AnthropicProvider { cfg, support }
    }

    fn url(&self, endpoint: &str) -> String {
        // `ANTHROPIC_BASE_URL` is the host without `/v1`, but a base URL
        // copied from an OpenAI-style config often carries it.
        let base = self.cfg.base_url.strip_suffix("/v1").unwrap_or(&self.cfg.base_url);
        format!("{base}/v1/{endpoint}")
    }

    fn request(&self, method: reqwest::Method, endpoint: &str) -> reqwest::RequestBuilder {
        let mut req = self.cfg.http.request(method, self.url(endpoint)).header("anthropic-version", wire::API_VERSION);
        if let Some(key) = &self.cfg.api_key {
            req = req.header("x-api-key", key.expose());
        }
        self.cfg.with_headers(req)
    }

    async fn post_messages(&self, body: &wire::MessagesRequest) -> Result<reqwest::Response, ProviderError> {
        http::send(self.request(reqwest::Method::POST, "messages").json(body)).await
    }

    /// Sends the client's own Messages body (see [`native_body`]) with the
    /// client's `anthropic-beta` header.
    async fn post_native(
        &self,
        native: &NativeRequest,
        req: &ChatCompletionRequest,
        stream: bool,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut call = self.request(reqwest::Method::POST, "messages").json(&native_body(native, req, stream));
        for (name, value) in &native.headers {
            call = call.header(name.as_str(), value.as_str());
        }
        http::send(call).await
    }
}

/// The Anthropic body a native request sends: the client's, untranslated,
/// except what the gateway decides — the served model, whether it streams,
/// and the output cap that was reserved.
pub fn native_body(native: &NativeRequest, req: &ChatCompletionRequest, stream: bool) -> Value {
    let mut body = native.body.clone();
    body.insert("model".into(), Value::String(req.model.clone()));
    body.insert("stream".into(), Value::Bool(stream));
    if let Some(cap) = req.output_cap() {
        body.insert("max_tokens".into(), cap.into());
    }
    Value::Object(body)
}

/// The request's native Messages body, if it came as one.
fn native_messages(req: &ChatCompletionRequest) -> Option<&NativeRequest> {
    req.native.as_deref().filter(|n| n.api == NativeApi::AnthropicMessages)
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn family(&self) -> &'static str {
        "anthropic"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn param_support(&self) -> &ParamSupport {
        &self.support
    }

    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChatCompletionResponse, ProviderError> {
        if let Some(native) = native_messages(req) {
            let resp = self.post_native(native, req, false).await?;
            let raw: Value = http::json(resp).await?;
            let w: wire::Response = serde_json::from_value(raw.clone())
                .map_err(|e| ProviderError::invalid_response(format!("not a Messages answer: {e}")))?;
            let mut out = convert::chat_response(w, &req.model);
            out.native = Some(Arc::new(raw));
            return Ok(out);
        }
        let body = convert::messages_request(req, dropped, false)?;
        let resp = self.post_messages(&body).await?;
        let w: wire::Response = http::json(resp).await?;
        Ok(convert::chat_response(w, &req.model))
    }

    async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChunkStream, ProviderError> {
        let native = native_messages(req);
        let resp = match native {
            Some(n) => self.post_native(n, req, true).await?,
            None => self.post_messages(&convert::messages_request(req, dropped, true)?).await?,
        };
        let st = StreamDriver {
            events: Box::pin(sse_events(resp)),
            state: convert::StreamState::new(&req.model, unix_now()),
            pending: VecDeque::new(),
            ended: false,
            keep_native: native.is_some(),
        };
        Ok(Box::pin(futures_util::stream::unfold(st, StreamDriver::next)))
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut req = self.request(reqwest::Method::GET, "models").query(&[("limit", "1000")]);
            if let Some(a) = &after {
                req = req.query(&[("after_id", a)]);
            }
            let page: wire::ModelPage = http::json(http::send(req).await?).await?;
            ids.extend(page.data.into_iter().map(|m| m.id));
            match page.last_id {
                Some(last) if page.has_more => after = Some(last),
                _ => break,
            }
        }
        Ok(ids)
    }
}

/// `chunks` with the event they came from on the first of them, or, when
/// the event made none (`ping`, `content_block_stop`, a signature), on a
/// chunk of its own with no choices and no usage.
fn carry_native(
    mut chunks: Vec<ChatCompletionChunk>,
    ev: SseEvent,
    state: &convert::StreamState,
) -> Vec<ChatCompletionChunk> {
    let event = ev.event.unwrap_or_else(|| {
        serde_json::from_str::<Value>(&ev.data)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "message".into())
    });
    let native = Some(Arc::new(NativeEvent { event, data: ev.data }));
    match chunks.first_mut() {
        Some(first) => first.native = native,
        None => {
            let mut carrier = state.empty_chunk();
            carrier.native = native;
            chunks.push(carrier);
        }
    }
    chunks
}

/// Reads SSE events and hands out the chunks they convert to, one at a time.
struct StreamDriver {
    events: Pin<Box<dyn Stream<Item = Result<SseEvent, ProviderError>> + Send>>,
    state: convert::StreamState,
    pending: VecDeque<ChatCompletionChunk>,
    ended: bool,
    /// Attach each upstream event, verbatim, to the chunks it made (a
    /// native request: the client gets Anthropic's own events).
    keep_native: bool,
}

impl StreamDriver {
    async fn next(mut self) -> Option<(Result<ChatCompletionChunk, ProviderError>, Self)> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some((Ok(chunk), self));
            }
            if self.ended || self.state.is_done() {
                return None;
            }
            let converted = match self.events.next().await {
                None => Err(ProviderError::new(
                    ErrorKind::StreamInterrupted,
                    "the upstream stream ended before message_stop",
                )),
                Some(Err(e)) => Err(e),
                Some(Ok(ev)) if ev.data.trim().is_empty() => Ok(Vec::new()),
                Some(Ok(ev)) => {
                    let chunks = convert::parse_event(&ev.data).and_then(|e| self.state.on_event(e));
                    match chunks {
                        Ok(chunks) if self.keep_native => Ok(carry_native(chunks, ev, &self.state)),
                        other => other,
                    }
                }
            };
            match converted {
                Ok(chunks) => self.pending.extend(chunks),
                Err(e) => {
                    self.ended = true;
                    return Some((Err(e), self));
                }
            }
        }
    }
}
