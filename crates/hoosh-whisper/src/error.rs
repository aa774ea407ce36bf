//! [`WhisperError`]: what can go wrong loading a model or transcribing.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    /// A model file is missing or unreadable; names the file.
    #[error("cannot load Whisper model file {}: {detail}", path.display())]
    Load { path: PathBuf, detail: String },
    /// A [`crate::WhisperConfig`] value is out of range.
    #[error("invalid Whisper config: {0}")]
    Config(String),
    /// The bounded request queue is full; retry later (HTTP 503).
    #[error("the transcription queue is full; retry in {retry_after_secs} s")]
    QueueFull { retry_after_secs: u64 },
    /// The audio has no samples.
    #[error("the audio is empty")]
    EmptyAudio,
    /// `language` is not a Whisper language code or name.
    #[error("unknown language {0:?}")]
    UnknownLanguage(String),
    /// The request needs a multilingual model (translation, or a language
    /// other than English on an `.en` model).
    #[error("model {model} is English-only: {what} needs a multilingual model")]
    EnglishOnly { model: String, what: String },
    /// The prompt could not be tokenized.
    #[error("invalid prompt: {0}")]
    Prompt(String),
    /// The caller dropped the [`crate::Transcription`].
    #[error("transcription cancelled")]
    Cancelled,
    /// The worker thread is gone (panicked or shut down).
    #[error("the Whisper engine has stopped")]
    EngineStopped,
    /// A tensor operation failed: a bug or resource exhaustion.
    #[error("Whisper inference failed: {0}")]
    Inference(String),
}

impl WhisperError {
    pub(crate) fn load(path: &Path, detail: impl std::fmt::Display) -> Self {
        Self::Load { path: path.to_path_buf(), detail: detail.to_string() }
    }

    /// The request itself is bad (HTTP 400): retrying cannot help.
    pub fn is_client_error(&self) -> bool {
        matches!(self, Self::EmptyAudio | Self::UnknownLanguage(_) | Self::EnglishOnly { .. } | Self::Prompt(_))
    }

    /// A later retry may succeed (HTTP 503 with `Retry-After`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::QueueFull { .. } | Self::EngineStopped)
    }
}

impl From<candle_core::Error> for WhisperError {
    fn from(e: candle_core::Error) -> Self {
        Self::Inference(e.to_string())
    }
}
