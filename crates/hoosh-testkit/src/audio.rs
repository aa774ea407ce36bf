//! OpenAI's audio endpoints on the mock OpenAI server:
//! `/v1/audio/transcriptions` and `/translations` (a real `multipart/form-data`
//! upload) and `/v1/audio/speech` (JSON in, audio bytes out), plus Azure's
//! `/openai/deployments/{name}/audio/...` paths.
//!
//! Answers are deterministic functions of the input, so tests can predict
//! them byte for byte: the text is `mock transcript of N bytes` (or
//! `mock translation of N bytes`), the audio is derived from `input`. The
//! model-name scenarios ([`Scenario`]) apply as on every other endpoint.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::form::{self, FormPart};
use crate::openai::{error, fail_or_delay, sse_response};
use crate::scenario::{Scenario, count_tokens};
use crate::server::{Shared, StreamFault, stream_body};

/// OpenAI's upload limit for a transcription `file`.
pub const MAX_FILE_BYTES: usize = 25 * 1024 * 1024;

/// OpenAI's limit on a speech `input`, in characters.
pub const MAX_SPEECH_INPUT_CHARS: usize = 4096;

/// Sample rate of the `wav` and `pcm` speech the mock makes (OpenAI's).
pub const SPEECH_SAMPLE_RATE: u32 = 24_000;

/// Samples the mock makes per byte of speech `input`.
const SAMPLES_PER_INPUT_BYTE: usize = 16;

/// Pieces a speech body is sent in, so clients see a chunked stream.
const SPEECH_PIECES: usize = 4;

/// The audio routes, ready to merge into the OpenAI mock's router. The body
/// limit is lifted so that the handler, like OpenAI, answers an oversized
/// upload with its own 413.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/audio/transcriptions", post(transcriptions))
        .route("/v1/audio/translations", post(translations))
        .route("/v1/audio/speech", post(speech))
        .route("/openai/deployments/{deployment}/audio/transcriptions", post(azure_transcriptions))
        .route("/openai/deployments/{deployment}/audio/translations", post(azure_translations))
        .route("/openai/deployments/{deployment}/audio/speech", post(azure_speech))
        .layer(DefaultBodyLimit::disable())
}

/// Transcribe or translate, as the path says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Transcribe,
    Translate,
}

/// The text a transcription of `file_len` bytes answers with.
pub fn transcript_text(file_len: usize) -> String {
    format!("mock transcript of {file_len} bytes")
}

/// The text a translation of `file_len` bytes answers with.
pub fn translation_text(file_len: usize) -> String {
    format!("mock translation of {file_len} bytes")
}

/// The duration the mock reports for an upload of `file_len` bytes: as if it
/// were 16 kHz 16-bit mono PCM, and at least a tenth of a second.
pub fn duration_secs(file_len: usize) -> f64 {
    (file_len as f64 / 32_000.0).max(0.1)
}

