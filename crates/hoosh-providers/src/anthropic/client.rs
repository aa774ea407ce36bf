//! The Anthropic provider: URLs, auth headers, and the HTTP calls.

use std::collections::VecDeque;
use std::pin::Pin;

use async_trait::async_trait;
use futures_util::{Stream, StreamExt};
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{Capabilities, ChunkStream, ErrorKind, Provider, ProviderError};
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse};
use hoosh_types::unix_now;

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
        let body = convert::messages_request(req, dropped, true)?;
        let resp = self.post_messages(&body).await?;
        let st = StreamDriver {
            events: Box::pin(sse_events(resp)),
            state: convert::StreamState::new(&req.model, unix_now()),
            pending: VecDeque::new(),
            ended: false,
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

/// Reads SSE events and hands out the chunks they convert to, one at a time.
struct StreamDriver {
    events: Pin<Box<dyn Stream<Item = Result<SseEvent, ProviderError>> + Send>>,
    state: convert::StreamState,
    pending: VecDeque<ChatCompletionChunk>,
    ended: bool,
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
                Some(Ok(ev)) => convert::parse_event(&ev.data).and_then(|e| self.state.on_event(e)),
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
