//! `[governance]` config → the live [`Governance`] the server holds: the
//! store (SQLite file or memory), keys and teams declared in the config
//! (upserted on every start: the file is their source of truth), the global
//! budget, per-model and per-provider limits; and whether the gateway runs
//! open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hoosh_core::config::{BudgetConfig, BudgetPeriod, GovernanceConfig, LimitsConfig};
use hoosh_core::executor::AttemptGate;
use hoosh_core::router::ProviderEntry;
use hoosh_core::{ProviderError, Secret};
use hoosh_governance::{
    BudgetSpec, Clock, Governance, KeyHash, KeyPatch, KeyRecord, LedgerOptions, Limit, LimitKey, Limits, MemoryStore,
    Period, Scope, SqliteStore, Store, SystemClock, Team, hash_key,
};

/// File name of the ledger and key store inside the data directory.
pub const DB_FILE: &str = "hoosh.db";

/// The governance state the server holds. The settings the request path
/// reads (`public_paths`, `default_max_tokens`, …) come from the live config,
/// so a reload changes them.
pub struct Gov {
    pub inner: Arc<Governance>,
    /// No keys and no admin key: every caller is let in as `anonymous`.
    open: AtomicBool,
    /// Where the ledger lives (`None` = memory, or PostgreSQL in a cluster).
    pub db_path: Option<PathBuf>,
    /// The shared state of a cluster (`[state] backend = "cluster"`).
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl std::fmt::Debug for Gov {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gov").field("open", &self.is_open()).field("db_path", &self.db_path).finish_non_exhaustive()
    }
}

impl Gov {
    /// Governance that lets nobody in (no keys, not open), kept in memory.
    pub fn closed() -> Gov {
        // An empty in-memory store has nothing to load and cannot fail.
        #[allow(clippy::expect_used)]
        let inner = Governance::open(Arc::new(MemoryStore::new()), None, SystemClock.now_ms())
            .expect("empty in-memory governance");
        Gov { inner: Arc::new(inner), open: AtomicBool::new(false), db_path: None, cluster: Default::default() }
    }

    /// The cluster this instance belongs to, if any.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.get()
    }

    /// Joins a cluster (once, at start).
    pub fn set_cluster(&self, cluster: crate::cluster::Cluster) {
        let _ = self.cluster.set(Arc::new(cluster));
    }

    /// Running open: no keys and no admin key, every caller is `anonymous`.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Applies a reloaded `[governance]`: config keys and teams upserted
    /// (keys dropped from the file are revoked), the admin key, global
    /// budget and model limits replaced. Refused — with nothing changed —
    /// when a key's secret cannot be resolved, or when the result would let
    /// anyone in on a gateway that required keys.
    pub fn reapply(&self, cfg: &GovernanceConfig) -> Result<(), String> {
        let plan = Plan::new(cfg, &self.inner.keys().list(), self.inner.clock().now_ms())?;
        let would_open = plan.master.is_none() && plan.keys.is_empty() && self.inner.keys().is_empty();
        if would_open && !self.is_open() {
            return Err(
                "the new config has no keys and no admin key, which would let anyone in; restart to run open".into()
            );
        }
        plan.apply(&self.inner)?;
        match &plan.master {
            Some(m) => self.inner.keys().set_master(m.expose()),
            None => self.inner.keys().clear_master(),
        }
        self.open.store(self.inner.keys().is_empty() && plan.master.is_none(), Ordering::Relaxed);
        Ok(())
    }
}

/// Ids of keys declared in the config: `cfg_<name>`.
const CFG_PREFIX: &str = "cfg_";

/// What a `[governance]` section asks for, resolved (secrets read, digests
/// computed) before anything is changed.
struct Plan {
    keys: Vec<KeyRecord>,
    /// Config keys stored earlier but no longer in the file.
    dropped: Vec<String>,
    teams: Vec<Team>,
    master: Option<Secret>,
    budget: Option<BudgetSpec>,
    model_limits: Vec<(String, Limits)>,
}

