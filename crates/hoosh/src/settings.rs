//! Where the configuration comes from: a file (`--config`/`HOOSH_CONFIG`),
//! or, with none, zero-config discovery from the vendors' own env vars; then
//! flag/env overrides of the listener.

use std::path::Path;

use anyhow::{Context, Result};
use hoosh_core::config::Config;
use hoosh_providers::registry;

/// Describes where the config came from, for banners and `info`.
pub enum Source {
    File(String),
    /// No file: providers from the vendors' env vars (the names found).
    Environment(Vec<String>),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "config file {p}"),
            Source::Environment(found) if found.is_empty() => {
                write!(f, "none (zero-config: no config file, no vendor API key in the environment)")
            }
            Source::Environment(found) => {
                write!(f, "none (zero-config: providers from {} in the environment)", found.join(", "))
            }
        }
    }
}

/// Loads and validates the config.
pub fn load(path: Option<&Path>) -> Result<(Config, Source)> {
    let (config, source) = match path {
        Some(p) => (Config::load(p)?, Source::File(p.display().to_string())),
        None => {
            let providers = registry::discover(|k| std::env::var(k).ok());
            let found =
                providers.iter().map(|p| p.api_key_env.clone().unwrap_or_else(|| "OLLAMA_HOST".to_owned())).collect();
            (Config { providers, ..Config::default() }, Source::Environment(found))
        }
    };
    config.validate().with_context(|| format!("in {source}"))?;
    Ok((config, source))
}
