//! The result types: [`Transcript`], its [`Segment`]s and [`Word`]s.

use serde::Serialize;

/// What the model is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Speech → text in the spoken language.
    #[default]
    Transcribe,
    /// Speech in any language → English text (multilingual models only).
    Translate,
}

/// A stretch of speech with its own timestamps, as OpenAI's `verbose_json`
/// reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub id: usize,
    /// Start of the 30 s window it was decoded in, in mel frames (10 ms).
    pub seek: usize,
    /// Seconds from the start of the audio.
    pub start: f64,
    pub end: f64,
    /// As decoded: usually starts with a space.
    pub text: String,
    /// Token ids, timestamps included.
    pub tokens: Vec<u32>,
    /// The sampling temperature that produced it (after fallback).
    pub temperature: f32,
    pub avg_logprob: f64,
    pub compression_ratio: f64,
    /// Probability that the window holds no speech.
    pub no_speech_prob: f64,
}

/// One word with its timing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
}

/// A finished transcription.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    pub task: Task,
    /// The full text, segments joined, surrounding whitespace trimmed.
    pub text: String,
    /// ISO 639-1 code (`"en"`): requested, detected, or `"en"` for
    /// English-only models.
    pub language: String,
    /// Length of the input audio.
    pub duration_secs: f64,
    pub segments: Vec<Segment>,
    /// Word timings, when requested and supported (see the crate docs).
    pub words: Option<Vec<Word>>,
}