impl Plan {
    fn new(cfg: &GovernanceConfig, stored: &[KeyRecord], now: i64) -> Result<Plan, String> {
        let stored: HashMap<&str, &KeyRecord> = stored.iter().map(|k| (k.id.as_str(), k)).collect();
        let mut keys = Vec::with_capacity(cfg.keys.len());
        for k in &cfg.keys {
            let hash = match (&k.key_env, &k.key_sha256) {
                (Some(var), _) => {
                    let secret = std::env::var(var).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                        format!("governance.keys `{}`: environment variable {var} is not set", k.name)
                    })?;
                    hash_key(secret.trim())
                }
                (None, Some(hex)) => KeyHash::from_hex(hex)
                    .ok_or_else(|| format!("governance.keys `{}`: key_sha256 must be 64 hex digits", k.name))?,
                (None, None) => return Err(format!("governance.keys `{}`: no key_env or key_sha256", k.name)),
            };
            let id = format!("{CFG_PREFIX}{}", k.name);
            let scopes = k
                .scopes
                .iter()
                .map(|s| match s.as_str() {
                    "admin" => Scope::Admin,
                    "read_usage" | "read-usage" => Scope::ReadUsage,
                    _ => Scope::Inference,
                })
                .collect::<Vec<_>>();
            let before = stored.get(id.as_str());
            keys.push(KeyRecord {
                id,
                name: k.name.clone(),
                hash,
                prefix: "(config)".into(),
                team: k.team.clone(),
                models: k.models.clone(),
                scopes: if scopes.is_empty() { vec![Scope::Inference] } else { scopes },
                expires_at: None,
                metadata: Default::default(),
                // Revoked with the admin API (or dropped from the file) stays revoked.
                enabled: before.is_none_or(|s| s.enabled && !s.metadata.contains_key(DROPPED)),
                created_at: before.map_or(now, |s| s.created_at),
                limits: limits(k.limits()),
                budget: k.budget.as_ref().map(budget),
            });
        }
        let declared: std::collections::HashSet<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let dropped = stored
            .values()
            .filter(|k| k.id.starts_with(CFG_PREFIX) && !declared.contains(k.id.as_str()) && k.enabled)
            .map(|k| k.id.clone())
            .collect();
        let teams = cfg
            .teams
            .iter()
            .map(|t| Team {
                name: t.name.clone(),
                budget: t.budget.as_ref().map(budget),
                limits: limits(t.limits()),
                metadata: Default::default(),
            })
            .collect();
        let model_limits =
            cfg.limits.iter().filter_map(|l| Some((l.model.clone()?, limits(l.limits())))).collect::<Vec<_>>();
        Ok(Plan {
            keys,
            dropped,
            teams,
            master: cfg.master_key()?,
            budget: cfg.budget.as_ref().map(budget),
            model_limits,
        })
    }

    fn apply(&self, gov: &Governance) -> Result<(), String> {
        let now = gov.clock().now_ms();
        for k in &self.keys {
            let mut record = k.clone();
            // A key that comes back to the file after being dropped is enabled again.
            if let Some(stored) = gov.keys().get(&record.id)
                && stored.metadata.contains_key(DROPPED)
            {
                record.enabled = true;
            }
            gov.keys().put(record).map_err(|e| e.to_string())?;
        }
        for id in &self.dropped {
            let mut metadata = gov.keys().get(id).map(|k| k.metadata).unwrap_or_default();
            metadata.insert(DROPPED.into(), serde_json::Value::Bool(true));
            let patch = KeyPatch { enabled: Some(false), metadata: Some(metadata), ..KeyPatch::default() };
            gov.keys().update(id, patch).map_err(|e| e.to_string())?;
        }
        for t in &self.teams {
            gov.teams().put(t.clone()).map_err(|e| e.to_string())?;
        }
        // Only a configured global budget replaces the stored one: one set with
        // the admin API survives restarts of a config that names none.
        if let Some(b) = self.budget {
            gov.set_global_budget(Some(b), now).map_err(|e| e.to_string())?;
        }
        gov.clear_model_limits();
        for (glob, l) in &self.model_limits {
            gov.set_model_limits(glob, *l).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Metadata mark of a config key revoked because it left the config file.
const DROPPED: &str = "removed_from_config";

/// `~/.local/share/hoosh` (XDG data home when set).
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("hoosh"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/hoosh"))
}

/// The data directory (ledger, keys, audit chain): `--data-dir`, else
/// `governance.data_dir`, else [`default_data_dir`].
pub fn data_dir(cfg: &GovernanceConfig, arg: Option<&Path>) -> Result<PathBuf, String> {
    arg.map(Path::to_path_buf)
        .or_else(|| cfg.data_dir.clone())
        .or_else(default_data_dir)
        .ok_or_else(|| "no data directory: set governance.data_dir or --data-dir".to_owned())
}

/// Opens governance for `cfg`. `data_dir` (from `--data-dir`) wins over the
/// config's.
pub fn open(cfg: &GovernanceConfig, data_dir: Option<&Path>) -> Result<Gov, String> {
    let (store, db_path): (Arc<dyn Store>, Option<PathBuf>) = if cfg.in_memory {
        (Arc::new(MemoryStore::new()), None)
    } else {
        let dir = self::data_dir(cfg, data_dir)?;
        // Key digests and usage are kept here: owner-only (see `private_fs`).
        hoosh_governance::ensure_private_dir(&dir).map_err(|e| format!("data directory: {e}"))?;
        let path = dir.join(DB_FILE);
        let store = SqliteStore::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        (Arc::new(store), Some(path))
    };
    open_with_store(cfg, store, db_path)
}

/// [`open`] over a given store (tests).
pub fn open_with_store(cfg: &GovernanceConfig, store: Arc<dyn Store>, db_path: Option<PathBuf>) -> Result<Gov, String> {
    open_with_clock(cfg, store, db_path, Arc::new(SystemClock))
}

/// [`open_with_store`] on `clock`: the one clock the whole server reads
/// ([`crate::AppState::now_ms`]); tests pass a `ManualClock` to move time.
pub fn open_with_clock(
    cfg: &GovernanceConfig,
    store: Arc<dyn Store>,
    db_path: Option<PathBuf>,
    clock: Arc<dyn Clock>,
) -> Result<Gov, String> {
    open_with_ledger(cfg, store, db_path, clock, LedgerOptions::default())
}

/// [`open_with_clock`] with the ledger writer's tuning (a cluster that
/// answers only after the commit does not linger before it).
pub fn open_with_ledger(
    cfg: &GovernanceConfig,
    store: Arc<dyn Store>,
    db_path: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    ledger: LedgerOptions,
) -> Result<Gov, String> {
    let now = clock.now_ms();
    let stored = store.load_keys().map_err(|e| e.to_string())?;
    let plan = Plan::new(cfg, &stored, now)?;
    let gov = Governance::open_with(store, plan.master.as_ref().map(|m| m.expose().to_owned()), now, clock, ledger)
        .map_err(|e| e.to_string())?;
    plan.apply(&gov)?;
    let open = gov.keys().is_empty() && plan.master.is_none();
    Ok(Gov { inner: Arc::new(gov), open: AtomicBool::new(open), db_path, cluster: Default::default() })
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
    let clock = Arc::clone(gov.inner.clock());
    Some(Arc::new(move |entry: &ProviderEntry| {
        let Some((key, limit)) = limits.get(entry.name()) else { return Ok(()) };
        match limiter.check_and_take(&[(key.clone(), *limit, 1)], clock.now_ms()) {
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
