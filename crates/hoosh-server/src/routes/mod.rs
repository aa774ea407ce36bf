//! One file per endpoint family.

pub mod admin;
pub mod audio;
pub mod budgets;
pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod health;
pub mod models;

use axum::http::{HeaderMap, HeaderValue};
use hoosh_core::executor::Outcome;

/// `x-hoosh-*` headers that tell the caller how the request was served.
pub fn served_by<T>(out: &Outcome<T>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put("x-hoosh-provider", out.entry.name());
    put("x-hoosh-model", &out.model);
    put("x-hoosh-attempts", &out.attempts.to_string());
    if !out.dropped.is_empty() {
        put("x-hoosh-dropped-params", &out.dropped.header_value());
    }
    h
}
