//! Liveness (`/health`), readiness (`/ready`: some provider is routable) and
//! per-provider state (`/v1/providers`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// `GET /` (and `HEAD /`, which clients such as Claude Code send to warm
/// up a connection): what answers here.
pub async fn root() -> Json<Value> {
    Json(json!({"service": "hoosh", "version": env!("CARGO_PKG_VERSION")}))
}

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let live = st.live();
    let entries = live.router.entries();
    let available = entries.iter().filter(|e| e.stats.available()).count();
    let status = if available > 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = if available > 0 { "ready" } else { "unavailable" };
    (status, Json(json!({"status": word, "providers": entries.len(), "available": available})))
}

pub async fn providers(State(st): State<AppState>) -> Json<Value> {
    let live = st.live();
    let data: Vec<Value> = live
        .router
        .entries()
        .iter()
        .map(|e| {
            let s = e.stats.snapshot();
            json!({
                "name": e.name(),
                "family": e.provider.family(),
                "placement": e.placement.as_str(),
                "priority": e.priority,
                "weight": e.weight,
                "models": e.patterns.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                "healthy": s.healthy,
                "circuit": s.circuit.as_str(),
                "in_flight": s.in_flight,
                "latency_ewma_ms": s.ewma_ttfb_ms,
                "requests": s.requests,
                "failures": s.failures,
                "last_error": s.last_error,
            })
        })
        .collect();
    Json(json!({"object": "list", "strategy": live.router.strategy().as_str(), "data": data}))
}
