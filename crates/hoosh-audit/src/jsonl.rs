//! JSONL export and import: one entry's stored JSON per line, in seq order —
//! the form handed to an auditor or a log shipper, verifiable offline with
//! [`crate::verify_jsonl`].

use std::io::{BufRead, Write};

use crate::chain_store::ChainStore;
use crate::entry::Entry;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("reading the audit export: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line} of the audit export is not an entry: {error}")]
    Parse { line: u64, error: serde_json::Error },
}

/// Writes every entry sealed at or after `since_ts_ms` (`i64::MIN` for all);
/// returns how many.
pub fn export_jsonl(store: &dyn ChainStore, since_ts_ms: i64, out: &mut dyn Write) -> Result<u64, StoreError> {
    let mut written = 0u64;
    let mut failed = None;
    store.since(since_ts_ms, &mut |entry| match writeln!(out, "{}", entry.to_json()) {
        Ok(()) => {
            written += 1;
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.flush()?;
    Ok(written)
}

/// Reads entries back, one per non-empty line.
pub fn read_jsonl(reader: impl BufRead) -> impl Iterator<Item = Result<Entry, JsonlError>> {
    reader.lines().zip(1u64..).filter_map(|(line, n)| match line {
        Err(e) => Some(Err(JsonlError::Io(e))),
        Ok(text) if text.trim().is_empty() => None,
        Ok(text) => Some(serde_json::from_str(&text).map_err(|error| JsonlError::Parse { line: n, error })),
    })
}
