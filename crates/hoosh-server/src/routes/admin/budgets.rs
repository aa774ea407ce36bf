//! `/admin/budgets`: every pool's state, and setting or removing the budget
//! of one pool — `global`, `team:NAME` or `key:ID`.
//!
//! One endpoint for all three, each stored where it already lives: the
//! global budget in the budget table, a team's on the team record (created
//! when missing, since keys may name a team that has no record yet), a key's
//! on the key record. A pool that is new, or whose period changed, starts
//! from the ledger's sum for its current window, so setting a budget never
//! forgets what was already spent.

use axum::Json;
use axum::extract::{Path, State};
use hoosh_governance::{BudgetSpec, BudgetStatus, GovError, Governance, KeyPatch, PoolId, Team, nanos_to_usd};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Admin, blocking, check_budget};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// A pool's state, with the dollar amounts also in dollars.
#[derive(Debug, Serialize)]
pub struct BudgetView {
    pub object: &'static str,
    #[serde(flatten)]
    pub status: BudgetStatus,
    pub used_usd: f64,
    pub reserved_usd: f64,
}

impl From<BudgetStatus> for BudgetView {
    fn from(status: BudgetStatus) -> Self {
        BudgetView {
            object: "budget",
            used_usd: nanos_to_usd(status.used_nanos),
            reserved_usd: nanos_to_usd(status.reserved_nanos),
            status,
        }
    }
}

/// `GET /admin/budgets`: every pool with a budget (global, then teams, then
/// keys): used, reserved, remaining, and when it resets.
pub async fn list(State(st): State<AppState>, _: Admin) -> Json<Value> {
    let budgets = st.gov.inner.budgets();
    let now = st.now_ms();
    let statuses = budgets.pools().iter().filter_map(|p| budgets.snapshot(p, now)).collect();
    let data: Vec<BudgetView> =
        crate::cluster::budget_view(&st, statuses).await.into_iter().map(BudgetView::from).collect();
    Json(json!({"object": "list", "data": data}))
}

/// `PUT /admin/budgets/{pool}` with `{"tokens":..,"usd":..,"period":..}`, or
/// `null` to remove the budget.
pub async fn set(
    State(st): State<AppState>,
    Admin(caller): Admin,
    Path(pool): Path<String>,
    ApiJson(spec): ApiJson<Option<BudgetSpec>>,
) -> Result<Json<Value>, ApiError> {
    let pool: PoolId = pool.parse().map_err(|e: String| ApiError::invalid(format!("{e}."), Some("pool".to_owned())))?;
    check_budget(spec.as_ref(), "")?;
    let id = pool.clone();
    let existed = blocking(&st, move |gov| apply(gov, &id, spec)).await?;
    tracing::info!(pool = %pool, ?spec, by = caller.principal.id(), "budget set");
    let status = st.gov.inner.budgets().snapshot(&pool, st.now_ms());
    match crate::cluster::budget_view(&st, status.into_iter().collect()).await.pop() {
        Some(status) => {
            serde_json::to_value(BudgetView::from(status)).map(Json).map_err(|e| ApiError::Internal(e.to_string()))
        }
        None => Ok(Json(json!({"object": "budget", "pool": pool, "deleted": existed}))),
    }
}

/// Installs `spec` on `pool`; returns whether the pool had a budget before.
fn apply(gov: &Governance, pool: &PoolId, spec: Option<BudgetSpec>) -> Result<bool, ApiError> {
    let existed = gov.budgets().contains(pool);
    // The pool's usage is rebuilt from the ledger: rows still queued must be in it.
    gov.ledger().flush();
    match pool {
        PoolId::Global => gov.set_global_budget(spec, gov.clock().now_ms()).map_err(|e| match e {
            GovError::Admin(e) => ApiError::from(e),
            GovError::Store(e) => ApiError::Internal(e.to_string()),
        })?,
        PoolId::Team(name) => {
            let team = match gov.teams().get(name) {
                Some(t) => Team { budget: spec, ..Team::clone(&t) },
                None if spec.is_none() => return Err(ApiError::NotFound(format!("No team named `{name}`."))),
                None => {
                    Team { name: name.clone(), budget: spec, limits: Default::default(), metadata: Default::default() }
                }
            };
            gov.teams().put(team)?;
        }
        PoolId::Key(id) => {
            gov.keys().update(id, KeyPatch { budget: Some(spec), ..KeyPatch::default() })?;
        }
    }
    Ok(existed)
}
