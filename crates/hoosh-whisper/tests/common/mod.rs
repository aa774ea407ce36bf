//! Shared by the integration tests, the bench and the `rtf` example:
//! fixture clips, the model directory, WER.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

pub const S1: &str = "The quick brown fox jumps over the lazy dog.";
pub const S2: &str = "Please schedule a meeting with the engineering team for next Tuesday at three o'clock.";
pub const S3: &str = "Local speech recognition should work on every machine without an internet connection.";

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio").join(name)
}

/// A fixture decoded to 16 kHz mono.
pub fn clip(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixture_path(name)).unwrap();
    hoosh_audio::decode(&bytes, Some(name), &hoosh_audio::DecodeLimits::default()).unwrap().samples
}

/// Clips joined with `gap_secs` of silence between them.
pub fn concat(clips: &[&[f32]], gap_secs: f32) -> Vec<f32> {
    let gap = vec![0.0; (gap_secs * 16_000.0) as usize];
    let mut out = Vec::new();
    for (i, c) in clips.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(&gap);
        }
        out.extend_from_slice(c);
    }
    out
}

/// s1 s2 s3 with 0.3 s gaps: 14.6 s, as in the research measurements.
pub fn clip_14s() -> Vec<f32> {
    let (a, b, c) = (clip("s1.wav"), clip("s2.wav"), clip("s3.wav"));
    concat(&[&a, &b, &c], 0.3)
}

/// s2, s3, s1, s2, s3, … with 0.6 s gaps until ≥ 70 s; returns the clip and
/// the sentence texts in order.
pub fn clip_70s() -> (Vec<f32>, Vec<&'static str>) {
    let sents = [(clip("s2.wav"), S2), (clip("s3.wav"), S3), (clip("s1.wav"), S1)];
    let mut parts: Vec<&[f32]> = Vec::new();
    let mut texts = Vec::new();
    let mut secs = 0.0;
    let mut i = 0;
    while secs < 70.0 {
        let (pcm, text) = &sents[i % 3];
        parts.push(pcm);
        texts.push(*text);
        secs += pcm.len() as f64 / 16_000.0 + 0.6;
        i += 1;
    }
    (concat(&parts, 0.6), texts)
}

/// Root of the model store (`HOOSH_TEST_MODELS_DIR`), when the named model
/// is there; prints why a test is skipped otherwise.
pub fn model_dir(id: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os("HOOSH_TEST_MODELS_DIR") else {
        eprintln!("skipping: HOOSH_TEST_MODELS_DIR is not set (model store root containing {id}/)");
        return None;
    };
    let dir = PathBuf::from(root).join(id);
    if dir.join("model.bin").is_file() {
        Some(dir)
    } else {
        eprintln!("skipping: {} has no model.bin", dir.display());
        None
    }
}

/// Lowercase, punctuation stripped, digits 3 → "three", split in words.
pub fn normalize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace('3', " three ")
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' || c.is_whitespace() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level edit distance between reference and hypothesis, and the
/// reference length.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

/// Peak resident set size of this process, in MB (Linux).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}
