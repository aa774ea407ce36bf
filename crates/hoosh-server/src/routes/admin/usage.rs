//! `/admin/usage`: usage grouped by key, team, model or provider over a time
//! window, and the same window as a CSV export (one line per request).
//!
//! `from` and `to` take unix seconds (`1732665600`), RFC 3339
//! (`2026-11-27T00:00:00Z`, `2026-11-27T01:00:00+01:00`, or a bare date for
//! its midnight UTC) or a duration ago (`30m`, `24h`, `7d`, `2w`). The window
//! is `from <= t < to`, by default the last 30 days up to now. The ledger is
//! flushed first, so requests that have finished are in the answer.

use std::io::{self, Write};
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hoosh_governance::GroupBy;
use hoosh_governance::csv::ExportError;
use hoosh_governance::period::{DAY_MS, HOUR_MS, format_utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{UsageReader, blocking, query};
use crate::error::ApiError;
use crate::state::AppState;

/// The window a report covers when `from` is not given.
const DEFAULT_WINDOW_MS: i64 = 30 * DAY_MS;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the instants accepted.
const EARLIEST_MS: i64 = -62_135_596_800_000;
const LATEST_MS: i64 = 253_402_300_799_999;

/// `GET /admin/usage?group_by=key|team|model|provider&from=..&to=..`.
pub async fn report(
    State(st): State<AppState>,
    _: UsageReader,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q, &["group_by", "from", "to"])?;
    let group_by = match q.get("group_by").map(String::as_str) {
        None | Some("key") => GroupBy::Key,
        Some("team") => GroupBy::Team,
        Some("model") => GroupBy::Model,
        Some("provider") => GroupBy::Provider,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("`group_by` must be key, team, model or provider, got `{other}`."),
                Some("group_by".to_owned()),
            ));
        }
    };
    let (from, to) = window(q.get("from"), q.get("to"), st.now_ms())?;
    let data = blocking(&st, move |gov| {
        gov.ledger().flush();
        gov.store().usage_aggregate(group_by, from, to).map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(Json(json!({"object": "list", "group_by": group_by, "from": from, "to": to, "data": data})))
}

/// `GET /admin/usage/export?from=..&to=..` → `text/csv`, streamed.
pub async fn export(
    State(st): State<AppState>,
    _: UsageReader,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q, &["from", "to"])?;
    let (from, to) = window(q.get("from"), q.get("to"), st.now_ms())?;
    let (tx, mut rx) = mpsc::channel(4);
    let gov = Arc::clone(&st.gov.inner);
    tokio::task::spawn_blocking(move || {
        gov.ledger().flush();
        let mut out = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK_BYTES) };
        match hoosh_governance::csv::export(gov.store().as_ref(), from, to, &mut out) {
            Ok(rows) => tracing::debug!(rows, "usage exported"),
            Err(ExportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                tracing::debug!("usage export abandoned by the client");
            }
            Err(e) => {
                tracing::error!(error = %e, "usage export failed");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    // The first chunk — all of a small export — decides the status: a store
    // error before any byte was sent is a 500, not a 200 cut short.
    let first = match rx.recv().await {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => return Err(ApiError::Internal(format!("usage export: {e}"))),
        None => return Err(ApiError::Internal("usage export ended without output".into())),
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let body = Body::from_stream(futures_util::stream::once(async move { Ok(first) }).chain(rest));
    let filename = format!("attachment; filename=\"hoosh-usage-{}-{}.csv\"", day(from), day(to));
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `2026-11-27`, for file names.
fn day(ms: i64) -> String {
    format_utc(ms).chars().take(10).collect()
}

/// Export bytes go out in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;

/// A blocking writer feeding the response body through a channel; fails with
/// `BrokenPipe` once the client has gone, which stops the export.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The report window from the `from` / `to` parameters.
fn window(from: Option<&String>, to: Option<&String>, now: i64) -> Result<(i64, i64), ApiError> {
    let parse = |name: &str, text: &str| {
        parse_instant(text, now).map_err(|e| ApiError::invalid(format!("Invalid `{name}`: {e}"), Some(name.to_owned())))
    };
    let to = match to {
        Some(t) => parse("to", t)?,
        // Exclusive bound: a request that finished this millisecond is in.
        None => now + 1,
    };
    let from = match from {
        Some(f) => parse("from", f)?,
        None => to - DEFAULT_WINDOW_MS,
    };
    if from >= to {
        return Err(ApiError::invalid(
            format!("`from` ({}) must be before `to` ({}).", format_utc(from), format_utc(to)),
            Some("from".to_owned()),
        ));
    }
    Ok((from, to))
}

/// Unix seconds, RFC 3339, or a duration before `now` → unix ms.
pub fn parse_instant(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    let ms = if let Some(ago) = duration_ms(text) {
        now.checked_sub(ago)
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok().and_then(|s| s.checked_mul(1000))
    } else {
        rfc3339_ms(text)
    };
    match ms {
        Some(ms) if (EARLIEST_MS..=LATEST_MS).contains(&ms) => Ok(ms),
        Some(_) => Err(format!("`{text}` is outside the years 1 to 9999")),
        None => Err(format!(
            "`{text}` is not a time; use unix seconds (1732665600), RFC 3339 (2026-11-27T00:00:00Z) \
             or a duration ago (30m, 24h, 7d, 2w)"
        )),
    }
}

/// `30m`, `24h`, `7d`, `2w`, `90s` → milliseconds.
fn duration_ms(text: &str) -> Option<i64> {
    let unit = match text.as_bytes().last()? {
        b's' => 1000,
        b'm' => 60_000,
        b'h' => HOUR_MS,
        b'd' => DAY_MS,
        b'w' => 7 * DAY_MS,
        _ => return None,
    };
    let n = number(&text[..text.len() - 1])?;
    n.checked_mul(unit)
}

/// A non-empty run of ASCII digits.
fn number(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `YYYY-MM-DD[(T|t| )HH:MM:SS[.frac](Z|z|±HH:MM)]` → unix ms.
fn rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (number(text.get(0..4)?)?, number(text.get(5..7)?)?, number(text.get(8..10)?)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    // Validated above: 1 ≤ month ≤ 12, 1 ≤ day ≤ 31.
    let midnight = hoosh_governance::period::days_from_civil(year, month as u32, day as u32) * DAY_MS;
    if b.len() == 10 {
        return Some(midnight);
    }
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (number(text.get(11..13)?)?, number(text.get(14..16)?)?, number(text.get(17..19)?)?);
    // 60 is a leap second; unix time has none, so it reads as the next second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Milliseconds: the first three digits, zero-padded; finer digits are cut.
        millis = frac[..digits]
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
        rest = &frac[digits..];
    }
    let offset_ms = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (number(rest.get(1..3)?)?, number(rest.get(4..6)?)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * HOUR_MS + m * 60_000)
        }
    };
    Some(midnight + hour * HOUR_MS + minute * 60_000 + second * 1000 + millis - offset_ms)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn the_three_spellings() {
        assert_eq!(parse_instant("1732665600", NOW), Ok(1_732_665_600_000));
        assert_eq!(parse_instant("2024-11-27T00:00:00Z", NOW), Ok(1_732_665_600_000));
        assert_eq!(parse_instant("2024-11-27", NOW), Ok(1_732_665_600_000));
        assert_eq!(parse_instant("2024-11-27T01:30:00+01:30", NOW), Ok(1_732_665_600_000));
        assert_eq!(parse_instant("2024-11-26t19:00:00.5-05:00", NOW), Ok(1_732_665_600_500));
        assert_eq!(parse_instant("7d", NOW), Ok(NOW - 7 * DAY_MS));
        assert_eq!(parse_instant(" 24h ", NOW), Ok(NOW - DAY_MS));
        assert_eq!(parse_instant("30m", NOW), Ok(NOW - 1_800_000));
        assert_eq!(parse_instant("2w", NOW), Ok(NOW - 14 * DAY_MS));
    }

    #[test]
    fn nonsense_is_refused_with_the_accepted_forms() {
        for bad in [
            "",
            "yesterday",
            "7x",
            "d",
            "-5",
            "2024-02-30",
            "2024-13-01",
            "2024-11-27T24:00:00Z",
            "2024-11-27T00:00:00",
            "2024-11-27T00:00:00+0100",
            "2024-11-27T00:00:00.Z",
            "2024-11-27Té0:00:00Z",
            "99999999999999999",
        ] {
            assert!(parse_instant(bad, NOW).is_err(), "{bad}");
        }
        assert!(parse_instant("nope", NOW).unwrap_err().contains("RFC 3339"));
        assert!(parse_instant("2024-02-29", NOW).is_ok(), "leap day");
    }

    #[test]
    fn agrees_with_the_ledger_timestamp_format() {
        // A spread of instants from year 1 to 9999, through the export's own formatter and back.
        let mut t: i64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..2000 {
            t = t.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let ms = EARLIEST_MS + t.rem_euclid(LATEST_MS - EARLIEST_MS);
            assert_eq!(parse_instant(&format_utc(ms), NOW), Ok(ms), "{}", format_utc(ms));
        }
    }

    #[test]
    fn windows_default_to_the_last_30_days_and_must_not_be_empty() {
        assert_eq!(window(None, None, NOW).unwrap(), (NOW + 1 - DEFAULT_WINDOW_MS, NOW + 1));
        let from = "2024-11-27".to_owned();
        let to = "2024-11-26".to_owned();
        assert!(window(Some(&from), Some(&to), NOW).is_err());
        assert_eq!(window(Some(&to), Some(&from), NOW).unwrap(), (1_732_579_200_000, 1_732_665_600_000));
    }
}
