//! The OpenAI-compatible adapter's audio endpoints against the mock OpenAI
//! server, over real HTTP: the multipart upload as the vendor receives it,
//! every answer format passed through byte for byte, streams arriving as
//! streams, upstream errors classified, and presets without audio refused
//! before any request is sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use hoosh_core::audio::{AudioBody, AudioOutput, AudioTask, SpeechRequest, TranscriptFormat, TranscriptionRequest};
use hoosh_core::{ErrorKind, Provider, ProviderError, Secret};
use hoosh_providers::adapter::AdapterConfig;
use hoosh_providers::openai::OpenAiProvider;
use hoosh_providers::presets;
use hoosh_providers::sse::SseParser;
use hoosh_testkit::MockServer;
use hoosh_testkit::audio::{speech_audio, transcript_text, translation_text};
use serde_json::{Value, json};

fn provider(kind: &str, mock: &MockServer) -> OpenAiProvider {
    let preset = presets::find(kind).unwrap();
    let base_url = if kind == "azure" { mock.url() } else { format!("{}/v1", mock.url()) };
    OpenAiProvider::new(AdapterConfig {
        name: format!("{kind}-test"),
        preset,
        base_url,
        api_key: Some(Secret::new("sk-audio")),
        headers: reqwest::header::HeaderMap::new(),
        api_version: None,
        http: reqwest::Client::new(),
    })
}

/// A small binary file: not UTF-8, with CR/LF and a fake boundary inside,
/// so any mangling of the upload shows.
fn clip() -> Bytes {
    let mut b = b"RIFF\x00\xff\xfe\r\n--boundary\r\n".to_vec();
    b.extend((0..=255u8).cycle().take(3000));
    Bytes::from(b)
}

fn transcription(model: &str, format: TranscriptFormat) -> TranscriptionRequest {
    TranscriptionRequest {
        task: AudioTask::Transcribe,
        model: model.into(),
        file: clip(),
        filename: "clip.wav".into(),
        content_type: Some("audio/wav".into()),
        language: None,
        prompt: None,
        temperature: None,
        response_format: format,
        timestamp_granularities: Vec::new(),
        stream: false,
        pcm: Arc::new(Vec::new()),
        duration_secs: 0.1,
    }
}

fn speech(model: &str, format: Option<&str>) -> SpeechRequest {
    SpeechRequest {
        model: model.into(),
        input: "Hello from hoosh, h\u{e9}llo \u{1f600}".into(),
        voice: "alloy".into(),
        response_format: format.map(str::to_owned),
        speed: None,
        instructions: None,
        stream_format: None,
    }
}

fn whole(out: AudioOutput) -> Bytes {
    match out.body {
        AudioBody::Whole(b) => b,
        AudioBody::Stream(_) => panic!("expected a whole body"),
    }
}

async fn pieces(out: AudioOutput) -> Vec<Result<Bytes, ProviderError>> {
    match out.body {
        AudioBody::Stream(s) => s.collect().await,
        AudioBody::Whole(_) => panic!("expected a stream"),
    }
}

/// The same upload sent straight to the mock, for byte-exact comparison.
async fn direct(mock: &MockServer, format: &str) -> (String, Bytes) {
    let form = reqwest::multipart::Form::new()
        .text("model", "whisper-1")
        .text("response_format", format.to_owned())
        .part("file", reqwest::multipart::Part::bytes(clip().to_vec()).file_name("clip.wav"));
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/audio/transcriptions", mock.url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, resp.bytes().await.unwrap())
}