/// A 400 in OpenAI's error envelope, naming the parameter at fault.
fn invalid(message: impl Into<String>, param: Option<&str>) -> Response {
    let body =
        json!({"error": {"message": message.into(), "type": "invalid_request_error", "param": param, "code": null}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn transcriptions(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    transcribe(&shared, Task::Transcribe, None, &headers, body).await
}

async fn translations(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    transcribe(&shared, Task::Translate, None, &headers, body).await
}

async fn azure_transcriptions(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    transcribe(&shared, Task::Transcribe, Some(deployment), &headers, body).await
}

async fn azure_translations(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    transcribe(&shared, Task::Translate, Some(deployment), &headers, body).await
}

/// The fields of a transcription form the mock looks at.
struct TranscriptionForm {
    model: String,
    file_len: usize,
    language: Option<String>,
    response_format: String,
    granularities: Vec<String>,
    stream: bool,
}

/// Why OpenAI would refuse a transcription form.
enum FormError {
    /// A 400 naming the parameter at fault.
    Invalid(String, &'static str),
    /// The file is over [`MAX_FILE_BYTES`].
    TooLarge(usize),
}

impl IntoResponse for FormError {
    fn into_response(self) -> Response {
        match self {
            FormError::Invalid(message, param) => invalid(message, Some(param)),
            FormError::TooLarge(len) => {
                let message = format!("Maximum content size limit ({MAX_FILE_BYTES}) exceeded ({len} bytes read)");
                let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": "file", "code": null}});
                (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
            }
        }
    }
}

impl TranscriptionForm {
    /// Validates the form as OpenAI does.
    fn read(parts: &[FormPart], deployment: Option<String>) -> Result<TranscriptionForm, FormError> {
        let text = |name: &str| parts.iter().find(|p| p.name == name).and_then(FormPart::text).map(str::to_owned);
        let Some(file) = parts.iter().find(|p| p.name == "file") else {
            return Err(FormError::Invalid("you must provide a file parameter".into(), "file"));
        };
        if file.data.len() > MAX_FILE_BYTES {
            return Err(FormError::TooLarge(file.data.len()));
        }
        let model = match deployment.or_else(|| text("model")) {
            Some(m) if !m.is_empty() => m,
            _ => return Err(FormError::Invalid("you must provide a model parameter".into(), "model")),
        };
        let response_format = text("response_format").unwrap_or_else(|| "json".into());
        if !["json", "text", "srt", "vtt", "verbose_json"].contains(&response_format.as_str()) {
            return Err(FormError::Invalid(
                format!("'{response_format}' is not one of ['json', 'text', 'srt', 'verbose_json', 'vtt']"),
                "response_format",
            ));
        }
        if let Some(t) = text("temperature")
            && !t.parse::<f64>().is_ok_and(|t| (0.0..=1.0).contains(&t))
        {
            return Err(FormError::Invalid(format!("'{t}' is not a number between 0 and 1"), "temperature"));
        }
        let granularities: Vec<String> = parts
            .iter()
            .filter(|p| p.name == "timestamp_granularities[]")
            .filter_map(FormPart::text)
            .map(str::to_owned)
            .collect();
        if let Some(g) = granularities.iter().find(|g| *g != "word" && *g != "segment") {
            return Err(FormError::Invalid(
                format!("'{g}' is not one of ['word', 'segment']"),
                "timestamp_granularities[]",
            ));
        }
        Ok(TranscriptionForm {
            model,
            file_len: file.data.len(),
            language: text("language").filter(|l| !l.is_empty()),
            response_format,
            granularities,
            stream: text("stream").is_some_and(|s| s == "true"),
        })
    }
}

async fn transcribe(
    shared: &Shared,
    task: Task,
    deployment: Option<String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !form::is_multipart(content_type) {
        return invalid("Invalid Content-Type header: expected multipart/form-data", None);
    }
    let parts = match form::parse(content_type, body).await {
        Ok(parts) => parts,
        Err(message) => return invalid(message, None),
    };
    let form = match TranscriptionForm::read(&parts, deployment) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if let Some(resp) = fail_or_delay(shared, &form.model, error).await {
        return resp;
    }
    let text = match task {
        Task::Transcribe => transcript_text(form.file_len),
        Task::Translate => translation_text(form.file_len),
    };
    let duration = duration_secs(form.file_len);
    if form.stream {
        return transcript_stream(&text, Scenario::parse(&form.model));
    }
    let plain = |ct: &'static str, body: String| ([(header::CONTENT_TYPE, ct)], body).into_response();
    match form.response_format.as_str() {
        "text" => plain("text/plain; charset=utf-8", format!("{text}\n")),
        "srt" => plain("text/plain; charset=utf-8", format!("1\n00:00:00,000 --> {}\n{text}\n\n", srt_time(duration))),
        "vtt" => {
            plain("text/vtt; charset=utf-8", format!("WEBVTT\n\n00:00:00.000 --> {}\n{text}\n\n", vtt_time(duration)))
        }
        "verbose_json" => {
            let language = match task {
                Task::Translate => "english".to_owned(),
                Task::Transcribe => form.language.clone().unwrap_or_else(|| "english".into()),
            };
            let mut out = json!({
                "task": match task { Task::Transcribe => "transcribe", Task::Translate => "translate" },
                "language": language,
                "duration": duration,
                "text": text,
            });
            let wants = |g: &str| form.granularities.iter().any(|x| x == g);
            if form.granularities.is_empty() || wants("segment") {
                out["segments"] = json!([{
                    "id": 0, "seek": 0, "start": 0.0, "end": duration, "text": format!(" {text}"),
                    "tokens": [50364, 50365], "temperature": 0.0, "avg_logprob": -0.25,
                    "compression_ratio": 1.0, "no_speech_prob": 0.01
                }]);
            }
            if wants("word") {
                out["words"] = words(&text, duration);
            }
            out["usage"] = json!({"type": "duration", "seconds": duration.ceil() as u64});
            Json(out).into_response()
        }
        _ => Json(json!({"text": text, "usage": {"type": "duration", "seconds": duration.ceil() as u64}}))
            .into_response(),
    }
}

/// Words spread evenly over the duration.
fn words(text: &str, duration: f64) -> Value {
    let words: Vec<&str> = text.split_whitespace().collect();
    let step = duration / words.len().max(1) as f64;
    Value::Array(
        words
            .iter()
            .enumerate()
            .map(|(i, w)| json!({"word": w, "start": i as f64 * step, "end": (i + 1) as f64 * step}))
            .collect(),
    )
}

fn split_time(secs: f64) -> (u64, u64, u64, u64) {
    let ms = (secs * 1000.0).round() as u64;
    (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// `HH:MM:SS,mmm`
fn srt_time(secs: f64) -> String {
    let (h, m, s, ms) = split_time(secs);
    format!("{h:02}:{m:02}:{s:02},{ms:03}")
}

/// `HH:MM:SS.mmm`
fn vtt_time(secs: f64) -> String {
    let (h, m, s, ms) = split_time(secs);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// gpt-4o-transcribe's stream: one `transcript.text.delta` per word, then
/// `transcript.text.done` with the whole text and token usage.
fn transcript_stream(text: &str, scenario: Scenario) -> Response {
    if scenario == Scenario::EmptyStream {
        return sse_response(Vec::<String>::new(), StreamFault::default());
    }
    let mut events: Vec<String> = text
        .split_inclusive(' ')
        .map(|delta| format!("data: {}\n\n", json!({"type": "transcript.text.delta", "delta": delta})))
        .collect();
    let output_tokens = count_tokens(text);
    let done = json!({"type": "transcript.text.done", "text": text,
        "usage": {"type": "tokens", "input_tokens": 10, "output_tokens": output_tokens, "total_tokens": 10 + output_tokens}});
    events.push(format!("data: {done}\n\n"));
    sse_response(events, fault(&scenario))
}

fn fault(scenario: &Scenario) -> StreamFault {
    match scenario {
        Scenario::Cut => StreamFault { cut_after: Some(2), ..Default::default() },
        Scenario::Stall { delay } => StreamFault { stall_after_first: Some(*delay), ..Default::default() },
        _ => StreamFault::default(),
    }
}

async fn speech(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    speak(&shared, body).await
}

async fn azure_speech(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    Json(mut body): Json<Value>,
) -> Response {
    body["model"] = Value::String(deployment);
    speak(&shared, body).await
}

/// The content type OpenAI answers a speech `response_format` with.
pub fn speech_content_type(format: &str) -> Option<&'static str> {
    Some(match format {
        "mp3" => "audio/mpeg",
        "opus" => "audio/ogg",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm",
        _ => return None,
    })
}

async fn speak(shared: &Shared, body: Value) -> Response {
    let model = match body["model"].as_str() {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => return invalid("you must provide a model parameter", Some("model")),
    };
    let input = match body["input"].as_str() {
        Some(i) if !i.is_empty() => i.to_owned(),
        _ => return invalid("input must be a non-empty string", Some("input")),
    };
    let chars = input.chars().count();
    if chars > MAX_SPEECH_INPUT_CHARS {
        return invalid(
            format!("input is {chars} characters long; the maximum is {MAX_SPEECH_INPUT_CHARS}"),
            Some("input"),
        );
    }
    let voice_given = match &body["voice"] {
        Value::String(v) => !v.is_empty(),
        Value::Object(o) => o.get("id").and_then(Value::as_str).is_some_and(|id| !id.is_empty()),
        _ => false,
    };
    if !voice_given {
        return invalid("you must provide a voice parameter", Some("voice"));
    }
    let format = body["response_format"].as_str().unwrap_or("mp3").to_owned();
    let Some(content_type) = speech_content_type(&format) else {
        return invalid(
            format!("'{format}' is not one of ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm']"),
            Some("response_format"),
        );
    };
    if let Some(speed) = body.get("speed").filter(|s| !s.is_null())
        && !speed.as_f64().is_some_and(|s| (0.25..=4.0).contains(&s))
    {
        return invalid("speed must be a number between 0.25 and 4.0", Some("speed"));
    }
    let sse = match body["stream_format"].as_str() {
        None | Some("audio") => false,
        Some("sse") => true,
        Some(other) => {
            return invalid(format!("'{other}' is not one of ['sse', 'audio']"), Some("stream_format"));
        }
    };
    if let Some(resp) = fail_or_delay(shared, &model, error).await {
        return resp;
    }
    let scenario = Scenario::parse(&model);
    let audio = speech_audio(&input, &format);
    if sse {
        return speech_events(&audio, &input, &scenario);
    }
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(stream_body(split_pieces(&audio, SPEECH_PIECES), fault(&scenario)))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// The bytes the mock answers `input` with, in `format`. `wav` is a valid
/// 24 kHz 16-bit mono file and `pcm` its samples; the compressed formats
/// are the format's magic number followed by input-derived bytes (enough
/// to tell formats apart, not decodable audio).
pub fn speech_audio(input: &str, format: &str) -> Bytes {
    let samples = pcm_samples(input);
    let magic: &[u8] = match format {
        "pcm" => return Bytes::from(samples),
        "wav" => return Bytes::from(wav(&samples)),
        "opus" => b"OggS\x00\x02",
        "aac" => b"\xff\xf1\x50\x80",
        "flac" => b"fLaC",
        _ => b"ID3\x04\x00\x00\x00\x00\x00\x00",
    };
    let mut out = magic.to_vec();
    out.extend(input.bytes().map(|b| b ^ 0x5a));
    Bytes::from(out)
}

/// 16-bit little-endian samples: a square wave per input byte, louder for
/// larger bytes.
fn pcm_samples(input: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * SAMPLES_PER_INPUT_BYTE * 2);
    for b in input.bytes() {
        let level = i16::from(b) * 64;
        for i in 0..SAMPLES_PER_INPUT_BYTE {
            let s = if i < SAMPLES_PER_INPUT_BYTE / 2 { level } else { -level };
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
    out
}

/// A canonical 44-byte RIFF/WAVE header over 16-bit mono PCM.
fn wav(pcm: &[u8]) -> Vec<u8> {
    let data_len = u32::try_from(pcm.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SPEECH_SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SPEECH_SAMPLE_RATE * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}

/// `bytes` in `n` nearly equal pieces (fewer when it is shorter than `n`).
fn split_pieces(bytes: &Bytes, n: usize) -> Vec<Bytes> {
    let size = bytes.len().div_ceil(n.max(1)).max(1);
    (0..bytes.len()).step_by(size).map(|at| bytes.slice(at..(at + size).min(bytes.len()))).collect()
}

/// `stream_format: "sse"`: `speech.audio.delta` events carrying base64
/// audio, then `speech.audio.done` with token usage.
fn speech_events(audio: &Bytes, input: &str, scenario: &Scenario) -> Response {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut events: Vec<String> = split_pieces(audio, SPEECH_PIECES)
        .iter()
        .map(|piece| format!("data: {}\n\n", json!({"type": "speech.audio.delta", "audio": b64.encode(piece)})))
        .collect();
    let input_tokens = count_tokens(input);
    let output_tokens = audio.len() as u64 / 32;
    let done = json!({"type": "speech.audio.done",
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}});
    events.push(format!("data: {done}\n\n"));
    sse_response(events, fault(scenario))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_describes_the_samples() {
        let wav = speech_audio("hi", "wav");
        let samples = 2 * SAMPLES_PER_INPUT_BYTE * 2;
        assert_eq!(wav.len(), 44 + samples);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([wav[4], wav[5], wav[6], wav[7]]) as usize, 36 + samples);
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]), SPEECH_SAMPLE_RATE);
        assert_eq!(&wav[36..40], b"data");
        assert_eq!(u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]) as usize, samples);
        assert_eq!(&wav[44..], &speech_audio("hi", "pcm")[..]);
    }

    #[test]
    fn pieces_cover_the_body_in_order() {
        let b = Bytes::from_static(b"0123456789");
        let pieces = split_pieces(&b, 4);
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces.concat(), b.to_vec());
        assert_eq!(split_pieces(&Bytes::from_static(b"ab"), 4).len(), 2);
    }

    #[test]
    fn subtitle_times() {
        assert_eq!(srt_time(3723.5), "01:02:03,500");
        assert_eq!(vtt_time(0.1), "00:00:00.100");
    }
}
