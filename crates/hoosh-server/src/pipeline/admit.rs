//! The admit phase, on the candidates routing resolved (never on the name
//! as the caller spelled it):
//! 1. the key's model allow-list, per candidate (`model` or
//!    `provider/model` must match one of its globs);
//! 2. unpriced candidates under a dollar budget (`governance.unpriced`);
//! 3. concurrency, RPM/TPM (key, team, and each served model's limits);
//! 4. the budget reservation: the estimate — its prompt scaled by what the
//!    candidates' providers were seen to count ([`super::calibrate`]) —
//!    priced at the dearest remaining candidate, so a failover can never
//!    spend more than was reserved, held in the key's, team's and global
//!    pools at once. Near the end of a pool, a request whose provider could
//!    still count more than reserved waits (up to [`CONTENDED_WAIT`]) until
//!    those in flight settle, so they run one at a time.
//!
//! First of all, a ledger more than `governance.max_ledger_backlog` rows
//! behind refuses new work (503): an admitted request's row is never dropped.
//!
//! Candidates the caller may not use are removed; if none is left the
//! request is refused with the reason, recorded in metrics and the audit chain.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hoosh_core::governance_config::UnpricedPolicy;
use hoosh_core::pricing::Price;
use hoosh_core::router::{Candidate, Need};
use hoosh_governance::{AdmitRequest, Amount, Denied, UsageRecord};

use super::estimate::Estimate;
use super::meter::{Metered, cost, plain};
use crate::auth::Caller;
use crate::cluster::Refusal;
use crate::error::ApiError;
use crate::metrics;
use crate::state::{AppState, Live};

/// An admitted request: its meter, the candidates it may be served by, and
/// the budget and rate-limit headers of its response.
pub struct Admitted {
    pub meter: Metered,
    pub candidates: Vec<Candidate>,
    pub headers: HeaderMap,
}

/// Refusal bookkeeping: a metric and an audit entry.
fn refused(st: &AppState, caller: &Caller, model: &str, reason: &'static str) {
    metrics::record_rejection(reason);
    st.audit.denied(&caller.principal, &caller.request_id, model, reason);
}

/// Refuses, before expensive work whose result the estimate needs (an
/// upload's decode), a caller that [`admit`] would refuse for the smallest
/// request on `model`: not allowed, at its concurrency or rate, out of
/// budget. Holds and charges nothing.
pub fn precheck(st: &AppState, caller: &Caller, need: Need, model: &str) -> Result<(), ApiError> {
    let live = &caller.live;
    let candidates = live.router.candidates(model, need)?;
    let served: Vec<(&str, &str)> = candidates
        .iter()
        .filter(|c| caller.principal.allows_served(c.entry.name(), &c.model))
        .map(|c| (c.entry.name(), c.model.as_str()))
        .collect();
    if served.is_empty() {
        refused(st, caller, model, "model_not_allowed");
        return Err(Denied::ModelNotAllowed { model: model.to_owned() }.into());
    }
    let pricing = live.router.pricing();
    let all_free = candidates
        .iter()
        .all(|c| c.entry.placement.is_free() || pricing.lookup(c.entry.name(), &c.model).is_some_and(Price::is_free));
    let dollar_exempt = all_free && live.config.governance.free_models_exempt;
    st.gov.inner.precheck(&caller.principal, model, &served, dollar_exempt, st.now_ms()).map_err(|d| {
        refused(st, caller, model, denied_reason(&d));
        ApiError::from(d)
    })
}

fn denied_reason(d: &Denied) -> &'static str {
    match d {
        Denied::ModelNotAllowed { .. } => "model_not_allowed",
        Denied::RateLimited(_) => "rate_limit",
        Denied::Concurrency(_) => "concurrency",
        Denied::Budget(_) => "budget",
    }
}

/// How often a request waiting near the end of a shared budget looks again.
const SHARED_RECHECK: std::time::Duration = std::time::Duration::from_millis(25);

