//! Speech as pipeline work. Speech-to-text is priced on the audio's
//! duration (known from the gateway's own decode, before admission);
//! text-to-speech on the input's characters. Both answer with the
//! provider's bytes (or its stream) under its content type.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hoosh_core::audio::{AudioBody, AudioOutput, SpeechRequest, TranscriptionRequest};
use hoosh_core::executor::{Executor, Failure, Outcome};
use hoosh_core::router::{Candidate, Need};
use hoosh_types::openai::Usage;

use super::estimate::{Estimate, Media};
use super::{Endpoint, Reply, ServedBy};
use crate::state::Live;

/// A transcription or translation of decoded audio.
pub struct TranscribeCall {
    pub call: TranscriptionRequest,
    pub route: &'static str,
    /// What `audit.include_content` records: the file's name, size,
    /// duration and the prompt, never the audio.
    pub summary: serde_json::Value,
}

/// Text to speech.
pub struct SpeechCall {
    pub call: SpeechRequest,
}

impl Endpoint for TranscribeCall {
    type Output = AudioOutput;
    const NEED: Need = Need::Transcription;

    fn route(&self) -> &'static str {
        self.route
    }

    fn model(&self) -> &str {
        &self.call.model
    }

    fn estimate(&self, _candidates: &[Candidate]) -> Estimate {
        let audio_ms = (self.call.duration_secs * 1000.0).ceil() as u64;
        Estimate { media: Media { audio_ms, tts_chars: 0 }, ..Estimate::default() }
    }

    fn content(&self) -> serde_json::Value {
        self.summary.clone()
    }

    async fn execute(
        &self,
        executor: &Executor,
        candidates: &[Candidate],
    ) -> Result<Outcome<Reply<AudioOutput>>, Failure> {
        executor.transcribe(candidates, &self.call).await.map(|o| o.map(Reply::Whole))
    }

    fn usage(&self, _out: &AudioOutput, _estimate: &Estimate) -> Usage {
        Usage::new(0, 0)
    }

    fn respond(&self, reply: Reply<AudioOutput>, _served: &ServedBy, _live: &Live) -> Response {
        audio_response(reply)
    }
}

impl Endpoint for SpeechCall {
    type Output = AudioOutput;
    const NEED: Need = Need::Speech;

    fn route(&self) -> &'static str {
        "audio.speech"
    }

    fn model(&self) -> &str {
        &self.call.model
    }

    fn estimate(&self, _candidates: &[Candidate]) -> Estimate {
        let tts_chars = self.call.input.chars().count() as u64;
        Estimate { media: Media { audio_ms: 0, tts_chars }, ..Estimate::default() }
    }

    fn content(&self) -> serde_json::Value {
        serde_json::json!({"input": self.call.input, "voice": self.call.voice})
    }

    async fn execute(
        &self,
        executor: &Executor,
        candidates: &[Candidate],
    ) -> Result<Outcome<Reply<AudioOutput>>, Failure> {
        executor.speech(candidates, &self.call).await.map(|o| o.map(Reply::Whole))
    }

    fn usage(&self, _out: &AudioOutput, _estimate: &Estimate) -> Usage {
        Usage::new(0, 0)
    }

    fn respond(&self, reply: Reply<AudioOutput>, _served: &ServedBy, _live: &Live) -> Response {
        audio_response(reply)
    }
}

/// A provider's audio answer as an HTTP response (streams pass through).
fn audio_response(reply: Reply<AudioOutput>) -> Response {
    let Reply::Whole(out) = reply else {
        return crate::error::ApiError::Internal("an audio provider answered with a chat stream".into())
            .into_response();
    };
    let content_type = HeaderValue::from_str(&out.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let body = match out.body {
        AudioBody::Whole(bytes) => Body::from(bytes),
        AudioBody::Stream(stream) => Body::from_stream(stream.map(|item| {
            item.map_err(|e| {
                // Headers are gone: the body just ends early, and the log says why.
                tracing::warn!(error = %e, "audio stream from the provider ended with an error");
                std::io::Error::other(e.message)
            })
        })),
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
