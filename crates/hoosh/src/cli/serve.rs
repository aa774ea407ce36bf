//! `hoosh serve`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hoosh_providers::registry;
use hoosh_server::AppState;
use hoosh_server::audit::{Audit, ChainHome};

use super::banner::{Banner, DataHome};
use crate::logging::{self, LogFormat};
use crate::settings;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Config file (default: zero-config from the environment).
    #[arg(short, long, env = "HOOSH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to bind (overrides `server.bind`).
    #[arg(long, env = "HOOSH_BIND")]
    pub bind: Option<String>,
    /// Port (overrides `server.port`; 0 picks a free one).
    #[arg(short, long, env = "HOOSH_PORT")]
    pub port: Option<u16>,
    /// Log format.
    #[arg(long, value_enum, env = "HOOSH_LOG_FORMAT", default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Directory of the usage ledger and key store (overrides `governance.data_dir`).
    #[arg(long, env = "HOOSH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Serve without any API key on a non-loopback address.
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// This instance's name in logs, metrics (`instance` label) and ledger
    /// rows (default: hostname-pid).
    #[arg(long, env = "HOOSH_INSTANCE_ID")]
    pub instance_id: Option<String>,
}

pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    logging::init(args.log_format);
    crate::limits::raise_open_files();
    let (config, source) = load(&args)?;
    let ip: IpAddr = config
        .server
        .bind
        .parse()
        .with_context(|| format!("server.bind `{}` is not an IP address", config.server.bind))?;
    let instance = args.instance_id.clone().unwrap_or_else(hoosh_server::cluster::default_instance_id);
    hoosh_server::metrics::set_instance(&instance);
    let gov = if config.state.is_cluster() {
        let gov = hoosh_server::cluster::open(&config, &instance, args.data_dir.as_deref())
            .await
            .map_err(|e| anyhow::anyhow!("cluster state: {e}"))?;
        tracing::debug!(
            instance,
            namespace = config.state.namespace,
            on_redis_down = ?config.state.on_redis_down,
            "cluster state: keys, budgets, the ledger and the audit chain in PostgreSQL, shared counters in Redis"
        );
        gov
    } else {
        hoosh_server::governance::open(&config.governance, args.data_dir.as_deref())
            .map_err(|e| anyhow::anyhow!("governance: {e}"))?
    };
    if gov.is_open() {
        if !ip.is_loopback() && !args.allow_unauthenticated {
            anyhow::bail!(
                "refusing to serve {ip} without authentication: set HOOSH_MASTER_KEY (then create keys with `hoosh keys create`), declare [[governance.keys]], or pass --allow-unauthenticated"
            );
        }
        tracing::warn!(
            "NO AUTHENTICATION: no API keys and no admin key are configured, so anyone who can reach {ip} may use this gateway; set HOOSH_MASTER_KEY to turn keys on"
        );
    }
    let data_dir = hoosh_server::governance::data_dir(&config.governance, args.data_dir.as_deref())
        .map_err(|e| anyhow::anyhow!("data directory: {e}"))?;
    let data = if gov.cluster().is_some() {
        DataHome::Cluster {
            postgres: super::state::redact(config.state.postgres_url.as_deref().unwrap_or_default()),
            redis: super::state::redact(config.state.redis_url.as_deref().unwrap_or_default()),
            dir: data_dir.clone(),
        }
    } else if gov.db_path.is_some() {
        DataHome::Dir { dir: data_dir.clone(), audit: config.audit.enabled }
    } else {
        tracing::warn!("usage ledger kept in memory (governance.in_memory): nothing survives a restart");
        DataHome::Memory
    };
    let mut entries = registry::build_entries(&config)?;
    let mut models_dir = None;
    if config.local.enabled {
        match hoosh_local::build(&config.local, &config.circuit_breaker).await {
            Ok(setup) => {
                models_dir = Some(setup.store_root.clone());
                if !setup.missing_defaults.is_empty() {
                    tracing::warn!(
                        store = %setup.store_root.display(),
                        "{}",
                        hoosh_models::missing_defaults_hint(&setup.missing_defaults)
                    );
                }
                if let Some(local) = setup.entry {
                    entries.insert(0, local);
                }
            }
            Err(e) => tracing::error!(error = %e, "local models unavailable; serving remote providers only"),
        }
    }
    if entries.is_empty() {
        tracing::warn!(
            "no providers configured: set a vendor API key (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) or pass --config; requests will get 404 until then"
        );
    }
    for e in &entries {
        tracing::debug!(
            provider = e.name(),
            family = e.provider.family(),
            placement = e.placement.as_str(),
            priority = e.priority,
            "provider ready"
        );
    }
    // Opened before the listener: a bad key or an unreachable chain stops the start.
    let audit = if config.audit.enabled {
        let home = match config.state.postgres_url.as_deref() {
            Some(postgres_url) if config.state.is_cluster() => ChainHome::Cluster { postgres_url, instance: &instance },
            _ => ChainHome::File,
        };
        let audit = Audit::open(&config.audit, &data_dir, home)
            .map_err(|e| anyhow::anyhow!("audit: {e}"))?
            .with_instance(&instance);
        match audit.db_path() {
            Some(path) => tracing::debug!(chain = %path.display(), "audit chain"),
            None => tracing::debug!("audit chain in PostgreSQL, shared by the cluster"),
        }
        audit
    } else {
        tracing::warn!("audit chain disabled (audit.enabled = false)");
        Audit::disabled()
    };
    let addr = std::net::SocketAddr::new(ip, config.server.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let banner = Banner {
        addr: local,
        instance: &instance,
        auth: !gov.is_open(),
        providers: &entries,
        data,
        models_dir,
        source: &source.to_string(),
    }
    .lines();
    // A reload reads the same file (or environment) with the same overrides.
    let reload_args = (args.config.clone(), args.bind.clone(), args.port);
    let config_source: hoosh_server::state::ConfigSource = std::sync::Arc::new(move || {
        let (path, bind, port) = &reload_args;
        load_with(path.as_deref(), bind.clone(), *port).map(|(c, _)| c).map_err(|e| format!("{e:#}"))
    });
    let state = AppState::build(config, entries, gov, audit, Some(config_source))?;
    let stop = hoosh_server::serve::signal();
    // Everything that can refuse the start has run: now say where we are.
    for line in banner {
        tracing::info!("{line}");
    }
    // Scripts that start hoosh on port 0 read the chosen address from stdout.
    println!("hoosh listening on http://{local}");
    hoosh_server::serve::run(listener, state, stop).await?;
    tracing::info!("hoosh stopped");
    Ok(ExitCode::SUCCESS)
}

/// The config, with `--bind` and `--port` applied.
fn load(args: &ServeArgs) -> Result<(hoosh_core::config::Config, settings::Source)> {
    load_with(args.config.as_deref(), args.bind.clone(), args.port)
}

fn load_with(
    path: Option<&std::path::Path>,
    bind: Option<String>,
    port: Option<u16>,
) -> Result<(hoosh_core::config::Config, settings::Source)> {
    let (mut config, source) = settings::load(path)?;
    if let Some(b) = bind {
        config.server.bind = b;
    }
    if let Some(p) = port {
        config.server.port = p;
    }
    Ok((config, source))
}
