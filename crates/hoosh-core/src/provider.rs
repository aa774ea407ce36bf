//! The provider trait: the one seam between the gateway and a model backend.

use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Usage};

use crate::audio::{AudioOutput, SpeechRequest, TranscriptionRequest};
use crate::error::ProviderError;
use crate::params::{DroppedParams, ParamSupport};

/// A stream of OpenAI-shaped chunks. It ends after the chunk that carries a
/// `finish_reason` (and a usage-only chunk, when the provider reports usage),
/// or with an `Err` when the upstream dies mid-way.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatCompletionChunk, ProviderError>> + Send>>;

/// Which endpoints a provider serves; the router skips providers that cannot
/// serve one. (Tools and images are not flags: the parameter policy drops or
/// refuses tools, and an adapter that cannot take images refuses them with
/// `Unsupported`, which fails over to the next candidate.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub chat: bool,
    pub embeddings: bool,
    /// `/v1/audio/transcriptions` and `/translations`.
    pub transcription: bool,
    /// `/v1/audio/speech`.
    pub speech: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities { chat: true, embeddings: false, transcription: false, speech: false }
    }
}

/// Inputs of an embeddings call, already split into strings.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    pub model: String,
    pub input: Vec<String>,
    pub dimensions: Option<u32>,
    pub user: Option<String>,
}

/// One vector per input, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedResponse {
    pub vectors: Vec<Vec<f32>>,
    pub usage: Usage,
}

/// A model backend. Requests arrive in the canonical (OpenAI chat) shape with
/// `model` already set to the name the upstream knows; adapters convert to
/// their native wire format at the edge.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The configured name (`openai`, `groq-eu`, ...), unique per gateway.
    fn name(&self) -> &str;

    /// The wire family, for display (`openai`, `anthropic`, `ollama`, `gemini`).
    fn family(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Which optional chat parameters this provider understands.
    fn param_support(&self) -> &ParamSupport;

    /// A complete (non-streaming) chat completion. `dropped` lists request
    /// parameters the adapter must not send (decided by the param policy).
    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChatCompletionResponse, ProviderError>;

    /// A streaming chat completion. The adapter asks its upstream for usage
    /// whenever the wire format allows, so that streams are always accounted.
    async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
        dropped: &DroppedParams,
    ) -> Result<ChunkStream, ProviderError>;

    async fn embed(&self, _req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        Err(ProviderError::unsupported(format!("provider `{}` does not serve embeddings", self.name())))
    }

    /// Speech to text (`/v1/audio/transcriptions` or `/translations`).
    async fn transcribe(&self, _req: &TranscriptionRequest) -> Result<AudioOutput, ProviderError> {
        Err(ProviderError::unsupported(format!("provider `{}` does not serve speech-to-text", self.name())))
    }

    /// Text to speech (`/v1/audio/speech`).
    async fn speech(&self, _req: &SpeechRequest) -> Result<AudioOutput, ProviderError> {
        Err(ProviderError::unsupported(format!("provider `{}` does not serve text-to-speech", self.name())))
    }

    /// Model ids the upstream reports.
    async fn list_models(&self) -> Result<Vec<String>, ProviderError>;

    /// For providers that load models into this process: whether `model` is
    /// in memory now (`None` = not such a provider, or not its model).
    fn model_loaded(&self, _model: &str) -> Option<bool> {
        None
    }

    /// The prompt's exact token count for `model` (the name this provider
    /// knows) with the model's own tokenizer, when
    /// the provider has it at hand (an in-process model already loaded);
    /// budgets use it instead of an estimate.
    fn count_prompt_tokens(&self, _model: &str, _req: &ChatCompletionRequest) -> Option<u64> {
        None
    }

    /// A cheap liveness probe; listing models by default.
    async fn health(&self) -> Result<(), ProviderError> {
        self.list_models().await.map(|_| ())
    }
}
