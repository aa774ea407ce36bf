//! [`decode`]: bytes of any supported file → 16 kHz mono samples.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::AudioError;
use crate::resample::MonoResampler;

/// The output sample rate: what Whisper and most speech models expect.
pub const SAMPLE_RATE: u32 = 16_000;

/// Accepted input sample rates.
/// How much shorter than its header declares a file may decode before it
/// counts as truncated (encoder delay and padding are far below this).
const TRUNCATION_SLACK_SECS: f64 = 0.25;
const MIN_RATE: u32 = 1_000;
const MAX_RATE: u32 = 768_000;

/// Consecutive undecodable packets tolerated before the file counts as corrupt.
const MAX_BAD_PACKETS: usize = 16;

/// Bounds on what [`decode`] accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeLimits {
    /// Reject audio longer than this many seconds. Checked against the
    /// container's metadata before decoding when it has a frame count, and
    /// again while decoding (so a lying or missing header cannot make the
    /// decoder run past the limit).
    pub max_duration_secs: f64,
}

impl Default for DecodeLimits {
    /// Two hours.
    fn default() -> Self {
        Self { max_duration_secs: 2.0 * 3600.0 }
    }
}

/// Decoded audio: mono, [`SAMPLE_RATE`] Hz, nominally in `-1.0..=1.0`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pcm {
    pub samples: Vec<f32>,
}

impl Pcm {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// Decodes `bytes` (a whole file) to 16 kHz mono.
///
/// `hint` is a file name, a bare extension (`"mp3"`) or a MIME type
/// (`"audio/mpeg"`); it only speeds up probing, the content decides.
/// CPU-bound (about real time ÷ 100 for MP3): call it from a blocking
/// thread in async code.
pub fn decode(bytes: &[u8], hint: Option<&str>, limits: &DecodeLimits) -> Result<Pcm, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    match catch_unwind(AssertUnwindSafe(|| decode_inner(bytes, hint, limits))) {
        Ok(result) => result,
        Err(_) => Err(AudioError::Corrupt { detail: "the decoder failed on malformed data".into() }),
    }
}