#[tokio::test]
async fn every_transcript_format_passes_through_byte_exact() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    let text = transcript_text(clip().len());
    for format in [
        TranscriptFormat::Json,
        TranscriptFormat::Text,
        TranscriptFormat::Srt,
        TranscriptFormat::Vtt,
        TranscriptFormat::VerboseJson,
    ] {
        let out = p.transcribe(&transcription("whisper-1", format)).await.unwrap();
        let content_type = out.content_type.clone();
        let body = whole(out);
        let (want_ct, want_body) = direct(&mock, format.as_str()).await;
        assert_eq!(content_type, want_ct, "{format:?}");
        assert_eq!(body, want_body, "{format:?}: bytes as the upstream sent them");
        assert_eq!(content_type, format.content_type(), "{format:?}: OpenAI's content type");
        let s = std::str::from_utf8(&body).unwrap();
        match format {
            TranscriptFormat::Json => assert_eq!(serde_json::from_str::<Value>(s).unwrap()["text"], text),
            TranscriptFormat::Text => assert_eq!(s, format!("{text}\n")),
            TranscriptFormat::Srt => assert!(s.starts_with("1\n00:00:00,000 --> 00:00:00,") && s.contains(&text)),
            TranscriptFormat::Vtt => {
                assert!(s.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:00.") && s.contains(&text))
            }
            TranscriptFormat::VerboseJson => {
                let v: Value = serde_json::from_str(s).unwrap();
                assert_eq!((v["task"].as_str(), v["text"].as_str()), (Some("transcribe"), Some(text.as_str())));
                assert_eq!(v["segments"][0]["id"], 0);
                assert!(v.get("words").is_none(), "words only when asked for");
            }
        }
    }
}

#[tokio::test]
async fn the_upload_carries_every_field_and_the_exact_file() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    let mut req = transcription("whisper-1", TranscriptFormat::VerboseJson);
    req.language = Some("fr".into());
    req.prompt = Some("Bonjour, \u{e7}a va ?".into());
    req.temperature = Some(0.2);
    req.timestamp_granularities = vec!["word".into(), "segment".into()];
    let out = p.transcribe(&req).await.unwrap();
    let v: Value = serde_json::from_slice(&whole(out)).unwrap();
    assert_eq!(v["language"], "fr");
    assert_eq!(v["words"].as_array().map(Vec::len), Some(5), "one per word of the mock transcript");
    assert!(v["segments"].is_array());

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.uri, "/v1/audio/transcriptions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-audio"));
    assert!(sent.header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
    let file = sent.form_part("file").unwrap();
    assert_eq!(file.filename.as_deref(), Some("clip.wav"));
    assert_eq!(file.content_type.as_deref(), Some("audio/wav"));
    assert_eq!(file.data, clip(), "the file bytes, unchanged");
    assert_eq!(sent.form_values("model"), ["whisper-1"]);
    assert_eq!(sent.form_values("language"), ["fr"]);
    assert_eq!(sent.form_values("prompt"), ["Bonjour, \u{e7}a va ?"]);
    assert_eq!(sent.form_values("temperature"), ["0.2"]);
    assert_eq!(sent.form_values("response_format"), ["verbose_json"]);
    assert_eq!(sent.form_values("timestamp_granularities[]"), ["word", "segment"], "repeated, in order");
    assert!(sent.form_part("stream").is_none(), "stream is sent only when set");
    let names: Vec<&str> = sent.form.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"file"), "text fields before the file");
}

#[tokio::test]
async fn a_missing_content_type_is_left_to_the_upstream() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    for content_type in [None, Some("not a mime type")] {
        let mut req = transcription("whisper-1", TranscriptFormat::Json);
        req.content_type = content_type.map(str::to_owned);
        p.transcribe(&req).await.unwrap();
        let sent = mock.last_request().unwrap();
        let file = sent.form_part("file").unwrap();
        assert_eq!(file.content_type.as_deref(), None, "{content_type:?}");
        assert_eq!(file.filename.as_deref(), Some("clip.wav"));
    }
}

