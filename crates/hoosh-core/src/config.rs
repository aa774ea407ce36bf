//! The config file: a strict, typed tree. Unknown keys are errors that name
//! the key and its line; every default lives in this file; secrets are never
//! inlined but named by location (env var or file) and read at start-up.
//!
//! Parsing ([`Config::from_toml`]) and checking ([`Config::validate`]) are
//! separate steps so that `hoosh config check` can report both kinds of
//! mistake.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::governance_config::{
    BudgetConfig, BudgetPeriod, GovernanceConfig, KeyConfig, LimitsConfig, TargetLimitsConfig, TeamConfig,
};
use crate::params::UnsupportedParamAction;
use crate::placement::Placement;
use crate::secret::{Secret, SecretHeaders};
use crate::strategy::Strategy;

/// An error in the configuration, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, limits and shutdown.
    #[serde(default)]
    pub server: ServerConfig,
    /// Strategy, retries and failover.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Circuit breaker thresholds, shared by all providers.
    #[serde(default)]
    pub circuit_breaker: BreakerConfig,
    /// Background health probes.
    #[serde(default)]
    pub health: HealthConfig,
    /// The upstream providers, in priority order of declaration.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Public model names mapped to `provider/model` targets, tried in order.
    #[serde(default)]
    pub model_aliases: BTreeMap<String, Vec<String>>,
    /// Models served in-process from the local model store.
    #[serde(default)]
    pub local: LocalConfig,
    /// Keys, budgets, rate limits and the usage ledger.
    #[serde(default)]
    pub governance: GovernanceConfig,
    /// The exact-match response cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// The tamper-evident audit chain.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Trace export (OpenTelemetry OTLP).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Speech endpoints (`/v1/audio/*`).
    #[serde(default)]
    pub audio: AudioConfig,
    /// Price rows checked before the shipped table (a negotiated rate, a
    /// model the table lacks, a price for one provider only).
    #[serde(default)]
    pub pricing: Vec<crate::pricing::Price>,
    /// Where shared state lives: this process, or Redis + PostgreSQL.
    #[serde(default)]
    pub state: crate::state_config::StateConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// Serve installed local models in-process.
    pub enabled: bool,
    /// Model store; `HOOSH_MODELS_DIR`, else `~/.cache/hoosh/models`, when absent.
    pub models_dir: Option<PathBuf>,
    /// Model ids to serve; every installed model when empty.
    pub models: Vec<String>,
    /// Routing priority of the local providers (local wins ties).
    pub priority: i32,
    /// Concurrent sequences batched together per LLM.
    pub max_sequences: usize,
    /// Context window of one sequence, in tokens.
    pub context_per_sequence: u32,
    /// Requests that may wait for a free sequence; more get 503 + Retry-After.
    pub queue_capacity: usize,
    /// Inference threads per model; 0 uses every core.
    pub threads: usize,
    /// Check each model file's sha256 at load (pinned defaults).
    pub verify_on_load: bool,
    /// Reuse a finished request's KV cache for a new prompt with the same
    /// prefix (system prompt, conversation so far); reported as
    /// `usage.prompt_tokens_details.cached_tokens`.
    pub prompt_cache: bool,
    /// Load every model at start; otherwise on first use.
    pub preload: bool,
    /// Unload a model after this many idle seconds (reloaded on the next
    /// request); 0 keeps models loaded.
    pub keep_alive_secs: u64,
    /// Upper bound on the estimated memory of loaded local models (weights
    /// plus KV cache), in MiB; loading one more unloads the least recently
    /// used idle models first. 0 = no bound.
    pub max_memory_mb: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            enabled: true,
            models_dir: None,
            models: Vec::new(),
            priority: 10,
            max_sequences: 8,
            context_per_sequence: 2048,
            queue_capacity: 64,
            threads: 0,
            verify_on_load: true,
            prompt_cache: true,
            preload: true,
            keep_alive_secs: 0,
            max_memory_mb: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind. A non-loopback address exposes the gateway.
    pub bind: String,
    /// TCP port.
    pub port: u16,
    /// Largest accepted request body for JSON endpoints, in bytes.
    pub body_limit_bytes: usize,
    /// How long in-flight requests and streams may run after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Interval of SSE keep-alive comments on idle streams.
    pub sse_keepalive_secs: u64,
    /// Allowed CORS origins; `["*"]` allows any.
    pub cors_origins: Vec<String>,
    /// Longest wait for a request's head (request line and headers). On
    /// HTTP/1 it also bounds how long a kept-alive connection waits for its
    /// next request.
    pub header_read_timeout_secs: u64,
    /// Longest time to receive a whole request body, counted from its head.
    pub body_read_timeout_secs: u64,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout_secs: u64,
    /// A response write that cannot make progress for this long (the client
    /// stopped reading) closes the connection; a stream on it is cut and settled.
    pub write_timeout_secs: u64,
    /// Most client connections open at once; beyond it the listener stops
    /// accepting until one closes (new clients wait in the kernel's backlog).
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1".into(),
            port: 8088,
            body_limit_bytes: 4 * 1024 * 1024,
            shutdown_grace_secs: 30,
            sse_keepalive_secs: 15,
            cors_origins: vec!["*".into()],
            header_read_timeout_secs: 30,
            body_read_timeout_secs: 60,
            idle_timeout_secs: 60,
            write_timeout_secs: 30,
            max_connections: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// How candidates for a model are ordered.
    pub strategy: Strategy,
    /// Extra attempts on the same provider for retryable errors.
    pub max_retries: u32,
    /// First backoff delay, doubled each retry, with full jitter.
    pub retry_base_ms: u64,
    /// Largest backoff delay.
    pub retry_max_ms: u64,
    /// An upstream `Retry-After` longer than this moves on to the next
    /// provider instead of waiting. Also caps the `Retry-After` sent to clients.
    pub retry_after_cap_secs: u64,
    /// What to do with a parameter the chosen provider cannot take.
    pub unsupported_params: UnsupportedParamAction,
    /// A lowest-latency sample older than this is stale; the provider is explored again.
    pub latency_stale_secs: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            strategy: Strategy::Priority,
            max_retries: 1,
            retry_base_ms: 100,
            retry_max_ms: 2_000,
            retry_after_cap_secs: 5,
            unsupported_params: UnsupportedParamAction::Drop,
            latency_stale_secs: 60,
        }
    }
}

