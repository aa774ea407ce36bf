//! A per-provider circuit breaker: closed → open (after N consecutive
//! failures, or a failure rate over a rolling window) → half-open (one probe
//! after the open period) → closed on success, open again on failure.
//!
//! Time is `tokio::time::Instant`, so tests drive it with paused time.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

use crate::config::BreakerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: CircuitState,
    consecutive_failures: u32,
    /// Outcomes of the last `window` calls, `true` = failure.
    recent: VecDeque<bool>,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Self {
        Breaker {
            recent: VecDeque::with_capacity(cfg.window as usize),
            cfg,
            state: CircuitState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            probe_in_flight: false,
        }
    }

    /// The state as of now (an expired open period reads as half-open).
    pub fn state(&self) -> CircuitState {
        match self.state {
            CircuitState::Open if self.open_expired() => CircuitState::HalfOpen,
            s => s,
        }
    }

    fn open_expired(&self) -> bool {
        self.opened_at.is_some_and(|t| t.elapsed() >= Duration::from_secs(self.cfg.open_secs))
    }

    /// Whether a call may go through now. In half-open only one probe may be
    /// in flight; taking it is what this call does.
    pub fn try_acquire(&mut self) -> bool {
        match self.state() {
            CircuitState::Closed => true,
            CircuitState::Open => false,
            CircuitState::HalfOpen => {
                self.state = CircuitState::HalfOpen;
                if self.probe_in_flight {
                    false
                } else {
                    self.probe_in_flight = true;
                    true
                }
            }
        }
    }

    /// Whether a call would be allowed, without taking the half-open probe.
    pub fn would_allow(&self) -> bool {
        match self.state() {
            CircuitState::Closed => true,
            CircuitState::Open => false,
            CircuitState::HalfOpen => !self.probe_in_flight,
        }
    }

    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.push(false);
        if self.state != CircuitState::Closed {
            self.close();
        }
    }

    pub fn record_failure(&mut self) {
        self.consecutive_failures += 1;
        self.push(true);
        match self.state {
            CircuitState::HalfOpen => self.open(),
            CircuitState::Open => {}
            CircuitState::Closed => {
                if self.consecutive_failures >= self.cfg.consecutive_failures || self.rate_exceeded() {
                    self.open();
                }
            }
        }
    }

    /// Opens because another instance of a cluster saw this provider fail:
    /// open for `remaining` (at most the configured open period), then
    /// half-open as usual. A circuit already open stays as it is.
    pub fn trip_remote(&mut self, remaining: Duration) {
        if self.state() == CircuitState::Open {
            return;
        }
        let open_for = Duration::from_secs(self.cfg.open_secs);
        let already = open_for.saturating_sub(remaining);
        self.state = CircuitState::Open;
        self.opened_at = Some(Instant::now().checked_sub(already).unwrap_or_else(Instant::now));
        self.probe_in_flight = false;
    }

    /// A call that took the half-open probe but ended without a verdict
    /// (e.g. a refused parameter) gives the probe back.
    pub fn release_probe(&mut self) {
        self.probe_in_flight = false;
    }

    fn push(&mut self, failed: bool) {
        if self.recent.len() == self.cfg.window as usize {
            self.recent.pop_front();
        }
        self.recent.push_back(failed);
    }

    fn rate_exceeded(&self) -> bool {
        let n = self.recent.len() as u32;
        if n < self.cfg.min_calls.max(1) {
            return false;
        }
        let failures = self.recent.iter().filter(|f| **f).count() as f64;
        failures / f64::from(n) >= self.cfg.failure_rate
    }

    fn open(&mut self) {
        self.state = CircuitState::Open;
        self.opened_at = Some(Instant::now());
        self.probe_in_flight = false;
    }

    fn close(&mut self) {
        self.state = CircuitState::Closed;
        self.opened_at = None;
        self.probe_in_flight = false;
        self.consecutive_failures = 0;
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig { consecutive_failures: 3, failure_rate: 0.5, window: 10, min_calls: 6, open_secs: 30 }
    }

    #[tokio::test(start_paused = true)]
    async fn a_remote_trip_opens_for_what_is_left_then_half_opens() {
        tokio::time::advance(Duration::from_secs(100)).await;
        let mut b = Breaker::new(cfg());
        b.trip_remote(Duration::from_secs(10));
        assert_eq!(b.state(), CircuitState::Open);
        assert!(!b.try_acquire());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(b.state(), CircuitState::Open);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen, "open only for what the other instance had left");
        // The probe fails: open again, locally, for the full period; a
        // remote trip does not shorten it.
        assert!(b.try_acquire());
        b.record_failure();
        assert_eq!(b.state(), CircuitState::Open);
        b.trip_remote(Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(b.state(), CircuitState::Open, "the local open period stands");
        tokio::time::advance(Duration::from_secs(28)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_then_half_opens() {
        let mut b = Breaker::new(cfg());
        for _ in 0..2 {
            assert!(b.try_acquire());
            b.record_failure();
        }
        assert_eq!(b.state(), CircuitState::Closed);
        b.record_failure();
        assert_eq!(b.state(), CircuitState::Open);
        assert!(!b.try_acquire());
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(!b.try_acquire());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(b.try_acquire(), "one probe");
        assert!(!b.try_acquire(), "only one probe");
        b.record_failure();
        assert_eq!(b.state(), CircuitState::Open, "failed probe reopens");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(b.try_acquire());
        b.record_success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(b.try_acquire());
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_failure_rate() {
        let mut b = Breaker::new(cfg());
        // alternate: never 3 in a row, but 50% over 6 calls
        for i in 0..6 {
            if i % 2 == 1 {
                b.record_failure();
            } else {
                b.record_success();
            }
        }
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_needs_min_calls() {
        let mut b = Breaker::new(cfg());
        b.record_failure();
        b.record_success();
        b.record_failure();
        b.record_success();
        assert_eq!(b.state(), CircuitState::Closed);
    }
}