#[tokio::test]
async fn translate_uses_the_translations_path_without_language() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    let mut req = transcription("whisper-1", TranscriptFormat::Text);
    req.task = AudioTask::Translate;
    req.language = Some("de".into());
    req.prompt = Some("context".into());
    let out = p.transcribe(&req).await.unwrap();
    assert_eq!(out.content_type, "text/plain; charset=utf-8");
    assert_eq!(whole(out), format!("{}\n", translation_text(clip().len())));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.uri, "/v1/audio/translations");
    assert!(sent.form_part("language").is_none(), "translations take no language");
    assert_eq!(sent.form_values("prompt"), ["context"]);
}

#[tokio::test]
async fn a_streamed_transcript_arrives_as_sse_events() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    let mut req = transcription("gpt-4o-transcribe", TranscriptFormat::Json);
    req.stream = true;
    let out = p.transcribe(&req).await.unwrap();
    assert_eq!(out.content_type, "text/event-stream");
    let items = pieces(out).await;
    assert!(items.len() > 1, "several network chunks, got {}", items.len());
    let mut parser = SseParser::default();
    for item in items {
        parser.push(&item.unwrap());
    }
    let mut events = Vec::new();
    while let Some(ev) = parser.next_event().unwrap() {
        events.push(serde_json::from_str::<Value>(&ev.data).unwrap());
    }
    let (done, deltas) = events.split_last().unwrap();
    let text = transcript_text(clip().len());
    assert!(deltas.iter().all(|d| d["type"] == "transcript.text.delta"));
    assert_eq!(deltas.iter().map(|d| d["delta"].as_str().unwrap()).collect::<String>(), text);
    assert_eq!(done["type"], "transcript.text.done");
    assert_eq!(done["text"], text);
    assert_eq!(mock.last_request().unwrap().form_values("stream"), ["true"]);
}

#[tokio::test]
async fn a_transcript_stream_without_its_final_event_ends_in_an_error() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    for model in ["mock-cut", "mock-empty-stream"] {
        let mut req = transcription(model, TranscriptFormat::Json);
        req.stream = true;
        let items = pieces(p.transcribe(&req).await.unwrap()).await;
        let (last, before) = items.split_last().unwrap();
        assert!(before.iter().all(Result::is_ok), "{model}");
        assert_eq!(last.as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted, "{model}");
    }
}

#[tokio::test]
async fn speech_streams_every_format_in_chunks_with_its_content_type() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    for (format, content_type) in [
        (None, "audio/mpeg"),
        (Some("mp3"), "audio/mpeg"),
        (Some("opus"), "audio/ogg"),
        (Some("aac"), "audio/aac"),
        (Some("flac"), "audio/flac"),
        (Some("wav"), "audio/wav"),
        (Some("pcm"), "audio/pcm"),
    ] {
        let req = speech("tts-1", format);
        let out = p.speech(&req).await.unwrap();
        assert_eq!(out.content_type, content_type, "{format:?}");
        let items = pieces(out).await;
        assert!(items.len() > 1, "{format:?}: streamed in several chunks, got {}", items.len());
        let body: Vec<u8> = items.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
        assert_eq!(body, speech_audio(&req.input, format.unwrap_or("mp3")), "{format:?}");
    }
    let mut req = speech("gpt-4o-mini-tts", Some("wav"));
    req.speed = Some(1.25);
    req.instructions = Some("cheerful".into());
    let body: Vec<u8> = pieces(p.speech(&req).await.unwrap()).await.into_iter().flat_map(|c| c.unwrap()).collect();
    assert_eq!(&body[..4], b"RIFF");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.uri, "/v1/audio/speech");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-audio"));
    assert_eq!(
        sent.body,
        json!({"model": "gpt-4o-mini-tts", "input": req.input, "voice": "alloy", "response_format": "wav",
               "speed": 1.25, "instructions": "cheerful"})
    );
}

