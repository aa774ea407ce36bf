//! The store on disk: `<root>/<id>/` per model, `hoosh-model.json` inside.
//!
//! Installs are staged in `<root>/.tmp-<id>-<random>/` and renamed into place
//! only after every file is verified and the manifest written, so a crash
//! leaves at worst a hidden staging directory, never a half-written model.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::catalog;
use crate::error::StoreError;
use crate::hash::file_sha256;
use crate::manifest::{FileEntry, Manifest, ModelKind};

/// Staging and replaced directories left by a crash are removed once this old.
const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A directory of installed models.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
}

/// One installed model, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub id: String,
    pub kind: ModelKind,
    /// `<root>/<id>`.
    pub dir: PathBuf,
    pub source: String,
    /// The main file relative to `dir`, or `.` for directory models.
    pub main: String,
    pub files: Vec<FileEntry>,
}

impl Installed {
    fn from_manifest(dir: PathBuf, m: Manifest) -> Installed {
        Installed { id: m.id, kind: m.kind, dir, source: m.source, main: m.main, files: m.files }
    }

    /// What an engine opens: the main file, or the directory itself.
    pub fn main_path(&self) -> PathBuf {
        if self.main == "." { self.dir.clone() } else { self.dir.join(&self.main) }
    }

    /// Bytes on disk, manifest excluded.
    pub fn size_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Ids become directory names, so they must be plain, non-hidden names.
pub fn validate_id(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'));
    if ok { Ok(()) } else { Err(StoreError::InvalidId { id: id.to_owned() }) }
}

impl ModelStore {
    pub fn new(root: impl Into<PathBuf>) -> ModelStore {
        ModelStore { root: root.into() }
    }

    /// `HOOSH_MODELS_DIR`, else `$HOME/.cache/hoosh/models`.
    pub fn default_root() -> Result<PathBuf, StoreError> {
        if let Some(dir) = std::env::var_os("HOOSH_MODELS_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or(StoreError::NoRoot)?;
        Ok(PathBuf::from(home).join(".cache").join("hoosh").join("models"))
    }

    /// The store at [`ModelStore::default_root`].
    pub fn open_default() -> Result<ModelStore, StoreError> {
        Ok(ModelStore::new(ModelStore::default_root()?))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every installed model, sorted by id. A directory with an unreadable
    /// manifest is skipped with a warning, so one broken model does not hide
    /// the others; [`ModelStore::get`] reports it as an error.
    pub fn list(&self) -> Result<Vec<Installed>, StoreError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StoreError::Io { path: self.root.clone(), source }),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Io { path: self.root.clone(), source })?;
            let name = entry.file_name();
            let Some(id) = name.to_str() else { continue };
            if validate_id(id).is_err() || !entry.path().is_dir() {
                continue;
            }
            match self.get(id) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping model directory {}: {e}", entry.path().display()),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The model installed under `id`, if any.
    pub fn get(&self, id: &str) -> Result<Option<Installed>, StoreError> {
        validate_id(id)?;
        let dir = self.root.join(id);
        Ok(Manifest::read(&dir)?.map(|m| Installed::from_manifest(dir, m)))
    }