impl RoutingConfig {
    pub fn retry_after_cap(&self) -> Duration {
        Duration::from_secs(self.retry_after_cap_secs)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    pub consecutive_failures: u32,
    /// Failure rate over the last `window` calls that opens the circuit.
    pub failure_rate: f64,
    /// Calls remembered for the failure rate.
    pub window: u32,
    /// Fewest calls in the window before the rate is judged.
    pub min_calls: u32,
    /// How long an open circuit stays open before a half-open probe.
    pub open_secs: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { consecutive_failures: 5, failure_rate: 0.5, window: 20, min_calls: 10, open_secs: 30 }
    }
}

/// `[cache]`: answers to identical deterministic requests are served again
/// without calling a provider.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    /// How long an answer stays servable.
    pub ttl_secs: u64,
    /// Most answers kept; the least recently used go first.
    pub max_entries: usize,
    /// Most bytes of answers kept (their JSON size).
    pub max_bytes: usize,
    /// Who shares cached answers: each key only (default), the keys of one
    /// team, or every caller. A hit also tells its caller that someone in
    /// the scope sent the same prompt, so wider scopes share more than answers.
    pub scope: CacheScope,
}

/// Which callers may be answered from each other's cached answers.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    #[default]
    Key,
    Team,
    Global,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enabled: true, ttl_secs: 300, max_entries: 1000, max_bytes: 64 << 20, scope: CacheScope::Key }
    }
}

