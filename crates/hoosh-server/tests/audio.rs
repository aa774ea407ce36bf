//! The audio endpoints through the real gateway over HTTP, in front of the
//! mock OpenAI server: uploads reach the provider unchanged, answers come
//! back as the provider gave them, audio minutes and characters are priced
//! and budgeted, and every kind of bad upload gets a clear 400/413 while the
//! server stays up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../tests/fixtures/audio/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn form(file: Vec<u8>, filename: &str, fields: &[(&str, &str)]) -> Form {
    let mut f = Form::new().part("file", Part::bytes(file).file_name(filename.to_owned()));
    for (k, v) in fields {
        f = f.text(k.to_string(), v.to_string());
    }
    f
}

async fn upload(gw: &Gateway, path: &str, form: Form) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = http().post(gw.url(path)).multipart(form).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

fn code(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    (v["error"]["code"].as_str().unwrap_or("").to_owned(), v["error"]["param"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn transcriptions_reach_the_provider_unchanged_and_are_priced_by_the_minute() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let wav = fixture("s1.wav");
    let fields = [("model", "whisper-1"), ("language", "en"), ("prompt", "Foxes."), ("temperature", "0.2")];
    let (status, headers, body) = upload(&gw, "/v1/audio/transcriptions", form(wav.clone(), "s1.wav", &fields)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["text"],
        format!("mock transcript of {} bytes", wav.len())
    );
    assert_eq!(headers["x-hoosh-provider"], "up");
    let secs: f64 = headers["x-hoosh-audio-seconds"].to_str().unwrap().parse().unwrap();
    assert!((3.0..4.0).contains(&secs), "s1 is about 3.4 s: {secs}");
    // whisper-1 is $0.006 a minute (one millisecond: $0.0000001).
    let cost: f64 = headers["x-hoosh-cost-usd"].to_str().unwrap().parse().unwrap();
    assert!((cost - secs / 60.0 * 0.006).abs() <= 1.5e-7, "{cost} for {secs} s");
    let got = mock.last_request().unwrap();
    assert!(got.uri.ends_with("/audio/transcriptions"), "{}", got.uri);
    assert_eq!(got.form_part("file").unwrap().data.as_ref(), wav.as_slice(), "the original bytes go upstream");
    assert_eq!(got.form_part("file").unwrap().filename.as_deref(), Some("s1.wav"));
    for (k, v) in fields {
        assert_eq!(got.form_values(k), [v], "{k}");
    }
    // The ledger row carries the audio.
    gw.state.gov.inner.ledger().flush();
    let mut rows = Vec::new();
    gw.state.gov.inner.store().usage_rows(0, i64::MAX, &mut |r| rows.push(r.clone())).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].route.as_str(), rows[0].audio_ms), ("audio.transcriptions", (secs * 1000.0).ceil() as u64));

    // Every response format comes back as the provider gave it.
    for (format, content_type) in
        [("text", "text/plain"), ("srt", "text/plain"), ("vtt", "text/vtt"), ("verbose_json", "application/json")]
    {
        let (status, headers, body) = upload(
            &gw,
            "/v1/audio/transcriptions",
            form(wav.clone(), "s1.wav", &[("model", "whisper-1"), ("response_format", format)]),
        )
        .await;
        assert_eq!(status, 200, "{format}: {body}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(content_type), "{format}: {headers:?}");
        assert!(body.contains("mock transcript"), "{format}: {body}");
    }
    // Translations use their own path and take no language.
    let (status, _, body) =
        upload(&gw, "/v1/audio/translations", form(wav.clone(), "s1.wav", &[("model", "whisper-1")])).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("mock translation"), "{body}");
    assert!(mock.last_request().unwrap().uri.ends_with("/audio/translations"));
    // A streamed transcription passes through as SSE.
    let (status, headers, body) = upload(
        &gw,
        "/v1/audio/transcriptions",
        form(wav, "s1.wav", &[("model", "gpt-4o-transcribe"), ("stream", "true")]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert!(body.contains("transcript.text.delta") && body.contains("transcript.text.done"), "{body}");
}

#[tokio::test]
async fn every_kind_of_bad_upload_gets_a_clear_error_and_the_server_stays_up() {
    let mock = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("up", &mock.url())]);
    c.audio.max_upload_bytes = 150 * 1024;
    c.audio.max_duration_secs = 6;
    let gw = Gateway::start(c).await;
    let wav = fixture("s1.wav");
    let model = [("model", "whisper-1")];
    let cases: Vec<(&str, Form, u16, &str, &str)> = vec![
        ("no file", Form::new().text("model", "whisper-1"), 400, "", "file"),
        ("no model", form(wav.clone(), "s1.wav", &[]), 400, "", "model"),
        ("empty file", form(Vec::new(), "s1.wav", &model), 400, "empty_audio", "file"),
        ("not audio", form(b"hello, I am a text file".to_vec(), "notes.wav", &model), 400, "", "file"),
        ("truncated", form(wav[..300].to_vec(), "s1.wav", &model), 400, "", "file"),
        ("unknown field", form(wav.clone(), "s1.wav", &[("model", "whisper-1"), ("colour", "red")]), 400, "", "colour"),
        (
            "bad format",
            form(wav.clone(), "s1.wav", &[("model", "whisper-1"), ("response_format", "docx")]),
            400,
            "",
            "response_format",
        ),
        (
            "bad temperature",
            form(wav.clone(), "s1.wav", &[("model", "whisper-1"), ("temperature", "3")]),
            400,
            "",
            "temperature",
        ),
        (
            "words without verbose_json",
            form(wav.clone(), "s1.wav", &[("model", "whisper-1"), ("timestamp_granularities[]", "word")]),
            400,
            "",
            "timestamp_granularities[]",
        ),
        ("one byte over the size limit", form(vec![0u8; 150 * 1024 + 1], "big.wav", &model), 413, "", ""),
        ("exactly at the size limit (not audio)", form(vec![0u8; 150 * 1024], "big.wav", &model), 400, "", "file"),
    ];
    for (what, f, status, want_code, want_param) in cases {
        let (got, _, body) = upload(&gw, "/v1/audio/transcriptions", f).await;
        assert_eq!(got, status, "{what}: {body}");
        let (c, p) = code(&body);
        if !want_code.is_empty() {
            assert_eq!(c, want_code, "{what}: {body}");
        }
        assert_eq!(p, want_param, "{what}: {body}");
    }
    // Too long: 7 s (of 8 kHz silence, small enough to upload) against the 6 s limit.
    let (got, _, body) =
        upload(&gw, "/v1/audio/transcriptions", form(silence_wav(7.0, 8000), "long.wav", &model)).await;
    assert_eq!((got, code(&body).0.as_str()), (400, "audio_too_long"), "{body}");
    // Not multipart at all; language on a translation.
    let resp =
        http().post(gw.url("/v1/audio/transcriptions")).json(&json!({"model": "whisper-1"})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let (got, _, body) = upload(
        &gw,
        "/v1/audio/translations",
        form(wav.clone(), "s1.wav", &[("model", "whisper-1"), ("language", "de")]),
    )
    .await;
    assert_eq!((got, code(&body).1.as_str()), (400, "language"), "{body}");
    // A WAV named .mp3 is still a WAV.
    let (got, _, body) = upload(&gw, "/v1/audio/transcriptions", form(wav.clone(), "s1.mp3", &model)).await;
    assert_eq!(got, 200, "{body}");
    // Of all the above, only the one good upload reached the provider.
    let upstream = mock.requests().iter().filter(|r| r.uri.contains("/audio/")).count();
    assert_eq!(upstream, 1);
}