    /// Re-hashes every file the manifest lists. For catalog models it also
    /// checks the hashes hoosh pins, so a tampered manifest is caught too.
    pub fn verify(&self, model: &Installed) -> Result<(), StoreError> {
        let pins = catalog::builtin()
            .into_iter()
            .find(|e| e.id == model.id && e.source() == model.source)
            .map(|e| e.pinned_files)
            .unwrap_or_default();
        for file in &model.files {
            let path = model.dir.join(&file.name);
            let missing =
                || StoreError::MissingFile { id: model.id.clone(), file: file.name.clone(), dir: model.dir.clone() };
            let (size, sha) = match file_sha256(&path) {
                Ok(v) => v,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                Err(source) => return Err(StoreError::Io { path, source }),
            };
            if size != file.size || sha != file.sha256 {
                return Err(StoreError::Modified {
                    id: model.id.clone(),
                    file: file.name.clone(),
                    expected: file.sha256.clone(),
                    actual: sha,
                });
            }
        }
        for pin in &pins {
            let listed = model.files.iter().find(|f| f.name == pin.name);
            match listed {
                None => {
                    return Err(StoreError::MissingFile {
                        id: model.id.clone(),
                        file: pin.name.clone(),
                        dir: model.dir.clone(),
                    });
                }
                // The file's actual hash already matched the manifest above.
                Some(f) if f.sha256 != pin.sha256 => {
                    return Err(StoreError::NotPinned {
                        id: model.id.clone(),
                        file: pin.name.clone(),
                        expected: pin.sha256.clone(),
                        actual: f.sha256.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        if model.main != "." && !model.files.iter().any(|f| f.name == model.main) {
            return Err(StoreError::MissingFile {
                id: model.id.clone(),
                file: model.main.clone(),
                dir: model.dir.clone(),
            });
        }
        Ok(())
    }

    /// A fresh, empty staging directory for `id`.
    pub(crate) fn stage(&self, id: &str) -> Result<Staging, StoreError> {
        validate_id(id)?;
        std::fs::create_dir_all(&self.root).map_err(|source| StoreError::Io { path: self.root.clone(), source })?;
        self.sweep_stale();
        let dir = self.root.join(format!(".tmp-{id}-{}", unique_suffix()));
        std::fs::create_dir(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        Ok(Staging { dir, id: id.to_owned(), committed: false })
    }

    /// Removes staging and replaced directories that a crashed process left.
    /// Only old ones: a young one may belong to a pull still running.
    fn sweep_stale(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with(".tmp-") || name.starts_with(".old-")) {
                continue;
            }
            let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| now.duration_since(t).ok());
            if age.is_some_and(|a| a > STALE_AFTER) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Distinct per process and per call, so concurrent pulls of one id never
/// share a staging directory.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{:x}-{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A staging directory; removed on drop unless committed.
#[derive(Debug)]
pub(crate) struct Staging {
    dir: PathBuf,
    id: String,
    committed: bool,
}

impl Staging {
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes the manifest and renames the directory to `<root>/<id>`,
    /// replacing an existing model. The old directory is first renamed aside
    /// (`.old-<id>-…`) and deleted after, so readers see either the old model
    /// or the new one, and two concurrent pulls end with one whole model.
    pub(crate) fn commit(mut self, store: &ModelStore, manifest: &Manifest) -> Result<Installed, StoreError> {
        manifest.write(&self.dir)?;
        sync_dir(&self.dir);
        let dest = store.root.join(&self.id);
        let mut replaced = Vec::new();
        let mut last_err = None;
        // Each failed try moves whatever another pull put at `dest` aside; a
        // handful of tries is plenty even with several pulls racing.
        for _ in 0..16 {
            match std::fs::rename(&self.dir, &dest) {
                Ok(()) => {
                    self.committed = true;
                    last_err = None;
                    break;
                }
                Err(e) if dest.exists() => {
                    last_err = Some(e);
                    let aside = store.root.join(format!(".old-{}-{}", self.id, unique_suffix()));
                    match std::fs::rename(&dest, &aside) {
                        Ok(()) => replaced.push(aside),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => return Err(StoreError::Io { path: dest, source }),
                    }
                }
                Err(source) => return Err(StoreError::Io { path: dest, source }),
            }
        }
        if let Some(source) = last_err {
            return Err(StoreError::Io { path: dest, source });
        }
        sync_dir(&store.root);
        for old in replaced {
            if let Err(e) = std::fs::remove_dir_all(&old) {
                tracing::warn!("could not remove the replaced model directory {}: {e}", old.display());
            }
        }
        Ok(Installed::from_manifest(dest, manifest.clone()))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Makes a rename durable. Best effort: not every filesystem allows
/// opening a directory for sync, and the rename itself is already atomic.
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["smollm2-135m", "whisper-tiny.en", "a_b"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".tmp-x", "A", "a/b", "..", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
