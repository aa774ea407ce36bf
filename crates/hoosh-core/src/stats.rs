//! Live per-provider state read by routing strategies and `/v1/providers`:
//! in-flight count, an EWMA of time to first byte, the last probe verdict,
//! and the circuit breaker. Cheap to read on the hot path (atomics, and one
//! short uncontended mutex for the breaker).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tokio::time::{Duration, Instant};

use crate::breaker::{Breaker, CircuitState};
use crate::config::BreakerConfig;
use crate::error::ErrorKind;

/// Weight of a new sample in the latency EWMA.
const EWMA_ALPHA: f64 = 0.3;

#[derive(Debug)]
pub struct ProviderStats {
    in_flight: AtomicU32,
    /// EWMA of time to first byte in microseconds; 0 = never measured.
    ewma_ttfb_us: AtomicU64,
    last_sample: Mutex<Option<Instant>>,
    healthy: AtomicBool,
    requests: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    breaker: Mutex<Breaker>,
    /// How many times this instance's own calls opened the circuit (a
    /// cluster tells the other instances when it grows).
    opened_here: AtomicU64,
}

/// A point-in-time view for `/v1/providers`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    pub in_flight: u32,
    pub ewma_ttfb_ms: Option<f64>,
    pub healthy: bool,
    pub circuit: CircuitState,
    pub requests: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// Decrements the in-flight count when dropped, however the call ends.
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Owned variant of [`InFlight`] for guards that move into a stream.
#[derive(Debug)]
pub struct InFlightOwned(std::sync::Arc<ProviderStats>);

impl Drop for InFlightOwned {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ProviderStats {
    pub fn new(breaker: BreakerConfig) -> Self {
        ProviderStats {
            in_flight: AtomicU32::new(0),
            ewma_ttfb_us: AtomicU64::new(0),
            last_sample: Mutex::new(None),
            healthy: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
            breaker: Mutex::new(Breaker::new(breaker)),
            opened_here: AtomicU64::new(0),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // A poisoned breaker mutex only means a panic elsewhere mid-update; the
        // state inside is still a valid breaker.
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts an already-counted request (a stream past its first chunk) as in
    /// flight until the guard drops.
    pub fn begin_owned(self: &std::sync::Arc<Self>) -> InFlightOwned {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightOwned(self.clone())
    }

    pub fn begin(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Latency EWMA, or `None` when unmeasured or older than `stale`.
    pub fn fresh_ttfb(&self, stale: Duration) -> Option<Duration> {
        let us = self.ewma_ttfb_us.load(Ordering::Relaxed);
        if us == 0 {
            return None;
        }
        let last = *self.last_sample.lock().unwrap_or_else(|p| p.into_inner());
        match last {
            Some(t) if t.elapsed() <= stale => Some(Duration::from_micros(us)),
            _ => None,
        }
    }

    pub fn record_success(&self, ttfb: Duration) {
        let sample = u64::try_from(ttfb.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.ewma_ttfb_us.load(Ordering::Relaxed);
        let new = if old == 0 { sample } else { (old as f64 * (1.0 - EWMA_ALPHA) + sample as f64 * EWMA_ALPHA) as u64 };
        self.ewma_ttfb_us.store(new.max(1), Ordering::Relaxed);
        *self.last_sample.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.breaker().record_success();
    }

    /// Records a failed call. Only provider faults move the breaker; a 429 or
    /// a rejected request gives back a half-open probe without a verdict.
    pub fn record_failure(&self, kind: ErrorKind, message: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{}: {message}", kind.as_str()));
        let mut b = self.breaker();
        if kind.is_provider_fault() {
            let was = b.state();
            b.record_failure();
            if was != CircuitState::Open && b.state() == CircuitState::Open {
                self.opened_here.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            b.release_probe();
        }
    }

    pub fn try_acquire(&self) -> bool {
        self.breaker().try_acquire()
    }

    /// How many times calls from this instance opened the circuit.
    pub fn opened_here(&self) -> u64 {
        self.opened_here.load(Ordering::Relaxed)
    }

    /// Opens the circuit for `remaining`: another instance saw it fail.
    pub fn trip_remote(&self, remaining: Duration) {
        self.breaker().trip_remote(remaining);
    }

    /// Whether routing should prefer this provider now (healthy, circuit not open).
    pub fn available(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && self.breaker().would_allow()
    }

    pub fn set_healthy(&self, healthy: bool, error: Option<String>) {
        self.healthy.store(healthy, Ordering::Relaxed);
        if let Some(e) = error {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let us = self.ewma_ttfb_us.load(Ordering::Relaxed);
        StatsSnapshot {
            in_flight: self.in_flight(),
            ewma_ttfb_ms: (us > 0).then(|| us as f64 / 1000.0),
            healthy: self.healthy.load(Ordering::Relaxed),
            circuit: self.breaker().state(),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ewma_and_staleness() {
        let s = ProviderStats::new(BreakerConfig::default());
        assert_eq!(s.fresh_ttfb(Duration::from_secs(60)), None);
        s.record_success(Duration::from_millis(100));
        assert_eq!(s.fresh_ttfb(Duration::from_secs(60)), Some(Duration::from_millis(100)));
        s.record_success(Duration::from_millis(200));
        assert_eq!(s.fresh_ttfb(Duration::from_secs(60)), Some(Duration::from_millis(130)));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(s.fresh_ttfb(Duration::from_secs(60)), None, "stale samples invite exploration");
    }

    #[test]
    fn in_flight_guard() {
        let s = ProviderStats::new(BreakerConfig::default());
        {
            let _a = s.begin();
            let _b = s.begin();
            assert_eq!(s.in_flight(), 2);
        }
        assert_eq!(s.in_flight(), 0);
    }
}
