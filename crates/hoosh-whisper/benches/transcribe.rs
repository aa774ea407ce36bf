//! Transcription latency of whisper-tiny.en (2 threads, greedy) on the 5 s
//! and 14.6 s fixture clips. Skips (prints why) unless
//! `HOOSH_TEST_MODELS_DIR` names a model store holding `whisper-tiny.en/`.
//! RTF and peak RSS for 5 s / 14.6 s / 70 s: `cargo run --release -p
//! hoosh-whisper --example rtf`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hoosh_whisper::{TranscribeRequest, WhisperConfig, WhisperEngine};

fn transcribe(c: &mut Criterion) {
    let Some(dir) = common::model_dir("whisper-tiny.en") else { return };
    let mut cfg = WhisperConfig::new(dir);
    cfg.threads = 2;
    let engine = WhisperEngine::load(cfg).unwrap();
    let mut group = c.benchmark_group("whisper-tiny.en");
    group.sample_size(10).measurement_time(Duration::from_secs(15));
    for (name, pcm) in [("s2_5.2s", common::clip("s2.wav")), ("s1s2s3_14.6s", common::clip_14s())] {
        let pcm = std::sync::Arc::new(pcm);
        group.bench_function(name, |b| {
            b.iter(|| {
                let req = TranscribeRequest { pcm: std::sync::Arc::clone(&pcm), ..Default::default() };
                engine.submit(req).unwrap().blocking_collect().unwrap()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, transcribe);
criterion_main!(benches);
