//! `hoosh migrate` and `hoosh state check`: the shared state a config names
//! (`[state]`), checked or brought up to date without starting a gateway.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use hoosh_cluster::{PgConn, migrate};
use hoosh_core::config::Config;

use crate::settings;

#[derive(clap::Subcommand)]
pub enum StateCommand {
    /// Report the state backend's health and versions: PostgreSQL (reachable,
    /// server version, schema version against this build's) and Redis
    /// (round trip, version). Exits non-zero when something is wrong.
    Check {
        /// Config file (default: zero-config from the environment).
        #[arg(short, long, env = "HOOSH_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// `hoosh migrate`: applies the PostgreSQL migrations this build ships.
pub fn migrate(config: Option<&Path>) -> Result<ExitCode> {
    let config = load(config)?;
    let url = cluster_url(&config)?;
    let conn = PgConn::start(url, "migrate")?;
    let before = migrate::current(&conn)?;
    let applied = migrate::migrate(&conn).with_context(|| format!("migrating {}", redact(url)))?;
    if applied.is_empty() {
        println!("{}: schema up to date (version {before})", redact(url));
    } else {
        for name in &applied {
            println!("applied {name}");
        }
        println!("{}: schema version {before} -> {}", redact(url), migrate::latest());
    }
    Ok(ExitCode::SUCCESS)
}

/// `hoosh state check`.
pub async fn check(config: Option<&Path>) -> Result<ExitCode> {
    let config = load(config)?;
    if !config.state.is_cluster() {
        println!("backend: embedded (SQLite in the data directory, counters in process); nothing to check");
        return Ok(ExitCode::SUCCESS);
    }
    let state = &config.state;
    println!("backend: cluster (namespace `{}`, on_redis_down = {:?})", state.namespace, state.on_redis_down);
    let mut ok = true;
    let pg_url = cluster_url(&config)?;
    let conn = PgConn::start(pg_url, "check")?;
    match (migrate::server_version(&conn), migrate::current(&conn)) {
        (Ok(version), Ok(schema)) => {
            let latest = migrate::latest();
            let verdict = match schema.cmp(&latest) {
                std::cmp::Ordering::Equal => "up to date".to_string(),
                std::cmp::Ordering::Less => {
                    ok = false;
                    "behind: run `hoosh migrate`".to_string()
                }
                std::cmp::Ordering::Greater => {
                    ok = false;
                    "newer than this build: upgrade hoosh".to_string()
                }
            };
            println!(
                "postgres: {} reachable, PostgreSQL {version}, schema {schema} (this build: {latest}, {verdict})",
                redact(pg_url)
            );
            if ok {
                audit_chain(pg_url);
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            ok = false;
            println!("postgres: {} UNREACHABLE: {e}", redact(pg_url));
        }
    }
    let redis_url = state.redis_url.as_deref().unwrap_or_default();
    match hoosh_cluster::probe(redis_url).await {
        Ok((rtt, version)) => {
            println!(
                "redis: {} reachable, Redis {version}, round trip {:.2} ms",
                redact(redis_url),
                rtt.as_secs_f64() * 1e3
            )
        }
        Err(e) => {
            ok = false;
            println!("redis: {} UNREACHABLE: {e}", redact(redis_url));
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One line on the cluster's audit chain: its length and head.
fn audit_chain(pg_url: &str) {
    use hoosh_audit::ChainStore;
    let read = hoosh_cluster::PgAuditStore::open_read_only(pg_url)
        .and_then(|store| Ok((store.len()?, store.head()?, store.latest_checkpoint()?)));
    match read {
        Ok((_, None, _)) => println!("audit chain: empty"),
        Ok((len, Some(head), checkpoint)) => println!(
            "audit chain: {len} entries, head seq {} ({}), latest checkpoint {}",
            head.seq,
            head.kind,
            checkpoint.map_or_else(|| "none".to_string(), |c| format!("at seq {}", c.seq))
        ),
        Err(e) => println!("audit chain: cannot be read: {e}"),
    }
}

fn load(path: Option<&Path>) -> Result<Config> {
    let (config, _) = settings::load(path)?;
    config.validate()?;
    Ok(config)
}

fn cluster_url(config: &Config) -> Result<&str> {
    match (config.state.is_cluster(), config.state.postgres_url.as_deref()) {
        (true, Some(url)) => Ok(url),
        _ => anyhow::bail!(
            "this config keeps its state embedded (SQLite, migrated at start): set [state] backend = \"cluster\" \
             with postgres_url and redis_url to use PostgreSQL"
        ),
    }
}

/// The URL without its password (`scheme://user:***@host/...`): what
/// may be printed or logged.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    match path {
        Some(p) => format!("{scheme}://{authority}/{p}"),
        None => format!("{scheme}://{authority}"),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_print() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("redis://:secret@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact("postgres://postgres@h/db"), "postgres://postgres@h/db");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }
}
