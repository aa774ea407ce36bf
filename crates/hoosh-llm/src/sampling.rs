//! Sampling parameters and their llama.cpp sampler chain.
//!
//! The chain follows llama.cpp's `common_sampler` order: (grammar) →
//! penalties → top-k → top-p → min-p → temperature → dist. Temperature 0 means
//! greedy (argmax after grammar and penalties), as at OpenAI.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;

use crate::error::LlmError;
use crate::grammar;

/// How the next token is chosen. `Default` gives llama.cpp's usual settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy; higher = more random.
    pub temperature: f32,
    /// Nucleus sampling; 1.0 disables it.
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables it.
    pub top_k: u32,
    /// Drop tokens less likely than `min_p` × the top token; 0 disables it.
    pub min_p: f32,
    /// Multiplicative penalty for recently seen tokens; 1.0 disables it.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub repeat_last_n: u32,
    /// OpenAI `presence_penalty` (additive, once per seen token); 0 disables it.
    pub presence_penalty: f32,
    /// OpenAI `frequency_penalty` (additive, per occurrence); 0 disables it.
    pub frequency_penalty: f32,
    /// Fixed seed for reproducible sampling; `None` = random.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 40,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding (temperature 0), everything else default.
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, ..Self::default() }
    }

    /// Rejects values llama.cpp would misbehave on.
    pub fn validate(&self) -> Result<(), LlmError> {
        let bad = |what: &str| Err(LlmError::InvalidRequest(what.to_string()));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad("temperature must be a finite number >= 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p must be in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p must be in [0, 1]");
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return bad("repeat_penalty must be > 0");
        }
        if !self.presence_penalty.is_finite() || !self.frequency_penalty.is_finite() {
            return bad("presence_penalty and frequency_penalty must be finite");
        }
        Ok(())
    }

    /// The seed as llama.cpp takes it. `u32::MAX` is llama.cpp's "pick a random
    /// seed" value, so a user seed never maps to it.
    pub(crate) fn llama_seed(&self) -> u32 {
        const RANDOM: u32 = u32::MAX;
        match self.seed {
            None => RANDOM,
            Some(s) => {
                let folded = (s ^ (s >> 32)) as u32;
                if folded == RANDOM { RANDOM - 1 } else { folded }
            }
        }
    }

    fn penalties_enabled(&self) -> bool {
        self.repeat_last_n > 0
            && (self.repeat_penalty != 1.0 || self.presence_penalty != 0.0 || self.frequency_penalty != 0.0)
    }
}

/// Builds the sampler chain for one sequence. Must run on the scheduler
/// thread: the chain is used with that thread's context only.
pub(crate) fn build_chain(params: &SamplingParams, model: &LlamaModel, json: bool) -> Result<LlamaSampler, LlmError> {
    params.validate()?;
    let mut chain = Vec::with_capacity(8);
    if json {
        let g = LlamaSampler::grammar(model, grammar::JSON_OBJECT, grammar::JSON_OBJECT_ROOT)
            .map_err(|e| LlmError::Inference(format!("JSON grammar rejected by llama.cpp: {e}")))?;
        chain.push(g);
    }
    if params.penalties_enabled() {
        let last_n = i32::try_from(params.repeat_last_n).unwrap_or(i32::MAX);
        chain.push(LlamaSampler::penalties(
            model.n_vocab(),
            last_n,
            params.repeat_penalty,
            params.frequency_penalty,
            params.presence_penalty,
        ));
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if params.top_k > 0 {
            chain.push(LlamaSampler::top_k(i32::try_from(params.top_k).unwrap_or(i32::MAX)));
        }
        if params.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(params.top_p, 1));
        }
        if params.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(params.min_p, 1));
        }
        chain.push(LlamaSampler::temp(params.temperature));
        chain.push(LlamaSampler::dist(params.llama_seed()));
    }
    Ok(LlamaSampler::chain(chain, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_llama_like() {
        let p = SamplingParams::default();
        assert!(p.validate().is_ok());
        assert_eq!((p.temperature, p.top_p, p.top_k, p.min_p, p.repeat_penalty), (0.8, 0.95, 40, 0.05, 1.0));
        assert!(!p.penalties_enabled());
    }

    #[test]
    fn invalid_values_are_rejected() {
        for p in [
            SamplingParams { temperature: -1.0, ..Default::default() },
            SamplingParams { temperature: f32::NAN, ..Default::default() },
            SamplingParams { top_p: 0.0, ..Default::default() },
            SamplingParams { min_p: 1.5, ..Default::default() },
            SamplingParams { repeat_penalty: 0.0, ..Default::default() },
        ] {
            assert!(matches!(p.validate(), Err(LlmError::InvalidRequest(_))), "{p:?}");
        }
    }

    #[test]
    fn user_seeds_never_mean_random() {
        let random = SamplingParams::default().llama_seed();
        assert_eq!(random, u32::MAX);
        for s in [0u64, 1, 42, u32::MAX as u64, u64::MAX, 0xFFFF_FFFF_0000_0000] {
            let p = SamplingParams { seed: Some(s), ..Default::default() };
            assert_ne!(p.llama_seed(), u32::MAX, "seed {s}");
        }
    }
}
