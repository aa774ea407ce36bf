//! OpenAI's audio endpoints on the wire: the `multipart/form-data` upload of
//! a transcription or translation, the JSON body of a speech request, and
//! their answers, passed through as bytes with the upstream's content type.
//!
//! Nothing here looks inside an answer beyond what the gateway needs to
//! trust it: a JSON transcript must parse, and a streamed transcript must
//! reach its final event (`transcript.text.done`, or `[DONE]` from servers
//! that stream in chat-chunk style), else the stream ends with
//! [`ErrorKind::StreamInterrupted`] like a cut chat stream.

use bytes::Bytes;
use futures_util::StreamExt;
use hoosh_core::audio::{AudioBody, AudioOutput, AudioTask, ByteStream, SpeechRequest, TranscriptionRequest};
use hoosh_core::{ErrorKind, ProviderError};
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};

use crate::http;
use crate::sse::{SseEvent, SseParser};

/// The form OpenAI's `/audio/transcriptions` and `/audio/translations` take.
/// Text fields come first so that a server reading the upload as a stream
/// knows the model before the file; the file is sent from the request's
/// buffer without a copy.
pub fn transcription_form(req: &TranscriptionRequest) -> Form {
    let mut form = Form::new().text("model", req.model.clone());
    if req.task == AudioTask::Transcribe
        && let Some(language) = &req.language
    {
        form = form.text("language", language.clone());
    }
    if let Some(prompt) = &req.prompt {
        form = form.text("prompt", prompt.clone());
    }
    if let Some(temperature) = req.temperature {
        form = form.text("temperature", temperature.to_string());
    }
    form = form.text("response_format", req.response_format.as_str());
    for granularity in &req.timestamp_granularities {
        form = form.text("timestamp_granularities[]", granularity.clone());
    }
    if req.stream {
        form = form.text("stream", "true");
    }
    form.part("file", file_part(req))
}

fn file_part(req: &TranscriptionRequest) -> Part {
    let part = || {
        Part::stream_with_length(reqwest::Body::from(req.file.clone()), req.file.len() as u64)
            .file_name(req.filename.clone())
    };
    match req.content_type.as_deref() {
        // A content type that is not a valid MIME type is left out: the
        // upstream then goes by the filename's extension, as it does when
        // the client sent none.
        Some(content_type) => part().mime_str(content_type).unwrap_or_else(|_| part()),
        None => part(),
    }
}

/// The JSON body of `/audio/speech`.
#[derive(Debug, Serialize)]
pub struct SpeechBody<'a> {
    pub model: &'a str,
    pub input: &'a str,
    pub voice: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_format: Option<&'a str>,
}

pub fn speech_body(req: &SpeechRequest) -> SpeechBody<'_> {
    SpeechBody {
        model: &req.model,
        input: &req.input,
        voice: &req.voice,
        response_format: req.response_format.as_deref(),
        speed: req.speed,
        instructions: req.instructions.as_deref(),
        stream_format: req.stream_format.as_deref(),
    }
}

/// The content type OpenAI answers a speech `response_format` with; used
/// only when an upstream sends none.
pub fn speech_content_type(req: &SpeechRequest) -> &'static str {
    if req.stream_format.as_deref() == Some("sse") {
        return "text/event-stream";
    }
    match req.response_format.as_deref().unwrap_or("mp3") {
        "opus" => "audio/ogg",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

/// A transcription's answer: streamed through when the client asked for a
/// stream, else read whole (and, when it says it is JSON, checked to be).
pub async fn transcription_output(
    resp: reqwest::Response,
    req: &TranscriptionRequest,
) -> Result<AudioOutput, ProviderError> {
    let fallback = if req.stream { "text/event-stream" } else { req.response_format.content_type() };
    let content_type = content_type(&resp).unwrap_or_else(|| fallback.to_owned());
    if req.stream {
        let body = if is_event_stream(&content_type) { transcript_events(resp) } else { byte_stream(resp) };
        return Ok(AudioOutput { content_type, body: AudioBody::Stream(body) });
    }
    let bytes = http::body_within(resp, http::MAX_BODY).await?;
    if is_json(&content_type) && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        return Err(ProviderError::invalid_response("upstream answered a transcription with JSON that does not parse"));
    }
    Ok(AudioOutput { content_type, body: AudioBody::Whole(bytes) })
}

