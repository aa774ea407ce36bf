//! Every error the HTTP edge can answer with, and the one place where errors
//! become status codes and bodies: OpenAI-shaped, or Anthropic's shape for
//! the Messages API and Ollama's for `/api/*` (rendered again from the kept
//! [`ErrorObject`] by `ingress::shape_errors`).
//!
//! Client mistakes (4xx) say exactly what is wrong. Upstream and internal
//! failures (5xx) say what kind of failure it was and which provider, never
//! the upstream's raw body or anything about credentials; the details go to
//! the log, tagged with the request id.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hoosh_core::router::RouteError;
use hoosh_core::{ErrorKind, ProviderError};
use hoosh_governance::{AdminError, AuthError, BudgetLimit, Denied, RateKind};
use hoosh_types::openai::{ErrorObject, ErrorResponse};

/// Largest `Retry-After` ever sent to a client, whatever the upstream said.
pub const RETRY_AFTER_CEILING: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed or breaks a documented limit.
    InvalidRequest { message: String, param: Option<String>, code: Option<&'static str> },
    /// 404: no provider serves this model.
    ModelNotFound(String),
    /// 404: no such endpoint.
    UnknownUrl { method: String, path: String },
    /// 405
    MethodNotAllowed,
    /// 413
    PayloadTooLarge,
    /// 408: the request body did not arrive within `server.body_read_timeout_secs`.
    BodyTimeout,
    /// Every candidate provider failed; the last error decides the answer.
    Provider { error: ProviderError, attempts: u32 },
    /// 503: nothing can serve requests at all.
    Unavailable(String),
    /// 503 with `Retry-After`: a bounded queue (the usage ledger's, the audit
    /// chain's) is full; the request was refused before it did anything.
    Overloaded { message: String, retry_after: Duration },
    /// 503: the state shared with other instances (Redis) cannot be reached
    /// and `state.on_redis_down = "closed"`: refused rather than risk an
    /// overspend.
    SharedStateDown(String),
    /// 401: no key, or one that does not authenticate.
    Unauthorized { message: String, code: &'static str },
    /// 403: a valid key that may not do this.
    Forbidden { message: String, code: &'static str },
    /// 429: a rate, concurrency or budget limit. `headers` carries the
    /// `x-ratelimit-*` / budget headers that explain it.
    Limited {
        message: String,
        kind: &'static str,
        code: &'static str,
        retry_after: Option<Duration>,
        headers: Box<HeaderMap>,
    },
    /// 404 on the admin API: no such key, team or budget.
    NotFound(String),
    /// 409 on the admin API: the thing to create exists already.
    Conflict(String),
    /// 500: a bug. The message is logged, never sent.
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: impl Into<Option<String>>) -> Self {
        ApiError::InvalidRequest { message: message.into(), param: param.into(), code: None }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, ErrorObject, Option<Duration>) {
        let obj = |message: String, kind: &str, param: Option<String>, code: Option<&str>| ErrorObject {
            message,
            kind: kind.to_owned(),
            param,
            code: code.map(str::to_owned),
        };
        match self {
            ApiError::InvalidRequest { message, param, code } => {
                (StatusCode::BAD_REQUEST, obj(message.clone(), "invalid_request_error", param.clone(), *code), None)
            }
            ApiError::ModelNotFound(model) => (
                StatusCode::NOT_FOUND,
                obj(
                    format!("The model `{model}` does not exist or no configured provider serves it."),
                    "invalid_request_error",
                    Some("model".into()),
                    Some("model_not_found"),
                ),
                None,
            ),
            ApiError::UnknownUrl { method, path } => (
                StatusCode::NOT_FOUND,
                obj(
                    format!("Unknown request URL: {method} {path}."),
                    "invalid_request_error",
                    None,
                    Some("unknown_url"),
                ),
                None,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                obj(
                    "Method not allowed for this URL.".into(),
                    "invalid_request_error",
                    None,
                    Some("method_not_allowed"),
                ),
                None,
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                obj("Request body is too large.".into(), "invalid_request_error", None, Some("payload_too_large")),
                None,
            ),
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                obj(
                    "The request body did not arrive in time.".into(),
                    "invalid_request_error",
                    None,
                    Some("request_timeout"),
                ),
                None,
            ),
            ApiError::Overloaded { message, retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                obj(message.clone(), "server_error", None, Some("overloaded")),
                Some(*retry_after),
            ),
            ApiError::SharedStateDown(detail) => (
                StatusCode::SERVICE_UNAVAILABLE,
                obj(
                    format!(
                        "The gateway cannot reach the state it shares with its other instances ({detail}), so it \
                         cannot enforce budgets and rate limits; it refuses rather than overspend. Retry shortly."
                    ),
                    "server_error",
                    None,
                    Some("state_unavailable"),
                ),
                Some(Duration::from_secs(1)),
            ),
            ApiError::Unavailable(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, obj(message.clone(), "server_error", None, Some("unavailable")), None)
            }
            ApiError::Unauthorized { message, code } => {
                (StatusCode::UNAUTHORIZED, obj(message.clone(), "invalid_request_error", None, Some(code)), None)
            }
            ApiError::Forbidden { message, code } => {
                (StatusCode::FORBIDDEN, obj(message.clone(), "permission_error", None, Some(code)), None)
            }
            ApiError::Limited { message, kind, code, retry_after, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, obj(message.clone(), kind, None, Some(code)), *retry_after)
            }
            ApiError::Conflict(message) => (
                StatusCode::CONFLICT,
                obj(message.clone(), "invalid_request_error", None, Some("already_exists")),
                None,
            ),
            ApiError::NotFound(message) => {
                (StatusCode::NOT_FOUND, obj(message.clone(), "invalid_request_error", None, Some("not_found")), None)
            }
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                obj(
                    "The gateway hit an internal error; see its log for the request id.".into(),
                    "server_error",
                    None,
                    Some("internal_error"),
                ),
                None,
            ),
            ApiError::Provider { error, attempts } => provider_parts(error, *attempts),
        }
    }
}

