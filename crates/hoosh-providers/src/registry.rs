//! From config to live providers: applies preset defaults, reads keys, builds
//! the adapter of the right family, and wraps it in a routing entry. Also
//! zero-config discovery: with no config file, every vendor whose SDK env var
//! is set becomes a provider.

use std::sync::Arc;
use std::time::Duration;

use hoosh_core::config::{BreakerConfig, Config, ConfigError, ProviderConfig};
use hoosh_core::router::{ProviderEntry, Timeouts};
use hoosh_core::stats::ProviderStats;
use hoosh_core::{Placement, Provider, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::adapter::AdapterConfig;
use crate::presets::{self, Family};
use crate::{anthropic, gemini, ollama, openai};

/// Priority given to catch-all local servers found in the environment, so
/// that named vendors win for their own model names.
const DISCOVERED_CATCH_ALL_PRIORITY: i32 = 50;

/// A provider config with every preset default filled in.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub adapter: AdapterConfig,
    pub models: Vec<String>,
    /// Nearby or remote (never in-process: [`resolve`] refuses it).
    pub placement: Placement,
    pub config: ProviderConfig,
}

/// Applies the preset and reads the key. Fails on an unknown type, a missing
/// base URL, a key source that names nothing, or `placement = "in_process"`.
pub fn resolve(cfg: &ProviderConfig) -> Result<Resolved, ConfigError> {
    cfg.check_placement()?;
    let preset = presets::find(&cfg.kind).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "provider `{}`: unknown type `{}` (expected one of: {})",
            cfg.name,
            cfg.kind,
            presets::kinds().join(", ")
        ))
    })?;
    let base_url =
        cfg.base_url.clone().or_else(|| preset.base_url.map(str::to_owned)).ok_or_else(|| {
            ConfigError::Invalid(format!("provider `{}`: type `{}` needs base_url", cfg.name, cfg.kind))
        })?;
    let api_key = match cfg.resolve_api_key()? {
        Some(k) => Some(k),
        None => preset.key_env.and_then(|v| std::env::var(v).ok()).filter(|k| !k.trim().is_empty()).map(Secret::from),
    };
    let mut headers: Vec<(String, String)> =
        preset.headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    for (k, v) in &cfg.headers {
        headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v.clone()));
    }
    let headers = parse_headers(&cfg.name, &headers)?;
    check_api_key(&cfg.name, api_key.as_ref())?;
    let http = crate::http::client(cfg)
        .map_err(|e| ConfigError::Invalid(format!("provider `{}`: {}", cfg.name, e.message)))?;
    let adapter = AdapterConfig {
        name: cfg.name.clone(),
        preset,
        base_url: base_url.trim_end_matches('/').to_owned(),
        api_key,
        headers,
        api_version: cfg.api_version.clone(),
        http,
    };
    let models = cfg.models.clone().unwrap_or_else(|| preset.models.iter().map(|m| (*m).to_owned()).collect());
    Ok(Resolved { adapter, models, placement: cfg.placement.unwrap_or(preset.placement), config: cfg.clone() })
}

/// The extra headers as the adapters send them, each value marked sensitive.
/// A name or value no HTTP header can carry is a config error at load, not
/// a failure on every call.
pub fn parse_headers(provider: &str, headers: &[(String, String)]) -> Result<HeaderMap, ConfigError> {
    let mut map = HeaderMap::with_capacity(headers.len() + 1);
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            ConfigError::Invalid(format!("provider `{provider}`: `{k}` is not a valid HTTP header name"))
        })?;
        let mut value = HeaderValue::from_str(v).map_err(|_| {
            ConfigError::Invalid(format!(
                "provider `{provider}`: the value of header `{k}` holds characters an HTTP header cannot carry"
            ))
        })?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// The API key must fit in an HTTP header too.
fn check_api_key(provider: &str, api_key: Option<&Secret>) -> Result<(), ConfigError> {
    if api_key.is_some_and(|k| HeaderValue::from_str(k.expose()).is_err()) {
        return Err(ConfigError::Invalid(format!(
            "provider `{provider}`: the API key holds characters an HTTP header cannot carry (a stray newline?)"
        )));
    }
    Ok(())
}

