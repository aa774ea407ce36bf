//! What `keys`, `budgets` and `usage` share: an HTTP client for the admin
//! API (key from `--api-key` / `HOOSH_API_KEY`, else `HOOSH_MASTER_KEY`),
//! and plain aligned tables.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::Remote;

/// The admin key's usual home, used when no `--api-key` is given.
const MASTER_KEY_ENV: &str = "HOOSH_MASTER_KEY";

/// A client of one gateway's `/admin` API.
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
}

impl AdminClient {
    pub fn new(remote: &Remote) -> Result<AdminClient> {
        let raw = remote.url.trim();
        let mut base = Url::parse(raw).with_context(|| format!("invalid gateway URL {raw:?}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            bail!("invalid gateway URL {raw:?}: expected http://host[:port]");
        }
        // Tolerate the `/v1` an OpenAI SDK base URL carries; admin paths are not under it.
        let path = base.path().trim_end_matches('/');
        let path = path.strip_suffix("/v1").unwrap_or(path).to_owned();
        base.set_path(&path);
        let key = remote
            .api_key
            .clone()
            .or_else(|| std::env::var(MASTER_KEY_ENV).ok())
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty());
        let http = reqwest::Client::builder()
            .user_agent(concat!("hoosh-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(AdminClient { http, base, key })
    }

    /// `base` + `/`-joined, percent-encoded `segments` + `query`.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut().map_err(|()| anyhow!("gateway URL {} cannot take a path", self.base))?.extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<reqwest::Response> {
        let url = self.url(segments, query)?;
        let mut req = self.http.request(method.clone(), url.clone());
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.with_context(|| format!("{method} {url}"))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Err(anyhow!(describe_error(status, &text, self.key.is_some())))
    }

    /// A JSON call; a non-2xx answer becomes an error quoting the gateway's message.
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let resp = self.send(method, segments, query, body).await?;
        resp.json().await.context("the gateway's answer is not JSON")
    }

    /// A call whose answer is text (the CSV export).
    pub async fn text(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<String> {
        let resp = self.send(Method::GET, segments, query, None).await?;
        resp.text().await.context("reading the gateway's answer")
    }
}

/// `403 insufficient_scope: … (param: x)`, plus a hint when no key was sent.
fn describe_error(status: u16, body: &str, sent_key: bool) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let err = parsed.as_ref().map(|v| &v["error"]);
    let mut out = match err {
        Some(e) if e.is_object() => {
            let label = e["code"].as_str().or(e["type"].as_str()).unwrap_or("error");
            format!("{status} {label}: {}", e["message"].as_str().unwrap_or(""))
        }
        _ => format!("{status}: {}", body.trim()),
    };
    if let Some(param) = err.and_then(|e| e["param"].as_str()) {
        out.push_str(&format!(" (param: {param})"));
    }
    if status == 401 && !sent_key {
        out.push_str(&format!("\nhint: pass --api-key or set HOOSH_API_KEY or {MASTER_KEY_ENV}"));
    }
    out
}

/// Columns separated by two spaces, each as wide as its widest cell.
pub struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table { header: header.to_vec(), right: vec![false; header.len()], rows: Vec::new() }
    }

    /// Numbers read best right-aligned.
    pub fn right_align(mut self, columns: &[usize]) -> Table {
        for &c in columns {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let all = || std::iter::once(&header).chain(&self.rows);
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| all().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in all() {
            let mut line = String::new();
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map_or("", String::as_str);
                let pad = " ".repeat(width - cell.chars().count());
                if c > 0 {
                    line.push_str("  ");
                }
                if self.right[c] {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `$5.00`, `$0.000123`: cents when exact, else up to six decimals.
pub fn usd(v: f64) -> String {
    if (v * 100.0).fract().abs() < 1e-9 {
        return format!("${v:.2}");
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    format!("${s}")
}

/// A duration in ms as `3d 4h`, `5h 12m`, `42s`: the two largest units.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Unix ms now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A JSON number or `-`.
pub fn opt(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `100000 tok + $5.00 / daily`, or `-`.
pub fn budget(b: &Value) -> String {
    if b.is_null() {
        return "-".to_owned();
    }
    let mut caps = Vec::new();
    if let Some(t) = b["tokens"].as_u64() {
        caps.push(format!("{t} tok"));
    }
    if let Some(u) = b["usd"].as_f64() {
        caps.push(usd(u));
    }
    format!("{} / {}", caps.join(" + "), b["period"].as_str().unwrap_or("never"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_trim() {
        let mut t = Table::new(&["ID", "REQUESTS"]).right_align(&[1]);
        t.row(vec!["key_1".into(), "2".into()]);
        t.row(vec!["k".into(), "1234".into()]);
        assert_eq!(t.render(), "ID     REQUESTS\nkey_1         2\nk          1234\n");
    }

    #[test]
    fn numbers_read_like_money_and_time() {
        assert_eq!(usd(5.0), "$5.00");
        assert_eq!(usd(0.000123), "$0.000123");
        assert_eq!(usd(1.5), "$1.50");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(3_600_000 * 5 + 60_000 * 12), "5h 12m");
        assert_eq!(duration(86_400_000 * 3 + 3_600_000 * 4 + 1), "3d 4h");
        assert_eq!(budget(&json!({"tokens": 100, "usd": 5.0, "period": "daily"})), "100 tok + $5.00 / daily");
        assert_eq!(budget(&Value::Null), "-");
    }

    #[test]
    fn errors_quote_the_gateway() {
        let body = r#"{"error":{"message":"nope","type":"permission_error","param":null,"code":"insufficient_scope"}}"#;
        assert_eq!(describe_error(403, body, true), "403 insufficient_scope: nope");
        assert!(describe_error(401, "{}", false).contains("HOOSH_MASTER_KEY"));
        assert_eq!(describe_error(502, "<html>", true), "502: <html>");
    }
}
