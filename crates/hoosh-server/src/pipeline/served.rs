//! What served a request and what it cost, as one typed value: the
//! pipeline puts a [`ServedBy`] into the response's extensions, the
//! `x-hoosh-*` headers are rendered from it here, and the trace span reads
//! the same value — nothing is written into a header and parsed back.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hoosh_core::executor::Outcome;
use hoosh_governance::nanos_to_usd;

use crate::cache::Verdict;

/// What a request cost, once settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    Nanos(u64),
    /// The model has no price: never shown as a silent 0.
    Unpriced,
}

impl From<Option<u64>> for Cost {
    fn from(nanos: Option<u64>) -> Self {
        nanos.map_or(Cost::Unpriced, Cost::Nanos)
    }
}

impl Cost {
    /// As `x-hoosh-cost-usd` shows it.
    pub fn header_value(self) -> String {
        match self {
            Cost::Nanos(n) => format!("{:.9}", nanos_to_usd(n)),
            Cost::Unpriced => "unpriced".into(),
        }
    }
}

/// How a request was served: a response extension, read by the headers, the
/// trace span and tests.
#[derive(Debug, Clone, Default)]
pub struct ServedBy {
    /// The provider that answered (`None`: the response cache did).
    pub provider: Option<String>,
    /// The model name the provider was asked for.
    pub model: Option<String>,
    /// Provider calls made, across all candidates.
    pub attempts: u32,
    /// Parameters dropped because the provider does not support them.
    pub dropped: Option<String>,
    /// Known for whole answers; a stream's cost is settled after its headers.
    pub cost: Option<Cost>,
    pub cache: Option<Verdict>,
    /// Audio the request carried (speech-to-text).
    pub audio_ms: Option<u64>,
}

impl ServedBy {
    /// Filled from the executor's outcome.
    pub fn from_outcome<T>(out: &Outcome<T>) -> Self {
        ServedBy {
            provider: Some(out.entry.name().to_owned()),
            model: Some(out.model.clone()),
            attempts: out.attempts,
            dropped: (!out.dropped.is_empty()).then(|| out.dropped.header_value()),
            ..ServedBy::default()
        }
    }

    /// The `x-hoosh-*` headers that tell the caller how the request was served.
    pub fn headers(&self, h: &mut HeaderMap) {
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        if let Some(p) = &self.provider {
            put("x-hoosh-provider", p);
        }
        if let Some(m) = &self.model {
            put("x-hoosh-model", m);
        }
        if self.provider.is_some() {
            put("x-hoosh-attempts", &self.attempts.to_string());
        }
        if let Some(d) = &self.dropped {
            put("x-hoosh-dropped-params", d);
        }
        if let Some(c) = self.cost {
            put("x-hoosh-cost-usd", &c.header_value());
        }
        if let Some(v) = self.cache {
            put("x-hoosh-cache", v.as_str());
        }
        if let Some(ms) = self.audio_ms {
            put("x-hoosh-audio-seconds", &format!("{}.{:03}", ms / 1000, ms % 1000));
        }
    }
}
