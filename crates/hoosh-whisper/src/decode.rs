//! Decoding one 30 s window: greedy or sampled, with Whisper's timestamp
//! rules and token suppression, plus language detection.
//!
//! Follows openai-whisper's `DecodingTask` for a single sequence:
//! - `<|startofprev|>` + the prompt (last 223 tokens) before the SOT
//!   sequence when there is one;
//! - at the first step: only timestamps, at most `<|1.00|>`, and no blank
//!   or end-of-text (`suppress_ids_begin`);
//! - `suppress_ids` from the model's `config.json` plus the task, language
//!   and other control tokens at every step;
//! - timestamps come in pairs and never decrease; a timestamp is forced when
//!   the probability mass of all timestamps beats every single text token;
//! - `no_speech_prob` is the probability of `<|nospeech|>` right after SOT.

use std::io::Write;

use crate::WhisperError;
use crate::model::{CrossKv, Whisper};
use crate::tokenizer::WhisperTokenizer;

/// What to decode in one window.
pub(crate) struct WindowRequest<'a> {
    /// Context text tokens (earlier windows and/or the caller's prompt).
    pub prompt: &'a [u32],
    /// `<|startoftranscript|>` [+ language + task].
    pub sot_sequence: &'a [u32],
    pub temperature: f32,
}

/// One decoded window.
#[derive(Debug, Clone)]
pub(crate) struct WindowResult {
    /// Sampled tokens, text and timestamps, without end-of-text.
    pub tokens: Vec<u32>,
    pub avg_logprob: f64,
    pub no_speech_prob: f64,
    pub temperature: f32,
    pub compression_ratio: f64,
}

/// Largest first timestamp, in 0.02 s steps (1.0 s, as openai-whisper).
const MAX_INITIAL_TIMESTAMP_INDEX: u32 = 50;

pub(crate) struct WindowDecoder<'a> {
    pub model: &'a Whisper,
    pub tok: &'a WhisperTokenizer,
    /// Suppressed at every step.
    pub suppress: &'a [u32],
    /// Suppressed at the first sampled step only.
    pub suppress_begin: &'a [u32],
}

