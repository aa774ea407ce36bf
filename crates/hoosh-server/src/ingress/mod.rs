//! Client APIs other than OpenAI's: each decodes its requests into the
//! canonical (OpenAI chat) request, runs the one pipeline, and encodes the
//! answers, streams and errors in its own shape. Keys, budgets, limits,
//! cache, audit and metrics are the pipeline's, whatever API a request
//! came through.
//!
//! - [`anthropic`]: the Messages API (`/v1/messages`), for Claude Code and
//!   the Anthropic SDKs.
//! - [`responses`]: OpenAI's Responses API (`/v1/responses`), for Codex
//!   and the Agents SDK; its errors are OpenAI-shaped already.
//! - [`ollama`]: Ollama's API (`/api/*`), for editors, Open WebUI and the
//!   `ollama` libraries; errors are `{"error": …}`.
//!
//! [`shape_errors`] renders every error answer on a client API's paths in
//! that API's shape, including the ones produced before a handler runs
//! (401 from auth, 404, 413, 408).

pub mod anthropic;
pub mod ollama;
pub mod responses;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use hoosh_types::openai::ErrorObject;

/// The client API a path belongs to, for the shape of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Ollama,
}

impl Dialect {
    pub fn of(path: &str) -> Dialect {
        if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            Dialect::Anthropic
        } else if path.starts_with("/api/") {
            Dialect::Ollama
        } else {
            Dialect::OpenAi
        }
    }
}

/// `resp` with what the request carried that no target but the client's
/// own vendor can run (e.g. `tools[web_search]`) named in
/// `x-hoosh-ingress-dropped`.
pub fn report_dropped(mut resp: Response, dropped: &[String]) -> Response {
    if !dropped.is_empty()
        && let Ok(v) = axum::http::HeaderValue::from_str(&dropped.join(","))
    {
        resp.headers_mut().insert("x-hoosh-ingress-dropped", v);
    }
    resp
}

/// Middleware: an error answer (one carrying the [`ErrorObject`] that
/// `ApiError` keeps on it) on a non-OpenAI path gets its body rendered in
/// that API's shape; status and headers stay.
pub async fn shape_errors(req: Request, next: Next) -> Response {
    let dialect = Dialect::of(req.uri().path());
    let mut resp = next.run(req).await;
    if dialect == Dialect::OpenAi {
        return resp;
    }
    let Some(error) = resp.extensions_mut().remove::<ErrorObject>() else { return resp };
    let body = match dialect {
        Dialect::Anthropic => crate::error::anthropic_body(resp.status(), &error),
        Dialect::Ollama => crate::error::ollama_body(&error),
        Dialect::OpenAi => return resp,
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_api_has_its_paths() {
        assert_eq!(Dialect::of("/v1/messages"), Dialect::Anthropic);
        assert_eq!(Dialect::of("/v1/messages/count_tokens"), Dialect::Anthropic);
        assert_eq!(Dialect::of("/v1/messagesX"), Dialect::OpenAi);
        assert_eq!(Dialect::of("/api/chat"), Dialect::Ollama);
        assert_eq!(Dialect::of("/api"), Dialect::OpenAi);
        assert_eq!(Dialect::of("/v1/responses"), Dialect::OpenAi);
        assert_eq!(Dialect::of("/v1/chat/completions"), Dialect::OpenAi);
    }
}
