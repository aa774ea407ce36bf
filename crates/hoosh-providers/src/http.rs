//! The HTTP plumbing every adapter shares: a tuned client, sending with
//! transport errors classified, and upstream error responses turned into
//! [`ProviderError`]s (status kept, message extracted, `Retry-After` parsed).

use std::time::Duration;

use hoosh_core::config::ProviderConfig;
use hoosh_core::trace::{AttrValue, SpanKind, SpanRecord};
use hoosh_core::{ErrorKind, ProviderError};
use reqwest::header::HeaderMap;

/// Largest upstream error body read for its message.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Largest whole (non-streamed) answer read from an upstream: a chat
/// completion, a transcript, a model list. A longer one is an invalid
/// response, so a broken or hostile upstream costs at most this much memory
/// per call, not whatever it cares to send before the total timeout.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Room an embeddings answer gets per input, on top of [`MAX_BODY`]: a
/// 4096-dimension vector written as JSON decimals is about 90 KiB.
pub const EMBEDDING_BODY_PER_INPUT: usize = 128 * 1024;

/// The longest wait an upstream's `Retry-After` may ask for; longer values
/// (up to `1e300`, `inf`, a date in the year 9999) are read as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

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
/// Redirects are not followed: an API answers its endpoint, and a redirect
/// is an error to report (with its status), not a hop to take with the
/// request's body and credentials.
pub fn client(cfg: &ProviderConfig) -> Result<reqwest::Client, ProviderError> {
    let longest = cfg.total_timeout_secs.max(cfg.first_byte_timeout_secs).max(cfg.idle_timeout_secs);
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs))
        .read_timeout(Duration::from_secs(longest))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
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
    } else if unparseable_head(&e) {
        // The upstream answered, with a head that is not HTTP or is too
        // large to hold: its answer is garbage, not a connect failure (which
        // is retried, and means nothing reached it).
        ErrorKind::InvalidResponse
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

/// Whether hyper refused the upstream's response head (a malformed status
/// line or header, or one past its size limits: 100 headers, ~400 KiB).
fn unparseable_head(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            return h.is_parse() || h.is_parse_status();
        }
        source = err.source();
    }
    false
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

/// Reads a JSON body of at most [`MAX_BODY`] into `T`, classifying failures.
pub async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, ProviderError> {
    json_within(resp, MAX_BODY).await
}

/// Reads a JSON body of at most `limit` bytes into `T`.
pub async fn json_within<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    limit: usize,
) -> Result<T, ProviderError> {
    let bytes = body_within(resp, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ProviderError::invalid_response(format!("upstream answered with a body that does not parse: {e}")))
}

/// The body limit of an embeddings answer for `inputs` inputs.
pub fn embedding_body_limit(inputs: usize) -> usize {
    MAX_BODY.saturating_add(inputs.saturating_mul(EMBEDDING_BODY_PER_INPUT))
}

/// Reads a whole body of at most `limit` bytes. A declared length past the
/// limit is refused before reading; an undeclared one (chunked, or ended by
/// close) is counted as it arrives and cut at the limit.
pub async fn body_within(mut resp: reqwest::Response, limit: usize) -> Result<bytes::Bytes, ProviderError> {
    let too_large = || ProviderError::invalid_response(format!("upstream answer exceeds {limit} bytes"));
    let declared = resp.content_length().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Trust a declared length for the first allocation only up to 1 MiB.
    let mut out = bytes::BytesMut::with_capacity(declared.unwrap_or(0).min(1024 * 1024));
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if chunk.len() > limit - out.len() {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Turns a non-2xx upstream response into a typed error.
pub async fn error_from_response(resp: reqwest::Response) -> ProviderError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = read_limited(resp).await;
    ProviderError::from_status(status, error_message(&body, status), retry_after)
}

/// Up to [`MAX_ERROR_BODY`] bytes of an error body; a failure mid-way keeps
/// what came before it.
pub async fn read_limited(mut resp: reqwest::Response) -> Vec<u8> {
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
/// Whatever the upstream writes, the answer is `None` (absent, negative, not
/// a number) or a wait of at most [`MAX_RETRY_AFTER`]: never a panic. The
/// health probe reads errors through here too, and a panic would end it.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = value("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).and_then(|ms| seconds(ms / 1000.0)) {
        return Some(ms);
    }
    let v = value(reqwest::header::RETRY_AFTER.as_str())?;
    if let Ok(secs) = v.parse::<f64>() {
        return seconds(secs);
    }
    let when = httpdate_to_unix(v)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)).min(MAX_RETRY_AFTER))
}