/// `[audio]`: limits of the speech endpoints.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    /// Largest upload to `/v1/audio/transcriptions` and `/translations`
    /// (OpenAI's limit: 25 MB); larger gets 413.
    pub max_upload_bytes: usize,
    /// Longest audio accepted, in seconds (checked while decoding).
    pub max_duration_secs: u64,
    /// Longest `input` of `/v1/audio/speech`, in characters (OpenAI: 4096).
    pub max_speech_chars: usize,
    /// Uploads decoded at once (each up to ~115 MB of samples for 30 min);
    /// the next ones wait their turn, and past four waiting per slot are
    /// refused with 503.
    pub max_concurrent_decodes: usize,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            max_upload_bytes: 25 * 1024 * 1024,
            max_duration_secs: 1800,
            max_speech_chars: 4096,
            max_concurrent_decodes: 2,
        }
    }
}

/// `[telemetry]`: request spans exported to an OpenTelemetry collector.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP base URL (`http://127.0.0.1:4318`); spans are POSTed as
    /// JSON to `<endpoint>/v1/traces`. Absent: nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Extra headers on every export (a collector's auth token).
    pub otlp_headers: SecretHeaders,
    /// Longest a finished span waits before it is sent.
    pub export_interval_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "hoosh".into(),
            otlp_headers: SecretHeaders::default(),
            export_interval_ms: 1000,
        }
    }
}

/// `[audit]`: the HMAC-SHA256 chain of security-relevant events, kept in
/// `audit.db` in the data directory.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub enabled: bool,
    /// The signing key (hex or raw, at least 32 bytes). `HOOSH_AUDIT_KEY`
    /// wins; with neither, a key is generated once into
    /// `<data_dir>/audit.key` (mode 0600).
    pub key_file: Option<PathBuf>,
    /// Keys the chain was signed with before: when the stored chain ends
    /// under one of them, the gateway writes a `chain.rotate` entry signed
    /// by it, naming the new key, so the two segments stay linked.
    pub previous_key_files: Vec<PathBuf>,
    /// Also record request messages (`inference.content` entries). Off:
    /// entries carry ids, models, tokens and costs, never prompt text.
    pub include_content: bool,
    /// `normal` survives a process crash; `full` also an OS crash (fsync per commit).
    pub durability: AuditDurability,
    /// A signed checkpoint after every this many entries (and at shutdown).
    pub checkpoint_every: u64,
    /// Entries older than this many days are pruned (with a signed
    /// `chain.prune` record) once an hour; 0 keeps everything.
    pub retention_days: u32,
    /// Most `auth.failure` entries per second, from all sources together;
    /// more are counted and summarised in one `auth.failure.suppressed`
    /// entry a minute, so a key-guessing flood cannot fill the disk.
    pub max_auth_failures_per_sec: u32,
    /// Most `auth.failure` entries per source (an IPv4 address, an IPv6 /64)
    /// per minute; more are counted into the same summary, so one client
    /// cannot crowd the others out of the record.
    pub max_auth_failures_per_source_per_min: u32,
    /// Entries waiting for the audit writer at which the gateway stops
    /// admitting requests (503 with `Retry-After`) until it catches up: the
    /// chain never drops an entry, so the backlog is bounded by refusing work.
    pub max_backlog: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            key_file: None,
            previous_key_files: Vec::new(),
            include_content: false,
            durability: AuditDurability::Normal,
            checkpoint_every: 1000,
            retention_days: 0,
            max_auth_failures_per_sec: 100,
            max_auth_failures_per_source_per_min: 20,
            max_backlog: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuditDurability {
    #[default]
    Normal,
    Full,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Seconds between probes; 0 turns probing off.
    pub interval_secs: u64,
    /// Deadline of one probe.
    pub timeout_secs: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { interval_secs: 30, timeout_secs: 5 }
    }
}

