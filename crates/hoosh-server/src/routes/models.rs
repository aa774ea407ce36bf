//! `GET /v1/models` and `GET /v1/models/{id}`: the models some route can
//! actually serve, merged across providers. Each provider's own list is
//! filtered by that provider's model globs; literal (wildcard-free) globs
//! and aliases are always listed. Provider lists are fetched concurrently
//! and the merged answer is cached briefly.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use futures_util::future::join_all;
use hoosh_core::Placement;
use hoosh_core::router::Need;
use hoosh_types::openai::{Model, ModelList};
use tokio::time::Duration;

use crate::error::ApiError;
use crate::state::{AppState, MODELS_TTL};

/// Deadline for one provider's model list.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn merged(st: &AppState) -> Arc<Vec<Model>> {
    if let Some((at, list)) = st.models_cache.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
        && at.elapsed() < MODELS_TTL
    {
        return list.clone();
    }
    let live = st.live();
    let entries = live.router.entries();
    let lists = join_all(entries.iter().map(|e| async move {
        match tokio::time::timeout(LIST_TIMEOUT, e.provider.list_models()).await {
            Ok(Ok(ids)) => ids,
            Ok(Err(err)) => {
                tracing::debug!(provider = e.name(), error = %err, "model list unavailable");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }))
    .await;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (e, ids) in entries.iter().zip(lists) {
        let listed = ids.into_iter().filter(|id| e.serves(id));
        let literal = e.literal_models().map(str::to_owned);
        for id in listed.chain(literal) {
            if seen.insert(id.clone()) {
                out.push(Model::new(id, e.name()));
            }
        }
    }
    for (alias, _) in live.router.aliases() {
        if seen.insert(alias.to_owned()) {
            out.push(Model::new(alias, "hoosh"));
        }
    }
    let list = Arc::new(out);
    *st.models_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), list.clone()));
    list
}

/// Fills in `loaded` for models served in-process. Read on every call, not
/// cached with the list: loading and unloading happen at any time.
fn with_load_state(st: &AppState, mut m: Model) -> Model {
    if let Some(e) =
        st.live().router.entries().iter().find(|e| e.placement == Placement::InProcess && e.name() == m.owned_by)
    {
        m.loaded = e.provider.model_loaded(&m.id);
    }
    m
}

pub async fn list(State(st): State<AppState>) -> Json<ModelList> {
    let data = merged(&st).await.iter().map(|m| with_load_state(&st, m.clone())).collect();
    Json(ModelList { object: "list".into(), data })
}

pub async fn get(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Model>, ApiError> {
    if let Some(m) = merged(&st).await.iter().find(|m| m.id == id) {
        return Ok(Json(with_load_state(&st, m.clone())));
    }
    // Not listed, but a glob route may still serve it (e.g. `ollama/*`).
    let live = st.live();
    let candidates =
        live.router.candidates(&id, Need::Chat).or_else(|_| live.router.candidates(&id, Need::Embeddings))?;
    let owner = candidates.first().map(|c| c.entry.name().to_owned()).unwrap_or_default();
    Ok(Json(Model::new(id, owner)))
}
