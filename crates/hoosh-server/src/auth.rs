//! Authentication at the edge: every route needs a key except the configured
//! public paths. The key comes from `Authorization: Bearer …` (OpenAI SDKs)
//! or `x-api-key` (Anthropic SDKs), is looked up by its SHA-256 digest, and
//! the [`Principal`] is put in the request's extensions for handlers
//! ([`Caller`]). With no keys and no admin key configured the gateway runs
//! open: every caller is the `anonymous` principal.

use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hoosh_governance::{KeyHash, KeyRecord, Principal, Scope};

use crate::error::ApiError;
use crate::state::AppState;

/// `Retry-After` of a request refused while the audit writer catches up.
const AUDIT_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Who calls when the gateway runs open.
static ANONYMOUS: LazyLock<Arc<Principal>> = LazyLock::new(|| {
    Arc::new(Principal::new(KeyRecord {
        id: "anonymous".into(),
        name: "anonymous".into(),
        hash: KeyHash([0; 32]),
        prefix: String::new(),
        team: None,
        models: Vec::new(),
        scopes: vec![Scope::Inference, Scope::ReadUsage],
        expires_at: None,
        metadata: Default::default(),
        enabled: true,
        created_at: 0,
        limits: Default::default(),
        budget: None,
    }))
});

/// The key a request presents, if any.
fn presented(parts: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = parts.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let token = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v);
        return Some(token.trim());
    }
    parts.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The middleware: public path → through; audit backlog at its bound → 503
/// with `Retry-After`; otherwise authenticate or 401.
pub async fn authenticate(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // The one config snapshot this request runs under, whatever reloads meanwhile.
    let live = st.live();
    if live.config.governance.public_paths.iter().any(|p| p == path) {
        return next.run(req).await;
    }
    // The audit chain never drops an entry, so its backlog is bounded here:
    // no new request (not even a 401, which records one) until it catches up.
    if st.audit.overloaded() {
        return ApiError::Overloaded {
            message: "The gateway is catching up on its audit log; retry shortly.".into(),
            retry_after: AUDIT_RETRY_AFTER,
        }
        .into_response();
    }
    let principal = if st.gov.is_open() {
        Arc::clone(&ANONYMOUS)
    } else {
        match st.gov.inner.keys().authenticate(presented(req.headers()), st.now_ms()) {
            Ok(p) => p,
            Err(e) => {
                let err = ApiError::from(e);
                if let ApiError::Unauthorized { code, .. } = &err {
                    crate::metrics::record_auth_failure(code);
                    let client =
                        req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
                    let credential = presented(req.headers());
                    st.audit.auth_failure(st.now_ms(), code, req.method(), path, client, credential);
                }
                return err.into_response();
            }
        }
    };
    req.extensions_mut().insert(principal);
    req.extensions_mut().insert(live);
    next.run(req).await
}

/// The authenticated caller, the request id, and the config snapshot the
/// request runs under (taken once, at authentication), for handlers.
#[derive(Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub request_id: String,
    pub live: Arc<crate::state::Live>,
}

impl Caller {
    /// 403 unless the caller holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.principal.has_scope(scope) {
            return Ok(());
        }
        let name = match scope {
            Scope::Inference => "inference",
            Scope::Admin => "admin",
            Scope::ReadUsage => "read_usage",
        };
        Err(ApiError::Forbidden {
            message: format!("This API key lacks the `{name}` scope needed here."),
            code: "insufficient_scope",
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("a governed route ran without the auth layer".into()))?;
        let live = parts
            .extensions
            .get::<Arc<crate::state::Live>>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("a governed route ran without the auth layer".into()))?;
        let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Ok(Caller { principal, request_id, live })
    }
}
