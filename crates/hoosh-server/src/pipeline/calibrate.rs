//! What each provider/model really counts for a prompt, learned from
//! settled requests. A provider may count more prompt tokens than the
//! gateway's estimate — chat framing, a system prompt it injects, tool
//! definitions rendered its own way, another tokenizer — and it always
//! wins at settle. So each caller (key) keeps, per `(provider, model)`, the
//! ratio of reported prompt tokens to the gateway's estimate: it rises at
//! once to any higher observation and sinks back slowly, and that caller's
//! later reservations are scaled by it. Learning per key means no tenant
//! can inflate (or deflate) another's reservations with crafted prompts.
//! Observations are capped at the hard bound below.
//!
//! It also says how much a reservation still has at risk, from a hard
//! per-request bound rather than from what was learned (content can
//! tokenize far denser than the average a ratio reflects): an estimated
//! prompt may be counted up to [`BOUND`]× the estimate; a prompt counted by
//! the model's own tokenizer risks nothing. The budget admits requests at
//! risk one at a time near the end of a pool (see `hoosh_governance::budget`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use parking_lot::RwLock;

/// Ratios are kept in thousandths.
const ONE: u32 = 1000;
/// The most a provider is assumed to count for an estimated prompt: 5× the
/// estimate (about a token per byte of text — the most a byte-level
/// tokenizer produces — plus framing). Learned ratios never exceed it.
pub const BOUND: u64 = 5;
const MAX_RATIO: u32 = BOUND as u32 * ONE;
/// Most `(key, provider, model)` entries remembered; past it, new ones
/// reserve the plain estimate (their risk is the hard bound either way).
const MAX_ENTRIES: usize = 16_384;

/// The prompt side of a reservation: tokens to reserve and tokens at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptBound {
    pub reserve: u64,
    pub at_risk: u64,
}

/// key id → provider → model → ratio in thousandths: nested so a lookup
/// borrows its three names and allocates nothing on the request path.
type Ratios = HashMap<String, HashMap<String, HashMap<String, AtomicU32>>>;

#[derive(Default)]
pub struct Calibration {
    ratios: RwLock<Ratios>,
    entries: AtomicUsize,
}

impl Calibration {
    fn ratio(&self, key: &str, provider: &str, model: &str) -> Option<u32> {
        let all = self.ratios.read();
        all.get(key)?.get(provider)?.get(model).map(|r| r.load(Ordering::Relaxed))
    }

    /// The prompt `key` reserves for `estimate` tokens on the dearest of
    /// `targets` (`(provider, model)`), and what is still at risk.
    /// `exact`: counted by the model's own tokenizer.
    pub fn bound<'a>(
        &self,
        key: &str,
        estimate: u64,
        exact: bool,
        targets: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> PromptBound {
        if exact || estimate == 0 {
            return PromptBound { reserve: estimate, at_risk: 0 };
        }
        let ratio = targets.filter_map(|(p, m)| self.ratio(key, p, m)).max().unwrap_or(ONE);
        let reserve = estimate.saturating_mul(u64::from(ratio)).div_ceil(u64::from(ONE));
        let at_risk = estimate.saturating_mul(BOUND).saturating_sub(reserve);
        PromptBound { reserve, at_risk }
    }

    /// Learns from a settled request of `key`: the provider counted
    /// `reported` prompt tokens where the gateway estimated `estimate`.
    pub fn observe(&self, key: &str, provider: &str, model: &str, estimate: u64, reported: u64) {
        if estimate == 0 {
            return;
        }
        let observed = u32::try_from(reported.saturating_mul(u64::from(ONE)) / estimate)
            .unwrap_or(MAX_RATIO)
            .clamp(ONE, MAX_RATIO);
        let update = |cell: &AtomicU32| {
            let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if observed >= old { observed } else { old - (old - observed) / 8 })
            });
        };
        if let Some(cell) = self.ratios.read().get(key).and_then(|p| p.get(provider)).and_then(|m| m.get(model)) {
            update(cell);
            return;
        }
        if self.entries.load(Ordering::Relaxed) >= MAX_ENTRIES {
            return;
        }
        let mut all = self.ratios.write();
        let models = all.entry(key.to_owned()).or_default().entry(provider.to_owned()).or_default();
        if !models.contains_key(model) {
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
        update(models.entry(model.to_owned()).or_insert_with(|| AtomicU32::new(observed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimated_prompt_risks_up_to_the_hard_bound() {
        let c = Calibration::default();
        assert_eq!(c.bound("k", 10, false, [("p", "m")].into_iter()), PromptBound { reserve: 10, at_risk: 40 });
        assert_eq!(c.bound("k", 10, true, [("p", "m")].into_iter()), PromptBound { reserve: 10, at_risk: 0 });
    }

    #[test]
    fn a_provider_counting_more_is_learned_at_once_and_forgotten_slowly() {
        let c = Calibration::default();
        c.observe("k", "p", "m", 8, 24);
        assert_eq!(c.bound("k", 8, false, [("p", "m")].into_iter()), PromptBound { reserve: 24, at_risk: 16 });
        // One lower observation moves it an eighth of the way down.
        c.observe("k", "p", "m", 8, 8);
        assert_eq!(c.ratio("k", "p", "m"), Some(3000 - 2000 / 8));
        // The dearest candidate decides.
        c.observe("k", "q", "m", 10, 40);
        assert_eq!(c.bound("k", 10, false, [("p", "m"), ("q", "m")].into_iter()).reserve, 40);
    }

    #[test]
    fn one_tenant_cannot_move_anothers_reservations() {
        // A hostile key sends prompts the estimate under-counts 100×.
        let c = Calibration::default();
        c.observe("hostile", "p", "m", 10, 1_000);
        assert_eq!(c.ratio("hostile", "p", "m"), Some(MAX_RATIO), "capped at the hard bound");
        assert_eq!(c.bound("victim", 10, false, [("p", "m")].into_iter()).reserve, 10, "the victim is untouched");
    }

    #[test]
    fn fewer_tokens_than_estimated_never_shrink_the_reservation() {
        let c = Calibration::default();
        c.observe("k", "p", "m", 100, 10);
        assert_eq!(c.bound("k", 100, false, [("p", "m")].into_iter()).reserve, 100);
    }
}
