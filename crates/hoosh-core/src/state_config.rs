//! `[state]`: where shared state lives. `embedded` (the default) keeps
//! everything in this process and its data directory (SQLite); `cluster`
//! puts hot shared counters (rate limits, budget reservations, the cache,
//! provider health) in Redis and durable state (keys, teams, budgets, the
//! ledger, the audit chain) in PostgreSQL, so several instances behave as
//! one. Part of the strict config tree of [`crate::config`].

use serde::Deserialize;

/// Which state backend the instance uses.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// SQLite and in-process state; nothing external.
    #[default]
    Embedded,
    /// Redis + PostgreSQL, shared by every instance that names them.
    Cluster,
}

/// What a governed request meets while Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisDown {
    /// Refuse governed requests with a 503 that says why: never an overspend.
    #[default]
    Closed,
    /// Admit from this instance's own counters and add their usage to the
    /// shared ones when Redis is back (limits then hold per instance).
    Open,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub backend: StateBackend,
    /// `redis://host:port/db` (required for `cluster`).
    pub redis_url: Option<String>,
    /// `postgres://user@host:port/db` (required for `cluster`).
    pub postgres_url: Option<String>,
    pub on_redis_down: OnRedisDown,
    /// Apply pending PostgreSQL migrations at start (otherwise `hoosh migrate`
    /// must have run, and an older schema stops the start).
    pub migrate_on_start: bool,
    /// How long a budget reservation outlives its instance's last renewal:
    /// a crashed instance's reservations are released after this.
    pub lease_ttl_ms: u64,
    /// Answer a request only once its ledger row is committed (or spilled
    /// to the local file): a killed instance then loses no row of a request
    /// it acknowledged, for up to one writer batch (~20 ms) more latency.
    pub ack_after_commit: bool,
    /// Prefix of every Redis key and of the pub/sub channel: clusters that
    /// share one Redis use different namespaces.
    pub namespace: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            backend: StateBackend::Embedded,
            redis_url: None,
            postgres_url: None,
            on_redis_down: OnRedisDown::Closed,
            migrate_on_start: true,
            lease_ttl_ms: 15_000,
            namespace: "hoosh".into(),
            ack_after_commit: true,
        }
    }
}

impl StateConfig {
    pub fn is_cluster(&self) -> bool {
        self.backend == StateBackend::Cluster
    }

    /// The checks `Config::validate` runs on this section.
    pub fn validate(&self) -> Result<(), String> {
        if !self.is_cluster() {
            return Ok(());
        }
        match self.redis_url.as_deref() {
            Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") || u.starts_with("unix://") => {}
            Some(u) => return Err(format!("state.redis_url `{u}` must start with redis://, rediss:// or unix://")),
            None => return Err("state.backend = \"cluster\" needs state.redis_url".into()),
        }
        match self.postgres_url.as_deref() {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {}
            Some(_) => return Err("state.postgres_url must start with postgres:// or postgresql://".into()),
            None => return Err("state.backend = \"cluster\" needs state.postgres_url".into()),
        }
        if self.namespace.is_empty()
            || !self.namespace.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "state.namespace `{}` must be non-empty ASCII letters, digits, `_`, `-` or `.`",
                self.namespace
            ));
        }
        if !(1_000..=600_000).contains(&self.lease_ttl_ms) {
            return Err(format!("state.lease_ttl_ms must be between 1000 and 600000, not {}", self.lease_ttl_ms));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_needs_nothing_and_cluster_needs_both_urls() {
        assert!(StateConfig::default().validate().is_ok());
        let mut c = StateConfig { backend: StateBackend::Cluster, ..StateConfig::default() };
        assert!(c.validate().unwrap_err().contains("redis_url"));
        c.redis_url = Some("redis://127.0.0.1:6379/0".into());
        assert!(c.validate().unwrap_err().contains("postgres_url"));
        c.postgres_url = Some("postgres://postgres@127.0.0.1/test".into());
        assert!(c.validate().is_ok());
        c.postgres_url = Some("mysql://x".into());
        assert!(c.validate().is_err());
        c.postgres_url = Some("postgresql://x/y".into());
        c.lease_ttl_ms = 10;
        assert!(c.validate().unwrap_err().contains("lease_ttl_ms"));
    }
}
