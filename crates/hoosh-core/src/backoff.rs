//! Jittered exponential backoff ("full jitter"): attempt `n` (0-based) waits
//! a uniform random time in `[0, min(cap, base * 2^n)]`. Full jitter spreads
//! retries of many clients that failed at once, which equal jitter does not.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The upper bound of the wait before retry `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u64.checked_shl(attempt.min(32)).unwrap_or(u64::MAX);
        let base_ms = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX);
        let cap_ms = u64::try_from(self.cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(base_ms.saturating_mul(factor).min(cap_ms))
    }

    /// A random wait in `[0, ceiling(attempt)]`, drawn with `unit` in `[0, 1)`.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }

    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_until_cap() {
        let b = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(2) };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(1600));
        assert_eq!(b.ceiling(5), Duration::from_secs(2));
        assert_eq!(b.ceiling(200), Duration::from_secs(2));
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_cap_and_is_monotone_in_ceiling(
            base in 1u64..10_000, cap in 1u64..100_000, attempt in 0u32..100, unit in 0.0f64..1.0
        ) {
            let b = Backoff { base: Duration::from_millis(base), cap: Duration::from_millis(cap) };
            let d = b.delay_with(attempt, unit);
            prop_assert!(d <= b.ceiling(attempt));
            prop_assert!(b.ceiling(attempt) <= Duration::from_millis(cap));
            prop_assert!(b.ceiling(attempt) <= b.ceiling(attempt + 1));
        }
    }
}