#[tokio::test]
async fn speech_as_server_sent_events() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    let mut req = speech("gpt-4o-mini-tts", Some("pcm"));
    req.stream_format = Some("sse".into());
    let out = p.speech(&req).await.unwrap();
    assert_eq!(out.content_type, "text/event-stream");
    let body: Vec<u8> = pieces(out).await.into_iter().flat_map(|c| c.unwrap()).collect();
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("\"speech.audio.delta\"") && text.contains("\"speech.audio.done\""));
    assert_eq!(mock.last_request().unwrap().body["stream_format"], "sse");
}

#[tokio::test]
async fn upstream_errors_keep_status_message_and_retry_after() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);

    let e = p.transcribe(&transcription("mock-error-400", TranscriptFormat::Json)).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::BadRequest, Some(400)));
    assert_eq!(e.message, "mock says: bad request");
    assert!(!e.retryable());

    let e = p.transcribe(&transcription("", TranscriptFormat::Json)).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::BadRequest, Some(400)));
    assert_eq!(e.message, "you must provide a model parameter", "the vendor's own validation message");

    let mut long = speech("tts-1", None);
    long.input = "a".repeat(4097);
    let e = p.speech(&long).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::BadRequest, Some(400)));
    assert!(e.message.contains("4097"), "{}", e.message);
    let mut no_voice = speech("tts-1", None);
    no_voice.voice = String::new();
    assert_eq!(p.speech(&no_voice).await.unwrap_err().message, "you must provide a voice parameter");

    let e = p.transcribe(&transcription("mock-error-429-retry-3", TranscriptFormat::Json)).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::RateLimited, Some(429)));
    assert!(e.retryable());
    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    let e = p.speech(&speech("mock-error-429-retry-5", None)).await.err().unwrap();
    assert_eq!((e.kind, e.retry_after), (ErrorKind::RateLimited, Some(Duration::from_secs(5))));

    let e = p.transcribe(&transcription("mock-error-503", TranscriptFormat::Text)).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Upstream, Some(503)));
    assert!(e.retryable());
    let e = p.speech(&speech("mock-error-401", None)).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::Auth);

    let e = p.transcribe(&transcription("mock-badjson", TranscriptFormat::Json)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidResponse, "a JSON transcript must parse");
}

#[tokio::test]
async fn presets_without_audio_refuse_before_sending() {
    let mock = hoosh_testkit::openai::start().await;
    for kind in ["lmstudio", "llamacpp", "deepseek", "xai", "openrouter", "fireworks"] {
        let p = provider(kind, &mock);
        assert!(!p.capabilities().transcription && !p.capabilities().speech, "{kind}");
        let e = p.transcribe(&transcription("whisper-1", TranscriptFormat::Json)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported, "{kind}");
        assert!(e.message.contains(kind), "{}", e.message);
        let e = p.speech(&speech("tts-1", None)).await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::Unsupported, "{kind}");
    }
    let groq = provider("groq", &mock);
    assert_eq!(groq.speech(&speech("tts-1", None)).await.err().unwrap().kind, ErrorKind::Unsupported);
    assert!(mock.requests().is_empty(), "nothing reached the upstream");
    groq.transcribe(&transcription("whisper-large-v3", TranscriptFormat::Json)).await.unwrap();
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn audio_capabilities_per_preset() {
    // (type, transcription, speech)
    let table = [
        ("openai", true, true),
        ("azure", true, true),
        ("groq", true, false),
        ("mistral", true, false),
        ("together", true, true),
        ("localai", true, true),
        ("vllm", true, false),
        ("openai-compatible", true, true),
        ("deepseek", false, false),
        ("xai", false, false),
        ("openrouter", false, false),
        ("fireworks", false, false),
        ("lmstudio", false, false),
        ("llamacpp", false, false),
        ("anthropic", false, false),
        ("ollama", false, false),
        ("gemini", false, false),
    ];
    assert_eq!(table.len(), presets::PRESETS.len(), "every preset is in the table");
    for (kind, transcription, speech) in table {
        let p = presets::find(kind).unwrap();
        assert_eq!((p.transcription, p.speech), (transcription, speech), "{kind}");
    }
}

