//! `[governance]` config → the live [`Governance`] the server holds: the
//! store (SQLite file or memory), keys and teams declared in the config
//! (upserted on every start: the file is their source of truth), the global
//! budget, per-model and per-provider limits; and whether the gateway runs
//! open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hoosh_core::ProviderError;
use hoosh_core::config::{BudgetConfig, BudgetPeriod, GovernanceConfig, LimitsConfig};
use hoosh_core::executor::AttemptGate;
use hoosh_core::router::ProviderEntry;
use hoosh_governance::{
    BudgetSpec, Governance, KeyHash, KeyRecord, Limit, LimitKey, Limits, MemoryStore, Period, Scope, SqliteStore,
    Store, Team, hash_key,
};

/// File name of the ledger and key store inside the data directory.
pub const DB_FILE: &str = "hoosh.db";

/// The governance state and the settings the request path reads.
pub struct Gov {
    pub inner: Arc<Governance>,
    /// No keys and no admin key: every caller is let in as `anonymous`.
    pub open: bool,
    pub public_paths: Vec<String>,
    pub free_models_exempt: bool,
    pub default_max_tokens: u32,
    /// Where the ledger lives (`None` = memory).
    pub db_path: Option<PathBuf>,
}

impl std::fmt::Debug for Gov {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gov").field("open", &self.open).field("db_path", &self.db_path).finish_non_exhaustive()
    }
}

impl Gov {
    /// Governance that lets nobody in (no keys, not open), kept in memory.
    pub fn closed() -> Gov {
        // An empty in-memory store has nothing to load and cannot fail.
        #[allow(clippy::expect_used)]
        let inner = Governance::open(Arc::new(MemoryStore::new()), None, now_ms()).expect("empty in-memory governance");
        Gov {
            inner: Arc::new(inner),
            open: false,
            public_paths: GovernanceConfig::default().public_paths,
            free_models_exempt: true,
            default_max_tokens: GovernanceConfig::default().default_max_tokens,
            db_path: None,
        }
    }
}

