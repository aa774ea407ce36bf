//! Speech-to-text served in-process: a [`TranscriptionRequest`] (audio the
//! gateway already decoded to 16 kHz mono) → the Whisper engine → the
//! answer in the asked `response_format`, or, with `stream=true`, OpenAI's
//! `transcript.text.delta` / `transcript.text.done` events as each segment
//! is finalized.

use std::sync::Arc;

use bytes::Bytes;
use hoosh_core::audio::{AudioBody, AudioOutput, AudioTask, TranscriptFormat, TranscriptionRequest};
use hoosh_core::{ErrorKind, ProviderError};
use hoosh_whisper::{ResponseFormat, Task, TranscribeEvent, TranscribeRequest, WhisperEngine, WhisperError};
use serde_json::json;

use crate::provider::InUse;

pub(crate) fn provider_error(e: WhisperError) -> ProviderError {
    match e {
        WhisperError::QueueFull { retry_after_secs } => {
            ProviderError::from_status(503, e.to_string(), Some(std::time::Duration::from_secs(retry_after_secs)))
                .public()
        }
        e if e.is_client_error() => ProviderError::new(ErrorKind::BadRequest, e.to_string()),
        e => ProviderError::new(ErrorKind::Upstream, e.to_string()),
    }
}

fn format(f: TranscriptFormat) -> ResponseFormat {
    match f {
        TranscriptFormat::Json => ResponseFormat::Json,
        TranscriptFormat::Text => ResponseFormat::Text,
        TranscriptFormat::Srt => ResponseFormat::Srt,
        TranscriptFormat::Vtt => ResponseFormat::Vtt,
        TranscriptFormat::VerboseJson => ResponseFormat::VerboseJson,
    }
}

/// Runs `req` on `engine`; `in_use` keeps the model loaded until the answer
/// (or the stream) is done.
pub(crate) async fn transcribe(
    engine: &Arc<WhisperEngine>,
    req: &TranscriptionRequest,
    in_use: InUse,
) -> Result<AudioOutput, ProviderError> {
    let job = TranscribeRequest {
        pcm: Arc::clone(&req.pcm),
        task: match req.task {
            AudioTask::Transcribe => Task::Transcribe,
            AudioTask::Translate => Task::Translate,
        },
        language: req.language.clone(),
        prompt: req.prompt.clone(),
        temperature: req.temperature.unwrap_or(0.0),
        word_timestamps: req.timestamp_granularities.iter().any(|g| g == "word"),
    };
    let mut running = engine.submit(job).map_err(provider_error)?;
    if !req.stream {
        let transcript = running.collect().await.map_err(provider_error)?;
        drop(in_use);
        let f = format(req.response_format);
        return Ok(AudioOutput {
            content_type: f.content_type().to_owned(),
            body: AudioBody::Whole(Bytes::from(f.render(&transcript))),
        });
    }
    // The first event decides between an answer and an error status.
    let first = match running.next().await {
        Some(Ok(ev)) => ev,
        Some(Err(e)) => return Err(provider_error(e)),
        None => return Err(provider_error(WhisperError::EngineStopped)),
    };
    let head = futures_util::stream::iter([Ok(event_bytes(&first))]);
    let done = matches!(first, TranscribeEvent::Done(_));
    let rest = futures_util::stream::unfold((running, in_use, done), |(mut running, in_use, done)| async move {
        if done {
            return None;
        }
        match running.next().await? {
            Ok(ev) => {
                let finished = matches!(ev, TranscribeEvent::Done(_));
                Some((Ok(event_bytes(&ev)), (running, in_use, finished)))
            }
            Err(e) => {
                let mut err = provider_error(e);
                err.kind = ErrorKind::StreamInterrupted;
                Some((Err(err), (running, in_use, true)))
            }
        }
    });
    use futures_util::StreamExt;
    Ok(AudioOutput { content_type: "text/event-stream".into(), body: AudioBody::Stream(Box::pin(head.chain(rest))) })
}

/// One SSE event of OpenAI's streamed transcription.
fn event_bytes(ev: &TranscribeEvent) -> Bytes {
    let data = match ev {
        TranscribeEvent::Segment(s) => json!({"type": "transcript.text.delta", "delta": s.text}),
        TranscribeEvent::Done(t) => json!({"type": "transcript.text.done", "text": t.text}),
    };
    Bytes::from(format!("data: {data}\n\n"))
}
