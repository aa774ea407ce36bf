//! Decode common audio files to what speech models want: 16 kHz mono `f32`.
//!
//! Pure Rust: [symphonia] demuxes and decodes, [rubato] resamples with an
//! FFT-based synchronous resampler (band-limited, not linear interpolation),
//! and channels are averaged to mono.
//!
//! The container is found by probing the bytes, not by trusting the name: the
//! `hint` (file name, extension or MIME type) only orders the probe, so a WAV
//! uploaded as `clip.mp3` still decodes and a text file named `.wav` is an
//! error. Every error is a client error that can go straight into an HTTP 400
//! body; no input panics (decoders run under `catch_unwind` as a last line of
//! defence, and `tests/robustness.rs` feeds truncated and random bytes).
//!
//! # Layout
//!
//! | file | job |
//! |---|---|
//! | `decode.rs` | [`decode`], [`DecodeLimits`], [`Pcm`]: probe → decode packets → downmix → resample, with the duration limit checked from metadata first and again while decoding |
//! | `preflight.rs` | header counts symphonia would trust to size an allocation, checked against the bytes first (a failed allocation aborts the process) |
//! | `resample.rs` | streaming resampler to 16 kHz over rubato's `FftFixedInOut` (delay compensated, exact output length) |
//! | `error.rs` | [`AudioError`] |
//!
//! Supported: WAV (PCM integer/float), MP3, FLAC, Ogg Vorbis, MP4/M4A with AAC-LC.

mod decode;
mod error;
mod preflight;
mod resample;

pub use decode::{DecodeLimits, Pcm, SAMPLE_RATE, decode};
pub use error::AudioError;
