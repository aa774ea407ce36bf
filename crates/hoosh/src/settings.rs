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
    Environment,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "config file {p}"),
            Source::Environment => write!(f, "zero-config (provider API keys found in the environment)"),
        }
    }
}

/// Loads and validates the config.
pub fn load(path: Option<&Path>) -> Result<(Config, Source)> {
    let (config, source) = match path {
        Some(p) => (Config::load(p)?, Source::File(p.display().to_string())),
        None => {
            let providers = registry::discover(|k| std::env::var(k).ok());
            (Config { providers, ..Config::default() }, Source::Environment)
        }
    };
    config.validate().with_context(|| format!("in {source}"))?;
    Ok((config, source))
}
