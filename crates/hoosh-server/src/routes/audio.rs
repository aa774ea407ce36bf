//! OpenAI's audio API: `POST /v1/audio/transcriptions` and
//! `/v1/audio/translations` (multipart form) and `POST /v1/audio/speech`
//! (JSON → audio bytes).
//!
//! Speech-to-text: the form is read (the file chunk by chunk, refused with
//! 413 the moment it passes `audio.max_upload_bytes`) and checked field by
//! field (an unknown field is a 400 naming it). Before the file is decoded,
//! a caller that would be refused anyway — model not allowed, at its rate
//! or concurrency, out of budget — is refused ([`pipeline::admit::precheck`]).
//! The file is then decoded to 16 kHz mono on the blocking pool, at most
//! `audio.max_concurrent_decodes` at once, which both
//! proves it is audio (400 `invalid_audio` / `unsupported_audio` /
//! `empty_audio` / `audio_too_long` otherwise) and gives its duration. The
//! request is then admitted like any other — rate limits, and a budget
//! reservation priced from the audio minutes — and runs on the first
//! candidate that answers: a remote provider gets the original file, the
//! in-process Whisper the decoded samples. The answer goes back as the
//! provider gave it (JSON, text, SRT, VTT, or an SSE stream).
//!
//! Text-to-speech: `input` is priced per character; the audio streams back
//! with the provider's content type.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{FromRequest, Request, State};
use axum::response::Response;
use hoosh_core::audio::{AudioTask, SpeechRequest, TranscriptFormat, TranscriptionRequest};
use hoosh_core::router::Need;
use hoosh_governance::Scope;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::pipeline::{self, audio::SpeechCall, audio::TranscribeCall};
use crate::state::AppState;

/// The form fields OpenAI defines (and SDKs send); others are refused.
const IGNORED_FIELDS: [&str; 4] =
    ["include[]", "chunking_strategy", "known_speaker_names[]", "known_speaker_references[]"];

pub async fn transcriptions(st: State<AppState>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    speech_to_text(st, caller, req, AudioTask::Transcribe).await
}

pub async fn translations(st: State<AppState>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    speech_to_text(st, caller, req, AudioTask::Translate).await
}

/// The form, checked.
struct Form {
    file: Bytes,
    filename: String,
    content_type: Option<String>,
    model: String,
    language: Option<String>,
    prompt: Option<String>,
    temperature: Option<f32>,
    response_format: TranscriptFormat,
    granularities: Vec<String>,
    stream: bool,
}

fn invalid(message: impl Into<String>, param: &str) -> ApiError {
    ApiError::invalid(message, Some(param.to_owned()))
}

/// The file field, refused the moment it passes `max` (not after).
async fn read_file(mut field: axum::extract::multipart::Field<'_>, max: usize) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else if crate::edge::deadline::timed_out(&e) {
        ApiError::BodyTimeout
    } else {
        ApiError::invalid(format!("The multipart form could not be read: {}", e.body_text()), None)
    }
}

/// Reads and checks a transcription form exactly as the handler does, up to
/// (not including) decoding the file, and returns the file's size. Public
/// for the `multipart` fuzz target (`crates/hoosh-fuzz`).
pub async fn check_form(mp: Multipart, task: AudioTask, max_file_bytes: usize) -> Result<usize, ApiError> {
    read_form(mp, task, max_file_bytes).await.map(|form| form.file.len())
}

async fn read_form(mut mp: Multipart, task: AudioTask, max_file_bytes: usize) -> Result<Form, ApiError> {
    let mut file: Option<(Bytes, String, Option<String>)> = None;
    let (mut model, mut language, mut prompt, mut temperature, mut format, mut stream) =
        (None, None, None, None, None, None);
    let mut granularities = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let filename = field.file_name().unwrap_or("audio").to_owned();
            let content_type = field.content_type().map(str::to_owned);
            let bytes = read_file(field, max_file_bytes).await?;
            file = Some((bytes, filename, content_type));
            continue;
        }
        let value = field.text().await.map_err(multipart_error)?;
        match name.as_str() {
            "model" => model = Some(value),
            "language" if task == AudioTask::Transcribe => language = Some(value),
            "prompt" => prompt = Some(value),
            "temperature" => temperature = Some(value),
            "response_format" => format = Some(value),
            "timestamp_granularities[]" | "timestamp_granularities" => granularities.push(value),
            "stream" => stream = Some(value),
            n if IGNORED_FIELDS.contains(&n) => {}
            "language" => {
                return Err(invalid(
                    "Translations always produce English; `language` is not accepted here.",
                    "language",
                ));
            }
            other => return Err(invalid(format!("Unknown form field `{other}`."), other)),
        }
    }
    let (file, filename, content_type) =
        file.ok_or_else(|| invalid("The form has no `file` field: attach the audio as `file`.", "file"))?;
    if file.is_empty() {
        return Err(ApiError::from(hoosh_audio::AudioError::Empty));
    }
    let model = model.filter(|m| !m.trim().is_empty()).ok_or_else(|| invalid("`model` is required.", "model"))?;
    let response_format = match format.as_deref() {
        None | Some("") => TranscriptFormat::Json,
        Some(f) => TranscriptFormat::parse(f).ok_or_else(|| {
            invalid(
                format!("`response_format` must be json, text, srt, vtt or verbose_json, got `{f}`."),
                "response_format",
            )
        })?,
    };
    let temperature = temperature
        .map(|t| match t.trim().parse::<f32>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
            _ => Err(invalid(format!("`temperature` must be a number from 0 to 1, got `{t}`."), "temperature")),
        })
        .transpose()?;
    for g in &granularities {
        if g != "segment" && g != "word" {
            return Err(invalid(
                format!("`timestamp_granularities[]` takes `segment` or `word`, got `{g}`."),
                "timestamp_granularities[]",
            ));
        }
    }
    if !granularities.is_empty() && response_format != TranscriptFormat::VerboseJson {
        return Err(invalid(
            "`timestamp_granularities[]` needs `response_format` verbose_json.",
            "timestamp_granularities[]",
        ));
    }
    let stream = match stream.as_deref().map(str::trim) {
        None | Some("false") | Some("") => false,
        Some("true") => true,
        Some(other) => return Err(invalid(format!("`stream` must be true or false, got `{other}`."), "stream")),
    };
    if let Some(l) = &language
        && !(2..=3).contains(&l.len())
    {
        return Err(invalid(format!("`language` is an ISO-639-1 code such as `en`, got `{l}`."), "language"));
    }
    Ok(Form {
        file,
        filename,
        content_type,
        model,
        language: language.filter(|l| !l.is_empty()),
        prompt: prompt.filter(|p| !p.is_empty()),
        temperature,
        response_format,
        granularities,
        stream,
    })
}

