//! `/admin/audit`: read the chain, verify it, take its latest signed
//! checkpoint, prune old entries (all with the `admin` scope).
//!
//! - `GET /admin/audit?from=&after_seq=&kind=&actor=&request_id=&limit=` —
//!   entries in seq order, `limit` (default 100, at most 1000) at a time;
//!   `next_after_seq` pages on. `kind` matches a prefix (`key.` for every
//!   key change). `from` takes the forms `/admin/usage` does.
//! - `GET /admin/audit/verify` — flushes, then verifies every stored entry
//!   against the configured keys and the latest stored checkpoint.
//! - `GET /admin/audit/checkpoint` — a checkpoint of the head as it is now
//!   (everything recorded before the call committed first), signed and
//!   stored, to keep outside the gateway and hand to
//!   `hoosh audit verify --checkpoint`.
//! - `POST /admin/audit/prune {"older_than_days": N}` — deletes older
//!   entries behind a signed `chain.prune` record.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use hoosh_audit::Entry;
use hoosh_governance::period::DAY_MS;
use serde::Deserialize;
use serde_json::{Value, json};

use super::usage::parse_instant;
use super::{Admin, query};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn disabled() -> ApiError {
    ApiError::NotFound("The audit chain is disabled (`audit.enabled = false`).".into())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("audit store: {e}"))
}

async fn on_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("audit task failed: {e}")))?
}

/// `GET /admin/audit`.
pub async fn list(
    State(st): State<AppState>,
    _: Admin,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q, &["from", "after_seq", "kind", "actor", "request_id", "limit"])?;
    let log = st.audit.log().cloned().ok_or_else(disabled)?;
    let number = |name: &str| -> Result<Option<u64>, ApiError> {
        q.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::invalid(format!("`{name}` must be a whole number, got `{v}`."), Some(name.to_owned()))
                })
            })
            .transpose()
    };
    let limit = number("limit")?.map_or(DEFAULT_LIMIT, |l| l as usize);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!("`limit` must be 1..={MAX_LIMIT}."), Some("limit".into())));
    }
    let after_seq = number("after_seq")?.unwrap_or(0);
    let from = q
        .get("from")
        .map(|f| {
            parse_instant(f, st.now_ms())
                .map_err(|e| ApiError::invalid(format!("Invalid `from`: {e}"), Some("from".into())))
        })
        .transpose()?;
    let kind = q.get("kind").cloned();
    let actor = q.get("actor").cloned();
    let request_id = q.get("request_id").cloned();
    let entries = on_blocking(move || {
        log.flush();
        let mut out: Vec<Entry> = Vec::with_capacity(limit.min(64));
        let mut more = false;
        let mut visit = |e: Entry| {
            let wanted = e.seq > after_seq
                && kind.as_deref().is_none_or(|k| e.kind.starts_with(k))
                && actor.as_deref().is_none_or(|a| e.actor.as_deref() == Some(a))
                && request_id.as_deref().is_none_or(|r| e.request_id.as_deref() == Some(r));
            if wanted {
                if out.len() == limit {
                    more = true;
                    return false;
                }
                out.push(e);
            }
            true
        };
        match from {
            Some(ts) => log.store().since(ts, &mut visit),
            None => log.store().range(after_seq.saturating_add(1), &mut visit),
        }
        .map_err(internal)?;
        Ok((out, more))
    })
    .await?;
    let (entries, more) = entries;
    let next = if more { entries.last().map(|e| e.seq) } else { None };
    let data = entries.into_iter().map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).collect::<Vec<_>>();
    Ok(Json(json!({"object": "list", "data": data, "next_after_seq": next})))
}

/// `GET /admin/audit/verify`.
pub async fn verify(State(st): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let audit = st.audit.clone();
    let report = on_blocking(move || audit.verify().ok_or_else(disabled)?.map_err(internal)).await?;
    let problem = report
        .problem
        .as_ref()
        .map(|p| json!({"seq": p.seq, "reason": p.reason.code(), "message": p.reason.to_string()}));
    Ok(Json(json!({
        "object": "audit.verification",
        "valid": report.is_ok(),
        "entries_checked": report.entries_checked,
        "first_seq": report.first_seq,
        "head_seq": report.head_seq,
        "head_hash": hoosh_audit::hex::encode(&report.head_hash),
        "key_changes": report.key_changes.iter().map(|c| json!({
            "seq": c.seq,
            "from_key_id": c.from_key_id,
            "to_key_id": c.to_key_id,
            "signed_by_old_key": c.signed_by_old_key,
        })).collect::<Vec<_>>(),
        "checkpoint_matched": report.checkpoint_matched,
        "problem": problem,
    })))
}

/// `GET /admin/audit/checkpoint`.
pub async fn checkpoint(State(st): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let log = st.audit.log().cloned().ok_or_else(disabled)?;
    let cp = on_blocking(move || match log.checkpoint_now().map_err(internal)? {
        Some(cp) => Ok(Some(cp)),
        // Nothing to sign (an empty chain, entries lost at a failed close, or
        // in a cluster this instance's entries waiting in its spill file): the last one stored.
        None => log.store().latest_checkpoint().map_err(internal),
    })
    .await?;
    let cp = cp.ok_or_else(|| ApiError::NotFound("No checkpoint has been written yet.".into()))?;
    serde_json::from_str(&cp.to_json()).map(Json).map_err(internal)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneBody {
    pub older_than_days: u32,
}

/// `POST /admin/audit/prune`.
pub async fn prune(
    State(st): State<AppState>,
    _: Admin,
    ApiJson(body): ApiJson<PruneBody>,
) -> Result<Json<Value>, ApiError> {
    if body.older_than_days == 0 {
        return Err(ApiError::invalid("`older_than_days` must be at least 1.", Some("older_than_days".into())));
    }
    let log = st.audit.log().cloned().ok_or_else(disabled)?;
    let before = st.now_ms() - i64::from(body.older_than_days) * DAY_MS;
    let record = on_blocking(move || log.prune_before(before).map_err(internal)).await?;
    Ok(Json(match record {
        Some(r) => json!({"pruned": true, "first_kept_seq": r.first_kept_seq, "last_pruned_seq": r.last_pruned_seq}),
        None => json!({"pruned": false}),
    }))
}
