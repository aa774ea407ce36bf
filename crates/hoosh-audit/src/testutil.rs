//! Test helpers: a throwaway directory and fixed keys.

use std::path::{Path, PathBuf};

use crate::key::AuditKey;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(tempfile::TempDir);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        TempDir(tempfile::Builder::new().prefix(&format!("hoosh-audit-{label}-")).tempdir().unwrap())
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.0.path().join("audit.db")
    }
}

/// A 32-byte key of one repeated byte.
pub(crate) fn test_key(fill: u8) -> AuditKey {
    AuditKey::from_bytes(vec![fill; 32]).unwrap()
}
