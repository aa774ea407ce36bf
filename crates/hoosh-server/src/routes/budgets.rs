//! `GET /v1/budgets`: the budgets that apply to the caller's key (its own,
//! its team's, the global one), with what is used, reserved and left, and
//! when each resets.

use axum::Json;
use axum::extract::State;
use hoosh_governance::{BudgetStatus, PoolId};
use serde::Serialize;

use crate::auth::Caller;
use crate::state::AppState;

#[derive(Serialize)]
pub struct BudgetList {
    pub object: &'static str,
    pub key_id: String,
    pub data: Vec<BudgetStatus>,
}

pub async fn mine(State(st): State<AppState>, caller: Caller) -> Json<BudgetList> {
    let p = &caller.principal;
    let mut pools = vec![PoolId::Key(p.id().to_owned())];
    if let Some(team) = p.team() {
        pools.push(PoolId::Team(team.to_owned()));
    }
    pools.push(PoolId::Global);
    let now = st.now_ms();
    let data = pools.iter().filter_map(|pool| st.gov.inner.budgets().snapshot(pool, now)).collect();
    let data = crate::cluster::budget_view(&st, data).await;
    Json(BudgetList { object: "list", key_id: p.id().to_owned(), data })
}
