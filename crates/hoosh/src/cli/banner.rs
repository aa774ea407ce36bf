//! What `hoosh serve` says at INFO once it listens: a few true lines a
//! newcomer can act on — where it listens, whether keys are required, each
//! provider and the models it serves, where its data and models live, and
//! where the config came from. Everything else a start does (model
//! metadata, engine details, store internals) is logged at DEBUG.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hoosh_core::router::ProviderEntry;

/// Where the gateway keeps what it writes.
pub enum DataHome {
    /// `governance.data_dir`: the ledger and key store (`hoosh.db`) and, when
    /// enabled, the audit chain (`audit.db`).
    Dir { dir: PathBuf, audit: bool },
    /// A cluster: PostgreSQL and Redis (named, without passwords); the data
    /// directory keeps only what waits for them.
    Cluster { postgres: String, redis: String, dir: PathBuf },
    /// `governance.in_memory`: nothing survives a restart.
    Memory,
}

pub struct Banner<'a> {
    pub addr: SocketAddr,
    pub instance: &'a str,
    /// Keys are required (a master key or stored keys exist).
    pub auth: bool,
    pub providers: &'a [Arc<ProviderEntry>],
    pub data: DataHome,
    /// The local model store, when in-process models are enabled.
    pub models_dir: Option<PathBuf>,
    pub source: &'a str,
}

impl Banner<'_> {
    /// The lines, in order (also what the tests read).
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "hoosh {} listening on http://{} (instance {})",
            env!("CARGO_PKG_VERSION"),
            self.addr,
            self.instance
        )];
        out.push(if self.auth {
            "auth: on — every /v1 call needs an API key (`hoosh keys create`); admin calls need the admin key".into()
        } else {
            "auth: OFF — no keys configured; set HOOSH_MASTER_KEY to require them".into()
        });
        if self.providers.is_empty() {
            out.push("providers: none — every model answers 404 (set a vendor API key or pass --config)".into());
        }
        for entry in self.providers {
            let models: Vec<&str> = entry.patterns.iter().map(|p| p.as_str()).collect();
            let models = if models.is_empty() { "(none yet)".to_string() } else { models.join(", ") };
            out.push(format!("provider {} ({}): {models}", entry.name(), entry.placement.as_str().replace('_', " ")));
        }
        out.push(match &self.data {
            DataHome::Dir { dir, audit } => format!(
                "data: {} (ledger and keys in hoosh.db{})",
                dir.display(),
                if *audit { ", audit chain in audit.db" } else { "; audit chain disabled" }
            ),
            DataHome::Cluster { postgres, redis, dir } => format!(
                "data: PostgreSQL {postgres} and Redis {redis}, shared by the cluster; waiting writes in {}",
                dir.display()
            ),
            DataHome::Memory => "data: in memory only (governance.in_memory): nothing survives a restart".into(),
        });
        if let Some(dir) = &self.models_dir {
            out.push(format!("models: {} (`hoosh pull NAME` adds one)", dir.display()));
        }
        out.push(format!("config: {}", self.source));
        out
    }
}
