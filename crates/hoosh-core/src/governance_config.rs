//! `[governance]`: who may call the gateway (keys, teams, scopes), how much
//! they may use (token and dollar budgets, rate limits), and where usage is
//! recorded. Part of the strict config tree of [`crate::config`]; turned
//! into live state by the server at start-up.
//!
//! Keys and teams declared here are for simple setups; the admin API creates
//! and edits the same things at run time (stored in the data directory).

use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::Secret;

/// How often a budget starts over. Windows are calendar-aligned in UTC.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Hourly,
    Daily,
    /// Weeks start on Monday.
    Weekly,
    /// Months start on the 1st.
    Monthly,
    #[default]
    Never,
}

/// What to do with a model that has no price when a dollar budget applies.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnpricedPolicy {
    #[default]
    Refuse,
    Allow,
}

/// A token pool and/or a dollar budget.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Prompt + completion tokens per period.
    pub tokens: Option<u64>,
    /// US dollars per period, priced by the pricing table.
    pub usd: Option<f64>,
    #[serde(default)]
    pub period: BudgetPeriod,
}

/// Requests per minute, tokens per minute, requests in flight. (Written
/// inline in keys, teams and limits: serde's `flatten` would disable the
/// unknown-key check.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub max_concurrency: Option<u32>,
}

/// A virtual key declared in the config file. Its secret is never inlined:
/// it comes from an environment variable, or only its SHA-256 is given.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Unique; shown in usage reports.
    pub name: String,
    /// Environment variable holding the key (`hk-…` or any high-entropy string).
    pub key_env: Option<String>,
    /// Hex SHA-256 of the key, for configs that must not name the secret.
    pub key_sha256: Option<String>,
    pub team: Option<String>,
    /// Model globs the key may use; every model when empty.
    #[serde(default)]
    pub models: Vec<String>,
    /// `inference` (default), `admin`, `read_usage`.
    #[serde(default)]
    pub scopes: Vec<String>,
    pub budget: Option<BudgetConfig>,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub max_concurrency: Option<u32>,
}

/// A team: budgets and limits shared by all of its keys.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub name: String,
    pub budget: Option<BudgetConfig>,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub max_concurrency: Option<u32>,
}

/// Limits on a model (glob) or a provider, whoever calls.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetLimitsConfig {
    /// A model glob (`gpt-4o*`): rpm, tpm and max_concurrency apply.
    /// Or a provider name (`provider`): rpm applies (a provider over it is
    /// skipped; the next candidate is tried).
    pub model: Option<String>,
    pub provider: Option<String>,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub max_concurrency: Option<u32>,
}

macro_rules! limits_getter {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn limits(&self) -> LimitsConfig {
                LimitsConfig { rpm: self.rpm, tpm: self.tpm, max_concurrency: self.max_concurrency }
            }
        }
    )*};
}
limits_getter!(KeyConfig, TeamConfig, TargetLimitsConfig);

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// Directory of the SQLite usage ledger and key store
    /// (`hoosh.db`); `--data-dir`, else `~/.local/share/hoosh`, when absent.
    pub data_dir: Option<PathBuf>,
    /// Keep keys and usage in memory only (nothing survives a restart).
    pub in_memory: bool,
    /// Environment variable holding the admin (master) key.
    pub master_key_env: String,
    /// File holding the admin key, read when the variable is unset.
    pub master_key_file: Option<PathBuf>,
    /// Paths served without a key.
    pub public_paths: Vec<String>,
    /// Local models and models priced at zero do not count against dollar
    /// budgets (they still count against token budgets).
    pub free_models_exempt: bool,
    /// The output cap of a request that sets none: reserved per choice,
    /// and sent upstream so the provider cannot generate past it.
    pub default_max_tokens: u32,
    /// A model with no price, asked for by a caller under a dollar budget:
    /// `refuse` (default: it could spend without limit) or `allow` (it is
    /// charged $0 and counted in `hoosh_unpriced_requests_total`).
    pub unpriced: UnpricedPolicy,
    /// Ledger rows waiting to be written past which new requests are
    /// refused (503, `Retry-After`) until the writer catches up: rows of
    /// admitted requests are never dropped, so the queue is bounded by
    /// refusing work rather than by losing it.
    pub max_ledger_backlog: usize,
    /// The budget every request counts against, whoever sends it.
    pub budget: Option<BudgetConfig>,
    pub keys: Vec<KeyConfig>,
    pub teams: Vec<TeamConfig>,
    /// Per-model and per-provider limits.
    pub limits: Vec<TargetLimitsConfig>,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        GovernanceConfig {
            data_dir: None,
            in_memory: false,
            master_key_env: "HOOSH_MASTER_KEY".into(),
            master_key_file: None,
            public_paths: vec!["/".into(), "/health".into(), "/ready".into(), "/metrics".into()],
            free_models_exempt: true,
            default_max_tokens: 4096,
            unpriced: UnpricedPolicy::Refuse,
            max_ledger_backlog: 10_000,
            budget: None,
            keys: Vec::new(),
            teams: Vec::new(),
            limits: Vec::new(),
        }
    }
}

