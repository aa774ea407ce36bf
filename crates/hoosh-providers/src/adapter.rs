//! What every adapter is built from: the resolved provider settings.

use hoosh_core::params::ParamSupport;

use crate::presets::Preset;

/// A provider's settings after the preset's defaults and the key lookup.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    pub name: String,
    pub preset: &'static Preset,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub api_version: Option<String>,
    pub http: reqwest::Client,
}

impl AdapterConfig {
    pub fn param_support(&self) -> ParamSupport {
        ParamSupport { unsupported: self.preset.unsupported.to_vec(), passes_extra: self.preset.passes_extra }
    }

    /// Adds the configured extra headers to a request.
    pub fn with_headers(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req
    }
}
