//! `/admin/teams`: named groups of keys that share a budget (`team:NAME`) and
//! limits. A key joins a team by naming it (`team` on the key).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hoosh_governance::{BudgetSpec, Limits, Team};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Admin, LimitsPatch, blocking, check_budget, check_limits, nullable};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// `POST /admin/teams`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    #[serde(default)]
    pub rpm: Option<u32>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// `PATCH /admin/teams/{name}`: absent fields stay, `null` clears. A team is
/// not renamed (its keys name it); create the new one and move the keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    #[serde(default, deserialize_with = "nullable")]
    pub budget: Option<Option<BudgetSpec>>,
    #[serde(default, deserialize_with = "nullable")]
    pub rpm: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    pub tpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_concurrency: Option<Option<u32>>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize)]
pub struct TeamView {
    pub object: &'static str,
    pub name: String,
    pub budget: Option<BudgetSpec>,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub max_concurrency: Option<u32>,
    pub metadata: Map<String, Value>,
    /// How many keys name this team.
    pub keys: usize,
}

impl TeamView {
    fn new(team: Team, st: &AppState) -> Self {
        let keys = st.gov.inner.keys().list().iter().filter(|k| k.team.as_deref() == Some(&team.name)).count();
        let Team { name, budget, limits, metadata } = team;
        TeamView {
            object: "team",
            name,
            budget,
            rpm: limits.rpm,
            tpm: limits.tpm,
            max_concurrency: limits.max_concurrency,
            metadata,
            keys,
        }
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("No team named `{name}`."))
}

/// `POST /admin/teams` → 201; 400 if the name is taken (PATCH changes a team).
pub async fn create(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<CreateTeam>,
) -> Result<(StatusCode, Json<TeamView>), ApiError> {
    if body.name.trim().is_empty() {
        return Err(ApiError::invalid("`name` must not be empty.", Some("name".to_owned())));
    }
    let limits = Limits { rpm: body.rpm, tpm: body.tpm, max_concurrency: body.max_concurrency };
    check_limits(&limits)?;
    check_budget(body.budget.as_ref(), "budget")?;
    let team = Team { name: body.name, budget: body.budget, limits, metadata: body.metadata };
    let team = blocking(&st, move |gov| {
        if gov.teams().get(&team.name).is_some() {
            return Err(ApiError::Conflict(format!(
                "A team named `{}` exists already; PATCH /admin/teams/{{name}} changes it.",
                team.name
            )));
        }
        if team.budget.is_some() {
            // Keys may name the team before it exists: the new pool starts from their ledger rows.
            gov.ledger().flush();
        }
        gov.teams().put(team.clone())?;
        Ok(team)
    })
    .await?;
    tracing::info!(team = %team.name, by = caller.principal.id(), "team created");
    Ok((StatusCode::CREATED, Json(TeamView::new(team, &st))))
}

/// `GET /admin/teams`: every team, by name.
pub async fn list(State(st): State<AppState>, _: Admin) -> Json<Value> {
    let data: Vec<TeamView> = st.gov.inner.teams().list().into_iter().map(|t| TeamView::new(t, &st)).collect();
    Json(json!({"object": "list", "data": data}))
}

/// `GET /admin/teams/{name}`.
pub async fn get(State(st): State<AppState>, _: Admin, Path(name): Path<String>) -> Result<Json<TeamView>, ApiError> {
    let team = st.gov.inner.teams().get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(TeamView::new(Team::clone(&team), &st)))
}

/// `PATCH /admin/teams/{name}`.
pub async fn update(
    State(st): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateTeam>,
) -> Result<Json<TeamView>, ApiError> {
    if let Some(budget) = &body.budget {
        check_budget(budget.as_ref(), "budget")?;
    }
    let limits = LimitsPatch { rpm: body.rpm, tpm: body.tpm, max_concurrency: body.max_concurrency };
    let team_name = name.clone();
    let team = blocking(&st, move |gov| {
        let current = gov.teams().get(&team_name).ok_or_else(|| not_found(&team_name))?;
        let mut team = Team::clone(&current);
        if let Some(l) = limits.apply(team.limits) {
            check_limits(&l)?;
            team.limits = l;
        }
        if let Some(budget) = body.budget {
            gov.ledger().flush();
            team.budget = budget;
        }
        if let Some(metadata) = body.metadata {
            team.metadata = metadata;
        }
        gov.teams().put(team.clone())?;
        Ok(team)
    })
    .await?;
    tracing::info!(team = %name, by = caller.principal.id(), "team updated");
    Ok(Json(TeamView::new(team, &st)))
}

/// `DELETE /admin/teams/{name}`: the team and its budget go; its keys keep
/// naming it but share nothing any more.
pub async fn delete(
    State(st): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let team_name = name.clone();
    let existed = blocking(&st, move |gov| Ok(gov.teams().remove(&team_name)?)).await?;
    if !existed {
        return Err(not_found(&name));
    }
    tracing::info!(team = %name, by = caller.principal.id(), "team deleted");
    Ok(Json(json!({"object": "team", "name": name, "deleted": true})))
}
