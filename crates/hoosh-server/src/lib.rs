//! hoosh-server: the HTTP edge of the gateway (axum).
//!
//! Layout:
//! - [`app`] builds the router; its doc lists every middleware layer in order.
//! - [`routes`]: one file per endpoint family (chat, completions,
//!   embeddings, audio, models, health): decode + validate + `pipeline::run`.
//! - [`routes::admin`]: the admin API — keys, teams, budgets, usage reports and CSV export.
//! - [`extract`]: the JSON body extractor with OpenAI-shaped rejections.
//! - [`validate`]: parameter checks with OpenAI's limits.
//! - [`sse`]: chunk streams → `text/event-stream` with keep-alives and a
//!   terminal error event.
//! - [`auth`]: the key check on every non-public route, and the [`auth::Caller`]
//!   extractor (principal + request id).
//! - [`audit`]: the audit chain — which events become entries, from where.
//! - [`pipeline`]: the one request pipeline every inference endpoint runs
//!   through — resolve → admit → cache → execute → settle → respond — and
//!   the [`pipeline::Endpoint`] trait each kind of work implements.
//! - [`cache`]: the exact-match response cache (blocking and streamed).
//! - [`governance`]: `[governance]` config → the live keys/budgets/ledger.
//! - [`cluster`]: `[state] backend = "cluster"`: governance on PostgreSQL,
//!   admissions held on the Redis counters every instance shares, and
//!   record changes announced to the other instances.
//! - [`metrics`]: Prometheus metrics, recorded where things happen and
//!   scraped at `GET /metrics`.
//! - [`error`]: [`ApiError`], the single mapping of errors to HTTP.
//! - [`state`]: [`AppState`], one cheap `Clone` handle; [`state::Live`], the reloadable part.
//! - [`probes`]: background provider health probes.
//! - [`supervise`]: background tasks restarted after a panic.
//! - [`housekeeping`]: periodic pruning of rate-limiter states and expired cache answers.
//! - [`slots`]: a bounded number of expensive jobs at once (audio decodes), with a bounded line.
//! - [`reload`]: hot reload (SIGHUP, `POST /admin/reload`): what applies live, what needs a restart.
//! - [`trace_context`]: the caller's `traceparent`, carried to upstreams; the server span.
//! - [`otlp`]: span export to an OpenTelemetry collector (OTLP/HTTP JSON).
//! - [`serve`]: the accept loop (connection cap, `TCP_NODELAY`), graceful
//!   shutdown with a deadline.
//! - [`edge`]: one connection's timers — header read, request body, write
//!   stall, idle.

pub mod audit;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod edge;
pub mod error;
pub mod extract;
pub mod governance;
pub mod housekeeping;
pub mod ingress;
pub mod metrics;
pub mod otlp;
pub mod pipeline;
pub mod probes;
pub mod reload;
pub mod routes;
pub mod serve;
pub mod slots;
pub mod sse;
pub mod state;
pub mod supervise;
pub mod trace_context;
pub mod validate;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Request};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The gateway's router. Layers, outermost first:
/// 1. `SetRequestId`: keep the caller's `x-request-id` or assign a UUIDv7
///    (time-ordered, so ledger rows and audit entries sort by it);
/// 2. `Trace`: one span per request, tagged with that id;
/// 3. `PropagateRequestId`: echo the id on every response, errors included;
/// 4. `Cors`: the configured origins (any, by default: auth is by bearer
///    key, never by cookie);
/// 5. `DefaultBodyLimit`: `server.body_limit_bytes` → 413;
/// 6. `trace_context::propagate`: the caller's `traceparent` (or a new
///    trace) for every upstream call, its trace id on the log span, and,
///    with OTLP export on, the request's server span;
/// 7. `metrics::track`: in-flight gauge, request count and duration per route;
/// 8. `ingress::shape_errors`: error answers on another client API's paths
///    (`/v1/messages`) in that API's shape;
/// 9. `auth::authenticate`: a key on every path but `governance.public_paths`
///    (401 otherwise), or the anonymous principal when running open.
///
/// Around them all, `CatchPanic`: a handler that panics answers 500 for its
/// own request; the server and every other request go on.
///
/// Unknown paths answer an OpenAI-shaped 404, wrong methods a 405.
pub fn app(state: AppState) -> Router {
    metrics::init();
    let live = state.live();
    let limit = live.config.server.body_limit_bytes;
    let cors = cors(&live.config.server.cors_origins);
    // An audio upload may be larger than a JSON body; the form's other
    // fields get 64 KiB on top of the file limit.
    let upload_limit = DefaultBodyLimit::max(live.config.audio.max_upload_bytes + 64 * 1024);
    Router::new()
        .route("/v1/chat/completions", post(routes::chat::chat_completions))
        .route("/v1/completions", post(routes::completions::completions))
        .route("/v1/messages", post(routes::messages::messages))
        .route("/v1/messages/count_tokens", post(routes::messages::count_tokens))
        .route("/v1/responses", post(routes::responses::create))
        .route("/v1/responses/{id}", get(routes::responses::get).delete(routes::responses::delete))
        .route("/v1/responses/{id}/input_items", get(routes::responses::input_items))
        .route("/v1/embeddings", post(routes::embeddings::embeddings))
        .route("/api/chat", post(routes::ollama::chat))
        .route("/api/generate", post(routes::ollama::generate))
        .route("/api/embed", post(routes::ollama::embed))
        .route("/api/embeddings", post(routes::ollama::embeddings))
        .route("/api/tags", get(routes::ollama::tags))
        .route("/api/show", post(routes::ollama::show))
        .route("/api/ps", get(routes::ollama::ps))
        .route("/api/version", get(routes::ollama::version))
        .route("/v1/audio/transcriptions", post(routes::audio::transcriptions).layer(upload_limit))
        .route("/v1/audio/translations", post(routes::audio::translations).layer(upload_limit))
        .route("/v1/audio/speech", post(routes::audio::speech))
        .route("/v1/models", get(routes::models::list))
        .route("/v1/models/{*id}", get(routes::models::get))
        .route("/v1/providers", get(routes::health::providers))
        .route("/v1/budgets", get(routes::budgets::mine))
        .merge(admin(state.clone()))
        .route("/metrics", get(metrics::render))
        .route("/", get(routes::health::root))
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .fallback(unknown_url)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(axum::middleware::from_fn(ingress::shape_errors))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), trace_context::propagate))
        .with_state(state)
        .layer(DefaultBodyLimit::max(limit))
        .layer(cors)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id,
                trace_id = tracing::field::Empty)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, TimeOrderedIds))
        .layer(CatchPanicLayer::custom(panicked))
}