/// One upstream. `type` picks the wire family and preset defaults.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name; also usable as a model prefix (`name/model`).
    pub name: String,
    /// Preset: openai, azure, deepseek, groq, xai, openrouter, mistral,
    /// together, fireworks, lmstudio, localai, llamacpp, vllm,
    /// openai-compatible, anthropic, ollama, gemini.
    #[serde(rename = "type")]
    pub kind: String,
    /// Base URL; the preset's when absent.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Env var holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// File holding the API key (trimmed).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Model globs this provider serves (`*`, `?`, `[ab]` anywhere); the preset's when absent.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Lower is tried first.
    #[serde(default = "default_priority")]
    pub priority: i32,
    /// Share for the `weighted` strategy.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// `nearby` (a server on this machine or network: wins ties, priced at
    /// zero) or `remote`; the preset's when absent. `in_process` is the
    /// built-in `local` provider's alone.
    #[serde(default)]
    pub placement: Option<Placement>,
    /// The retired `local = true|false` (it meant both "in this process"
    /// and "on this network"): any value is refused, naming `placement`.
    #[serde(default, rename = "local")]
    retired_local: RetiredLocal,
    /// Set false to keep the provider configured but out of routing.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Extra headers sent upstream (e.g. OpenRouter attribution).
    #[serde(default)]
    pub headers: SecretHeaders,
    /// Azure OpenAI `api-version`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Connect timeout.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Time allowed until the first byte of the answer.
    #[serde(default = "default_first_byte_timeout")]
    pub first_byte_timeout_secs: u64,
    /// Largest gap between two chunks of a stream.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Deadline of a whole non-streaming call.
    #[serde(default = "default_total_timeout")]
    pub total_timeout_secs: u64,
    /// Longest a stream may last, from the request to its last chunk: an
    /// upstream that keeps sending and never ends is cut here.
    #[serde(default = "default_stream_timeout")]
    pub stream_timeout_secs: u64,
}

/// Where `local` stood in a provider: absent it is nothing, present it is a
/// parse error that names its replacement (and, through the TOML error, the
/// file and line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RetiredLocal;

impl<'de> Deserialize<'de> for RetiredLocal {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "`local` was replaced by `placement = \"nearby\"` (a server on this machine or network: wins ties, \
             priced at zero) or `placement = \"remote\"`",
        ))
    }
}

fn default_priority() -> i32 {
    10
}
fn default_weight() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_first_byte_timeout() -> u64 {
    60
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_total_timeout() -> u64 {
    600
}
fn default_stream_timeout() -> u64 {
    3600
}

impl ProviderConfig {
    /// A provider with every optional field at its default.
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> Self {
        ProviderConfig {
            name: name.into(),
            kind: kind.into(),
            base_url: None,
            api_key_env: None,
            api_key_file: None,
            models: None,
            priority: default_priority(),
            weight: default_weight(),
            placement: None,
            retired_local: RetiredLocal,
            enabled: true,
            headers: SecretHeaders::default(),
            api_version: None,
            connect_timeout_secs: default_connect_timeout(),
            first_byte_timeout_secs: default_first_byte_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            total_timeout_secs: default_total_timeout(),
            stream_timeout_secs: default_stream_timeout(),
        }
    }

    /// Refuses `placement = "in_process"`: only the gateway builds an
    /// in-process provider, and a reload would keep such an entry forever.
    pub fn check_placement(&self) -> Result<(), ConfigError> {
        if self.placement == Some(Placement::InProcess) {
            return Err(ConfigError::Invalid(format!(
                "provider `{}`: placement = \"in_process\" is reserved for the built-in `local` provider \
                 ([local]); use \"nearby\" or \"remote\"",
                self.name
            )));
        }
        Ok(())
    }

    /// Reads the API key from the env var or file this provider names;
    /// `None` when the named env var is unset. An unreadable file is an error.
    pub fn resolve_api_key(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(var) = &self.api_key_env {
            // An unset variable is not fatal: the provider stays configured
            // (its health probe reports it) so one missing key does not stop
            // a gateway that serves many providers. The caller warns.
            return Ok(std::env::var(var)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(Secret::from));
        }
        if let Some(path) = &self.api_key_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "provider `{}`: cannot read api_key_file {}: {e}",
                    self.name,
                    path.display()
                ))
            })?;
            return Ok(Some(Secret::new(text.trim())));
        }
        Ok(None)
    }
}