#[tokio::test]
async fn azure_audio_goes_to_the_deployment_with_its_api_key() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("azure", &mock);
    let out = p.transcribe(&transcription("my-whisper", TranscriptFormat::Json)).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&whole(out)).unwrap()["text"], transcript_text(clip().len()));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.uri, "/openai/deployments/my-whisper/audio/transcriptions?api-version=2024-10-21");
    assert_eq!(sent.header("api-key"), Some("sk-audio"));
    assert_eq!(sent.header("authorization"), None);

    let out = p.speech(&speech("my-tts", Some("flac"))).await.unwrap();
    assert_eq!(out.content_type, "audio/flac");
    pieces(out).await.into_iter().for_each(|c| assert!(c.is_ok()));
    assert_eq!(mock.last_request().unwrap().uri, "/openai/deployments/my-tts/audio/speech?api-version=2024-10-21");
}

#[tokio::test]
async fn a_full_size_upload_arrives_intact() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", &mock);
    let mut req = transcription("whisper-1", TranscriptFormat::Text);
    let file: Vec<u8> = (0..hoosh_testkit::audio::MAX_FILE_BYTES).map(|i| (i % 251) as u8).collect();
    req.file = Bytes::from(file);
    let out = p.transcribe(&req).await.unwrap();
    assert_eq!(whole(out), format!("{}\n", transcript_text(req.file.len())));
    assert_eq!(mock.last_request().unwrap().form_part("file").unwrap().data, req.file);

    // One byte past OpenAI's limit: its 413, classified as the caller's fault.
    let mut big = req.clone();
    big.file = Bytes::from(vec![0u8; hoosh_testkit::audio::MAX_FILE_BYTES + 1]);
    let e = p.transcribe(&big).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::BadRequest, Some(413)));
}

#[tokio::test]
async fn the_mock_refuses_what_openai_refuses() {
    let mock = hoosh_testkit::openai::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/audio/transcriptions", mock.url());
    let refusal = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        (status, body["error"]["param"].as_str().map(str::to_owned))
    };
    let no_file = reqwest::multipart::Form::new().text("model", "whisper-1");
    let resp = http.post(&url).multipart(no_file).send().await.unwrap();
    assert_eq!(refusal(resp).await, (400, Some("file".into())));
    let file = || reqwest::multipart::Part::bytes(b"RIFF".to_vec()).file_name("a.wav");
    let no_model = reqwest::multipart::Form::new().part("file", file());
    let resp = http.post(&url).multipart(no_model).send().await.unwrap();
    assert_eq!(refusal(resp).await, (400, Some("model".into())));
    let bad_format =
        reqwest::multipart::Form::new().text("model", "whisper-1").text("response_format", "xml").part("file", file());
    let resp = http.post(&url).multipart(bad_format).send().await.unwrap();
    assert_eq!(refusal(resp).await, (400, Some("response_format".into())));
    let resp = http.post(&url).json(&json!({"model": "whisper-1"})).send().await.unwrap();
    assert_eq!(resp.status(), 400, "not a multipart form");

    let speech_url = format!("{}/v1/audio/speech", mock.url());
    for (body, param) in [
        (json!({"model": "tts-1", "input": "", "voice": "alloy"}), "input"),
        (json!({"model": "tts-1", "input": "hi"}), "voice"),
        (json!({"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "ogg"}), "response_format"),
        (json!({"model": "tts-1", "input": "hi", "voice": "alloy", "speed": 9}), "speed"),
    ] {
        let resp = http.post(&speech_url).json(&body).send().await.unwrap();
        assert_eq!(refusal(resp).await, (400, Some(param.into())), "{body}");
    }
    let resp = http
        .post(&speech_url)
        .json(&json!({"model": "tts-1", "input": "\u{e9}".repeat(4096), "voice": "alloy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the limit counts characters, not bytes");
}
