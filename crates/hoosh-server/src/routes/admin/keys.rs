//! `/admin/keys`: create (the plaintext is in this answer and nowhere else),
//! list, show, update, revoke or purge virtual keys.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use hoosh_governance::{BudgetSpec, KeyPatch, KeyRecord, Limits, NewKey, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Admin, LimitsPatch, blocking, check_budget, check_limits, nullable, query};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// `POST /admin/keys`. Only `name` is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    #[serde(default)]
    pub team: Option<String>,
    /// Model globs the key may call; every model when empty.
    #[serde(default)]
    pub models: Vec<String>,
    /// Default `["inference"]`.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// Unix ms after which the key stops authenticating.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub rpm: Option<u32>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
}

/// `PATCH /admin/keys/{id}`: absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub team: Option<Option<String>>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    #[serde(default, deserialize_with = "nullable")]
    pub expires_at: Option<Option<i64>>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// `true` re-enables a revoked key.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub rpm: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    pub tpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_concurrency: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    pub budget: Option<Option<BudgetSpec>>,
}

/// A key as the admin API shows it: the record without its digest, limits
/// flat as in the request bodies.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub object: &'static str,
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub team: Option<String>,
    pub models: Vec<String>,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<i64>,
    pub metadata: Map<String, Value>,
    pub enabled: bool,
    pub created_at: i64,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub max_concurrency: Option<u32>,
    pub budget: Option<BudgetSpec>,
    /// The plaintext key: only in the answer to the create call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<KeyRecord> for KeyView {
    fn from(r: KeyRecord) -> Self {
        // Destructured so that a new record field has to be shown or hidden here on purpose.
        let KeyRecord {
            id,
            name,
            hash: _,
            prefix,
            team,
            models,
            scopes,
            expires_at,
            metadata,
            enabled,
            created_at,
            limits,
            budget,
        } = r;
        KeyView {
            object: "api_key",
            id,
            name,
            prefix,
            team,
            models,
            scopes,
            expires_at,
            metadata,
            enabled,
            created_at,
            rpm: limits.rpm,
            tpm: limits.tpm,
            max_concurrency: limits.max_concurrency,
            budget,
            key: None,
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("No key with id `{id}`."))
}

impl CreateKey {
    fn into_new_key(self) -> Result<NewKey, ApiError> {
        if self.name.trim().is_empty() {
            return Err(ApiError::invalid("`name` must not be empty.", Some("name".to_owned())));
        }
        let limits = Limits { rpm: self.rpm, tpm: self.tpm, max_concurrency: self.max_concurrency };
        check_limits(&limits)?;
        check_budget(self.budget.as_ref(), "budget")?;
        Ok(NewKey {
            name: self.name,
            team: self.team,
            models: self.models,
            scopes: self.scopes,
            expires_at: self.expires_at,
            metadata: self.metadata,
            limits,
            budget: self.budget,
        })
    }
}

/// `POST /admin/keys` → 201 with the key's plaintext, shown this once.
pub async fn create(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let spec = body.into_new_key()?;
    let (record, plaintext) = blocking(&st, move |gov| Ok(gov.keys().create(spec, gov.clock().now_ms())?)).await?;
    tracing::info!(key_id = %record.id, name = %record.name, by = caller.principal.id(), "key created");
    let mut view = KeyView::from(record);
    view.key = Some(plaintext);
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /admin/keys`: every key, oldest first.
pub async fn list(State(st): State<AppState>, _: Admin) -> Json<Value> {
    let data: Vec<KeyView> = st.gov.inner.keys().list().into_iter().map(KeyView::from).collect();
    Json(json!({"object": "list", "data": data}))
}

/// `GET /admin/keys/{id}`.
pub async fn get(State(st): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Json<KeyView>, ApiError> {
    st.gov.inner.keys().get(&id).map(|r| Json(KeyView::from(r))).ok_or_else(|| not_found(&id))
}

/// `PATCH /admin/keys/{id}`.
pub async fn update(
    State(st): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateKey>,
) -> Result<Json<KeyView>, ApiError> {
    if body.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::invalid("`name` must not be empty.", Some("name".to_owned())));
    }
    if let Some(budget) = &body.budget {
        check_budget(budget.as_ref(), "budget")?;
    }
    let limits = LimitsPatch { rpm: body.rpm, tpm: body.tpm, max_concurrency: body.max_concurrency };
    let key_id = id.clone();
    let record = blocking(&st, move |gov| {
        let current = gov.keys().get(&key_id).ok_or_else(|| not_found(&key_id))?;
        let limits = limits.apply(current.limits);
        if let Some(l) = &limits {
            check_limits(l)?;
        }
        if body.budget.is_some() {
            // A new budget pool starts from the ledger: rows still queued must be in it.
            gov.ledger().flush();
        }
        let patch = KeyPatch {
            name: body.name,
            team: body.team,
            models: body.models,
            scopes: body.scopes,
            expires_at: body.expires_at,
            metadata: body.metadata,
            enabled: body.enabled,
            limits,
            budget: body.budget,
        };
        Ok(gov.keys().update(&key_id, patch)?)
    })
    .await?;
    tracing::info!(key_id = %id, by = caller.principal.id(), "key updated");
    Ok(Json(KeyView::from(record)))
}

/// `DELETE /admin/keys/{id}`: revokes (the key stops authenticating at once,
/// stays listed, its usage stays attributed); `?purge=true` deletes it.
pub async fn delete(
    State(st): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q, &["purge"])?;
    let purge = match q.get("purge").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("`purge` must be true or false, got `{other}`."),
                Some("purge".to_owned()),
            ));
        }
    };
    let key_id = id.clone();
    let answer = if purge {
        let existed = blocking(&st, move |gov| Ok(gov.keys().delete(&key_id)?)).await?;
        if !existed {
            return Err(not_found(&id));
        }
        json!({"object": "api_key", "id": id, "deleted": true})
    } else {
        let record = blocking(&st, move |gov| Ok(gov.keys().revoke(&key_id)?)).await?;
        serde_json::to_value(KeyView::from(record)).map_err(|e| ApiError::Internal(e.to_string()))?
    };
    tracing::info!(key_id = %id, by = caller.principal.id(), "{}", if purge { "key deleted" } else { "key revoked" });
    Ok(Json(answer))
}
