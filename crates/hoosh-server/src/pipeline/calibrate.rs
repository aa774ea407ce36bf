//! What each provider/model really counts for a prompt, learned from
//! settled requests. A provider may count more prompt tokens than the
//! gateway's estimate — chat framing, a system prompt it injects, tool
//! definitions rendered its own way, another tokenizer — and it always
//! wins at settle. So each `(provider, model)` keeps the ratio of its
//! reported prompt tokens to the gateway's estimate: it rises at once to
//! any higher observation and sinks back slowly, and later reservations
//! are scaled by it.
//!
//! It also says how much a reservation still has at risk: a model never
//! seen may count up to [`UNSEEN_RISK`]× more than estimated; a calibrated
//! one, a quarter of its reservation; a prompt counted by the model's own
//! tokenizer, nothing. The budget admits requests at risk one at a time
//! near the end of a pool (see `hoosh_governance::budget`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::RwLock;

/// Ratios are kept in thousandths.
const ONE: u32 = 1000;
/// Most ratio learned (100×): beyond that the estimate is not the issue.
const MAX_RATIO: u32 = 100 * ONE;
/// Before a provider/model has settled once, its prompt may count this many
/// times the estimate more (so 5× in all) and still stay within the risk.
pub const UNSEEN_RISK: u64 = 4;
/// Most `(provider, model)` pairs remembered; past it, new pairs stay
/// "never seen" (the safe side).
const MAX_PAIRS: usize = 4096;

/// The prompt side of a reservation: tokens to reserve and tokens at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptBound {
    pub reserve: u64,
    pub at_risk: u64,
}

#[derive(Default)]
pub struct Calibration {
    /// provider → model → ratio in thousandths.
    ratios: RwLock<HashMap<String, HashMap<String, AtomicU32>>>,
    pairs: std::sync::atomic::AtomicUsize,
}

impl Calibration {
    fn ratio(&self, provider: &str, model: &str) -> Option<u32> {
        self.ratios.read().get(provider)?.get(model).map(|r| r.load(Ordering::Relaxed))
    }

    /// The prompt to reserve for `estimate` tokens on the dearest of
    /// `targets` (`(provider, model)`), and what is still at risk.
    /// `exact`: counted by the model's own tokenizer.
    pub fn bound<'a>(
        &self,
        estimate: u64,
        exact: bool,
        targets: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> PromptBound {
        if exact || estimate == 0 {
            return PromptBound { reserve: estimate, at_risk: 0 };
        }
        let mut ratio = ONE;
        let mut unseen = false;
        for (provider, model) in targets {
            match self.ratio(provider, model) {
                Some(r) => ratio = ratio.max(r),
                None => unseen = true,
            }
        }
        let reserve = estimate.saturating_mul(u64::from(ratio)).div_ceil(u64::from(ONE));
        let at_risk = if unseen { estimate.saturating_mul(UNSEEN_RISK).max(reserve / 4) } else { reserve.div_ceil(4) };
        PromptBound { reserve, at_risk }
    }

    /// Learns from a settled request: the provider counted `reported` prompt
    /// tokens where the gateway estimated `estimate`.
    pub fn observe(&self, provider: &str, model: &str, estimate: u64, reported: u64) {
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
        if let Some(cell) = self.ratios.read().get(provider).and_then(|m| m.get(model)) {
            update(cell);
            return;
        }
        if self.pairs.load(Ordering::Relaxed) >= MAX_PAIRS {
            return;
        }
        let mut all = self.ratios.write();
        let models = all.entry(provider.to_owned()).or_default();
        if !models.contains_key(model) {
            self.pairs.fetch_add(1, Ordering::Relaxed);
        }
        update(models.entry(model.to_owned()).or_insert_with(|| AtomicU32::new(observed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_never_seen_reserves_the_estimate_with_a_wide_risk() {
        let c = Calibration::default();
        let b = c.bound(10, false, [("p", "m")].into_iter());
        assert_eq!(b, PromptBound { reserve: 10, at_risk: 40 });
        assert_eq!(c.bound(10, true, [("p", "m")].into_iter()), PromptBound { reserve: 10, at_risk: 0 });
    }

    #[test]
    fn a_provider_counting_more_is_learned_at_once_and_forgotten_slowly() {
        let c = Calibration::default();
        c.observe("p", "m", 8, 24);
        assert_eq!(c.bound(8, false, [("p", "m")].into_iter()), PromptBound { reserve: 24, at_risk: 6 });
        // One lower observation moves it an eighth of the way down.
        c.observe("p", "m", 8, 8);
        assert_eq!(c.ratio("p", "m"), Some(3000 - 2000 / 8));
        // The dearest candidate decides, and an unseen one keeps the wide risk.
        c.observe("q", "m", 10, 50);
        let both = c.bound(10, false, [("p", "m"), ("q", "m")].into_iter());
        assert_eq!(both.reserve, 50);
        let with_unseen = c.bound(10, false, [("p", "m"), ("r", "m")].into_iter());
        assert_eq!(with_unseen.at_risk, 40);
    }

    #[test]
    fn fewer_tokens_than_estimated_never_shrink_the_reservation() {
        let c = Calibration::default();
        c.observe("p", "m", 100, 10);
        assert_eq!(c.bound(100, false, [("p", "m")].into_iter()).reserve, 100);
    }
}