/// Request ids for requests that bring none: UUIDv7 from a thread-local
/// generator (no system call per id).
#[derive(Clone, Copy)]
struct TimeOrderedIds;

impl MakeRequestId for TimeOrderedIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
        axum::http::HeaderValue::from_str(id).ok().map(RequestId::new)
    }
}

/// A handler panicked: log it, count it, answer 500 for this request only.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".into());
    metrics::record_panic("handler");
    ApiError::Internal(format!("handler panicked: {what}")).into_response()
}

/// The admin API; every call that changes something is audited.
fn admin(state: AppState) -> Router<AppState> {
    use routes::admin::{audit, budgets, keys, reload, teams, usage};
    Router::new()
        .route("/admin/keys", get(keys::list).post(keys::create))
        .route("/admin/keys/{id}", get(keys::get).patch(keys::update).delete(keys::delete))
        .route("/admin/teams", get(teams::list).post(teams::create))
        .route("/admin/teams/{name}", get(teams::get).patch(teams::update).delete(teams::delete))
        .route("/admin/budgets", get(budgets::list))
        .route("/admin/budgets/{pool}", axum::routing::put(budgets::set))
        .route("/admin/usage", get(usage::report))
        .route("/admin/usage/export", get(usage::export))
        .route("/admin/audit", get(audit::list))
        .route("/admin/audit/verify", get(audit::verify))
        .route("/admin/audit/checkpoint", get(audit::checkpoint))
        .route("/admin/audit/prune", post(audit::prune))
        .route("/admin/reload", post(reload::reload))
        .route_layer(axum::middleware::from_fn_with_state(state, crate::audit::admin_actions))
}

fn cors(origins: &[String]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers(Any);
    if origins.iter().any(|o| o == "*") {
        base.allow_origin(Any)
    } else {
        let list = origins.iter().filter_map(|o| o.parse().ok()).collect::<Vec<_>>();
        base.allow_origin(AllowOrigin::list(list))
    }
}

async fn unknown_url(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::UnknownUrl { method: method.to_string(), path: uri.path().to_owned() }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("kaboom")
    }

    /// A panicking handler answers 500 in OpenAI's shape, for itself only.
    #[tokio::test]
    async fn a_handler_panic_is_a_500_for_that_request_only() {
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "ok" }))
            .layer(CatchPanicLayer::custom(panicked));
        let boom = app.clone().oneshot(Request::get("/boom").body(axum::body::Body::empty()).unwrap()).await.unwrap();
        assert_eq!(boom.status(), 500);
        let body = axum::body::to_bytes(boom.into_body(), 1 << 16).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "internal_error");
        assert!(!body.windows(6).any(|w| w == b"kaboom"), "the panic message is logged, not sent");
        let fine = app.oneshot(Request::get("/fine").body(axum::body::Body::empty()).unwrap()).await.unwrap();
        assert_eq!(fine.status(), 200);
    }
}
