//! Latency histograms in microseconds, summarized in milliseconds.

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// 1 µs to 1 hour at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("fixed, valid bounds")
}

pub fn record(h: &mut Histogram<u64>, micros: u64) {
    h.saturating_record(micros.max(1));
}

pub fn summary(h: &Histogram<u64>) -> Value {
    let ms = |q: f64| round3(h.value_at_quantile(q) as f64 / 1000.0);
    json!({
        "p50": ms(0.50),
        "p90": ms(0.90),
        "p99": ms(0.99),
        "max": round3(h.max() as f64 / 1000.0),
        "mean": round3(h.mean() / 1000.0),
    })
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
