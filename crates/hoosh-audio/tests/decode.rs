//! Decoding the committed fixtures and synthetic signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use hoosh_audio::{AudioError, DecodeLimits, Pcm, SAMPLE_RATE, decode};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn decode_fixture(name: &str) -> Pcm {
    decode(&fixture(name), Some(name), &DecodeLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Best normalized cross-correlation of `b` against `a` over lags in ±`max_lag`.
fn best_correlation(a: &[f32], b: &[f32], max_lag: usize) -> (f64, isize) {
    let mut best = (f64::MIN, 0isize);
    for lag in -(max_lag as isize)..=(max_lag as isize) {
        let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
        for (i, &x) in a.iter().enumerate() {
            let j = i as isize + lag;
            if j < 0 || j as usize >= b.len() {
                continue;
            }
            let y = b[j as usize];
            dot += f64::from(x) * f64::from(y);
            na += f64::from(x) * f64::from(x);
            nb += f64::from(y) * f64::from(y);
        }
        let c = dot / (na.sqrt() * nb.sqrt()).max(1e-12);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

/// Frequency from upward zero crossings, ignoring the edges.
fn frequency(samples: &[f32]) -> f64 {
    let s = &samples[1600..samples.len() - 1600];
    let ups: Vec<usize> = (1..s.len()).filter(|&i| s[i - 1] < 0.0 && s[i] >= 0.0).collect();
    let periods = (ups.len() - 1) as f64;
    periods * f64::from(SAMPLE_RATE) / (ups[ups.len() - 1] - ups[0]) as f64
}

/// A 16-bit PCM WAV file.
fn wav_bytes(rate: u32, channels: u16, frames: &[Vec<f32>]) -> Vec<u8> {
    let n = frames.len() as u32;
    let data_len = n * u32::from(channels) * 2;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    b.extend_from_slice(&(channels * 2).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for f in frames {
        for s in f {
            b.extend_from_slice(&((s * 32767.0) as i16).to_le_bytes());
        }
    }
    b
}

fn sine(rate: u32, hz: f64, secs: f64, channels: usize) -> Vec<Vec<f32>> {
    let n = (f64::from(rate) * secs) as usize;
    (0..n)
        .map(|i| {
            let v = (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()) as f32;
            vec![v; channels]
        })
        .collect()
}

#[test]
fn every_format_decodes_to_the_same_audio() {
    let wav = decode_fixture("s1.wav");
    assert!((wav.duration_secs() - 3.438).abs() < 0.002, "{}", wav.duration_secs());
    // (file, duration tolerance in seconds, minimum correlation). symphonia
    // ignores MP4 edit lists, so AAC keeps its 1024-frame encoder priming
    // and end padding: about 80 ms longer, shifted by 64 ms.
    for (name, tol, min_corr) in
        [("s1.flac", 0.001, 0.999), ("s1.ogg", 0.005, 0.9), ("s1.mp3", 0.005, 0.9), ("s1.m4a", 0.1, 0.9)]
    {
        let pcm = decode_fixture(name);
        let diff = (pcm.duration_secs() - wav.duration_secs()).abs();
        assert!(diff <= tol, "{name}: {} s vs {} s", pcm.duration_secs(), wav.duration_secs());
        let (corr, lag) = best_correlation(&wav.samples[8000..24000], &pcm.samples[8000..24000], 1200);
        assert!(corr >= min_corr, "{name}: correlation {corr} at lag {lag}");
        eprintln!(
            "{name}: duration {:+.4} s, correlation {corr:.4} at lag {lag}",
            pcm.duration_secs() - wav.duration_secs()
        );
    }
}

#[test]
fn stereo_44k_is_downmixed_and_resampled() {
    let wav = decode_fixture("s1.wav");
    let pcm = decode_fixture("s1_44k_stereo.wav");
    assert!((pcm.duration_secs() - 0.3).abs() < 0.001, "{}", pcm.duration_secs());
    let (corr, lag) = best_correlation(&wav.samples[500..4300], &pcm.samples[500..4300], 50);
    assert!(corr > 0.98, "correlation {corr} at lag {lag}");
    assert!(lag.abs() <= 2, "lag {lag}");
}

#[test]
fn resampled_sines_keep_their_frequency_and_length() {
    for (rate, channels, hz) in [(22_050, 1, 440.0), (44_100, 2, 1000.0), (8_000, 1, 300.0), (48_000, 2, 3000.0)] {
        let bytes = wav_bytes(rate, channels as u16, &sine(rate, hz, 2.0, channels));
        let pcm = decode(&bytes, None, &DecodeLimits::default()).unwrap();
        assert_eq!(pcm.samples.len(), 32_000, "{rate} Hz");
        let f = frequency(&pcm.samples);
        assert!((f - hz).abs() / hz < 0.002, "{rate} Hz input: {f} Hz, expected {hz}");
        let peak = pcm.samples[1600..30_000].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.5).abs() < 0.02, "{rate} Hz: amplitude {peak}");
    }
}

#[test]
fn content_decides_not_the_name() {
    let as_mp3 = decode(&fixture("s1.wav"), Some("upload.mp3"), &DecodeLimits::default()).unwrap();
    assert_eq!(as_mp3, decode_fixture("s1.wav"));
    let by_mime = decode(&fixture("s1.ogg"), Some("audio/mpeg"), &DecodeLimits::default()).unwrap();
    assert_eq!(by_mime, decode_fixture("s1.ogg"));
    let text = b"This is not audio at all, just a text file that someone named clip.wav.\n".repeat(20);
    let err = decode(&text, Some("clip.wav"), &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, AudioError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("unrecognised audio format"), "{err}");
}

#[test]
fn empty_inputs() {
    assert_eq!(decode(&[], Some("a.wav"), &DecodeLimits::default()), Err(AudioError::Empty));
    let header_only = wav_bytes(16_000, 1, &[]);
    assert_eq!(decode(&header_only, None, &DecodeLimits::default()), Err(AudioError::Empty));
}

#[test]
fn too_long_is_rejected_from_metadata_and_while_decoding() {
    let limits = DecodeLimits { max_duration_secs: 1.0 };
    match decode(&fixture("s2.wav"), None, &limits) {
        Err(AudioError::TooLong { secs, max_secs }) => {
            assert!((secs - 5.217).abs() < 0.01, "{secs}");
            assert_eq!(max_secs, 1.0);
        }
        other => panic!("{other:?}"),
    }
    for name in ["s1.mp3", "s1.ogg", "s1.m4a", "s1.flac"] {
        let err = decode(&fixture(name), None, &limits).unwrap_err();
        assert!(matches!(err, AudioError::TooLong { .. }), "{name}: {err:?}");
    }
    // A WAV header claiming 0.1 s in front of 3 s of samples: caught while decoding.
    let mut lying = wav_bytes(16_000, 1, &sine(16_000, 440.0, 3.0, 1));
    lying[40..44].copy_from_slice(&3200u32.to_le_bytes());
    let short = DecodeLimits { max_duration_secs: 0.15 };
    match decode(&lying, None, &short) {
        Ok(p) => assert!(p.duration_secs() <= 0.15),
        Err(e) => assert!(matches!(e, AudioError::TooLong { .. }), "{e:?}"),
    }
}

#[test]
fn errors_read_well() {
    assert_eq!(AudioError::Empty.to_string(), "audio is empty");
    assert_eq!(
        AudioError::TooLong { secs: 7300.0, max_secs: 7200.0 }.to_string(),
        "audio is too long: 7300.0 s (limit 7200.0 s)"
    );
}

#[test]
fn a_file_cut_short_of_its_declared_length_is_reported_truncated() {
    for name in ["s1.wav", "s1.flac", "s2.wav"] {
        let whole = fixture(name);
        let half = &whole[..whole.len() / 2];
        match decode(half, Some(name), &DecodeLimits::default()) {
            Err(AudioError::Corrupt { detail }) => assert!(detail.contains("truncated"), "{name}: {detail}"),
            other => panic!("{name}: expected a truncation error, got {other:?}"),
        }
    }
    // The last 100 ms of a 16 kHz 16-bit WAV missing is within the slack: still decodes.
    let whole = fixture("s2.wav");
    let nearly = decode(&whole[..whole.len() - 3200], Some("s2.wav"), &DecodeLimits::default());
    assert!(nearly.is_ok_and(|p| p.duration_secs() > 5.0));
}