/// Speech is always streamed through: audio can be long, and clients start
/// playing it before it ends.
pub fn speech_output(resp: reqwest::Response, req: &SpeechRequest) -> AudioOutput {
    let content_type = content_type(&resp).unwrap_or_else(|| speech_content_type(req).to_owned());
    AudioOutput { content_type, body: AudioBody::Stream(byte_stream(resp)) }
}

fn content_type(resp: &reqwest::Response) -> Option<String> {
    let value = resp.headers().get(reqwest::header::CONTENT_TYPE)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn is_event_stream(content_type: &str) -> bool {
    essence(content_type) == "text/event-stream"
}

fn is_json(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence == "application/json" || essence.ends_with("+json")
}

fn interrupted(e: reqwest::Error) -> ProviderError {
    ProviderError::new(ErrorKind::StreamInterrupted, format!("upstream stream broke: {}", e.without_url()))
}

/// The body as it arrives; a transport failure mid-way is the last item.
fn byte_stream(resp: reqwest::Response) -> ByteStream {
    Box::pin(resp.bytes_stream().map(|chunk| chunk.map_err(interrupted)))
}

/// Whether an event ends a transcript stream.
fn ends_transcript(ev: &SseEvent) -> bool {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let data = ev.data.trim();
    data == "[DONE]"
        || serde_json::from_str::<Typed>(data).is_ok_and(|t| t.kind.as_deref() == Some("transcript.text.done"))
}

/// A transcript's SSE body, byte for byte, watched on the side for its
/// final event: a body that ends without one ends with an error item.
fn transcript_events(resp: reqwest::Response) -> ByteStream {
    struct Watch {
        body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
        events: SseParser,
        done: bool,
        ended: bool,
    }
    let watch = Watch { body: Box::pin(resp.bytes_stream()), events: SseParser::default(), done: false, ended: false };
    Box::pin(futures_util::stream::unfold(watch, |mut w| async move {
        if w.ended {
            return None;
        }
        match w.body.next().await {
            Some(Ok(chunk)) => {
                w.events.push(&chunk);
                loop {
                    match w.events.next_event() {
                        Ok(Some(ev)) => w.done |= ends_transcript(&ev),
                        Ok(None) => break,
                        Err(e) => {
                            // Not SSE after all (a line past the limit or
                            // not UTF-8): the bytes so far are passed, then
                            // the error.
                            w.ended = true;
                            return Some((Err(e), w));
                        }
                    }
                }
                Some((Ok(chunk), w))
            }
            Some(Err(e)) => {
                w.ended = true;
                Some((Err(interrupted(e)), w))
            }
            None => {
                w.ended = true;
                if let Ok(Some(ev)) = w.events.finish() {
                    w.done |= ends_transcript(&ev);
                }
                if w.done {
                    return None;
                }
                let e = ProviderError::new(
                    ErrorKind::StreamInterrupted,
                    "the upstream transcript stream ended before transcript.text.done",
                );
                Some((Err(e), w))
            }
        }
    }))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn speech_body_leaves_out_unset_fields() {
        let req = SpeechRequest {
            model: "tts-1".into(),
            input: "hi".into(),
            voice: "alloy".into(),
            response_format: None,
            speed: Some(1.5),
            instructions: None,
            stream_format: None,
        };
        let body = serde_json::to_value(speech_body(&req)).unwrap();
        assert_eq!(body, serde_json::json!({"model": "tts-1", "input": "hi", "voice": "alloy", "speed": 1.5}));
        assert_eq!(speech_content_type(&req), "audio/mpeg");
    }

    #[test]
    fn transcript_ends() {
        let ev = |data: &str| SseEvent { event: None, data: data.into() };
        assert!(ends_transcript(&ev(r#"{"type":"transcript.text.done","text":"x"}"#)));
        assert!(ends_transcript(&ev("[DONE]")));
        assert!(!ends_transcript(&ev(r#"{"type":"transcript.text.delta","delta":"x"}"#)));
        assert!(!ends_transcript(&ev("not json")));
    }

    #[test]
    fn content_type_essence() {
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert!(is_event_stream("Text/Event-Stream;charset=utf-8"));
    }
}