impl Config {
    /// Parses TOML text; `origin` names the file in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.to_owned(), message: e.to_string() })
    }

    /// Reads and parses a file (no validation).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Checks what the types cannot — unique names, valid globs, alias
    /// targets that exist, sane numbers — and returns what it had to build
    /// to check (the price table), so the program runs on exactly what was
    /// validated and never resolves anything twice or falls back.
    pub fn validate(&self) -> Result<Resolved, ConfigError> {
        self.state.validate().map_err(ConfigError::Invalid)?;
        if self.audio.max_upload_bytes < 1024 || self.audio.max_duration_secs == 0 || self.audio.max_speech_chars == 0 {
            return Err(ConfigError::Invalid(
                "audio: max_upload_bytes must be at least 1024, max_duration_secs and max_speech_chars at least 1"
                    .into(),
            ));
        }
        if let Some(url) = &self.telemetry.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "telemetry.otlp_endpoint `{url}` must start with http:// or https://"
            )));
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            if p.name.is_empty() || p.name.contains('/') {
                return Err(ConfigError::Invalid(format!(
                    "providers[{i}].name `{}` must be non-empty and contain no `/`",
                    p.name
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!("providers[{i}].name `{}` is used twice", p.name)));
            }
            if p.api_key_env.is_some() && p.api_key_file.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "provider `{}`: set api_key_env or api_key_file, not both",
                    p.name
                )));
            }
            for g in p.models.iter().flatten() {
                glob::Pattern::new(g).map_err(|e| {
                    ConfigError::Invalid(format!("provider `{}`: model pattern `{g}` is not a valid glob: {e}", p.name))
                })?;
            }
            if let Some(url) = &p.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::Invalid(format!(
                    "provider `{}`: base_url `{url}` must start with http:// or https://",
                    p.name
                )));
            }
            if p.weight == 0 {
                return Err(ConfigError::Invalid(format!("provider `{}`: weight must be at least 1", p.name)));
            }
            p.check_placement()?;
        }
        for (alias, targets) in &self.model_aliases {
            if targets.is_empty() {
                return Err(ConfigError::Invalid(format!("model_aliases.{alias} has no targets")));
            }
            for t in targets {
                let Some((provider, model)) = t.split_once('/') else {
                    return Err(ConfigError::Invalid(format!(
                        "model_aliases.{alias}: target `{t}` must be `provider/model`"
                    )));
                };
                if model.is_empty() || !names.contains(provider) {
                    return Err(ConfigError::Invalid(format!(
                        "model_aliases.{alias}: target `{t}` names no configured provider"
                    )));
                }
            }
        }
        let b = &self.circuit_breaker;
        if !(0.0..=1.0).contains(&b.failure_rate) || b.window == 0 || b.consecutive_failures == 0 {
            return Err(ConfigError::Invalid(
                "circuit_breaker: failure_rate must be in [0,1], window and consecutive_failures at least 1".into(),
            ));
        }
        if self.local.max_sequences == 0 || self.local.context_per_sequence < 64 {
            return Err(ConfigError::Invalid(
                "local: max_sequences must be at least 1 and context_per_sequence at least 64".into(),
            ));
        }
        self.governance.validate().map_err(ConfigError::Invalid)?;
        let pricing = crate::pricing::Pricing::with_overrides(&self.pricing)
            .map_err(|e| ConfigError::Invalid(format!("pricing: {e}")))?;
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid("server.body_limit_bytes must be at least 1024".into()));
        }
        let s = &self.server;
        let timers = [
            ("header_read_timeout_secs", s.header_read_timeout_secs),
            ("body_read_timeout_secs", s.body_read_timeout_secs),
            ("idle_timeout_secs", s.idle_timeout_secs),
            ("write_timeout_secs", s.write_timeout_secs),
        ];
        if let Some((name, _)) = timers.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!("server.{name} must be at least 1")));
        }
        if self.audio.max_concurrent_decodes == 0 {
            return Err(ConfigError::Invalid("audio.max_concurrent_decodes must be at least 1".into()));
        }
        if s.max_connections == 0 {
            return Err(ConfigError::Invalid("server.max_connections must be at least 1".into()));
        }
        Ok(Resolved { pricing })
    }
}

