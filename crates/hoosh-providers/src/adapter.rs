//! What every adapter is built from: the resolved provider settings.

use std::fmt;

use hoosh_core::Secret;
use hoosh_core::params::ParamSupport;
use reqwest::header::HeaderMap;

use crate::presets::Preset;

/// A provider's settings after the preset's defaults and the key lookup.
#[derive(Clone)]
pub struct AdapterConfig {
    pub name: String,
    pub preset: &'static Preset,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Extra headers (the preset's, then the config's), parsed once when the
    /// config is resolved ([`crate::registry::parse_headers`]). Their values
    /// may be credentials too (`Authorization` for a proxy): each is marked
    /// sensitive, and `Debug` shows names only.
    pub headers: HeaderMap,
    pub api_version: Option<String>,
    pub http: reqwest::Client,
}

impl fmt::Debug for AdapterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("AdapterConfig")
            .field("name", &self.name)
            .field("kind", &self.preset.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("headers", &header_names)
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

impl AdapterConfig {
    pub fn param_support(&self) -> ParamSupport {
        ParamSupport { unsupported: self.preset.unsupported.to_vec(), passes_extra: self.preset.passes_extra }
    }

    /// Adds the configured extra headers to a request.
    pub fn with_headers(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.headers(self.headers.clone())
    }
}