/// `secs` of silence as a 16-bit mono PCM WAV at `rate`.
fn silence_wav(secs: f64, rate: u32) -> Vec<u8> {
    let data_len = (secs * f64::from(rate)) as u32 * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + data_len as usize, 0);
    out
}

#[tokio::test]
async fn speech_streams_audio_and_is_priced_by_the_character() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let input = "Hello from hoosh.";
    let resp = http()
        .post(gw.url("/v1/audio/speech"))
        .json(&json!({"model": "tts-1", "input": input, "voice": "alloy", "response_format": "wav"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    let cost: f64 = resp.headers()["x-hoosh-cost-usd"].to_str().unwrap().parse().unwrap();
    assert!((cost - input.len() as f64 * 15.0 / 1e6).abs() < 1e-9, "{cost}");
    let audio = resp.bytes().await.unwrap();
    assert_eq!(&audio[..4], b"RIFF");
    let sent = mock.last_request().unwrap().body;
    assert_eq!(sent["input"], input);

    for (body, param) in [
        (json!({"model": "tts-1", "input": "", "voice": "alloy"}), "input"),
        (json!({"model": "tts-1", "input": "x".repeat(4097), "voice": "alloy"}), "input"),
        (json!({"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "midi"}), "response_format"),
        (json!({"model": "tts-1", "input": "hi", "voice": "alloy", "speed": 9}), "speed"),
    ] {
        let resp = http().post(gw.url("/v1/audio/speech")).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    // Exactly at the limit is fine.
    let resp = http()
        .post(gw.url("/v1/audio/speech"))
        .json(&json!({"model": "tts-1", "input": "é".repeat(4096), "voice": "alloy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