impl GovernanceConfig {
    /// The admin key from the environment or the named file, if any.
    pub fn master_key(&self) -> Result<Option<Secret>, String> {
        if let Ok(k) = std::env::var(&self.master_key_env)
            && !k.trim().is_empty()
        {
            return Ok(Some(Secret::new(k.trim())));
        }
        if let Some(path) = &self.master_key_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("governance.master_key_file {}: {e}", path.display()))?;
            let key = text.lines().next().unwrap_or("").trim();
            if key.is_empty() {
                return Err(format!("governance.master_key_file {} is empty", path.display()));
            }
            return Ok(Some(Secret::new(key)));
        }
        Ok(None)
    }

    /// Checks names, scopes, globs and numbers.
    pub fn validate(&self) -> Result<(), String> {
        let budget = |what: &str, b: &Option<BudgetConfig>| -> Result<(), String> {
            if let Some(b) = b {
                if b.tokens.is_none() && b.usd.is_none() {
                    return Err(format!("{what}.budget sets neither tokens nor usd"));
                }
                if b.usd.is_some_and(|u| !u.is_finite() || u < 0.0) {
                    return Err(format!("{what}.budget.usd must be a number >= 0"));
                }
            }
            Ok(())
        };
        let limits = |what: &str, l: &LimitsConfig| -> Result<(), String> {
            if l.rpm == Some(0) || l.tpm == Some(0) || l.max_concurrency == Some(0) {
                return Err(format!("{what}: rpm, tpm and max_concurrency must be at least 1 when set"));
            }
            Ok(())
        };
        budget("governance", &self.budget)?;
        if self.default_max_tokens == 0 {
            return Err("governance.default_max_tokens must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        for k in &self.keys {
            let what = format!("governance.keys `{}`", k.name);
            if k.name.is_empty() || !names.insert(k.name.as_str()) {
                return Err(format!("{what}: names must be non-empty and unique"));
            }
            match (&k.key_env, &k.key_sha256) {
                (Some(_), None) => {}
                (None, Some(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {}
                (None, Some(_)) => return Err(format!("{what}: key_sha256 must be 64 hex digits")),
                _ => return Err(format!("{what}: set exactly one of key_env, key_sha256")),
            }
            for s in &k.scopes {
                if !matches!(s.as_str(), "inference" | "admin" | "read_usage" | "read-usage") {
                    return Err(format!("{what}: unknown scope `{s}` (inference, admin, read_usage)"));
                }
            }
            for g in &k.models {
                glob::Pattern::new(g).map_err(|e| format!("{what}: model glob `{g}`: {e}"))?;
            }
            budget(&what, &k.budget)?;
            limits(&what, &k.limits())?;
        }
        let mut teams = std::collections::HashSet::new();
        for t in &self.teams {
            let what = format!("governance.teams `{}`", t.name);
            if t.name.is_empty() || !teams.insert(t.name.as_str()) {
                return Err(format!("{what}: names must be non-empty and unique"));
            }
            budget(&what, &t.budget)?;
            limits(&what, &t.limits())?;
        }
        for (i, l) in self.limits.iter().enumerate() {
            let what = format!("governance.limits[{i}]");
            match (&l.model, &l.provider) {
                (Some(g), None) => {
                    glob::Pattern::new(g).map_err(|e| format!("{what}: model glob `{g}`: {e}"))?;
                }
                (None, Some(_)) if l.tpm.is_none() && l.max_concurrency.is_none() && l.rpm.is_some() => {}
                (None, Some(_)) => return Err(format!("{what}: a provider limit takes `rpm` only")),
                _ => return Err(format!("{what}: set exactly one of model, provider")),
            }
            limits(&what, &l.limits())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GovernanceConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn keys_teams_and_limits_parse() {
        let g = parse(
            r#"
            budget = { usd = 100.0, period = "monthly" }
            [[keys]]
            name = "ci"
            key_env = "CI_KEY"
            team = "research"
            models = ["gpt-4o*"]
            rpm = 60
            budget = { tokens = 100000, period = "daily" }
            [[teams]]
            name = "research"
            tpm = 50000
            [[limits]]
            provider = "openai"
            rpm = 3000
            "#,
        );
        g.validate().unwrap();
        assert_eq!(g.keys[0].limits().rpm, Some(60));
        assert_eq!(g.keys[0].budget.as_ref().unwrap().period, BudgetPeriod::Daily);
        assert_eq!(g.teams[0].tpm, Some(50000));
        assert_eq!(g.budget.as_ref().unwrap().usd, Some(100.0));
    }

    #[test]
    fn mistakes_are_named() {
        let bad = [
            ("[[keys]]\nname = 'a'\n", "exactly one of key_env"),
            ("[[keys]]\nname = 'a'\nkey_sha256 = 'abc'\n", "64 hex"),
            ("[[keys]]\nname = 'a'\nkey_env = 'K'\nscopes = ['root']\n", "unknown scope"),
            ("[[keys]]\nname = 'a'\nkey_env = 'K'\nrpm = 0\n", "at least 1"),
            ("[[keys]]\nname = 'a'\nkey_env = 'K'\n[[keys]]\nname = 'a'\nkey_env = 'L'\n", "unique"),
            ("budget = { period = 'daily' }\n", "neither tokens nor usd"),
            ("[[limits]]\nrpm = 5\n", "exactly one of model, provider"),
            ("[[limits]]\nprovider = 'p'\ntpm = 5\n", "rpm` only"),
        ];
        for (text, want) in bad {
            let err = parse(text).validate().unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(toml::from_str::<GovernanceConfig>("budget = { tokens = 1, period = 'yearly' }").is_err());
        let typo = toml::from_str::<GovernanceConfig>("[[teams]]\nname = 't'\nrmp = 5\n").unwrap_err();
        assert!(typo.to_string().contains("rmp"), "{typo}");
    }
}
