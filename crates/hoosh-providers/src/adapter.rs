//! What every adapter is built from: the resolved provider settings.

use std::fmt;

use hoosh_core::Secret;
use hoosh_core::params::ParamSupport;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::presets::Preset;

/// A provider's settings after the preset's defaults and the key lookup.
#[derive(Clone)]
pub struct AdapterConfig {
    pub name: String,
    pub preset: &'static Preset,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Extra headers (the preset's, then the config's). Their values may be
    /// credentials too (`Authorization` for a proxy), so `Debug` shows names only.
    pub headers: Vec<(String, String)>,
    pub api_version: Option<String>,
    pub http: reqwest::Client,
}

impl fmt::Debug for AdapterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
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

    /// The configured extra headers, parsed once (the registry checked
    /// them when the config was resolved, so none is skipped in practice).
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.headers.len() + 1);
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(mut v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                v.set_sensitive(true);
                map.append(k, v);
            }
        }
        map
    }

    /// Adds the configured extra headers to a request.
    pub fn with_headers(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.headers(self.header_map())
    }
}
