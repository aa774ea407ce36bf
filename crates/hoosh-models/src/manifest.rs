//! `hoosh-model.json`: what a model directory holds. It is written last, so a
//! directory without one is not a model.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// The manifest's file name inside a model directory.
pub const MANIFEST_FILE: &str = "hoosh-model.json";

/// What a model does, which decides the engine that loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// A chat/completion model (a GGUF file).
    Llm,
    /// A sentence-embedding model (a sentence-transformers directory).
    Embedding,
    /// A speech-to-text model (a CTranslate2 Whisper directory).
    Speech,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Llm => "llm",
            ModelKind::Embedding => "embedding",
            ModelKind::Speech => "speech",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "llm" => Ok(ModelKind::Llm),
            "embedding" | "embeddings" => Ok(ModelKind::Embedding),
            "speech" | "stt" => Ok(ModelKind::Speech),
            other => Err(format!("unknown model kind '{other}': expected llm, embedding or speech")),
        }
    }
}

/// One file of a model, as installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the model directory, with `/` separators.
    pub name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// The contents of `hoosh-model.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub kind: ModelKind,
    /// Where it came from: `pypi:pkg==ver`, `hf:owner/repo[/file]` or `path:/abs/path`.
    pub source: String,
    /// The file an engine opens, relative to the model directory; `.` when the
    /// engine takes the whole directory.
    pub main: String,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Reads and parses `dir/hoosh-model.json`; `Ok(None)` when it does not exist.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, StoreError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::BadManifest { path, source })
    }

    /// Writes `dir/hoosh-model.json` and flushes it to disk.
    pub fn write(&self, dir: &Path) -> Result<(), StoreError> {
        use std::io::Write;
        let path = dir.join(MANIFEST_FILE);
        let io = |source| StoreError::Io { path: path.clone(), source };
        let json = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&path).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.write_all(b"\n").map_err(io)?;
        // The manifest is the commit mark: it must be durable before the
        // directory is renamed into place.
        f.sync_all().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trips_through_json_and_str() {
        for k in [ModelKind::Llm, ModelKind::Embedding, ModelKind::Speech] {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(k.as_str().parse::<ModelKind>().unwrap(), k);
        }
        assert!("vision".parse::<ModelKind>().is_err());
    }

    #[test]
    fn manifest_rejects_unknown_keys() {
        let json = r#"{"id":"a","kind":"llm","source":"path:/x","main":"a.gguf","files":[],"extra":1}"#;
        assert!(serde_json::from_str::<Manifest>(json).is_err());
    }
}
