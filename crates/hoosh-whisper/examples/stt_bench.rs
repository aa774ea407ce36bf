//! One transcription of one file, as a JSON line — the `hoosh` engine of
//! `bench/stt/compare.sh`, next to whisper.cpp and faster-whisper:
//!
//! `cargo run --release -p hoosh-whisper --example stt_bench -- MODEL_DIR CLIP [THREADS]`
//!
//! Prints `{engine, model, clip, audio_s, load_s, transcribe_s, rtf, rss_mb, text}`;
//! `transcribe_s` excludes loading, as the reference scripts' do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use hoosh_whisper::{TranscribeRequest, WhisperConfig, WhisperEngine};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(clip)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stt_bench MODEL_DIR CLIP [THREADS]");
        std::process::exit(2);
    };
    let threads = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(2);
    let bytes = std::fs::read(clip).unwrap();
    let pcm = hoosh_audio::decode(&bytes, Some(clip), &hoosh_audio::DecodeLimits::default()).unwrap();
    let mut cfg = WhisperConfig::new(model);
    cfg.threads = threads;
    let engine = WhisperEngine::load(cfg).unwrap();
    let load_s = engine.info().load_secs;
    let audio_s = pcm.duration_secs();
    let t0 = Instant::now();
    let t = engine
        .submit(TranscribeRequest { pcm: std::sync::Arc::new(pcm.samples), ..Default::default() })
        .unwrap()
        .blocking_collect()
        .unwrap();
    let transcribe_s = t0.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "engine": "hoosh",
        "model": model,
        "clip": clip,
        "audio_s": audio_s,
        "load_s": load_s,
        "transcribe_s": transcribe_s,
        "rtf": transcribe_s / audio_s,
        "rss_mb": common::peak_rss_mb(),
        "text": t.text,
    });
    println!("{out}");
}
