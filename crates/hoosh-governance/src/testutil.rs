//! Test helpers: a throwaway directory and ledger rows.

use std::path::{Path, PathBuf};

use crate::ledger::UsageRecord;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(tempfile::TempDir);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        TempDir(tempfile::Builder::new().prefix(&format!("hoosh-gov-{label}-")).tempdir().unwrap())
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.0.path().join("hoosh.db")
    }
}

/// A successful, priced chat row with a fresh id.
pub(crate) fn usage(request_id: &str, ts_ms: i64, key_id: Option<&str>, team: Option<&str>) -> UsageRecord {
    UsageRecord {
        id: UsageRecord::new_id(ts_ms),
        ts_ms,
        request_id: request_id.to_string(),
        key_id: key_id.map(str::to_string),
        team: team.map(str::to_string),
        provider: Some("openai".into()),
        model: "gpt-4o-mini".into(),
        prompt_tokens: 100,
        completion_tokens: 20,
        cached_tokens: 0,
        cost_nanos: Some(1_000),
        latency_ms: 300,
        ttft_ms: None,
        status: 200,
        cache_hit: false,
        route: "chat".into(),
        audio_ms: 0,
    }
}