/// A wait of `secs` seconds as the upstream wrote it, saturated at
/// [`MAX_RETRY_AFTER`] (`1e300` and `inf` included); `None` when negative or
/// not a number — every value on which `Duration::from_secs_f64` panics.
pub fn seconds(secs: f64) -> Option<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    if secs <= 0.0 {
        return Some(Duration::ZERO); // -0.0, which `try_from_secs_f64` may call negative
    }
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only
/// `Retry-After` date form servers send in practice. Written by hand because
/// it is twenty lines and a date crate would be the only reason to add one.
/// Out-of-range fields are `None`; a date before 1970 is 0 (it is past).
fn httpdate_to_unix(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else { return None };
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == mon)? as i64
        + 1;
    // Four digits, as the format says: keeps the arithmetic far from overflow.
    let year: i64 = year.parse().ok().filter(|y| (0..=9999).contains(y))?;
    let mut hms = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..=60).contains(&sec) {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm), signed: years before 1970
    // (and before year 1) come out negative instead of underflowing.
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream answering 307 to another host: the error comes back with
    /// its status, and the other host never sees the request (nor the key).
    #[tokio::test]
    async fn a_redirect_is_reported_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = format!("http://{}/steal", elsewhere.local_addr().unwrap());
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/chat/completions", upstream.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut sock, _) = upstream.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let head = format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n");
            sock.write_all(head.as_bytes()).await.unwrap();
        });
        let client = client(&ProviderConfig::new("x", "openai")).unwrap();
        let call = send(client.post(url).bearer_auth("sk-secret").body("{}"));
        // Followed, the call would wait on the other host, which never answers.
        let err =
            tokio::time::timeout(Duration::from_secs(5), call).await.expect("the redirect was followed").unwrap_err();
        assert_eq!(err.status, Some(307));
        let followed = tokio::time::timeout(Duration::from_millis(300), elsewhere.accept()).await;
        assert!(followed.is_err(), "the redirect was followed");
    }

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
        assert_eq!(httpdate_to_unix("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(httpdate_to_unix("Sat, 29 Feb 2000 23:59:59 GMT"), Some(951_868_799));
    }

    /// What a hostile or broken upstream may write in its `Retry-After`:
    /// never a panic, never a wait past [`MAX_RETRY_AFTER`].
    #[test]
    fn absurd_retry_after_values_saturate_or_are_ignored() {
        let with = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
            retry_after(&h)
        };
        let huge_integer = "9".repeat(400);
        for v in ["1e300", "inf", "+inf", "Infinity", "1.7976931348623157e308", "18446744073709551616", &huge_integer] {
            assert_eq!(with("retry-after", v), Some(MAX_RETRY_AFTER), "retry-after: {v}");
            assert_eq!(with("retry-after-ms", v), Some(MAX_RETRY_AFTER), "retry-after-ms: {v}");
        }
        for v in ["-1", "-inf", "NaN", "nan", "-0.5", "soon", ""] {
            assert_eq!(with("retry-after", v), None, "retry-after: {v}");
            assert_eq!(with("retry-after-ms", v), None, "retry-after-ms: {v}");
        }
        assert_eq!(with("retry-after", "86401"), Some(MAX_RETRY_AFTER));
        assert_eq!(with("retry-after", "0.25"), Some(Duration::from_millis(250)));
        assert_eq!(with("retry-after", "-0"), Some(Duration::ZERO));
        assert_eq!(with("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
        for past in ["Wed, 31 Dec 1969 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "Sat, 01 Jan 0000 00:00:00 GMT"]
        {
            assert_eq!(with("retry-after", past), Some(Duration::ZERO), "{past}: past dates mean now");
        }
        for bad in [
            "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
            "Sun, 06 Nov 10000 08:49:37 GMT",
            "Sun, 06 Nov -5 08:49:37 GMT",
            "Sun, 99 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 99:99:99 GMT",
            "Sun, 06 Nov 1994 08:49:37:12 GMT",
            "Sun, 06 Nov 1994 -1:49:37 GMT",
        ] {
            assert_eq!(with("retry-after", bad), None, "{bad}");
        }
        // An unusable `retry-after-ms` does not hide a usable `Retry-After`.
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", "NaN".parse().unwrap());
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn a_declared_length_past_the_limit_is_refused_before_reading_the_body() {
        use hoosh_testkit::faulty::{self, Fault};
        let up = faulty::start(Fault::HugeLine { bytes: 40 * 1024 * 1024 }).await;
        let resp = reqwest::get(format!("{}/v1/chat/completions", up.url())).await.unwrap();
        assert!(resp.content_length().unwrap() > MAX_BODY as u64);
        let err = body_within(resp, MAX_BODY).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidResponse);
        assert!(up.released_within(1, Duration::from_secs(5)).await, "the connection was dropped");
        // What socket buffers took, not the 32 MiB a read up to the limit would.
        assert!(up.written() < 24 * 1024 * 1024, "{} bytes went out", up.written());
    }

    #[tokio::test]
    async fn a_body_without_a_declared_length_is_cut_at_the_limit() {
        use hoosh_testkit::faulty::{self, Fault};
        let up = faulty::start(Fault::Endless { every: Duration::ZERO }).await;
        let resp = reqwest::get(format!("{}/v1/chat/completions", up.url())).await.unwrap();
        assert_eq!(resp.content_length(), None, "chunked");
        let err = body_within(resp, 1024 * 1024).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidResponse);
        assert!(err.message.contains("exceeds 1048576 bytes"), "{}", err.message);
        assert!(up.released_within(1, Duration::from_secs(5)).await, "the connection was dropped");
    }

    #[test]
    fn seconds_saturate() {
        assert_eq!(seconds(f64::MAX), Some(MAX_RETRY_AFTER));
        assert_eq!(seconds(f64::INFINITY), Some(MAX_RETRY_AFTER));
        assert_eq!(seconds(f64::NAN), None);
        assert_eq!(seconds(f64::NEG_INFINITY), None);
        assert_eq!(seconds(-f64::MIN_POSITIVE), None);
        assert_eq!(seconds(1.5), Some(Duration::from_millis(1500)));
    }
}
