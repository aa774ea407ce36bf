//! The admin API under `/admin`: keys, teams, budgets and the audit chain
//! (the `admin` scope) and usage reports (`read_usage` is enough). Every
//! change made here is also an audit entry ([`crate::audit::admin_actions`]).
//!
//! Bodies are strict — an unknown field is a 400 naming it — and spell limits
//! flat, as the config file does: `rpm`, `tpm`, `max_concurrency` next to
//! `budget`. In updates an absent field stays as it is and `null` clears it.
//! Every change goes through [`hoosh_governance`], which writes the store
//! before making the change visible, so an answer here is what a restart
//! would load. Store I/O (SQLite) runs on the blocking pool.
//!
//! A key's digest never leaves the gateway; its plaintext appears once, in
//! the answer that creates it.

pub mod audit;
pub mod budgets;
pub mod keys;
pub mod reload;
pub mod teams;
pub mod usage;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use hoosh_governance::{BudgetSpec, Governance, Limits, Scope};
use serde::{Deserialize, Deserializer};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// A caller holding the `admin` scope. Checked from the request head, before
/// any body is read: a caller without the scope learns nothing from
/// validation errors.
pub struct Admin(pub Caller);

/// A caller that may read usage (`read_usage`, or `admin`, which implies it).
pub struct UsageReader(pub Caller);

async fn caller_with(parts: &mut Parts, st: &AppState, scope: Scope) -> Result<Caller, ApiError> {
    let caller = Caller::from_request_parts(parts, st).await?;
    if scope == Scope::Admin && st.gov.is_open() {
        return Err(ApiError::Forbidden {
            message: "The gateway runs open (no keys, no admin key), so nobody holds the `admin` scope. \
                      Set HOOSH_MASTER_KEY, restart, and call with that key."
                .into(),
            code: "insufficient_scope",
        });
    }
    caller.require(scope)?;
    Ok(caller)
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        caller_with(parts, st, Scope::Admin).await.map(Admin)
    }
}

impl FromRequestParts<AppState> for UsageReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        caller_with(parts, st, Scope::ReadUsage).await.map(UsageReader)
    }
}

/// Runs `f` on the blocking pool: store writes and ledger flushes block.
pub(crate) async fn blocking<T, F>(st: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Governance) -> Result<T, ApiError> + Send + 'static,
{
    let gov = Arc::clone(&st.gov.inner);
    tokio::task::spawn_blocking(move || f(&gov))
        .await
        .map_err(|e| ApiError::Internal(format!("admin task failed: {e}")))?
}

/// The query string as name → value, refusing names not in `allowed` (a
/// typo such as `?groupby=` must not silently fall back to a default).
pub(crate) fn query(
    raw: Result<Query<Vec<(String, String)>>, QueryRejection>,
    allowed: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let Query(pairs) = raw.map_err(|e| ApiError::invalid(format!("Invalid query string: {e}"), None))?;
    let mut out = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if !allowed.contains(&name.as_str()) {
            let known = allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
            let message = if known.is_empty() {
                format!("Unknown query parameter `{name}`; this endpoint takes none.")
            } else {
                format!("Unknown query parameter `{name}`; expected {known}.")
            };
            return Err(ApiError::invalid(message, Some(name)));
        }
        out.insert(name, value);
    }
    Ok(out)
}

/// For update bodies: a field that is present, even as `null`, becomes
/// `Some(..)`; an absent one stays `None` through `#[serde(default)]`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A budget must cap something, with a dollar amount that is a real
/// non-negative number. `field` names it in the error (`budget`, or empty
/// when the budget is the whole body).
pub(crate) fn check_budget(spec: Option<&BudgetSpec>, field: &str) -> Result<(), ApiError> {
    let Some(spec) = spec else { return Ok(()) };
    let name = |sub: &str| if field.is_empty() { sub.to_owned() } else { format!("{field}.{sub}") };
    if spec.tokens.is_none() && spec.usd.is_none() {
        let message = "A budget needs `tokens` and/or `usd`; to remove a budget, send null.";
        return Err(ApiError::invalid(message, (!field.is_empty()).then(|| field.to_owned())));
    }
    if let Some(usd) = spec.usd
        && !(usd.is_finite() && usd >= 0.0)
    {
        return Err(ApiError::invalid(format!("`usd` must be a number >= 0, got {usd}."), Some(name("usd"))));
    }
    Ok(())
}

/// Limits must be at least 1 when set (0 would refuse everything; leave the
/// field out, or null, for no limit).
pub(crate) fn check_limits(limits: &Limits) -> Result<(), ApiError> {
    let zero = [
        ("rpm", limits.rpm == Some(0)),
        ("tpm", limits.tpm == Some(0)),
        ("max_concurrency", limits.max_concurrency == Some(0)),
    ];
    match zero.iter().find(|(_, z)| *z) {
        Some((name, _)) => Err(ApiError::invalid(
            format!("`{name}` must be at least 1; leave it out (or null) for no limit."),
            Some((*name).to_owned()),
        )),
        None => Ok(()),
    }
}

/// Flat limit fields of an update body, applied over the current limits.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LimitsPatch {
    pub rpm: Option<Option<u32>>,
    pub tpm: Option<Option<u64>>,
    pub max_concurrency: Option<Option<u32>>,
}

impl LimitsPatch {
    /// The new limits, or `None` when the patch touches none of them.
    pub fn apply(self, mut limits: Limits) -> Option<Limits> {
        if self.rpm.is_none() && self.tpm.is_none() && self.max_concurrency.is_none() {
            return None;
        }
        if let Some(v) = self.rpm {
            limits.rpm = v;
        }
        if let Some(v) = self.tpm {
            limits.tpm = v;
        }
        if let Some(v) = self.max_concurrency {
            limits.max_concurrency = v;
        }
        Some(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_governance::Period;

    #[test]
    fn budgets_must_cap_something_and_limits_must_be_positive() {
        let empty = BudgetSpec { tokens: None, usd: None, period: Period::Daily };
        assert!(check_budget(Some(&empty), "budget").is_err());
        let neg = BudgetSpec { tokens: None, usd: Some(-1.0), period: Period::Daily };
        match check_budget(Some(&neg), "budget") {
            Err(ApiError::InvalidRequest { param, .. }) => assert_eq!(param.as_deref(), Some("budget.usd")),
            _ => panic!("negative usd accepted"),
        }
        assert!(check_budget(None, "").is_ok());
        assert!(check_limits(&Limits { rpm: Some(1), ..Limits::default() }).is_ok());
        match check_limits(&Limits { tpm: Some(0), ..Limits::default() }) {
            Err(ApiError::InvalidRequest { param, .. }) => assert_eq!(param.as_deref(), Some("tpm")),
            _ => panic!("tpm = 0 accepted"),
        }
    }

    #[test]
    fn limits_patch_keeps_absent_and_clears_null() {
        let base = Limits { rpm: Some(5), tpm: Some(100), max_concurrency: None };
        assert_eq!(LimitsPatch::default().apply(base), None);
        let p = LimitsPatch { rpm: Some(None), max_concurrency: Some(Some(2)), ..LimitsPatch::default() };
        assert_eq!(p.apply(base), Some(Limits { rpm: None, tpm: Some(100), max_concurrency: Some(2) }));
    }
}
