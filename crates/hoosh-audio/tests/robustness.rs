//! No input makes the decoder panic: truncated fixtures and random bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use hoosh_audio::{AudioError, DecodeLimits, decode};

const FIXTURES: [&str; 8] =
    ["s1.wav", "s1.mp3", "s1.flac", "s1.ogg", "s1.m4a", "s1_44k_stereo.wav", "s2.wav", "s3.wav"];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio").join(name)).unwrap()
}

#[test]
fn truncated_prefixes_never_panic() {
    let limits = DecodeLimits::default();
    for name in FIXTURES {
        let bytes = fixture(name);
        let mut cuts: Vec<usize> = (0..64).chain([100, 200, 500, 1000, 2000, 4096]).collect();
        cuts.extend((1..40).map(|i| bytes.len() * i / 40));
        for cut in cuts.into_iter().filter(|c| *c < bytes.len()) {
            match decode(&bytes[..cut], Some(name), &limits) {
                Ok(p) => assert!(!p.samples.is_empty() && p.samples.iter().all(|s| s.is_finite())),
                Err(AudioError::TooLong { .. }) => panic!("{name}[..{cut}]: too long?"),
                Err(_) => {}
            }
        }
    }
}

#[test]
fn random_and_corrupted_bytes_never_panic() {
    let mut rng = fastrand::Rng::with_seed(7);
    let limits = DecodeLimits::default();
    for len in [1, 3, 4, 12, 44, 100, 1000, 10_000, 100_000] {
        for _ in 0..4 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let _ = decode(&bytes, Some("x.wav"), &limits);
            let _ = decode(&bytes, None, &limits);
        }
    }
    // A WAV header claiming 4.2 GHz (this once hung the resampler).
    let mut bytes = fixture("s1_44k_stereo.wav");
    bytes[24..28].copy_from_slice(&4_244_679_748u32.to_le_bytes());
    let err = decode(&bytes, None, &limits).unwrap_err();
    assert!(matches!(err, AudioError::Unsupported { .. }) && err.to_string().contains("sample rate"), "{err}");
    // Valid headers followed by flipped bytes.
    for name in FIXTURES {
        let clean = fixture(name);
        for _ in 0..6 {
            let mut bytes = clean.clone();
            for _ in 0..50 {
                let i = rng.usize(..bytes.len());
                bytes[i] = rng.u8(..);
            }
            if let Ok(p) = decode(&bytes, Some(name), &limits) {
                assert!(p.samples.iter().all(|s| s.is_finite()));
            }
        }
    }
}