fn decode_inner(bytes: &[u8], hint: Option<&str>, limits: &DecodeLimits) -> Result<Pcm, AudioError> {
    crate::preflight::check(bytes)?;
    let source = Cursor::new(bytes.to_vec());
    let stream = MediaSourceStream::new(Box::new(source), MediaSourceStreamOptions::default());
    let format_opts = FormatOptions { enable_gapless: true, ..FormatOptions::default() };
    let probed = symphonia::default::get_probe()
        .format(&make_hint(hint), stream, &format_opts, &MetadataOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(_) => AudioError::Unsupported {
                what: "unrecognised audio format (expected wav, mp3, flac, ogg/vorbis or m4a/aac)".into(),
            },
            other => probe_error(other),
        })?;
    let mut format = probed.format;

    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Unsupported { what: "the file has no audio track".into() })?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let rate = params
        .sample_rate
        .filter(|r| *r > 0)
        .ok_or_else(|| AudioError::Corrupt { detail: "the audio track has no sample rate".into() })?;
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        // Also a guard: the resampler's FFT size grows with the rate.
        return Err(AudioError::Unsupported {
            what: format!("sample rate {rate} Hz (supported: {MIN_RATE}..={MAX_RATE})"),
        });
    }
    if let Some(frames) = params.n_frames {
        let secs = frames as f64 / f64::from(rate);
        if secs > limits.max_duration_secs {
            return Err(AudioError::TooLong { secs, max_secs: limits.max_duration_secs });
        }
    }

    let mut decoder =
        symphonia::default::get_codecs().make(&params, &DecoderOptions::default()).map_err(|e| match e {
            SymError::Unsupported(_) => {
                AudioError::Unsupported { what: format!("audio codec {}", codec_name(&params)) }
            }
            other => corrupt(other),
        })?;

    let max_frames_out = (limits.max_duration_secs * f64::from(SAMPLE_RATE)).ceil() as usize;
    let mut resampler = MonoResampler::new(rate, SAMPLE_RATE)?;
    let mut interleaved: Option<SampleBuffer<f32>> = None;
    let mut mono = Vec::new();
    let mut bad_packets = 0usize;
    let mut decoded_any = false;
    let mut frames_in = 0u64;

    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            // Damage after some good audio: keep what decoded, as media
            // players do with a truncated download.
            Err(_) if decoded_any => break,
            Err(e) => return Err(corrupt(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(SymError::DecodeError(_)) | Err(SymError::IoError(_)) => {
                bad_packets += 1;
                if bad_packets > MAX_BAD_PACKETS {
                    if decoded_any {
                        break;
                    }
                    return Err(AudioError::Corrupt { detail: "no packet could be decoded".into() });
                }
                continue;
            }
            Err(SymError::Unsupported(what)) => {
                return Err(AudioError::Unsupported { what: format!("{} ({what})", codec_name(&params)) });
            }
            Err(e) => return Err(corrupt(e)),
        };
        bad_packets = 0;
        let spec = *buf.spec();
        let frames = buf.frames();
        if frames == 0 {
            continue;
        }
        if spec.rate != rate {
            return Err(AudioError::Unsupported { what: "sample rate changes mid-stream".into() });
        }
        let channels = spec.channels.count().max(1);
        let sb = match interleaved.as_mut() {
            Some(sb) if sb.capacity() >= frames * channels => sb,
            _ => interleaved.insert(SampleBuffer::new(buf.capacity().max(frames) as u64, spec)),
        };
        sb.copy_interleaved_ref(buf);
        mono.clear();
        mono.extend(sb.samples().chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32));
        decoded_any = true;
        frames_in += frames as u64;
        resampler.push(&mono)?;
        if resampler.len_out() > max_frames_out {
            return Err(AudioError::TooLong {
                secs: frames_in as f64 / f64::from(rate),
                max_secs: limits.max_duration_secs,
            });
        }
    }

    // A file that ends well short of the length its own header declares was
    // cut off (an interrupted upload or copy): say so rather than
    // transcribe a fragment. Small shortfalls are encoder padding.
    if let Some(declared) = params.n_frames
        && decoded_any
    {
        let (declared_secs, read_secs) = (declared as f64 / f64::from(rate), frames_in as f64 / f64::from(rate));
        if declared_secs - read_secs > TRUNCATION_SLACK_SECS && read_secs < declared_secs * 0.9 {
            return Err(AudioError::Corrupt {
                detail: format!(
                    "the file is truncated: its header declares {declared_secs:.2} s of audio but only {read_secs:.2} s is there"
                ),
            });
        }
    }
    let mut samples = resampler.finish()?;
    if samples.is_empty() {
        return Err(AudioError::Empty);
    }
    if samples.len() > max_frames_out {
        return Err(AudioError::TooLong {
            secs: samples.len() as f64 / f64::from(SAMPLE_RATE),
            max_secs: limits.max_duration_secs,
        });
    }
    // Decoders can overshoot full scale slightly (MP3/AAC ringing); NaN from
    // a broken stream would poison every later computation.
    for s in &mut samples {
        *s = if s.is_finite() { s.clamp(-1.0, 1.0) } else { 0.0 };
    }
    Ok(Pcm { samples })
}

fn make_hint(hint: Option<&str>) -> Hint {
    let mut h = Hint::new();
    if let Some(hint) = hint.map(str::trim).filter(|s| !s.is_empty()) {
        if hint.contains('/') && !hint.contains('.') {
            h.mime_type(hint);
        } else {
            let ext = hint.rsplit('.').next().unwrap_or(hint);
            h.with_extension(&ext.to_ascii_lowercase());
        }
    }
    h
}

fn codec_name(params: &symphonia::core::codecs::CodecParameters) -> String {
    symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map(|d| d.short_name.to_string())
        .unwrap_or_else(|| format!("{}", params.codec))
}

fn probe_error(e: SymError) -> AudioError {
    match e {
        SymError::IoError(_) => AudioError::Corrupt { detail: "the file ends before its header is complete".into() },
        other => corrupt(other),
    }
}

fn corrupt(e: SymError) -> AudioError {
    match e {
        SymError::Unsupported(what) => AudioError::Unsupported { what: what.to_string() },
        SymError::IoError(e) => AudioError::Corrupt { detail: format!("read error: {e}") },
        SymError::DecodeError(d) => AudioError::Corrupt { detail: d.to_string() },
        SymError::LimitError(d) => AudioError::Corrupt { detail: format!("limit exceeded: {d}") },
        SymError::SeekError(_) => AudioError::Corrupt { detail: "seek error".into() },
        SymError::ResetRequired => AudioError::Corrupt { detail: "the stream changed format mid-way".into() },
    }
}