/// What [`Config::validate`] resolved: the parts the program runs on.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The shipped price table with the config's `[[pricing]]` rows first.
    pub pricing: crate::pricing::Pricing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_defaults() {
        let c = Config::from_toml("", "t").unwrap();
        assert_eq!(c.server.port, 8088);
        assert_eq!(c.server.bind, "127.0.0.1");
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Config::from_toml("[server]\nport = 1\nprot = 2\n", "hoosh.toml").unwrap_err().to_string();
        assert!(err.contains("prot"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("hoosh.toml"), "{err}");
    }

    #[test]
    fn alias_to_missing_provider_is_invalid() {
        let c =
            Config::from_toml("[[providers]]\nname='a'\ntype='openai'\n[model_aliases]\nfast=['b/x']\n", "t").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("fast") && err.contains("b/x"), "{err}");
    }

    #[test]
    fn bad_glob_is_invalid() {
        let c = Config::from_toml("[[providers]]\nname='a'\ntype='openai'\nmodels=['gpt-[']\n", "t").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("gpt-["));
    }

    #[test]
    fn placement_takes_nearby_and_remote_and_refuses_in_process() {
        let c = Config::from_toml(
            "[[providers]]\nname='box'\ntype='vllm'\nbase_url='http://10.0.0.5:8000/v1'\nplacement='remote'\n\
             [[providers]]\nname='gpu'\ntype='openai-compatible'\nbase_url='http://10.0.0.6/v1'\nplacement='nearby'\n",
            "t",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.providers[0].placement, Some(Placement::Remote));
        assert_eq!(c.providers[1].placement, Some(Placement::Nearby));

        let c =
            Config::from_toml("[[providers]]\nname='sneaky'\ntype='ollama'\nplacement='in_process'\n", "t").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("sneaky") && err.contains("placement") && err.contains("in_process"), "{err}");
    }

    #[test]
    fn retired_local_key_is_refused_with_its_replacement() {
        for value in ["true", "false"] {
            let text = format!("[[providers]]\nname='ollama'\ntype='ollama'\nlocal = {value}\n");
            let err = Config::from_toml(&text, "hoosh.toml").unwrap_err().to_string();
            assert!(err.contains("`local` was replaced by `placement = \"nearby\"`"), "{err}");
            assert!(err.contains("line 4") && err.contains("hoosh.toml"), "{err}");
        }
        // Absent, it is no field at all.
        let c = Config::from_toml("[[providers]]\nname='o'\ntype='ollama'\n", "t").unwrap();
        assert_eq!(c.providers[0], ProviderConfig::new("o", "ollama"));
    }

    #[test]
    fn duplicate_names_are_invalid() {
        let c =
            Config::from_toml("[[providers]]\nname='a'\ntype='openai'\n[[providers]]\nname='a'\ntype='groq'\n", "t")
                .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("used twice"));
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    /// The documented example must stay a valid config.
    #[test]
    fn example_config_parses_and_validates() {
        let text = include_str!("../../../config/hoosh.example.toml");
        let c = Config::from_toml(text, "config/hoosh.example.toml").unwrap();
        c.validate().unwrap();
        assert!(c.providers.len() >= 5);
        assert_eq!(c.model_aliases["fast"].len(), 2);
        assert_eq!(c.server, ServerConfig::default(), "the example documents the defaults");
        assert_eq!(c.routing, RoutingConfig::default());
        assert_eq!(c.circuit_breaker, BreakerConfig::default());
        assert_eq!(c.health, HealthConfig::default());
        assert_eq!(c.local, LocalConfig::default());
        assert_eq!(c.governance, GovernanceConfig::default());
        assert_eq!(c.cache, CacheConfig::default());
    }
}
