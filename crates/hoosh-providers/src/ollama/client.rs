//! The Ollama provider: URLs, optional bearer auth (for Ollama behind a
//! proxy or a hosted Ollama), and the HTTP calls.

use std::collections::VecDeque;

use async_trait::async_trait;
use futures_util::{Stream, StreamExt};
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{Capabilities, ChunkStream, EmbedRequest, EmbedResponse, Provider, ProviderError};
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse};

use super::{convert, wire};
use crate::adapter::AdapterConfig;
use crate::http;
use crate::sse::json_lines;

pub struct OllamaProvider {
    cfg: AdapterConfig,
    support: ParamSupport,
}

impl OllamaProvider {
    pub fn new(cfg: AdapterConfig) -> Self {
        let support = cfg.param_support();
        OllamaProvider { cfg, support }
    }

    fn request(&self, method: reqwest::Method, endpoint: &str) -> reqwest::RequestBuilder {
        let mut req = self.cfg.http.request(method, format!("{}/api/{endpoint}", self.cfg.base_url));
        if let Some(key) = &self.cfg.api_key {
            req = req.bearer_auth(key.expose());
        }
        self.cfg.with_headers(req)
    }
}

#[async_trait]
impl Provider for OllamaProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn family(&self) -> &'static str {
        "ollama"
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
        let body = convert::chat_body(req, dropped, false)?;
        let resp = http::send(self.request(reqwest::Method::POST, "chat").json(&body)).await?;
        let w: wire::ChatResponse = http::json(resp).await?;
        convert::chat_response(w, &req.model)
    }

    async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChunkStream, ProviderError> {
        let body = convert::chat_body(req, dropped, true)?;
        let resp = http::send(self.request(reqwest::Method::POST, "chat").json(&body)).await?;
        Ok(stream_chunks(resp, &req.model))
    }

    async fn embed(&self, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let body = convert::embed_body(req);
        let resp = http::send(self.request(reqwest::Method::POST, "embed").json(&body)).await?;
        let w: wire::EmbedResponse = http::json_within(resp, http::embedding_body_limit(req.input.len())).await?;
        let (vectors, usage) = convert::embed_response(w, req.input.len())?;
        Ok(EmbedResponse { vectors, usage })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let resp = http::send(self.request(reqwest::Method::GET, "tags")).await?;
        let w: wire::TagList = http::json(resp).await?;
        Ok(convert::model_names(w))
    }

    /// `/api/version` answers without touching the model store, so it stays
    /// cheap even on a server with many models.
    async fn health(&self) -> Result<(), ProviderError> {
        http::send(self.request(reqwest::Method::GET, "version")).await.map(|_| ())
    }
}

/// The chunks of a streamed `/api/chat` response, decoded as
/// [`OllamaProvider::chat_stream`] decodes them. Public for the `ndjson`
/// fuzz target (`crates/hoosh-fuzz`), which hands it bodies of its own.
pub fn stream_chunks(resp: reqwest::Response, requested_model: &str) -> ChunkStream {
    Box::pin(chunks(json_lines(resp), convert::StreamState::new(requested_model)))
}

/// Drives `state` over the NDJSON lines. The stream ends after the usage
/// chunk of the `done` line, or with one `Err` item (a bad or error line, a
/// broken body, or a body that ended before `done`).
fn chunks(
    lines: impl Stream<Item = Result<String, ProviderError>> + Send + 'static,
    state: convert::StreamState,
) -> impl Stream<Item = Result<ChatCompletionChunk, ProviderError>> + Send {
    struct St<L> {
        lines: std::pin::Pin<Box<L>>,
        state: convert::StreamState,
        pending: VecDeque<ChatCompletionChunk>,
        ended: bool,
    }
    let st = St { lines: Box::pin(lines), state, pending: VecDeque::new(), ended: false };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(chunk) = st.pending.pop_front() {
                return Some((Ok(chunk), st));
            }
            if st.ended || st.state.is_done() {
                return None;
            }
            let failed = match st.lines.next().await {
                Some(Ok(line)) => match st.state.line(&line) {
                    Ok(chunks) => {
                        st.pending.extend(chunks);
                        continue;
                    }
                    Err(e) => e,
                },
                Some(Err(e)) => e,
                None => match st.state.end() {
                    Ok(()) => return None,
                    Err(e) => e,
                },
            };
            st.ended = true;
            return Some((Err(failed), st));
        }
    })
}
