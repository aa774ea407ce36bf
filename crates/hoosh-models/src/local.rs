//! Models from a local path (a `.gguf` file or a model directory), and the
//! kind inference shared by every non-catalog source.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::PullError;
use crate::hash::Hasher;
use crate::manifest::{FileEntry, MANIFEST_FILE, ModelKind};
use crate::pull::Progress;

/// What a file or directory holds, judged by its files:
/// `.gguf` → llm; a directory with `model.safetensors` → embedding; a
/// directory with `model.bin` and a CTranslate2 Whisper `config.json`
/// (it has `alignment_heads`) → speech.
pub fn infer_kind(path: &Path) -> Option<ModelKind> {
    if path.is_file() {
        let gguf = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        return gguf.then_some(ModelKind::Llm);
    }
    if path.join("model.safetensors").is_file() {
        return Some(ModelKind::Embedding);
    }
    if path.join("model.bin").is_file() {
        let config = std::fs::read(path.join("config.json")).ok()?;
        let json: serde_json::Value = serde_json::from_slice(&config).ok()?;
        return json.get("alignment_heads").is_some().then_some(ModelKind::Speech);
    }
    None
}

/// Turns a file or repo name into a store id: lowercase, anything outside
/// `[a-z0-9._-]` becomes `-`, no leading dots.
pub(crate) fn id_from_name(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_') { c } else { '-' }
        })
        .collect();
    id.trim_start_matches('.').to_owned()
}

/// Copies `src` to `dst` in 1 MiB pieces, hashing and reporting progress.
pub(crate) async fn copy_file(
    src: &Path,
    dst: &Path,
    label: &str,
    progress: &dyn Fn(Progress),
) -> Result<(u64, String), PullError> {
    let mut input = tokio::fs::File::open(src).await.map_err(|e| PullError::io(src, e))?;
    let total = input.metadata().await.map_err(|e| PullError::io(src, e))?.len();
    if let Some(parent) = dst.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| PullError::io(parent, e))?;
    }
    let mut output = tokio::fs::File::create(dst).await.map_err(|e| PullError::io(dst, e))?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    progress(Progress { file: label.to_owned(), downloaded: 0, total: Some(total) });
    loop {
        let n = input.read(&mut buf).await.map_err(|e| PullError::io(src, e))?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n]).await.map_err(|e| PullError::io(dst, e))?;
        hasher.update(&buf[..n]);
        progress(Progress { file: label.to_owned(), downloaded: hasher.len(), total: Some(total) });
    }
    output.flush().await.map_err(|e| PullError::io(dst, e))?;
    output.sync_all().await.map_err(|e| PullError::io(dst, e))?;
    Ok(hasher.finish())
}

/// Relative paths (with `/`) of the files under `dir`, skipping hidden
/// entries (`.git` and the like) and a manifest from an earlier install.
fn walk(dir: &Path) -> Result<Vec<String>, PullError> {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((abs, rel)) = pending.pop() {
        let entries = std::fs::read_dir(&abs).map_err(|e| PullError::io(&abs, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| PullError::io(&abs, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || (rel.is_empty() && name == MANIFEST_FILE) {
                continue;
            }
            let child_rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            // `metadata` follows symlinks, so a linked weights file is copied.
            let meta = std::fs::metadata(entry.path()).map_err(|e| PullError::io(entry.path(), e))?;
            if meta.is_dir() {
                pending.push((entry.path(), child_rel));
            } else if meta.is_file() {
                out.push(child_rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What [`copy_in`] produced.
pub(crate) struct Copied {
    pub(crate) source: String,
    pub(crate) main: String,
    pub(crate) files: Vec<FileEntry>,
}

/// Copies a model file or directory into `staging`.
pub(crate) async fn copy_in(src: &Path, staging: &Path, progress: &dyn Fn(Progress)) -> Result<Copied, PullError> {
    let abs: PathBuf = std::fs::canonicalize(src).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => PullError::NoSuchPath { path: src.to_path_buf() },
        _ => PullError::io(src, e),
    })?;
    let source = format!("path:{}", abs.display());
    let base = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if abs.is_file() {
        let (size, sha256) = copy_file(&abs, &staging.join(&base), &base, progress).await?;
        let files = vec![FileEntry { name: base.clone(), size, sha256 }];
        return Ok(Copied { source, main: base, files });
    }
    let names = walk(&abs)?;
    if names.is_empty() {
        return Err(PullError::Invalid {
            what: abs.display().to_string(),
            detail: "the directory has no files".into(),
        });
    }
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let (size, sha256) = copy_file(&abs.join(&name), &staging.join(&name), &name, progress).await?;
        files.push(FileEntry { name, size, sha256 });
    }
    Ok(Copied { source, main: ".".into(), files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_names() {
        assert_eq!(id_from_name("SmolLM2-135M-Instruct.Q4_K_M"), "smollm2-135m-instruct.q4_k_m");
        assert_eq!(id_from_name("all MiniLM+L6"), "all-minilm-l6");
        assert_eq!(id_from_name(".hidden"), "hidden");
    }
}
