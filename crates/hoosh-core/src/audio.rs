//! The audio seam between the gateway and providers: speech-to-text
//! (OpenAI's `/v1/audio/transcriptions` and `/translations`) and
//! text-to-speech (`/v1/audio/speech`).
//!
//! The gateway parses the multipart form and decodes the audio once (to
//! check it and to know its duration for budgets and pricing). A remote
//! provider forwards the original `file` bytes with the form fields; an
//! in-process engine takes the decoded `pcm`. Answers are passed through as
//! bytes with their content type (`application/json`, `text/plain`,
//! `text/event-stream`, `audio/mpeg`, …), whole or streamed.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

use crate::error::ProviderError;

/// Transcribe in the spoken language, or translate into English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioTask {
    Transcribe,
    Translate,
}

impl AudioTask {
    /// The OpenAI path segment: `transcriptions` / `translations`.
    pub fn path(self) -> &'static str {
        match self {
            AudioTask::Transcribe => "transcriptions",
            AudioTask::Translate => "translations",
        }
    }
}

/// `response_format` of a transcription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TranscriptFormat {
    #[default]
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl TranscriptFormat {
    pub fn parse(s: &str) -> Option<TranscriptFormat> {
        Some(match s {
            "json" => TranscriptFormat::Json,
            "text" => TranscriptFormat::Text,
            "srt" => TranscriptFormat::Srt,
            "vtt" => TranscriptFormat::Vtt,
            "verbose_json" => TranscriptFormat::VerboseJson,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptFormat::Json => "json",
            TranscriptFormat::Text => "text",
            TranscriptFormat::Srt => "srt",
            TranscriptFormat::Vtt => "vtt",
            TranscriptFormat::VerboseJson => "verbose_json",
        }
    }

    /// The content type OpenAI answers this format with.
    pub fn content_type(self) -> &'static str {
        match self {
            TranscriptFormat::Json | TranscriptFormat::VerboseJson => "application/json",
            TranscriptFormat::Text | TranscriptFormat::Srt => "text/plain; charset=utf-8",
            TranscriptFormat::Vtt => "text/vtt; charset=utf-8",
        }
    }
}

/// A transcription or translation, as the client asked for it.
#[derive(Clone)]
pub struct TranscriptionRequest {
    pub task: AudioTask,
    /// The name the provider knows the model by.
    pub model: String,
    /// The uploaded file, unchanged.
    pub file: Bytes,
    pub filename: String,
    pub content_type: Option<String>,
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub temperature: Option<f32>,
    pub response_format: TranscriptFormat,
    /// `timestamp_granularities[]`: `segment`, `word`.
    pub timestamp_granularities: Vec<String>,
    pub stream: bool,
    /// The audio decoded to 16 kHz mono f32 by the gateway.
    pub pcm: Arc<Vec<f32>>,
    pub duration_secs: f64,
}

impl std::fmt::Debug for TranscriptionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptionRequest")
            .field("task", &self.task)
            .field("model", &self.model)
            .field("filename", &self.filename)
            .field("bytes", &self.file.len())
            .field("duration_secs", &self.duration_secs)
            .field("response_format", &self.response_format)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// A text-to-speech request (OpenAI's JSON body).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRequest {
    pub model: String,
    pub input: String,
    pub voice: String,
    /// `mp3` (default), `opus`, `aac`, `flac`, `wav`, `pcm`.
    pub response_format: Option<String>,
    pub speed: Option<f32>,
    pub instructions: Option<String>,
    /// `audio` (raw bytes) or `sse`.
    pub stream_format: Option<String>,
}

/// A body streamed from a provider.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

pub enum AudioBody {
    Whole(Bytes),
    Stream(ByteStream),
}

/// A provider's answer: passed on to the client as is.
pub struct AudioOutput {
    pub content_type: String,
    pub body: AudioBody,
}

impl std::fmt::Debug for AudioOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = match &self.body {
            AudioBody::Whole(b) => format!("{} bytes", b.len()),
            AudioBody::Stream(_) => "stream".to_owned(),
        };
        f.debug_struct("AudioOutput").field("content_type", &self.content_type).field("body", &body).finish()
    }
}
