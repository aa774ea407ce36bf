//! Audio of any length, window by window (openai-whisper's `transcribe`).
//!
//! The log-mel spectrogram of the whole input is computed once. Each 30 s
//! window starting at `seek` is encoded, decoded (with temperature fallback
//! when the output looks like a repetition loop or is very unlikely) and cut
//! into segments at its timestamp pairs. The next window starts at the last
//! complete timestamp, or at the window end when the window ended on a lone
//! timestamp or had none, so speech cut at a window boundary is decoded again
//! in full. Windows whose `no_speech_prob > 0.6` with `avg_logprob < -1` are
//! skipped as silence, and so, without running the model, are windows of
//! near-digital silence. Earlier text conditions the next window through the
//! `<|startofprev|>` prompt, unless it came from a hot (> 0.5) temperature.

use crate::WhisperError;
use crate::decode::{WindowDecoder, WindowRequest, WindowResult};
use crate::mel::{HOP, MelSpectrogram, N_FRAMES, SAMPLE_RATE};
use crate::model::Whisper;
use crate::tokenizer::{TIME_PRECISION, WhisperTokenizer};
use crate::transcript::{Segment, Task, Transcript};

const COMPRESSION_RATIO_THRESHOLD: f64 = 2.4;
const LOGPROB_THRESHOLD: f64 = -1.0;
const NO_SPEECH_THRESHOLD: f64 = 0.6;
const FALLBACK_TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
/// A window whose samples all stay below this (-60 dBFS) is skipped without
/// running the model: Whisper tends to hallucinate ("you", "Thank you.") on
/// digital silence, and the encoder is the expensive part.
const SILENCE_PEAK: f32 = 1e-3;

/// Everything loaded from a model directory.
pub(crate) struct Loaded {
    pub model: Whisper,
    pub tok: WhisperTokenizer,
    pub mel: MelSpectrogram,
    pub suppress: Vec<u32>,
    pub suppress_begin: Vec<u32>,
    pub multilingual: bool,
}

/// A validated request.
pub(crate) struct Job<'a> {
    pub pcm: &'a [f32],
    pub task: Task,
    /// A language code the model has; `None` detects it (multilingual).
    pub language: Option<&'static str>,
    pub prompt: Vec<u32>,
    pub temperature: f32,
    pub seed: u64,
}

