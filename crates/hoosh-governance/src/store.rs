//! Persistence behind one small synchronous trait, so the logic above it
//! does not care whether rows go to SQLite ([`crate::sqlite`]), memory
//! ([`crate::memory`]) or PostgreSQL (`hoosh-cluster`'s `PgStore`, shared
//! by the instances of a cluster).
//!
//! Synchronous on purpose: every caller is either start-up, an admin action,
//! or the ledger's own writer thread — never a request's hot path — and
//! rusqlite is synchronous anyway.

use serde::{Deserialize, Serialize};

use crate::budget::{BudgetSpec, Budgets, PoolId, nanos_to_usd};
use crate::ledger::UsageRecord;
use crate::principal::{KeyRecord, Team};
use crate::responses::StoredResponse;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A database server (PostgreSQL) refused or could not be reached.
    #[error("database: {0}")]
    Remote(String),
    /// Creating the database file or setting its mode (the message names the path).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("stored record does not parse: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the database has schema version {found}, newer than this build understands ({supported}); upgrade hoosh")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// A bug, not a state: every row gets an id from [`crate::Ledger::append`]
    /// or its admission. Storing id-less rows would collapse them into one.
    #[error("usage row (request_id {request_id:?}) has no id; rows get theirs from Ledger::append")]
    MissingRowId { request_id: String },
}

/// How usage is grouped in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Key,
    Team,
    Model,
    Provider,
}

impl GroupBy {
    /// The ledger column a SQL store groups by.
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Key => "key_id",
            GroupBy::Team => "team",
            GroupBy::Model => "model",
            GroupBy::Provider => "provider",
        }
    }

    pub(crate) fn of(self, row: &UsageRecord) -> Option<&str> {
        match self {
            GroupBy::Key => row.key_id.as_deref(),
            GroupBy::Team => row.team.as_deref(),
            GroupBy::Model => Some(&row.model),
            GroupBy::Provider => row.provider.as_deref(),
        }
    }
}

/// One row of a usage report.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UsageAggregate {
    /// The key id, team, model or provider; `None` for rows without one
    /// (e.g. unauthenticated or no provider reached).
    pub group: Option<String>,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// Exact total of priced rows.
    pub cost_nanos: u64,
    pub cost_usd: f64,
    /// Rows whose model had no price: the cost above leaves them out.
    pub unpriced_requests: u64,
    /// Rows with status ≥ 400 (499 = client closed).
    pub errors: u64,
}

impl UsageAggregate {
    pub(crate) fn add(&mut self, row: &UsageRecord) {
        self.requests += 1;
        self.prompt_tokens = self.prompt_tokens.saturating_add(row.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(row.completion_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(row.cached_tokens);
        match row.cost_nanos {
            Some(n) => self.cost_nanos = self.cost_nanos.saturating_add(n),
            None => self.unpriced_requests += 1,
        }
        self.cost_usd = nanos_to_usd(self.cost_nanos);
        if row.status >= 400 {
            self.errors += 1;
        }
    }
}

/// Refuses a batch holding a row without an id (see [`StoreError::MissingRowId`]).
pub(crate) fn check_row_ids(rows: &[UsageRecord]) -> Result<(), StoreError> {
    match rows.iter().find(|r| r.id.is_empty()) {
        Some(r) => Err(StoreError::MissingRowId { request_id: r.request_id.clone() }),
        None => Ok(()),
    }
}

/// Whether a ledger row counts against `pool`.
pub fn charges(pool: &PoolId, row: &UsageRecord) -> bool {
    match pool {
        PoolId::Global => true,
        PoolId::Team(name) => row.team.as_deref() == Some(name),
        PoolId::Key(id) => row.key_id.as_deref() == Some(id),
    }
}

/// Where keys, teams, budgets and the usage ledger live.
pub trait Store: Send + Sync {
    /// Inserts or replaces by `id`.
    fn put_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// `false` if there was no such key.
    fn delete_key(&self, id: &str) -> Result<bool, StoreError>;
    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;

    /// Inserts or replaces by `name`.
    fn put_team(&self, team: &Team) -> Result<(), StoreError>;
    fn delete_team(&self, name: &str) -> Result<bool, StoreError>;
    fn load_teams(&self) -> Result<Vec<Team>, StoreError>;

    /// Sets a pool's budget; `None` deletes it.
    fn put_budget(&self, pool: &PoolId, spec: Option<&BudgetSpec>) -> Result<(), StoreError>;
    fn load_budgets(&self) -> Result<Vec<(PoolId, BudgetSpec)>, StoreError>;

    /// Appends rows in one transaction; a row whose `id` is already present
    /// is skipped (a retried batch must not count twice). Returns how many
    /// rows were new. A row with an empty `id` fails the whole batch
    /// ([`StoreError::MissingRowId`]). `request_id` is not unique.
    fn append_usage(&self, rows: &[UsageRecord]) -> Result<usize, StoreError>;
    /// Prompt + completion tokens and priced nanos of the rows charging
    /// `pool` with `ts_ms >= from_ms`: what the pool has used in a window.
    fn usage_totals(&self, pool: &PoolId, from_ms: i64) -> Result<(u64, u64), StoreError>;
    /// Rows with `from_ms <= ts_ms < to_ms`, grouped, ordered by group (`None` first).
    fn usage_aggregate(&self, group_by: GroupBy, from_ms: i64, to_ms: i64) -> Result<Vec<UsageAggregate>, StoreError>;
    /// Every row with `from_ms <= ts_ms < to_ms` in time order, one at a time
    /// (exports stream rather than load the whole range).
    fn usage_rows(&self, from_ms: i64, to_ms: i64, visit: &mut dyn FnMut(&UsageRecord)) -> Result<(), StoreError>;

    /// Inserts or replaces a stored Responses answer by `id`.
    fn put_response(&self, r: &StoredResponse) -> Result<(), StoreError>;
    fn get_response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError>;
    /// `false` if there was no such answer.
    fn delete_response(&self, id: &str) -> Result<bool, StoreError>;
    /// Deletes the answers created before `before_ms`; returns how many.
    fn prune_responses(&self, before_ms: i64) -> Result<usize, StoreError>;
}

/// Sets a pool's budget and, when the pool is new or its period changed,
/// restores its usage for the current window from the ledger. (Rows still
/// queued in the ledger writer are not seen; callers that can, flush first.)
pub(crate) fn install_budget(
    budgets: &Budgets,
    store: &dyn Store,
    pool: PoolId,
    spec: Option<BudgetSpec>,
    now: i64,
) -> Result<(), StoreError> {
    let Some(period) = spec.map(|s| s.period) else {
        budgets.remove(&pool);
        return Ok(());
    };
    if budgets.set(pool.clone(), spec) {
        let window_start = period.window_start(now);
        let (tokens, nanos) = store.usage_totals(&pool, window_start)?;
        budgets.rebuild(&pool, tokens, nanos, window_start);
    }
    Ok(())
}
