//! Routing strategies: how the candidates that can serve a model are ordered.
//! Every strategy is a stable sort, so ties keep the base order
//! (priority, then in-process and nearby before remote, then declaration
//! order; see [`crate::placement`]).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest `priority` first; in-process and nearby before remote on ties.
    #[default]
    Priority,
    /// Rotate among the candidates of one model (one counter per model name).
    RoundRobin,
    /// Random order drawn by `weight`.
    Weighted,
    /// Lowest EWMA time to first byte; unmeasured or stale providers first, so
    /// they get measured.
    LowestLatency,
    /// Fewest requests in flight.
    LeastBusy,
    /// Cheapest by the pricing table; in-process and nearby providers are
    /// free, unpriced last.
    Cost,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::RoundRobin => "round_robin",
            Strategy::Weighted => "weighted",
            Strategy::LowestLatency => "lowest_latency",
            Strategy::LeastBusy => "least_busy",
            Strategy::Cost => "cost",
        }
    }
}

/// Orders `items` by drawing without replacement, each draw proportional to
/// `weight(item)` (Efraimidis–Spirakis keys: `u^(1/w)`, highest first).
pub fn weighted_shuffle<T>(items: &mut Vec<T>, weight: impl Fn(&T) -> u32, mut unit: impl FnMut() -> f64) {
    let mut keyed: Vec<(f64, T)> = items
        .drain(..)
        .map(|it| {
            let w = f64::from(weight(&it).max(1));
            (unit().max(f64::MIN_POSITIVE).powf(1.0 / w), it)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    items.extend(keyed.into_iter().map(|(_, it)| it));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_shuffle_is_a_permutation_and_follows_weights() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut first = [0u32; 3];
        for _ in 0..3000 {
            let mut v = vec![(0usize, 1u32), (1, 2), (2, 7)];
            weighted_shuffle(&mut v, |x| x.1, || rng.f64());
            let mut ids: Vec<usize> = v.iter().map(|x| x.0).collect();
            first[ids[0]] += 1;
            ids.sort();
            assert_eq!(ids, vec![0, 1, 2]);
        }
        // P(first) = 0.1 / 0.2 / 0.7 for weights 1/2/7
        assert!(first[2] > 1900 && first[2] < 2300, "{first:?}");
        assert!(first[0] > 200 && first[0] < 420, "{first:?}");
    }
}