/// The adapter for a resolved provider.
pub fn build(resolved: &Resolved) -> Arc<dyn Provider> {
    let cfg = resolved.adapter.clone();
    match cfg.preset.family {
        Family::OpenAi => Arc::new(openai::OpenAiProvider::new(cfg)),
        Family::Anthropic => Arc::new(anthropic::AnthropicProvider::new(cfg)),
        Family::Ollama => Arc::new(ollama::OllamaProvider::new(cfg)),
        Family::Gemini => Arc::new(gemini::GeminiProvider::new(cfg)),
    }
}

/// A routing entry around an adapter.
pub fn entry(
    resolved: &Resolved,
    provider: Arc<dyn Provider>,
    breaker: &BreakerConfig,
) -> Result<ProviderEntry, ConfigError> {
    let patterns = resolved
        .models
        .iter()
        .map(|m| {
            glob::Pattern::new(m).map_err(|e| {
                ConfigError::Invalid(format!("provider `{}`: model pattern `{m}`: {e}", resolved.config.name))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let c = &resolved.config;
    Ok(ProviderEntry {
        provider,
        patterns,
        priority: c.priority,
        weight: c.weight,
        placement: resolved.placement,
        timeouts: Timeouts {
            first_byte: Duration::from_secs(c.first_byte_timeout_secs),
            idle: Duration::from_secs(c.idle_timeout_secs),
            total: Duration::from_secs(c.total_timeout_secs),
            stream: Duration::from_secs(c.stream_timeout_secs),
        },
        stats: Arc::new(ProviderStats::new(breaker.clone())),
    })
}

/// Every enabled provider of `config` as a routing entry.
pub fn build_entries(config: &Config) -> Result<Vec<Arc<ProviderEntry>>, ConfigError> {
    let mut out = Vec::new();
    for p in config.providers.iter().filter(|p| p.enabled) {
        let resolved = resolve(p)?;
        if let Some(warning) = missing_key_warning(&resolved) {
            tracing::warn!(provider = %p.name, "{warning}");
        }
        let provider = build(&resolved);
        out.push(Arc::new(entry(&resolved, provider, &config.circuit_breaker)?));
    }
    Ok(out)
}

/// Why a provider that needs a key has none, if so (a nearby server
/// usually takes none).
pub fn missing_key_warning(r: &Resolved) -> Option<String> {
    if r.adapter.api_key.is_some() || r.placement != Placement::Remote {
        return None;
    }
    match (&r.config.api_key_env, r.adapter.preset.key_env) {
        (Some(var), _) => Some(format!("env var {var} (api_key_env) is not set; the upstream will reject calls")),
        (None, Some(var)) if r.config.api_key_file.is_none() => {
            Some(format!("no API key: set {var} or api_key_env/api_key_file; the upstream will reject calls"))
        }
        _ => None,
    }
}

/// Providers for the vendor env vars that are set (`OPENAI_API_KEY`,
/// `ANTHROPIC_API_KEY`, ..., `OLLAMA_HOST`). `env` is injectable for tests.
pub fn discover(env: impl Fn(&str) -> Option<String>) -> Vec<ProviderConfig> {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let mut out = Vec::new();
    for preset in presets::PRESETS {
        let Some(key_env) = preset.key_env else { continue };
        if preset.kind == "azure" || set(key_env).is_none() {
            continue;
        }
        let mut p = ProviderConfig::new(preset.kind, preset.kind);
        p.api_key_env = Some(key_env.to_owned());
        p.base_url = preset.base_url_env.and_then(set);
        out.push(p);
    }
    if let Some(host) = set("OLLAMA_HOST") {
        let mut p = ProviderConfig::new("ollama", "ollama");
        let url =
            if host.starts_with("http://") || host.starts_with("https://") { host } else { format!("http://{host}") };
        p.base_url = Some(url);
        p.priority = DISCOVERED_CATCH_ALL_PRIORITY;
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_vendors_from_their_sdk_env_vars() {
        let env = |k: &str| match k {
            "OPENAI_API_KEY" => Some("sk-test".to_owned()),
            "OPENAI_BASE_URL" => Some("http://127.0.0.1:9/v1".to_owned()),
            "GROQ_API_KEY" => Some("gsk".to_owned()),
            "MISTRAL_API_KEY" => Some("  ".to_owned()),
            "OLLAMA_HOST" => Some("127.0.0.1:11434".to_owned()),
            _ => None,
        };
        let found = discover(env);
        let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["openai", "groq", "ollama"]);
        assert_eq!(found[0].base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
        assert_eq!(found[0].api_key_env.as_deref(), Some("OPENAI_API_KEY"));
        assert_eq!(found[2].base_url.as_deref(), Some("http://127.0.0.1:11434"));
    }

    #[test]
    fn a_header_or_key_no_http_header_can_carry_is_a_config_error() {
        let resolved = |name: &str, value: &str| {
            let mut p = ProviderConfig::new("x", "openai");
            p.base_url = Some("http://127.0.0.1:9/v1".into());
            p.headers.insert(name.into(), value.into());
            resolve(&p).map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(resolved("x-team", "blue"), Ok(()));
        assert!(resolved("x-team", "blue\r\nx-admin: 1").unwrap_err().contains("`x-team`"));
        assert!(resolved("bad header", "v").unwrap_err().contains("not a valid HTTP header name"));
    }

    #[test]
    fn placement_is_the_presets_unless_configured() {
        let placement = |kind: &str, configured: Option<Placement>| {
            let mut p = ProviderConfig::new("x", kind);
            p.base_url = Some("http://10.0.0.5:8000/v1".into());
            p.placement = configured;
            resolve(&p).unwrap().placement
        };
        for kind in ["ollama", "vllm", "lmstudio", "llamacpp", "localai"] {
            assert_eq!(placement(kind, None), Placement::Nearby, "{kind}");
        }
        for kind in ["openai", "anthropic", "gemini", "groq", "openai-compatible"] {
            assert_eq!(placement(kind, None), Placement::Remote, "{kind}");
        }
        assert_eq!(placement("vllm", Some(Placement::Remote)), Placement::Remote);
        assert_eq!(placement("openai-compatible", Some(Placement::Nearby)), Placement::Nearby);
    }

    #[test]
    fn in_process_placement_is_refused_even_unvalidated() {
        let mut p = ProviderConfig::new("sneaky", "ollama");
        p.placement = Some(Placement::InProcess);
        let err = resolve(&p).unwrap_err().to_string();
        assert!(err.contains("sneaky") && err.contains("in_process"), "{err}");
    }

    /// Someone who can make the gateway log or dump its state (a `{:?}` in a
    /// trace, a panic message, a debug endpoint) must not get a credential
    /// out of it: not the key from `api_key_file`, not a proxy credential put
    /// in `headers`, for any wire family.
    #[test]
    fn no_debug_view_of_a_configured_provider_shows_its_credentials() {
        const KEY: &str = "sk-live-DO-NOT-PRINT-7f3a9c";
        const PROXY: &str = "Basic cHJveHk6aHVudGVyMg==";
        let file = std::env::temp_dir().join(format!("hoosh-registry-key-{}", std::process::id()));
        std::fs::write(&file, format!("{KEY}\n")).unwrap();
        let mut config = Config::default();
        for kind in ["openai", "azure", "anthropic", "gemini", "ollama", "groq"] {
            let mut p = ProviderConfig::new(kind, kind);
            p.base_url = Some("http://127.0.0.1:9".into());
            p.api_key_file = Some(file.clone());
            p.headers.insert("Proxy-Authorization".into(), PROXY.into());
            let resolved = resolve(&p).unwrap();
            assert_eq!(resolved.adapter.api_key.as_ref().map(Secret::expose), Some(KEY), "{kind}: key still usable");
            for shown in [format!("{resolved:?}"), format!("{resolved:#?}"), format!("{:?}", resolved.adapter)] {
                assert!(!shown.contains("DO-NOT-PRINT") && !shown.contains("cHJveHk"), "{kind}: {shown}");
                // Header names are shown as sent: HTTP/1 names lowercased.
                assert!(shown.contains("Secret([redacted])") && shown.contains("proxy-authorization"), "{shown}");
            }
            config.providers.push(p);
        }
        let entries = build_entries(&config).unwrap();
        let shown = format!("{entries:?}");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(entries.len(), 6);
        assert!(!shown.contains("DO-NOT-PRINT"), "{shown}");
    }

    #[test]
    fn unknown_type_lists_the_valid_ones() {
        let err = resolve(&ProviderConfig::new("x", "opneai")).unwrap_err().to_string();
        assert!(err.contains("opneai") && err.contains("openrouter"), "{err}");
    }

    #[test]
    fn custom_base_url_is_required_for_generic_type() {
        let err = resolve(&ProviderConfig::new("x", "openai-compatible")).unwrap_err().to_string();
        assert!(err.contains("needs base_url"), "{err}");
    }
}
