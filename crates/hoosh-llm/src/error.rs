//! The one error type of this crate. Callers (the provider adapter in the
//! server) turn it into an HTTP status by reading the variant, never the text.

/// Everything that can go wrong between loading a model and streaming tokens.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The GGUF could not be read, or llama.cpp refused to create a context.
    #[error("model load failed: {0}")]
    Load(String),
    /// The waiting queue is full; the caller should retry later (HTTP 429/503).
    #[error("inference queue is full; retry in {retry_after_secs}s")]
    QueueFull { retry_after_secs: u64 },
    /// The prompt leaves no room for even one generated token.
    #[error("prompt is {prompt_tokens} tokens; the context per sequence is {limit} tokens")]
    ContextOverflow { prompt_tokens: u32, limit: u32 },
    /// The request uses something this backend cannot do (images, audio, ...).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The request is malformed (bad sampling parameter, empty prompt, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The chat template failed to render (including its own `raise_exception`).
    #[error("chat template: {0}")]
    Template(String),
    /// llama.cpp failed while decoding; the sequence was ended.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The scheduler thread is gone (engine dropped or crashed).
    #[error("inference engine stopped")]
    EngineStopped,
}

impl LlmError {
    /// Whether the same request may succeed if sent again later unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LlmError::QueueFull { .. } | LlmError::Inference(_) | LlmError::EngineStopped)
    }

    /// Whether the caller's request (not the server) is at fault.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            LlmError::ContextOverflow { .. }
                | LlmError::Unsupported(_)
                | LlmError::InvalidRequest(_)
                | LlmError::Template(_)
        )
    }
}
