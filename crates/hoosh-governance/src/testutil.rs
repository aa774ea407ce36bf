//! Test helpers: a throwaway directory and ledger rows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ledger::UsageRecord;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("hoosh-gov-{label}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.0.join("hoosh.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A successful, priced chat row.
pub(crate) fn usage(request_id: &str, ts_ms: i64, key_id: Option<&str>, team: Option<&str>) -> UsageRecord {
    UsageRecord {
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