pub(crate) fn transcribe(
    m: &Loaded,
    job: &Job<'_>,
    emit: &mut dyn FnMut(&Segment),
    cancelled: &dyn Fn() -> bool,
) -> Result<Transcript, WhisperError> {
    let tok = &m.tok;
    let decoder = WindowDecoder { model: &m.model, tok, suppress: &m.suppress, suppress_begin: &m.suppress_begin };
    let duration_secs = job.pcm.len() as f64 / SAMPLE_RATE as f64;
    let t_mel = std::time::Instant::now();
    let mel = m.mel.compute(job.pcm);
    tracing::debug!(mel_ms = t_mel.elapsed().as_secs_f64() * 1e3, frames = mel.n_frames, "log-mel");
    let content_frames = mel.n_frames - N_FRAMES;
    let mut rng = fastrand::Rng::with_seed(job.seed);

    let mut language = job.language.or(if m.multilingual { None } else { Some("en") });
    let mut all_tokens: Vec<u32> = job.prompt.clone();
    let mut prompt_reset_since = 0;
    let mut segments: Vec<Segment> = Vec::new();
    let mut seek = 0usize;

    while seek < content_frames {
        if cancelled() {
            return Err(WhisperError::Cancelled);
        }
        let time_offset = (seek * HOP) as f64 / SAMPLE_RATE as f64;
        let segment_size = N_FRAMES.min(content_frames - seek);
        let samples = &job.pcm[(seek * HOP).min(job.pcm.len())..((seek + segment_size) * HOP).min(job.pcm.len())];
        if samples.iter().all(|s| s.abs() < SILENCE_PEAK) {
            seek += segment_size;
            continue;
        }
        let t0 = std::time::Instant::now();
        let enc = m.model.encode(&mel.window(seek, segment_size))?;
        let cross = m.model.cross_kv(&enc)?;
        let encode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let lang = match language {
            Some(l) => l,
            None => {
                let (code, _) = decoder.detect_language(&cross)?;
                language = Some(code);
                code
            }
        };
        let mut sot_sequence = vec![tok.sot];
        if m.multilingual {
            sot_sequence.push(tok.language_token(lang).ok_or_else(|| WhisperError::UnknownLanguage(lang.into()))?);
            sot_sequence.push(if job.task == Task::Translate { tok.translate } else { tok.transcribe });
        }
        let prompt = &all_tokens[prompt_reset_since..];
        let t1 = std::time::Instant::now();
        let result =
            decode_with_fallback(&decoder, &cross, prompt, &sot_sequence, job.temperature, &mut rng, cancelled)?;
        tracing::debug!(
            seek,
            encode_ms,
            decode_ms = t1.elapsed().as_secs_f64() * 1e3,
            tokens = result.tokens.len(),
            prompt = prompt.len(),
            temperature = result.temperature,
            "window"
        );

        tracing::trace!(tokens = ?result.tokens, no_speech_prob = result.no_speech_prob, "window tokens");
        if result.no_speech_prob > NO_SPEECH_THRESHOLD && result.avg_logprob < LOGPROB_THRESHOLD {
            seek += segment_size;
            continue;
        }

        let tokens = &result.tokens;
        let is_ts: Vec<bool> = tokens.iter().map(|t| tok.is_timestamp(*t)).collect();
        let single_timestamp_ending = is_ts.len() >= 2 && !is_ts[is_ts.len() - 2] && is_ts[is_ts.len() - 1];
        let mut cuts: Vec<usize> = (1..tokens.len()).filter(|&i| is_ts[i - 1] && is_ts[i]).collect();
        let first_new = segments.len();
        let previous_seek = seek;
        if !cuts.is_empty() {
            if single_timestamp_ending {
                cuts.push(tokens.len());
            }
            let mut last = 0;
            for &cut in &cuts {
                let slice = &tokens[last..cut];
                if let (Some(&a), Some(&b)) = (slice.first(), slice.last()) {
                    let start = time_offset + tok.timestamp_secs(a);
                    let end = time_offset + tok.timestamp_secs(b);
                    push_segment(&mut segments, tok, previous_seek, start, end, slice, &result, duration_secs);
                }
                last = cut;
            }
            let advance = if single_timestamp_ending {
                segment_size
            } else {
                let last_ts = tokens[last - 1];
                (tok.timestamp_secs(last_ts) / TIME_PRECISION).round() as usize * 2
            };
            seek += if advance == 0 { segment_size } else { advance.min(segment_size) };
        } else {
            let mut duration = (segment_size * HOP) as f64 / SAMPLE_RATE as f64;
            if let Some(&last_ts) = tokens.iter().rev().find(|t| tok.is_timestamp(**t))
                && last_ts != tok.timestamp_begin
            {
                duration = tok.timestamp_secs(last_ts);
            }
            push_segment(
                &mut segments,
                tok,
                previous_seek,
                time_offset,
                time_offset + duration,
                tokens,
                &result,
                duration_secs,
            );
            seek += segment_size;
        }

        for s in &segments[first_new..] {
            all_tokens.extend_from_slice(&s.tokens);
            emit(s);
        }
        if result.temperature > 0.5 {
            prompt_reset_since = all_tokens.len();
        }
    }

    let text = segments.iter().map(|s| s.text.as_str()).collect::<String>().trim().to_string();
    Ok(Transcript {
        task: job.task,
        text,
        language: language.unwrap_or("en").to_string(),
        duration_secs,
        segments,
        words: None,
    })
}

fn decode_with_fallback(
    decoder: &WindowDecoder<'_>,
    cross: &crate::model::CrossKv,
    prompt: &[u32],
    sot_sequence: &[u32],
    temperature: f32,
    rng: &mut fastrand::Rng,
    cancelled: &dyn Fn() -> bool,
) -> Result<WindowResult, WhisperError> {
    let temperatures: &[f32] = if temperature > 0.0 { &[temperature] } else { &FALLBACK_TEMPERATURES };
    let mut result = None;
    for &t in temperatures {
        let r = decoder.decode(cross, &WindowRequest { prompt, sot_sequence, temperature: t }, rng, cancelled)?;
        let silent = r.no_speech_prob > NO_SPEECH_THRESHOLD && r.avg_logprob < LOGPROB_THRESHOLD;
        let bad = r.compression_ratio > COMPRESSION_RATIO_THRESHOLD || r.avg_logprob < LOGPROB_THRESHOLD;
        let done = silent || !bad;
        result = Some(r);
        if done {
            break;
        }
    }
    result.ok_or_else(|| WhisperError::Inference("no temperature to decode with".into()))
}

/// Adds a segment unless it has no text; keeps segments monotonic and inside
/// the audio.
#[allow(clippy::too_many_arguments)]
fn push_segment(
    segments: &mut Vec<Segment>,
    tok: &WhisperTokenizer,
    seek: usize,
    start: f64,
    end: f64,
    tokens: &[u32],
    result: &WindowResult,
    duration: f64,
) {
    let text = tok.decode_text(tokens);
    if text.trim().is_empty() {
        return;
    }
    let floor = segments.last().map_or(0.0, |s| s.end);
    let start = start.max(floor).min(duration);
    let end = end.min(duration).max(start);
    segments.push(Segment {
        id: segments.len(),
        seek,
        start: round_ms(start),
        end: round_ms(end),
        text,
        tokens: tokens.to_vec(),
        temperature: result.temperature,
        avg_logprob: result.avg_logprob,
        compression_ratio: result.compression_ratio,
        no_speech_prob: result.no_speech_prob,
    });
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}
