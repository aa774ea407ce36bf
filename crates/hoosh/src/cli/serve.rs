//! `hoosh serve`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hoosh_providers::registry;
use hoosh_server::AppState;

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
}

pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    logging::init(args.log_format);
    let (mut config, source) = settings::load(args.config.as_deref())?;
    if let Some(b) = args.bind {
        config.server.bind = b;
    }
    if let Some(p) = args.port {
        config.server.port = p;
    }
    let ip: IpAddr = config
        .server
        .bind
        .parse()
        .with_context(|| format!("server.bind `{}` is not an IP address", config.server.bind))?;
    let mut entries = registry::build_entries(&config)?;
    if config.local.enabled {
        match hoosh_local::build(&config.local, &config.circuit_breaker).await {
            Ok(setup) => {
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
        tracing::info!(
            provider = e.name(),
            family = e.provider.family(),
            local = e.local,
            priority = e.priority,
            "provider ready"
        );
    }
    let addr = std::net::SocketAddr::new(ip, config.server.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%source, "hoosh {} listening on http://{local}", env!("CARGO_PKG_VERSION"));
    // Scripts that start hoosh on port 0 read the chosen address from stdout.
    println!("hoosh listening on http://{local}");
    let state = AppState::new(config, entries);
    hoosh_server::serve::run(listener, state, hoosh_server::serve::signal()).await?;
    tracing::info!("hoosh stopped");
    Ok(ExitCode::SUCCESS)
}