impl WindowDecoder<'_> {
    /// Most likely language of the window behind `cross`: `(code, probability)`.
    pub(crate) fn detect_language(&self, cross: &CrossKv) -> Result<(&'static str, f64), WhisperError> {
        let mut cache = self.model.new_cache();
        let logits = self.model.decode(&[self.tok.sot], &mut cache, cross)?;
        let ids: Vec<(&'static str, f32)> =
            self.tok.languages.iter().filter_map(|(c, id)| logits.get(*id as usize).map(|l| (*c, *l))).collect();
        let max = ids.iter().map(|(_, l)| *l).fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = ids.iter().map(|(_, l)| f64::from(l - max).exp()).sum();
        let (code, best) = ids
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .ok_or_else(|| WhisperError::Inference("the model has no language tokens".into()))?;
        Ok((code, f64::from(best - max).exp() / sum))
    }

    /// Decodes one window. `cancelled` is polled before every step.
    pub(crate) fn decode(
        &self,
        cross: &CrossKv,
        req: &WindowRequest<'_>,
        rng: &mut fastrand::Rng,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<WindowResult, WhisperError> {
        let tok = self.tok;
        let n_ctx = self.model.dims.n_text_ctx;
        let sample_len = n_ctx / 2;
        let mut cache = self.model.new_cache();

        // Prefix up to and including SOT, so its logits give no_speech_prob.
        let mut prefix = Vec::with_capacity(n_ctx / 2 + 4);
        if !req.prompt.is_empty() {
            prefix.push(tok.startofprev);
            let keep = req.prompt.len().min(n_ctx / 2 - 1);
            prefix.extend_from_slice(&req.prompt[req.prompt.len() - keep..]);
        }
        let (sot, rest) = req.sot_sequence.split_first().ok_or_else(|| WhisperError::Inference("empty SOT".into()))?;
        prefix.push(*sot);
        let sot_logits = self.model.decode(&prefix, &mut cache, cross)?;
        let no_speech_prob = f64::from(softmax_at(&sot_logits, tok.no_speech as usize));
        let mut logits = if rest.is_empty() { sot_logits } else { self.model.decode(rest, &mut cache, cross)? };

        let mut tokens: Vec<u32> = Vec::new();
        let mut sum_logprob = 0.0f64;
        loop {
            if cancelled() {
                return Err(WhisperError::Cancelled);
            }
            self.apply_filters(&mut logits, &tokens);
            let logprobs = log_softmax(&logits);
            let next = if req.temperature > 0.0 { sample(&logits, req.temperature, rng) } else { argmax(&logits) };
            if next == tok.eot {
                break;
            }
            sum_logprob += f64::from(logprobs[next as usize]);
            tokens.push(next);
            if tokens.len() >= sample_len || cache.len() + 1 >= n_ctx {
                break;
            }
            logits = self.model.decode(&[next], &mut cache, cross)?;
        }
        let text = tok.decode_text(&tokens);
        Ok(WindowResult {
            avg_logprob: sum_logprob / (tokens.len() + 1) as f64,
            no_speech_prob,
            temperature: req.temperature,
            compression_ratio: compression_ratio(&text),
            tokens,
        })
    }

    fn apply_filters(&self, logits: &mut [f32], tokens: &[u32]) {
        let tok = self.tok;
        let ts_begin = tok.timestamp_begin as usize;
        let n = logits.len();
        let mut ban = |i: usize| {
            if let Some(l) = logits.get_mut(i) {
                *l = f32::NEG_INFINITY;
            }
        };
        if tokens.is_empty() {
            for &t in self.suppress_begin {
                ban(t as usize);
            }
        }
        for &t in self.suppress {
            ban(t as usize);
        }
        ban(tok.no_timestamps as usize);

        // Timestamps in pairs: after a lone timestamp, another (or EOT) must
        // follow; after a pair, text must.
        let last_ts = tokens.last().is_some_and(|t| tok.is_timestamp(*t));
        let penultimate_ts = tokens.len() < 2 || tokens.get(tokens.len() - 2).is_some_and(|t| tok.is_timestamp(*t));
        if last_ts {
            if penultimate_ts {
                logits[ts_begin.min(n)..].fill(f32::NEG_INFINITY);
            } else {
                logits[..(tok.eot as usize).min(n)].fill(f32::NEG_INFINITY);
            }
        }
        // Never decrease; a segment's end must be after its start.
        if let Some(&last) = tokens.iter().rev().find(|t| tok.is_timestamp(**t)) {
            let floor = if last_ts && !penultimate_ts { last } else { last + 1 };
            logits[ts_begin.min(n)..(floor as usize).min(n)].fill(f32::NEG_INFINITY);
        }
        if tokens.is_empty() {
            logits[..ts_begin.min(n)].fill(f32::NEG_INFINITY);
            let last_allowed = ts_begin + MAX_INITIAL_TIMESTAMP_INDEX as usize;
            logits[(last_allowed + 1).min(n)..].fill(f32::NEG_INFINITY);
        }
        // Force a timestamp when they are jointly likelier than any text token.
        let logprobs = log_softmax(logits);
        let (text_lp, ts_lp) = logprobs.split_at(ts_begin.min(n));
        let ts_mass = log_sum_exp(ts_lp);
        let text_max = text_lp.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if ts_mass > text_max {
            logits[..ts_begin.min(n)].fill(f32::NEG_INFINITY);
        }
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn sample(logits: &[f32], temperature: f32, rng: &mut fastrand::Rng) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits.iter().map(|l| f64::from((l - max) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut r = rng.f64() * total;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i as u32;
        }
        r -= w;
    }
    argmax(logits)
}

fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + x.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

pub(crate) fn log_softmax(x: &[f32]) -> Vec<f32> {
    let lse = log_sum_exp(x);
    x.iter().map(|v| v - lse).collect()
}

fn softmax_at(x: &[f32], i: usize) -> f32 {
    x.get(i).map_or(0.0, |v| (v - log_sum_exp(x)).exp())
}

/// `len(text) / len(zlib(text))`, as openai-whisper measures repetition.
pub(crate) fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = enc.write_all(text.as_bytes()).and_then(|()| enc.finish());
    match compressed {
        Ok(c) if !c.is_empty() => text.len() as f64 / c.len() as f64,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitive_text_compresses_well() {
        assert!(compression_ratio(&"the cat sat on the mat. ".repeat(20)) > 2.4);
        assert!(compression_ratio("The quick brown fox jumps over the lazy dog.") < 1.5);
    }

    #[test]
    fn softmax_helpers() {
        let l = [0.0f32, 0.0, f32::NEG_INFINITY];
        assert!((softmax_at(&l, 0) - 0.5).abs() < 1e-6);
        assert_eq!(argmax(&[1.0, 3.0, 2.0]), 1);
        let lp = log_softmax(&l);
        assert!((lp[1] - 0.5f32.ln()).abs() < 1e-6);
    }
}
