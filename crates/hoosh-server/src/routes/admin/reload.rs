//! `POST /admin/reload`: read the config again and apply it (see
//! [`crate::reload`]). A config that does not load or validate is refused
//! whole with 400 `invalid_config` and the reason; the running one stays.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::Admin;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn reload(State(st): State<AppState>, Admin(caller): Admin) -> Result<Json<Value>, ApiError> {
    match crate::reload::reload(&st, "api", Some(&caller.principal.record.id)).await {
        Ok(report) => {
            let mut body = serde_json::to_value(report).unwrap_or_default();
            body["object"] = json!("config.reload");
            Ok(Json(body))
        }
        Err(e) => Err(ApiError::InvalidRequest {
            message: format!("The config was not reloaded; the running one stays. {e}"),
            param: None,
            code: Some("invalid_config"),
        }),
    }
}
