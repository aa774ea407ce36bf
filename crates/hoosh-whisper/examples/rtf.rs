//! Prints transcripts, RTF (processing time ÷ audio duration) and peak RSS
//! for 5 s, 14.6 s and 70 s clips built from the test fixtures.
//!
//! `HOOSH_TEST_MODELS_DIR=/path/to/models cargo run --release -p hoosh-whisper --example rtf [model-id] [threads] [runs]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use hoosh_whisper::{TranscribeRequest, WhisperConfig, WhisperEngine};

fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args: Vec<String> = std::env::args().collect();
    let id = args.get(1).map_or("whisper-tiny.en", String::as_str);
    let threads = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(2);
    let runs: usize = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(3);
    let Some(dir) = common::model_dir(id) else { return };
    let mut cfg = WhisperConfig::new(dir);
    cfg.threads = threads;
    let engine = WhisperEngine::load(cfg).unwrap();
    println!(
        "loaded {id} in {:.2} s ({threads} threads), RSS {:.0} MB",
        engine.info().load_secs,
        common::peak_rss_mb()
    );
    let (c70, _) = common::clip_70s();
    let clips = [("5s (s2)", common::clip("s2.wav")), ("14.6s", common::clip_14s()), ("70s", c70)];
    for (name, pcm) in &clips {
        let secs = pcm.len() as f64 / 16_000.0;
        let mut times = Vec::new();
        let mut text = String::new();
        for _ in 0..runs {
            let t0 = Instant::now();
            let t = engine
                .submit(TranscribeRequest { pcm: std::sync::Arc::new(pcm.clone()), ..Default::default() })
                .unwrap()
                .blocking_collect()
                .unwrap();
            times.push(t0.elapsed().as_secs_f64());
            text = format!("{} segments: {}", t.segments.len(), t.text);
        }
        times.sort_by(f64::total_cmp);
        let best = times[0];
        let median = times[times.len() / 2];
        println!(
            "{name:>8}: {secs:5.1} s audio, best {best:.3} s (RTF {:.4}), median {median:.3} s (RTF {:.4}), peak RSS {:.0} MB\n          {text}",
            best / secs,
            median / secs,
            common::peak_rss_mb()
        );
    }
}
