//! The usage export as CSV (RFC 4180): a header, one line per ledger row,
//! fields quoted only when they contain a comma, quote or line break.
//! Costs are written as exact decimal dollars from the integer nano-USD, so a
//! spreadsheet sum matches the report to the nano-dollar.

use std::io::{self, Write};

use crate::ledger::UsageRecord;
use crate::period::format_utc;
use crate::store::{Store, StoreError};

/// `id` is the ledger row's own (unique) id; `request_id` is the caller's.
pub const HEADER: &str = "time,ts_ms,id,request_id,key_id,team,provider,model,prompt_tokens,completion_tokens,\
                          cached_tokens,cost_usd,latency_ms,ttft_ms,status,cache_hit,route,audio_seconds";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] io::Error),
}

/// Writes `field`, quoted if needed.
fn field(out: &mut String, value: &str) {
    // A cell a spreadsheet would run as a formula (model names and request
    // ids come from clients) is defused with a leading quote, as OWASP advises.
    let defused;
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        defused = format!("'{value}");
        defused.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// `1234567890` nano-USD → `1.234567890`.
pub fn format_nanos(nanos: u64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

/// One row as a CSV line (with the trailing `\n`).
pub fn row_line(r: &UsageRecord) -> String {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let cols: [String; 18] = [
        format_utc(r.ts_ms),
        r.ts_ms.to_string(),
        r.id.clone(),
        r.request_id.clone(),
        r.key_id.clone().unwrap_or_default(),
        r.team.clone().unwrap_or_default(),
        r.provider.clone().unwrap_or_default(),
        r.model.clone(),
        r.prompt_tokens.to_string(),
        r.completion_tokens.to_string(),
        r.cached_tokens.to_string(),
        r.cost_nanos.map(format_nanos).unwrap_or_default(),
        r.latency_ms.to_string(),
        opt(r.ttft_ms),
        r.status.to_string(),
        r.cache_hit.to_string(),
        r.route.clone(),
        format!("{}.{:03}", r.audio_ms / 1000, r.audio_ms % 1000),
    ];
    let mut line = String::with_capacity(160);
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        field(&mut line, c);
    }
    line.push('\n');
    line
}

/// Streams the rows with `from_ms <= ts_ms < to_ms` to `out`; returns how many.
pub fn export(store: &dyn Store, from_ms: i64, to_ms: i64, out: &mut dyn Write) -> Result<u64, ExportError> {
    out.write_all(HEADER.as_bytes())?;
    out.write_all(b"\n")?;
    let mut written = 0u64;
    let mut failed: Option<io::Error> = None;
    store.usage_rows(from_ms, to_ms, &mut |row| {
        if failed.is_none() {
            match out.write_all(row_line(row).as_bytes()) {
                Ok(()) => written += 1,
                Err(e) => failed = Some(e),
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_rfc_4180() {
        let r = UsageRecord {
            id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
            ts_ms: 1_714_564_800_123,
            request_id: "req,1".into(),
            key_id: Some("key_a".into()),
            team: Some("say \"hi\"".into()),
            provider: None,
            model: "line\nbreak".into(),
            prompt_tokens: 10,
            completion_tokens: 2,
            cached_tokens: 0,
            cost_nanos: Some(1_234_567_890),
            latency_ms: 50,
            ttft_ms: None,
            status: 200,
            cache_hit: false,
            route: "chat".into(),
            audio_ms: 1500,
        };
        assert_eq!(
            row_line(&r),
            "2024-05-01T12:00:00.123Z,1714564800123,0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b,\"req,1\",key_a,\"say \"\"hi\"\"\",,\"line\nbreak\",10,2,0,\
             1.234567890,50,,200,false,chat,1.500\n"
        );
        assert_eq!(HEADER.split(',').count(), 18);
        assert_eq!(format_nanos(5), "0.000000005");
    }

    #[test]
    fn formulas_from_clients_are_defused() {
        for (raw, cell) in
            [("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""), ("@SUM(A1)", "'@SUM(A1)"), ("-1+2", "'-1+2")]
        {
            let mut out = String::new();
            field(&mut out, raw);
            assert_eq!(out, cell);
        }
        let mut plain = String::new();
        field(&mut plain, "gpt-4o");
        assert_eq!(plain, "gpt-4o");
    }
}
