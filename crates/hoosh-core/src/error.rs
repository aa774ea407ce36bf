//! The error type of the provider boundary.

use std::fmt;
use std::time::Duration;

/// What went wrong, from the gateway's point of view. The executor decides
/// retry and failover from this alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Could not connect (refused, DNS, TLS).
    Connect,
    /// No first byte, an idle gap between chunks, or the total deadline passed.
    Timeout,
    /// Upstream said 429.
    RateLimited,
    /// Upstream 5xx.
    Upstream,
    /// Upstream rejected the request as malformed (400/422). Same request
    /// would fail everywhere: no failover.
    BadRequest,
    /// Upstream rejected the gateway's credentials (401/403).
    Auth,
    /// Upstream does not know the model (404).
    NotFound,
    /// Upstream refused on content policy.
    ContentFilter,
    /// Upstream answered something that is not its documented wire format.
    InvalidResponse,
    /// The provider cannot do this (no embeddings, a refused parameter).
    Unsupported,
    /// The stream was cut after it started.
    StreamInterrupted,
}

impl ErrorKind {
    /// Whether trying the same provider again may succeed.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::RateLimited | ErrorKind::Upstream)
    }

    /// Whether another provider may succeed where this one failed. Requests the
    /// upstream judged malformed or disallowed are the caller's to fix.
    pub fn try_next(self) -> bool {
        !matches!(self, ErrorKind::BadRequest | ErrorKind::ContentFilter)
    }

    /// Whether this outcome counts against the provider's circuit breaker.
    pub fn is_provider_fault(self) -> bool {
        matches!(
            self,
            ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::Upstream
                | ErrorKind::InvalidResponse
                | ErrorKind::StreamInterrupted
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Upstream => "upstream",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ContentFilter => "content_filter",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::StreamInterrupted => "stream_interrupted",
        }
    }
}

/// A failed provider call. `message` is safe to show a client only for
/// [`ErrorKind::BadRequest`], [`ErrorKind::NotFound`] and
/// [`ErrorKind::Unsupported`]; the server decides that, in one place.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// The upstream HTTP status, when there was one.
    pub status: Option<u16>,
    pub message: String,
    /// The upstream's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// Which provider failed (set by the executor).
    pub provider: Option<String>,
    /// The request parameter at fault, when known.
    pub param: Option<String>,
    /// The message was written by hoosh itself (an in-process provider: no
    /// upstream text, nothing secret), so clients may see it on any status.
    pub public: bool,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
            provider: None,
            param: None,
            public: false,
        }
    }

    /// Classifies an upstream HTTP error status.
    pub fn from_status(status: u16, message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        let kind = match status {
            400 | 409 | 413 | 422 => ErrorKind::BadRequest,
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            429 => ErrorKind::RateLimited,
            451 => ErrorKind::ContentFilter,
            500..=599 => ErrorKind::Upstream,
            _ => ErrorKind::InvalidResponse,
        };
        ProviderError {
            kind,
            status: Some(status),
            message: message.into(),
            retry_after,
            provider: None,
            param: None,
            public: false,
        }
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    pub fn invalid_response(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidResponse, message)
    }

    pub fn with_provider(mut self, provider: &str) -> Self {
        if self.provider.is_none() {
            self.provider = Some(provider.to_owned());
        }
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Marks the message as safe to show clients (see [`Self::public`]).
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.provider {
            write!(f, "[{p}] ")?;
        }
        write!(f, "{}", self.kind.as_str())?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ProviderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        assert_eq!(ProviderError::from_status(400, "", None).kind, ErrorKind::BadRequest);
        assert_eq!(ProviderError::from_status(401, "", None).kind, ErrorKind::Auth);
        assert_eq!(ProviderError::from_status(403, "", None).kind, ErrorKind::Auth);
        assert_eq!(ProviderError::from_status(404, "", None).kind, ErrorKind::NotFound);
        assert_eq!(ProviderError::from_status(429, "", None).kind, ErrorKind::RateLimited);
        assert_eq!(ProviderError::from_status(503, "", None).kind, ErrorKind::Upstream);
        assert!(ProviderError::from_status(503, "", None).retryable());
        assert!(!ProviderError::from_status(400, "", None).retryable());
        assert!(!ErrorKind::BadRequest.try_next());
        assert!(ErrorKind::Auth.try_next());
    }
}
