//! The Gemini provider: URLs, the API-key header, and the HTTP calls.

use std::collections::VecDeque;

use async_trait::async_trait;
use futures_util::{Stream, StreamExt};
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{Capabilities, ChunkStream, EmbedRequest, EmbedResponse, ErrorKind, Provider, ProviderError};
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse};
use reqwest::header::HeaderValue;

use super::convert::{self, StreamState};
use super::wire;
use crate::adapter::AdapterConfig;
use crate::http;
use crate::sse::{SseEvent, sse_events};

/// Google's largest page of `models.list`.
const MODELS_PAGE_SIZE: &str = "1000";
/// A bound on `nextPageToken` chasing, so a misbehaving upstream cannot loop us.
const MAX_MODEL_PAGES: usize = 20;

pub struct GeminiProvider {
    cfg: AdapterConfig,
    support: ParamSupport,
}

impl GeminiProvider {
    pub fn new(cfg: AdapterConfig) -> Self {
        let support = cfg.param_support();
        GeminiProvider { cfg, support }
    }

    /// `{base}/v1beta/{path...}`. Segments are percent-encoded, so a model
    /// name can never smuggle in a path or a query.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ProviderError> {
        let invalid = || ProviderError::new(ErrorKind::Connect, format!("invalid base URL `{}`", self.cfg.base_url));
        let mut url = reqwest::Url::parse(&self.cfg.base_url).map_err(|_| invalid())?;
        url.path_segments_mut().map_err(|_| invalid())?.pop_if_empty().push("v1beta").extend(segments);
        Ok(url)
    }

    fn method_url(&self, model: &str, method: &str) -> Result<reqwest::Url, ProviderError> {
        self.url(&["models", &format!("{}:{method}", convert::model_id(model))])
    }

    /// The key goes in a header, never in `?key=`: URLs end up in logs and
    /// in reqwest's error messages.
    fn request(&self, method: reqwest::Method, url: reqwest::Url) -> Result<reqwest::RequestBuilder, ProviderError> {
        let mut req = self.cfg.http.request(method, url);
        if let Some(key) = &self.cfg.api_key {
            let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                ProviderError::new(ErrorKind::Auth, "the configured Gemini API key is not a valid HTTP header value")
            })?;
            value.set_sensitive(true);
            req = req.header("x-goog-api-key", value);
        }
        Ok(self.cfg.with_headers(req))
    }

    async fn post<B: serde::Serialize + ?Sized>(
        &self,
        url: reqwest::Url,
        body: &B,
    ) -> Result<reqwest::Response, ProviderError> {
        send(self.request(reqwest::Method::POST, url)?.json(body)).await
    }
}

/// Sends a request; a non-2xx answer becomes a classified error that also
/// reads Google's error details (see [`convert::error_hints`]).
async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
    let resp = req.send().await.map_err(http::transport_error)?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let header_delay = http::retry_after(resp.headers());
    let body = http::read_limited(resp).await;
    let hints = convert::error_hints(&body);
    let mut err =
        ProviderError::from_status(status, http::error_message(&body, status), header_delay.or(hints.retry_delay));
    if hints.api_key_invalid {
        err.kind = ErrorKind::Auth;
    }
    Err(err)
}

/// The chunks of a Gemini SSE body. One event may yield several chunks (the
/// role, text, a finish), so they queue up between polls.
fn chunk_stream(
    events: impl Stream<Item = Result<SseEvent, ProviderError>> + Send + 'static,
    state: StreamState,
) -> ChunkStream {
    struct St<E> {
        events: std::pin::Pin<Box<E>>,
        state: StreamState,
        queue: VecDeque<Result<ChatCompletionChunk, ProviderError>>,
        done: bool,
    }
    let st = St { events: Box::pin(events), state, queue: VecDeque::new(), done: false };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            let outcome = match st.events.next().await {
                Some(Ok(ev)) if ev.data.trim().is_empty() => continue,
                Some(Ok(ev)) => serde_json::from_str::<wire::GenerateContentResponse>(&ev.data)
                    .map_err(|e| ProviderError::invalid_response(format!("unparseable Gemini stream event: {e}")))
                    .and_then(|w| st.state.on_event(w)),
                // After the finish every answer byte has arrived; a connection
                // dropped while closing costs nothing but the clean end.
                Some(Err(_)) if st.state.finished() => {
                    st.done = true;
                    st.state.on_end()
                }
                Some(Err(e)) => Err(e),
                None => {
                    st.done = true;
                    st.state.on_end()
                }
            };
            match outcome {
                Ok(chunks) => st.queue.extend(chunks.into_iter().map(Ok)),
                Err(e) => {
                    st.done = true;
                    st.queue.push_back(Err(e));
                }
            }
        }
    }))
}

#[async_trait]
impl Provider for GeminiProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn family(&self) -> &'static str {
        "gemini"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { chat: true, embeddings: true, ..Capabilities::default() }
    }

    fn param_support(&self) -> &ParamSupport {
        &self.support
    }

    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChatCompletionResponse, ProviderError> {
        let body = convert::chat_body(req, dropped)?;
        let resp = self.post(self.method_url(&req.model, "generateContent")?, &body).await?;
        let w: wire::GenerateContentResponse = http::json(resp).await?;
        convert::chat_response(w, &req.model)
    }

    async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChunkStream, ProviderError> {
        let body = convert::chat_body(req, dropped)?;
        let mut url = self.method_url(&req.model, "streamGenerateContent")?;
        url.query_pairs_mut().append_pair("alt", "sse");
        let resp = self.post(url, &body).await?;
        Ok(chunk_stream(sse_events(resp), StreamState::new(&req.model)))
    }

    async fn embed(&self, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let body = convert::embed_body(req);
        let resp = self.post(self.method_url(&req.model, "batchEmbedContents")?, &body).await?;
        let w: wire::BatchEmbedResponse = http::json_within(resp, http::embedding_body_limit(req.input.len())).await?;
        let (vectors, usage) = convert::embed_response(w, req.input.len())?;
        Ok(EmbedResponse { vectors, usage })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let mut ids = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut url = self.url(&["models"])?;
            url.query_pairs_mut().append_pair("pageSize", MODELS_PAGE_SIZE);
            if let Some(token) = &page_token {
                url.query_pairs_mut().append_pair("pageToken", token);
            }
            let resp = send(self.request(reqwest::Method::GET, url)?).await?;
            let mut page: wire::ModelList = http::json(resp).await?;
            page_token = page.next_page_token.take().filter(|t| !t.is_empty());
            ids.extend(convert::model_ids(page));
            if page_token.is_none() {
                break;
            }
        }
        Ok(ids)
    }
}