async fn speech_to_text(
    State(st): State<AppState>,
    caller: Caller,
    req: Request,
    task: AudioTask,
) -> Result<Response, ApiError> {
    caller.require(Scope::Inference)?;
    let mp = Multipart::from_request(req, &st).await.map_err(|e: MultipartRejection| {
        ApiError::invalid(format!("Expected a multipart/form-data body: {}", e.body_text()), None)
    })?;
    let live = &caller.live;
    let form = read_form(mp, task, live.config.audio.max_upload_bytes).await?;
    // Decoding is the expensive part: refuse who would be refused anyway first.
    pipeline::admit::precheck(&st, &caller, Need::Transcription, &form.model)?;
    let Some(slot) = st.decodes.enter().await else {
        crate::metrics::record_rejection("decode_queue");
        return Err(ApiError::Overloaded {
            message: "Too many audio files are being decoded; retry shortly.".into(),
            retry_after: std::time::Duration::from_secs(1),
        });
    };
    let limits = hoosh_audio::DecodeLimits { max_duration_secs: live.config.audio.max_duration_secs as f64 };
    let (bytes, name) = (form.file.clone(), form.filename.clone());
    let pcm = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        hoosh_audio::decode(&bytes, Some(&name), &limits)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("audio decode task failed: {e}")))??;
    let duration_secs = pcm.duration_secs();
    let route = match task {
        AudioTask::Transcribe => "audio.transcriptions",
        AudioTask::Translate => "audio.translations",
    };
    let summary = json!({"filename": form.filename, "bytes": form.file.len(), "duration_secs": duration_secs, "prompt": form.prompt});
    let call = TranscriptionRequest {
        task,
        model: form.model,
        file: form.file,
        filename: form.filename,
        content_type: form.content_type,
        language: form.language,
        prompt: form.prompt,
        temperature: form.temperature,
        response_format: form.response_format,
        timestamp_granularities: form.granularities,
        stream: form.stream,
        pcm: Arc::new(pcm.samples),
        duration_secs,
    };
    pipeline::run(&st, &caller, TranscribeCall { call, route, summary }).await
}

/// `POST /v1/audio/speech`, OpenAI's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechBody {
    pub model: String,
    pub input: String,
    pub voice: String,
    #[serde(default)]
    pub response_format: Option<String>,
    #[serde(default)]
    pub speed: Option<f32>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub stream_format: Option<String>,
}

const SPEECH_FORMATS: [&str; 6] = ["mp3", "opus", "aac", "flac", "wav", "pcm"];

pub async fn speech(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SpeechBody>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Inference)?;
    let chars = body.input.chars().count();
    let max = caller.live.config.audio.max_speech_chars;
    if chars == 0 {
        return Err(invalid("`input` is empty: give the text to speak.", "input"));
    }
    if chars > max {
        return Err(invalid(format!("`input` is {chars} characters; the limit is {max}."), "input"));
    }
    if body.voice.trim().is_empty() {
        return Err(invalid("`voice` is required (e.g. `alloy`).", "voice"));
    }
    if let Some(f) = &body.response_format
        && !SPEECH_FORMATS.contains(&f.as_str())
    {
        return Err(invalid(
            format!("`response_format` must be one of mp3, opus, aac, flac, wav, pcm; got `{f}`."),
            "response_format",
        ));
    }
    if let Some(s) = body.speed
        && !(0.25..=4.0).contains(&s)
    {
        return Err(invalid(format!("`speed` must be from 0.25 to 4.0, got {s}."), "speed"));
    }
    if let Some(f) = &body.stream_format
        && f != "audio"
        && f != "sse"
    {
        return Err(invalid(format!("`stream_format` must be audio or sse, got `{f}`."), "stream_format"));
    }
    let call = SpeechRequest {
        model: body.model,
        input: body.input,
        voice: body.voice,
        response_format: body.response_format,
        speed: body.speed,
        instructions: body.instructions,
        stream_format: body.stream_format,
    };
    pipeline::run(&st, &caller, SpeechCall { call }).await
}