/// Longest a request waits for its turn near the end of a budget.
pub const CONTENDED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn admit(
    st: &AppState,
    live: &Arc<Live>,
    caller: &Caller,
    route: &'static str,
    requested: &str,
    mut candidates: Vec<Candidate>,
    estimate: Estimate,
) -> Result<Admitted, ApiError> {
    let principal = &caller.principal;
    let backlog = st.gov.inner.ledger().queue_depth();
    if backlog >= live.config.governance.max_ledger_backlog as u64 {
        metrics::record_rejection("ledger_backlog");
        return Err(ApiError::Overloaded {
            message: format!("The usage ledger is {backlog} rows behind; retry shortly."),
            retry_after: std::time::Duration::from_secs(1),
        });
    }
    candidates.retain(|c| principal.allows_served(c.entry.name(), &c.model));
    if candidates.is_empty() {
        refused(st, caller, requested, "model_not_allowed");
        return Err(Denied::ModelNotAllowed { model: requested.to_owned() }.into());
    }

    let now = st.now_ms();
    let pricing = live.router.pricing();
    let mut priced: Vec<(Candidate, Option<&Price>)> = candidates
        .into_iter()
        .map(|c| {
            let price = pricing.lookup(c.entry.name(), &c.model);
            (c, price)
        })
        .collect();
    let unpriced = |(c, p): &(Candidate, Option<&Price>)| !c.entry.placement.is_free() && p.is_none();
    if priced.iter().any(unpriced)
        && live.config.governance.unpriced == UnpricedPolicy::Refuse
        && st.gov.inner.caps_dollars(principal, now)
    {
        let first = priced.iter().find(|c| unpriced(c)).map(|(c, _)| (c.entry.name().to_owned(), c.model.clone()));
        priced.retain(|c| !unpriced(c));
        if priced.is_empty() {
            refused(st, caller, requested, "model_unpriced");
            let (provider, model) = first.unwrap_or_default();
            return Err(ApiError::Forbidden {
                message: format!(
                    "The model `{model}` (provider `{provider}`) has no price, and a dollar budget applies to this key: \
                     it could spend without limit. Price it with a `[[pricing]]` row (model = \"{model}\", input and \
                     output USD per million tokens), or set `governance.unpriced = \"allow\"`."
                ),
                code: "model_unpriced",
            });
        }
    }

    // The whole estimate, the prompt alone and what is at risk, each at the
    // dearest candidate.
    let Estimate { prompt: raw_prompt, exact, output, media } = estimate;
    let bound = st.calibration.bound(
        &principal.record.id,
        raw_prompt,
        exact,
        priced.iter().map(|(c, _)| (c.entry.name(), c.model.as_str())),
    );
    let prompt = bound.reserve;
    let (mut nanos, mut prompt_nanos, mut risk_nanos) = (0u64, 0u64, 0u64);
    let mut all_free = true;
    for (c, price) in &priced {
        all_free &= c.entry.placement.is_free() || price.is_some_and(Price::is_free);
        let at = |t| cost(*price, c.entry.placement, t).unwrap_or(0);
        nanos = nanos.max(at(media.add_to(plain(prompt, output))));
        prompt_nanos = prompt_nanos.max(at(media.add_to(plain(prompt, 0))));
        risk_nanos = risk_nanos.max(at(plain(bound.at_risk, 0)));
    }
    let candidates: Vec<Candidate> = priced.into_iter().map(|(c, _)| c).collect();
    let served: Vec<(&str, &str)> = candidates.iter().map(|c| (c.entry.name(), c.model.as_str())).collect();
    let dollar_exempt = all_free && live.config.governance.free_models_exempt;
    let req = AdmitRequest {
        model: requested,
        served: &served,
        estimated_tokens: prompt + output,
        estimated_nanos: nanos,
        at_risk: Amount::new(bound.at_risk, risk_nanos),
        dollar_exempt,
    };
    let deadline = tokio::time::Instant::now() + CONTENDED_WAIT;
    let cluster = st.gov.cluster();
    let admitted = loop {
        // Registered before trying, so a settle in between is not missed.
        let settled = st.budget_settled.notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        let now = st.now_ms();
        let attempt = match (st.gov.inner.admit(principal, req, now), cluster) {
            (Ok(admission), Some(cluster)) => cluster.hold(&st.gov.inner, admission, now).await,
            (Ok(admission), None) => Ok(admission),
            (Err(denied), _) => Err(Refusal::Denied(denied)),
        };
        match attempt {
            Err(Refusal::Denied(Denied::Budget(b))) if b.contended && tokio::time::Instant::now() < deadline => {
                // Another instance's settle is not announced here: look again soon.
                let wake = match cluster {
                    Some(_) => tokio::time::Instant::now() + SHARED_RECHECK,
                    None => deadline,
                };
                let _ = tokio::time::timeout_at(wake.min(deadline), settled).await;
            }
            other => break other,
        }
    };
    let mut admission = match admitted {
        Ok(admission) => admission,
        Err(Refusal::Denied(d)) => {
            refused(st, caller, requested, denied_reason(&d));
            return Err(d.into());
        }
        Err(Refusal::Unavailable(detail)) => {
            refused(st, caller, requested, "state_unavailable");
            return Err(ApiError::SharedStateDown(detail));
        }
    };
    drop(served);

    // Until settled, a drop (client gone mid-call) charges the prompt — it
    // reached the provider — under a row that names the route and model.
    let prompt_nanos = if dollar_exempt { 0 } else { prompt_nanos };
    admission.record_usage(UsageRecord {
        ts_ms: now,
        request_id: caller.request_id.clone(),
        model: requested.to_owned(),
        prompt_tokens: prompt,
        cost_nanos: Some(prompt_nanos),
        route: route.into(),
        audio_ms: media.audio_ms,
        ..UsageRecord::default()
    });

    let mut headers = HeaderMap::new();
    let remaining = admission.remaining();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    if let Some(t) = remaining.tokens {
        put("x-hoosh-budget-remaining-tokens", t.to_string());
    }
    if let Some(usd) = remaining.usd {
        put("x-hoosh-budget-remaining-usd", format!("{usd:.6}"));
    }
    for (name, value) in admission.rate_status().headers() {
        put(name, value);
    }
    let meter = Metered {
        admission,
        live: Arc::clone(live),
        started: Instant::now(),
        request_id: caller.request_id.clone(),
        route,
        requested_model: requested.to_owned(),
        prompt_estimate: prompt,
        output_estimate: output,
        raw_prompt: (!exact).then_some(raw_prompt),
        calibration: Arc::clone(&st.calibration),
        clock: Arc::clone(st.gov.inner.clock()),
        abandoned: Vec::new(),
        media,
        ack_after_commit: (cluster.is_some() && live.config.state.ack_after_commit)
            .then(|| (Arc::clone(st.gov.inner.ledger()), st.audit.log().cloned())),
    };
    Ok(Admitted { meter, candidates, headers })
}