/// `~/.local/share/hoosh` (XDG data home when set).
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("hoosh"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/hoosh"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Opens governance for `cfg`. `data_dir` (from `--data-dir`) wins over the
/// config's.
pub fn open(cfg: &GovernanceConfig, data_dir: Option<&Path>) -> Result<Gov, String> {
    let (store, db_path): (Arc<dyn Store>, Option<PathBuf>) = if cfg.in_memory {
        (Arc::new(MemoryStore::new()), None)
    } else {
        let dir = data_dir
            .map(Path::to_path_buf)
            .or_else(|| cfg.data_dir.clone())
            .or_else(default_data_dir)
            .ok_or("no data directory: set governance.data_dir or --data-dir")?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
        let path = dir.join(DB_FILE);
        let store = SqliteStore::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        (Arc::new(store), Some(path))
    };
    open_with_store(cfg, store, db_path)
}

/// [`open`] over a given store (tests).
pub fn open_with_store(cfg: &GovernanceConfig, store: Arc<dyn Store>, db_path: Option<PathBuf>) -> Result<Gov, String> {
    let now = now_ms();
    let stored: std::collections::HashMap<String, KeyRecord> =
        store.load_keys().map_err(|e| e.to_string())?.into_iter().map(|k| (k.id.clone(), k)).collect();
    for k in &cfg.keys {
        let hash = match (&k.key_env, &k.key_sha256) {
            (Some(var), _) => {
                let secret = std::env::var(var)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| format!("governance.keys `{}`: environment variable {var} is not set", k.name))?;
                hash_key(secret.trim())
            }
            (None, Some(hex)) => KeyHash::from_hex(hex)
                .ok_or_else(|| format!("governance.keys `{}`: key_sha256 must be 64 hex digits", k.name))?,
            (None, None) => return Err(format!("governance.keys `{}`: no key_env or key_sha256", k.name)),
        };
        let id = format!("cfg_{}", k.name);
        let scopes = k
            .scopes
            .iter()
            .map(|s| match s.as_str() {
                "admin" => Scope::Admin,
                "read_usage" | "read-usage" => Scope::ReadUsage,
                _ => Scope::Inference,
            })
            .collect::<Vec<_>>();
        let record = KeyRecord {
            id: id.clone(),
            name: k.name.clone(),
            hash,
            prefix: "(config)".into(),
            team: k.team.clone(),
            models: k.models.clone(),
            scopes: if scopes.is_empty() { vec![Scope::Inference] } else { scopes },
            expires_at: None,
            metadata: Default::default(),
            enabled: stored.get(&id).is_none_or(|s| s.enabled),
            created_at: stored.get(&id).map_or(now, |s| s.created_at),
            limits: limits(k.limits()),
            budget: k.budget.as_ref().map(budget),
        };
        store.put_key(&record).map_err(|e| e.to_string())?;
    }
    for t in &cfg.teams {
        let team = Team {
            name: t.name.clone(),
            budget: t.budget.as_ref().map(budget),
            limits: limits(t.limits()),
            metadata: Default::default(),
        };
        store.put_team(&team).map_err(|e| e.to_string())?;
    }
    let master = cfg.master_key()?;
    let has_master = master.is_some();
    let gov = Governance::open(store, master, now).map_err(|e| e.to_string())?;
    // Only a configured global budget replaces the stored one: one set with
    // the admin API survives restarts of a config that names none.
    if let Some(b) = &cfg.budget {
        gov.set_global_budget(Some(budget(b)), now).map_err(|e| e.to_string())?;
    }
    for l in &cfg.limits {
        if let Some(glob) = &l.model {
            gov.set_model_limits(glob, limits(l.limits())).map_err(|e| e.to_string())?;
        }
    }
    let open = gov.keys().is_empty() && !has_master;
    Ok(Gov {
        inner: Arc::new(gov),
        open,
        public_paths: cfg.public_paths.clone(),
        free_models_exempt: cfg.free_models_exempt,
        default_max_tokens: cfg.default_max_tokens,
        db_path,
    })
}

/// Per-provider request limits, checked before every call to a provider (a
/// provider over its limit is skipped; the next candidate is tried).
pub fn provider_gate(cfg: &GovernanceConfig, gov: &Gov) -> Option<AttemptGate> {
    let limits: HashMap<String, (LimitKey, Limit)> = cfg
        .limits
        .iter()
        .filter_map(|l| Some((l.provider.clone()?, l.rpm?)))
        .map(|(name, rpm)| (name.clone(), (LimitKey::provider(&name), Limit::rpm(rpm))))
        .collect();
    if limits.is_empty() {
        return None;
    }
    let limiter = Arc::clone(gov.inner.limits());
    Some(Arc::new(move |entry: &ProviderEntry| {
        let Some((key, limit)) = limits.get(entry.name()) else { return Ok(()) };
        match limiter.check_and_take(&[(key.clone(), *limit, 1)], now_ms()) {
            Ok(_) => Ok(()),
            Err(r) => {
                let msg = format!("the gateway's limit of {} requests per minute is reached", r.limit);
                Err(ProviderError::from_status(429, msg, Some(Duration::from_millis(r.retry_after_ms))).public())
            }
        }
    }))
}

fn limits(l: LimitsConfig) -> Limits {
    Limits { rpm: l.rpm, tpm: l.tpm, max_concurrency: l.max_concurrency }
}

fn budget(b: &BudgetConfig) -> BudgetSpec {
    let period = match b.period {
        BudgetPeriod::Hourly => Period::Hourly,
        BudgetPeriod::Daily => Period::Daily,
        BudgetPeriod::Weekly => Period::Weekly,
        BudgetPeriod::Monthly => Period::Monthly,
        BudgetPeriod::Never => Period::Never,
    };
    BudgetSpec { tokens: b.tokens, usd: b.usd, period }
}
