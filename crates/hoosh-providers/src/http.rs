//! The HTTP plumbing every adapter shares: a tuned client, sending with
//! transport errors classified, and upstream error responses turned into
//! [`ProviderError`]s (status kept, message extracted, `Retry-After` parsed).

use std::time::Duration;

use hoosh_core::config::ProviderConfig;
use hoosh_core::trace::{AttrValue, SpanKind, SpanRecord};
use hoosh_core::{ErrorKind, ProviderError};
use reqwest::header::HeaderMap;

/// Largest upstream error body read for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A pooled client with the provider's connect timeout. The other
/// deadlines are the executor's, each where it means something: the first
/// chunk of a stream (`first_byte_timeout_secs`), the gap between chunks
/// (`idle_timeout_secs`), a whole non-streaming call including the wait for
/// its response head (`total_timeout_secs`). The socket's read timeout is
/// only a backstop at the longest of them, so a non-streaming answer that
/// takes longer than the first-byte timeout to start is not cut (and then
/// retried, and billed twice).
/// `TCP_NODELAY` is set: without it a streamed response on a reused
/// connection can stall on Nagle's algorithm for tens of milliseconds.
pub fn client(cfg: &ProviderConfig) -> Result<reqwest::Client, ProviderError> {
    let longest = cfg.total_timeout_secs.max(cfg.first_byte_timeout_secs).max(cfg.idle_timeout_secs);
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs))
        .read_timeout(Duration::from_secs(longest))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("hoosh/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::new(ErrorKind::Connect, format!("cannot build HTTP client: {e}")))
}

/// Classifies a transport-level failure.
pub fn transport_error(e: reqwest::Error) -> ProviderError {
    // A connect timeout is a connect failure: nothing reached the upstream,
    // so nothing can be billed (a `Timeout` means it was accepted).
    let kind = if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_request() {
        ErrorKind::Connect
    } else if e.is_decode() || e.is_body() {
        ErrorKind::InvalidResponse
    } else {
        ErrorKind::Connect
    };
    // reqwest's Display includes the URL, which never holds a key for our
    // adapters except Gemini's; strip query strings to be safe.
    let msg = e.without_url().to_string();
    ProviderError::new(kind, msg)
}

/// Sends a request; returns the response when its status is 2xx, and the
/// classified upstream error otherwise.
///
/// Inside a traced request, sends `traceparent` with the caller's trace id
/// and a new span id for this call.
/// When spans are recorded (OTLP export on), the call is a client span
/// under the request's span, from sending to the response head (or error).
pub async fn send(mut req: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
    let Some(ctx) = hoosh_core::trace::current() else {
        return finish(req.send().await).await;
    };
    let call = ctx.child();
    req = req.header("traceparent", call.header_value());
    if !hoosh_core::trace::recording() {
        return finish(req.send().await).await;
    }
    let (client, built) = req.build_split();
    let request = built.map_err(transport_error)?;
    let name = format!("{} {}", request.method(), request.url().host_str().unwrap_or("upstream"));
    let mut attributes = vec![
        ("http.request.method", AttrValue::Str(request.method().to_string())),
        ("server.address", AttrValue::Str(request.url().host_str().unwrap_or_default().to_owned())),
        ("url.path", AttrValue::Str(request.url().path().to_owned())),
    ];
    let start = hoosh_core::trace::now_unix_nanos();
    let result = client.execute(request).await;
    let error = match &result {
        Ok(resp) => {
            attributes.push(("http.response.status_code", AttrValue::Int(i64::from(resp.status().as_u16()))));
            !resp.status().is_success()
        }
        Err(_) => true,
    };
    hoosh_core::trace::emit(SpanRecord {
        trace_id: call.trace_id,
        span_id: call.parent_id,
        parent_id: Some(ctx.parent_id),
        name,
        kind: SpanKind::Client,
        start_unix_nanos: start,
        end_unix_nanos: hoosh_core::trace::now_unix_nanos(),
        attributes,
        error,
    });
    finish(result).await
}

async fn finish(result: Result<reqwest::Response, reqwest::Error>) -> Result<reqwest::Response, ProviderError> {
    let resp = result.map_err(transport_error)?;
    if resp.status().is_success() { Ok(resp) } else { Err(error_from_response(resp).await) }
}

/// Reads a JSON body into `T`, classifying failures.
pub async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, ProviderError> {
    let bytes = resp.bytes().await.map_err(transport_error)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ProviderError::invalid_response(format!("upstream answered with a body that does not parse: {e}")))
}

/// Turns a non-2xx upstream response into a typed error.
pub async fn error_from_response(resp: reqwest::Response) -> ProviderError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = read_limited(resp).await;
    ProviderError::from_status(status, error_message(&body, status), retry_after)
}

async fn read_limited(mut resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= MAX_ERROR_BODY {
            out.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    out
}

/// The human message inside a vendor error body: OpenAI/Anthropic
/// `{"error":{"message"}}`, Gemini `{"error":{"message","status"}}`, Ollama
/// `{"error":"..."}`, or a plain `{"message"}`; else the text itself.
pub fn error_message(body: &[u8], status: u16) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let found = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .and_then(|m| m.as_str());
        if let Some(m) = found {
            return m.to_owned();
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() { format!("upstream returned HTTP {status}") } else { text.chars().take(500).collect() }
}

/// `Retry-After` in seconds or as an HTTP date, or OpenAI's `retry-after-ms`.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) =
        headers.get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok())
    {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0));
    }
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate_to_unix(v)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only
/// `Retry-After` date form servers send in practice. Written by hand because
/// it is twenty lines and a date crate would be the only reason to add one.
fn httpdate_to_unix(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else { return None };
    let day: u64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == mon)? as u64
        + 1;
    let year: u64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    // days from civil (Howard Hinnant's algorithm)
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_vendor_error_shapes() {
        assert_eq!(error_message(br#"{"error":{"message":"bad model","type":"x"}}"#, 400), "bad model");
        assert_eq!(error_message(br#"{"error":"model 'x' not found"}"#, 404), "model 'x' not found");
        assert_eq!(
            error_message(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, 529),
            "Overloaded"
        );
        assert_eq!(error_message(b"", 502), "upstream returned HTTP 502");
        assert_eq!(error_message(b"<html>oops</html>", 502), "<html>oops</html>");
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past means now");
        assert_eq!(httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
    }
}
