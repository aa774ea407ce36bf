//! `audio_container`: an uploaded audio file through [`hoosh_audio::decode`]
//! (probe, demux, decode, downmix, resample), with a short duration limit
//! so a run stays fast and the limit is often reached.
//!
//! Input: a byte choosing the file-name hint, one choosing the limit (0.25 s
//! to 4 s), then the file. Invariants: decoding returns, and what it accepts
//! is non-empty, within the limit and finite in `-1.0..=1.0`.
//!
//! The decoder runs under `catch_unwind`, its last line of defence against
//! a panicking codec. Under libFuzzer, whose panic hook aborts before any
//! unwinding, [`tolerate_contained_decoder_panics`] lets such a contained
//! panic pass (and names where it happened, once) while any other panic
//! still aborts.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Mutex;

use hoosh_audio::{DecodeLimits, SAMPLE_RATE, decode};

use crate::input::Input;

/// File names an upload may carry; the content decides, the hint orders the probe.
const HINTS: [Option<&str>; 8] = [
    None,
    Some("clip.wav"),
    Some("clip.mp3"),
    Some("clip.flac"),
    Some("clip.ogg"),
    Some("clip.m4a"),
    Some("audio/mpeg"),
    Some("clip.txt"),
];

pub fn audio_container(data: &[u8]) {
    let mut input = Input::new(data);
    let hint = HINTS[usize::from(input.byte()) % HINTS.len()];
    let max_duration_secs = 0.25 * f64::from(input.byte() % 16 + 1);
    let file = input.rest();
    let limits = DecodeLimits { max_duration_secs };
    DECODING.set(true);
    let decoded = decode(file, hint, &limits);
    DECODING.set(false);
    if let Ok(pcm) = decoded {
        let most = (max_duration_secs * f64::from(SAMPLE_RATE)).ceil() as usize;
        assert!(!pcm.samples.is_empty(), "accepted audio with no samples");
        assert!(pcm.samples.len() <= most, "{} samples past a limit of {most}", pcm.samples.len());
        assert!(pcm.samples.iter().all(|s| (-1.0..=1.0).contains(s)), "samples outside -1..=1 (or NaN)");
    }
}

thread_local! {
    /// Inside [`decode`], whose `catch_unwind` contains panics.
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Wraps the panic hook in force (libFuzzer's, which aborts): a panic
/// inside [`decode`] — which its `catch_unwind` turns into a corrupt-audio
/// error — is reported once per source location and let through; every
/// other panic goes to the wrapped hook. Call once, at fuzzer start.
pub fn tolerate_contained_decoder_panics() {
    let outer = std::panic::take_hook();
    let seen: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    std::panic::set_hook(Box::new(move |info| {
        if !DECODING.get() {
            return outer(info);
        }
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        if let Ok(mut seen) = seen.lock()
            && seen.insert(at.clone())
        {
            eprintln!("hoosh-fuzz: contained decoder panic (first at {at}): {info}");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono WAV of `frames` samples at `rate`.
    fn wav(rate: u32, frames: u32) -> Vec<u8> {
        let data_len = frames * 2;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for i in 0..frames {
            out.extend_from_slice(&(((i % 40) as i16 - 20) * 800).to_le_bytes());
        }
        out
    }

    #[test]
    fn a_wav_within_and_past_the_limit() {
        let file = wav(8_000, 4_000);
        assert!(decode(&file, None, &DecodeLimits { max_duration_secs: 1.0 }).is_ok());
        assert!(decode(&file, None, &DecodeLimits { max_duration_secs: 0.25 }).is_err());
        for limit in [0u8, 1, 15] {
            audio_container(&[[1, limit].as_slice(), &file].concat());
        }
    }
}
