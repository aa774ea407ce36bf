//! HTTP: JSON look-ups and streaming a file to disk while hashing it, so a
//! 100 MB wheel never sits in memory.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;

use crate::error::PullError;
use crate::hash::Hasher;
use crate::pull::Progress;

/// The client every pull uses. No overall timeout (a big file on a slow link
/// takes minutes); a stalled connection fails through the read timeout.
pub(crate) fn client() -> Result<reqwest::Client, PullError> {
    reqwest::Client::builder()
        .user_agent(concat!("hoosh/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|source| PullError::Http { url: "(client setup)".into(), source })
}

/// Largest JSON document read (an index page or a repo listing page); a
/// server that sends more is refused rather than buffered.
const MAX_JSON_BYTES: usize = 64 << 20;

/// A GET with optional `Accept` and bearer token; non-2xx becomes [`PullError::HttpStatus`].
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    accept: Option<&str>,
    token: Option<&str>,
) -> Result<reqwest::Response, PullError> {
    let mut req = client.get(url);
    if let Some(a) = accept {
        req = req.header(reqwest::header::ACCEPT, a);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|source| PullError::Http { url: url.to_owned(), source })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let hint = match status.as_u16() {
        401 | 403 => " (private or gated: set HF_TOKEN if this is a Hugging Face repo)",
        404 => " (not found: check the name and version)",
        _ => "",
    };
    Err(PullError::HttpStatus { url: url.to_owned(), status: status.as_u16(), hint: hint.to_owned() })
}

/// GETs `url` and parses the body as `T`.
pub(crate) async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    accept: &str,
    token: Option<&str>,
) -> Result<T, PullError> {
    let resp = get(client, url, Some(accept), token).await?;
    parse_json(resp, url).await
}

/// Reads a response body of at most [`MAX_JSON_BYTES`] and parses it as `T`.
pub(crate) async fn parse_json<T: DeserializeOwned>(resp: reqwest::Response, url: &str) -> Result<T, PullError> {
    let too_large = || PullError::TooLarge { url: url.to_owned(), limit: MAX_JSON_BYTES as u64 };
    if resp.content_length().is_some_and(|n| n > MAX_JSON_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| PullError::Http { url: url.to_owned(), source })?;
        if body.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| PullError::BadJson { url: url.to_owned(), detail: e.to_string() })
}

/// Streams `url` into a new file at `dest`, reporting progress as `label`.
/// Returns `(size, sha256)`. The file is synced before returning. With a
/// `limit` (the size a listing gives), a body longer than it is cut off and
/// refused, so a hostile server cannot fill the disk.
pub(crate) async fn download_to(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    dest: &Path,
    label: &str,
    limit: Option<u64>,
    progress: &dyn Fn(Progress),
) -> Result<(u64, String), PullError> {
    let resp = get(client, url, None, token).await?;
    let too_large = |limit| PullError::TooLarge { url: url.to_owned(), limit };
    if let Some(limit) = limit
        && resp.content_length().is_some_and(|n| n > limit)
    {
        return Err(too_large(limit));
    }
    let total = resp.content_length().or(limit);
    let mut file = tokio::fs::File::create(dest).await.map_err(|e| PullError::io(dest, e))?;
    let mut hasher = Hasher::default();
    let report = |done| progress(Progress { file: label.to_owned(), downloaded: done, total });
    report(0);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            // A connection cut short is the common case; say so plainly.
            Err(_) if total.is_some_and(|t| hasher.len() < t) => {
                return Err(PullError::Truncated {
                    url: url.to_owned(),
                    got: hasher.len(),
                    expected: total.unwrap_or_default(),
                });
            }
            Err(source) => return Err(PullError::Http { url: url.to_owned(), source }),
        };
        if let Some(limit) = limit
            && hasher.len() + chunk.len() as u64 > limit
        {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(|e| PullError::io(dest, e))?;
        hasher.update(&chunk);
        report(hasher.len());
    }
    if let Some(expected) = total
        && hasher.len() != expected
    {
        return Err(PullError::Truncated { url: url.to_owned(), got: hasher.len(), expected });
    }
    file.flush().await.map_err(|e| PullError::io(dest, e))?;
    file.sync_all().await.map_err(|e| PullError::io(dest, e))?;
    Ok(hasher.finish())
}