fn provider_parts(e: &ProviderError, attempts: u32) -> (StatusCode, ErrorObject, Option<Duration>) {
    let who = e.provider.as_deref().unwrap_or("upstream");
    let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    let tries = if attempts > 1 { format!(" after {attempts} attempts") } else { String::new() };
    let obj = |status: StatusCode, message: String, kind: &str, code: &str, param: Option<String>| {
        (status, ErrorObject { message, kind: kind.into(), param, code: Some(code.into()) })
    };
    let retry_after = e.retry_after.map(|d| d.min(RETRY_AFTER_CEILING));
    // hoosh's own words (in-process providers) are worth showing; an
    // upstream's are not, on server errors.
    let detail = if e.public { format!(": {}", e.message) } else { String::new() };
    let (code, body) = match e.kind {
        ErrorKind::BadRequest => obj(
            StatusCode::BAD_REQUEST,
            format!("Provider `{who}` rejected the request: {}", e.message),
            "invalid_request_error",
            "upstream_bad_request",
            e.param.clone(),
        ),
        ErrorKind::Unsupported => obj(
            StatusCode::BAD_REQUEST,
            e.message.clone(),
            "invalid_request_error",
            "unsupported_parameter",
            e.param.clone(),
        ),
        ErrorKind::ContentFilter => obj(
            StatusCode::BAD_REQUEST,
            format!("Provider `{who}` refused the request on content policy."),
            "invalid_request_error",
            "content_filter",
            None,
        ),
        ErrorKind::NotFound => obj(
            StatusCode::NOT_FOUND,
            format!("Provider `{who}` does not know the requested model{status}."),
            "invalid_request_error",
            "model_not_found",
            Some("model".into()),
        ),
        ErrorKind::Auth => obj(
            StatusCode::BAD_GATEWAY,
            format!(
                "Provider `{who}` rejected the gateway's credentials{status}; check the API key configured for it."
            ),
            "server_error",
            "upstream_auth_failed",
            None,
        ),
        ErrorKind::RateLimited => {
            let (s, b) = obj(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Provider `{who}` is rate limiting requests{tries}{detail}; retry later."),
                "rate_limit_error",
                "rate_limit_exceeded",
                None,
            );
            return (s, b, Some(retry_after.unwrap_or(Duration::from_secs(1))));
        }
        ErrorKind::Timeout => obj(
            StatusCode::GATEWAY_TIMEOUT,
            format!("Provider `{who}` timed out{tries}."),
            "server_error",
            "upstream_timeout",
            None,
        ),
        ErrorKind::Upstream if e.status == Some(503) && retry_after.is_some() => obj(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Provider `{who}` is unavailable{status}{tries}{detail}."),
            "server_error",
            "upstream_unavailable",
            None,
        ),
        ErrorKind::Upstream | ErrorKind::StreamInterrupted => obj(
            StatusCode::BAD_GATEWAY,
            format!("Provider `{who}` failed{status}{tries}{detail}."),
            "server_error",
            "upstream_error",
            None,
        ),
        ErrorKind::Connect => obj(
            StatusCode::BAD_GATEWAY,
            format!("Provider `{who}` is unreachable{tries}."),
            "server_error",
            "upstream_unreachable",
            None,
        ),
        ErrorKind::InvalidResponse => obj(
            StatusCode::BAD_GATEWAY,
            format!("Provider `{who}` answered with an invalid response{tries}."),
            "server_error",
            "upstream_invalid_response",
            None,
        ),
    };
    (code, body, retry_after)
}

