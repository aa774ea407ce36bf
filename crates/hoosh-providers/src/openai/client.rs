//! The OpenAI-compatible provider: URLs, auth, and the HTTP calls.

use async_trait::async_trait;
use futures_util::StreamExt;
use hoosh_core::audio::{AudioOutput, SpeechRequest, TranscriptionRequest};
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{Capabilities, ChunkStream, EmbedRequest, EmbedResponse, ErrorKind, Provider, ProviderError};
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use hoosh_types::unix_now;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::{audio, convert, wire};
use crate::adapter::AdapterConfig;
use crate::http;
use crate::presets::Auth;
use crate::sse::sse_events;

/// Azure's `api-version` when the config names none.
const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

pub struct OpenAiProvider {
    cfg: AdapterConfig,
    support: ParamSupport,
    /// The auth and extra headers, parsed once.
    headers: HeaderMap,
    /// `chat/completions`, parsed once (`None` for Azure, whose URL names
    /// the deployment).
    chat_url: Option<reqwest::Url>,
}

impl OpenAiProvider {
    pub fn new(cfg: AdapterConfig) -> Self {
        let support = cfg.param_support();
        let mut headers = cfg.headers.clone();
        if let Some(key) = &cfg.api_key {
            let (name, value) = match cfg.preset.auth {
                Auth::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose())),
                Auth::AzureApiKey => (HeaderName::from_static("api-key"), key.expose().to_owned()),
            };
            // The registry refused a key that cannot be a header value.
            if let Ok(mut value) = HeaderValue::from_str(&value) {
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
        let chat_url = match cfg.preset.auth {
            Auth::Bearer => reqwest::Url::parse(&format!("{}/chat/completions", cfg.base_url)).ok(),
            Auth::AzureApiKey => None,
        };
        OpenAiProvider { cfg, support, headers, chat_url }
    }

    /// The chat completions endpoint for `model`.
    fn chat_request(&self, model: &str) -> reqwest::RequestBuilder {
        match &self.chat_url {
            Some(url) => self.cfg.http.post(url.clone()).headers(self.headers.clone()),
            None => self.request(reqwest::Method::POST, self.url("chat/completions", model)),
        }
    }

    fn url(&self, endpoint: &str, model: &str) -> String {
        let base = &self.cfg.base_url;
        match self.cfg.preset.auth {
            Auth::AzureApiKey => {
                let version = self.cfg.api_version.as_deref().unwrap_or(AZURE_DEFAULT_API_VERSION);
                format!("{base}/openai/deployments/{model}/{endpoint}?api-version={version}")
            }
            Auth::Bearer => format!("{base}/{endpoint}"),
        }
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.cfg.http.request(method, url).headers(self.headers.clone())
    }

    /// The `Unsupported` error for an audio endpoint this preset lacks.
    fn no_audio(&self, what: &str) -> ProviderError {
        ProviderError::unsupported(format!(
            "provider `{}` (type `{}`) does not serve {what}",
            self.cfg.name, self.cfg.preset.kind
        ))
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn family(&self) -> &'static str {
        "openai"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            chat: true,
            embeddings: true,
            transcription: self.cfg.preset.transcription,
            speech: self.cfg.preset.speech,
        }
    }

    fn param_support(&self) -> &ParamSupport {
        &self.support
    }

    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChatCompletionResponse, ProviderError> {
        let body = convert::chat_body(req, dropped, self.cfg.preset, false);
        let resp = http::send(self.chat_request(&req.model).json(&body)).await?;
        let w: wire::ChatResponse = http::json(resp).await?;
        Ok(convert::chat_response(w, &req.model))
    }

    async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChunkStream, ProviderError> {
        let body = convert::chat_body(req, dropped, self.cfg.preset, true);
        let resp = http::send(self.chat_request(&req.model).json(&body)).await?;
        let model = req.model.clone();
        let fallback_id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let created = unix_now();
        let events = sse_events(resp);
        // State: (events, saw [DONE] or finish_reason)
        let stream =
            futures_util::stream::unfold((Box::pin(events), false, false), move |(mut events, mut finished, ended)| {
                let model = model.clone();
                let fallback_id = fallback_id.clone();
                async move {
                    if ended {
                        return None;
                    }
                    match events.next().await {
                        None if finished => None,
                        None => {
                            let e = ProviderError::new(
                                ErrorKind::StreamInterrupted,
                                "the upstream stream ended before [DONE]",
                            );
                            Some((Err(e), (events, finished, true)))
                        }
                        Some(Err(e)) => Some((Err(e), (events, finished, true))),
                        Some(Ok(ev)) => {
                            let data = ev.data.trim();
                            if data == "[DONE]" {
                                return None;
                            }
                            let parsed = serde_json::from_str::<wire::Chunk>(data)
                                .map_err(|e| ProviderError::invalid_response(format!("unparseable stream chunk: {e}")))
                                .and_then(|w| convert::chunk(w, &model, &fallback_id, created));
                            match parsed {
                                Ok(c) => {
                                    if c.choices.iter().any(|ch| ch.finish_reason.is_some()) {
                                        finished = true;
                                    }
                                    Some((Ok(c), (events, finished, false)))
                                }
                                Err(e) => Some((Err(e), (events, finished, true))),
                            }
                        }
                    }
                }
            });
        Ok(Box::pin(stream))
    }

    async fn embed(&self, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let body = convert::embed_body(req);
        let resp =
            http::send(self.request(reqwest::Method::POST, self.url("embeddings", &req.model)).json(&body)).await?;
        let w: wire::EmbeddingResponse = http::json_within(resp, http::embedding_body_limit(req.input.len())).await?;
        let (vectors, usage) = convert::embed_response(w, req.input.len())?;
        Ok(EmbedResponse { vectors, usage })
    }

    async fn transcribe(&self, req: &TranscriptionRequest) -> Result<AudioOutput, ProviderError> {
        if !self.cfg.preset.transcription {
            return Err(self.no_audio("speech-to-text"));
        }
        let url = self.url(&format!("audio/{}", req.task.path()), &req.model);
        let resp =
            http::send(self.request(reqwest::Method::POST, url).multipart(audio::transcription_form(req))).await?;
        audio::transcription_output(resp, req).await
    }

    async fn speech(&self, req: &SpeechRequest) -> Result<AudioOutput, ProviderError> {
        if !self.cfg.preset.speech {
            return Err(self.no_audio("text-to-speech"));
        }
        let url = self.url("audio/speech", &req.model);
        let resp = http::send(self.request(reqwest::Method::POST, url).json(&audio::speech_body(req))).await?;
        Ok(audio::speech_output(resp, req))
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        if self.cfg.preset.auth == Auth::AzureApiKey {
            // Azure lists deployments elsewhere; the configured names are the list.
            return Ok(Vec::new());
        }
        let resp = http::send(self.request(reqwest::Method::GET, self.url("models", ""))).await?;
        let w: wire::ModelList = http::json(resp).await?;
        Ok(w.data.into_iter().map(|m| m.id).collect())
    }
}