/// The OpenAI error object for an error met after a stream has started.
pub fn stream_error_object(e: &ProviderError) -> ErrorObject {
    provider_parts(e, 1).1
}

/// The status and error object for an error met after a stream has started.
pub fn stream_error_parts(e: &ProviderError) -> (StatusCode, ErrorObject) {
    let (status, obj, _) = provider_parts(e, 1);
    (status, obj)
}

/// Anthropic's `error.type` for an answer's status.
pub fn anthropic_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// An error answer in Ollama's shape: `{"error": "…"}`.
pub fn ollama_body(error: &ErrorObject) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": error.message })).unwrap_or_default()
}

/// An error answer in Anthropic's shape:
/// `{"type":"error","error":{"type":…,"message":…}}`.
pub fn anthropic_body(status: StatusCode, error: &ErrorObject) -> Vec<u8> {
    let envelope = hoosh_types::anthropic::ErrorEnvelope {
        kind: "error".into(),
        error: hoosh_types::anthropic::ErrorBody {
            kind: anthropic_error_type(status).into(),
            message: error.message.clone(),
        },
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Audio the gateway cannot use: always the caller's file (`param: file`).
impl From<hoosh_audio::AudioError> for ApiError {
    fn from(e: hoosh_audio::AudioError) -> Self {
        use hoosh_audio::AudioError;
        let code = match &e {
            AudioError::Unsupported { .. } => "unsupported_audio",
            AudioError::Corrupt { .. } => "invalid_audio",
            AudioError::Empty => "empty_audio",
            AudioError::TooLong { .. } => "audio_too_long",
        };
        let hint = match &e {
            AudioError::Unsupported { .. } => " Send wav, mp3, flac, ogg/vorbis or m4a/mp4 (AAC).",
            AudioError::TooLong { .. } => " The limit is `audio.max_duration_secs`.",
            _ => "",
        };
        ApiError::InvalidRequest {
            message: format!("The uploaded file is not usable: {e}.{hint}"),
            param: Some("file".into()),
            code: Some(code),
        }
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::ModelNotFound(m) => ApiError::ModelNotFound(m),
        }
    }
}

impl From<hoosh_core::executor::Failure> for ApiError {
    fn from(f: hoosh_core::executor::Failure) -> Self {
        ApiError::Provider { error: f.error, attempts: f.attempts }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let (message, code) = match e {
            AuthError::Missing => (
                "No API key was provided. Send it as `Authorization: Bearer <key>` or `x-api-key: <key>`.",
                "missing_api_key",
            ),
            AuthError::Invalid => ("The API key provided is not valid.", "invalid_api_key"),
            AuthError::Disabled => ("The API key provided has been revoked.", "revoked_api_key"),
            AuthError::Expired => ("The API key provided has expired.", "expired_api_key"),
        };
        ApiError::Unauthorized { message: message.into(), code }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        let now_ms = hoosh_types::unix_now() as i64 * 1000;
        match d {
            Denied::ModelNotAllowed { model } => ApiError::Forbidden {
                message: format!("This API key may not use model `{model}`."),
                code: "model_not_allowed",
            },
            Denied::RateLimited(r) => {
                let (what, kind) = match r.kind {
                    RateKind::Requests => ("requests per minute", "requests"),
                    RateKind::Tokens => ("tokens per minute", "tokens"),
                };
                let message = if r.too_large {
                    format!("Request too large for `{}`: the limit is {} {what}.", r.key.as_str(), r.limit)
                } else {
                    format!("Rate limit reached for `{}`: {} {what}.", r.key.as_str(), r.limit)
                };
                ApiError::Limited {
                    message,
                    kind,
                    code: "rate_limit_exceeded",
                    retry_after: Some(Duration::from_millis(r.retry_after_ms)),
                    headers: Box::default(),
                }
            }
            Denied::Concurrency(c) => ApiError::Limited {
                message: format!("Too many concurrent requests for `{}`: at most {}.", c.key.as_str(), c.max),
                kind: "requests",
                code: "concurrency_limit_exceeded",
                retry_after: Some(Duration::from_secs(1)),
                headers: Box::default(),
            },
            Denied::Budget(b) if b.contended => {
                let what = match b.limit_kind {
                    BudgetLimit::Tokens => "token",
                    BudgetLimit::Usd => "dollar",
                };
                ApiError::Limited {
                    message: format!(
                        "The {what} budget `{}` is nearly spent: requests near its end run one at a time, and \
                         those in flight have not settled yet. Try again shortly.",
                        b.pool
                    ),
                    kind: "insufficient_quota",
                    code: "budget_exceeded",
                    retry_after: Some(Duration::from_secs(1)),
                    headers: Box::default(),
                }
            }
            Denied::Budget(b) => {
                let what = match b.limit_kind {
                    BudgetLimit::Tokens => "token",
                    BudgetLimit::Usd => "dollar",
                };
                let resets = match b.resets_at {
                    Some(at) => format!(" It resets in {} s.", ((at - now_ms).max(0) + 999) / 1000),
                    None => " It does not reset.".into(),
                };
                let mut headers = HeaderMap::new();
                if let Some(at) = b.resets_at
                    && let Ok(v) = HeaderValue::from_str(&(at / 1000).to_string())
                {
                    headers.insert("x-hoosh-budget-reset", v);
                }
                ApiError::Limited {
                    message: format!("The {what} budget `{}` is exhausted.{resets}", b.pool),
                    kind: "insufficient_quota",
                    code: "budget_exceeded",
                    retry_after: b.resets_at.map(|at| Duration::from_millis(u64::try_from(at - now_ms).unwrap_or(0))),
                    headers: Box::new(headers),
                }
            }
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::KeyNotFound(id) => ApiError::NotFound(format!("No key with id `{id}`.")),
            AdminError::InvalidGlob { .. } | AdminError::Invalid(_) => ApiError::invalid(e.to_string(), None),
            AdminError::Store(_) | AdminError::KeyGen(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, retry_after) = self.parts();
        match &self {
            ApiError::Internal(detail) => tracing::error!(detail = %detail, "internal error"),
            ApiError::Provider { error: e, attempts } => {
                tracing::warn!(kind = e.kind.as_str(), status = status.as_u16(), attempts, error = %e, "request failed upstream");
            }
            _ => tracing::debug!(status = status.as_u16(), message = %error.message, "client error"),
        }
        // Kept on the response so a client API with its own error shape
        // (`ingress::shape_errors`) can render it again.
        let kept = error.clone();
        let mut resp = (status, Json(ErrorResponse { error })).into_response();
        resp.extensions_mut().insert(kept);
        if let ApiError::Limited { headers, .. } = &self {
            resp.headers_mut().extend(headers.as_ref().clone());
        }
        if let Some(ra) = retry_after {
            // Round up: "retry after 0" would invite an immediate retry.
            let secs = ra.as_secs() + u64::from(ra.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use hoosh_governance::{BudgetExceeded, PoolId};

    use super::*;

    fn budget(contended: bool) -> ApiError {
        let b = BudgetExceeded {
            pool: PoolId::Key("k".into()),
            resets_at: None,
            limit_kind: BudgetLimit::Tokens,
            contended,
        };
        ApiError::from(Denied::Budget(b))
    }

    #[test]
    fn a_contended_budget_says_to_retry_shortly_and_a_spent_one_says_it_is_spent() {
        match budget(true) {
            ApiError::Limited { message, retry_after, code, .. } => {
                assert!(message.contains("nearly spent"), "{message}");
                assert_eq!((code, retry_after), ("budget_exceeded", Some(Duration::from_secs(1))));
            }
            other => panic!("{other:?}"),
        }
        match budget(false) {
            ApiError::Limited { message, retry_after, .. } => {
                assert!(message.contains("is exhausted. It does not reset."), "{message}");
                assert_eq!(retry_after, None);
            }
            other => panic!("{other:?}"),
        }
    }
}
