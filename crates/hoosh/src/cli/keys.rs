//! `hoosh keys create | list | revoke`: virtual keys on a running gateway.

use std::process::ExitCode;

use anyhow::{Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::admin::{self, AdminClient, Table};
use crate::Remote;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it. It is shown this once: only its hash is stored.
    Create(CreateArgs),
    /// List keys: id, name, prefix, team, models, limits, budget (never the key itself).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a key: it stops authenticating at once, and its usage stays in reports.
    Revoke {
        /// The key's id (`key_…`, see `hoosh keys list`).
        id: String,
        /// Delete the key instead of only disabling it.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// A name for reports (who or what uses the key).
    pub name: String,
    /// Team whose budget and limits the key shares.
    #[arg(long)]
    pub team: Option<String>,
    /// Model globs the key may call (comma-separated); every model when absent.
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Token budget (prompt + completion) per period.
    #[arg(long)]
    pub tokens: Option<u64>,
    /// Dollar budget per period.
    #[arg(long)]
    pub usd: Option<f64>,
    /// When the budget starts over (UTC calendar); default never, a lifetime cap.
    #[arg(long, value_parser = ["hourly", "daily", "weekly", "monthly", "never"])]
    pub period: Option<String>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[arg(long)]
    pub max_concurrency: Option<u32>,
    /// What the key may do (comma-separated); default inference.
    #[arg(long, value_delimiter = ',', value_parser = ["inference", "admin", "read_usage"])]
    pub scopes: Vec<String>,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn run(command: KeysCommand) -> Result<ExitCode> {
    match command {
        KeysCommand::Create(args) => create(args).await,
        KeysCommand::List { remote } => list(&remote).await,
        KeysCommand::Revoke { id, purge, remote } => revoke(&remote, &id, purge).await,
    }
}

/// A budget object from `--tokens/--usd/--period`, `None` when none is given.
pub fn budget_body(tokens: Option<u64>, usd: Option<f64>, period: Option<&str>) -> Result<Option<Value>> {
    if tokens.is_none() && usd.is_none() {
        if period.is_some() {
            bail!("--period needs --tokens and/or --usd");
        }
        return Ok(None);
    }
    let mut b = json!({});
    if let Some(t) = tokens {
        b["tokens"] = json!(t);
    }
    if let Some(u) = usd {
        b["usd"] = json!(u);
    }
    if let Some(p) = period {
        b["period"] = json!(p);
    }
    Ok(Some(b))
}

async fn create(args: CreateArgs) -> Result<ExitCode> {
    let client = AdminClient::new(&args.remote)?;
    let mut body = json!({"name": args.name});
    if let Some(t) = &args.team {
        body["team"] = json!(t);
    }
    if !args.models.is_empty() {
        body["models"] = json!(args.models);
    }
    if !args.scopes.is_empty() {
        body["scopes"] = json!(args.scopes);
    }
    if let Some(b) = budget_body(args.tokens, args.usd, args.period.as_deref())? {
        body["budget"] = b;
    }
    for (name, value) in
        [("rpm", args.rpm.map(u64::from)), ("tpm", args.tpm), ("max_concurrency", args.max_concurrency.map(u64::from))]
    {
        if let Some(v) = value {
            body[name] = json!(v);
        }
    }
    let created = client.call(Method::POST, &["admin", "keys"], &[], Some(&body)).await?;
    let Some(key) = created["key"].as_str() else {
        bail!("the gateway created a key but did not return it: {created}");
    };
    // The key alone on stdout (`KEY=$(hoosh keys create ci)`); the rest on stderr.
    eprintln!("Created key {} ({}).", admin::opt(&created["id"]), admin::opt(&created["name"]));
    println!("{key}");
    eprintln!("Copy it now: it is not shown again (only its hash is stored).");
    Ok(ExitCode::SUCCESS)
}

async fn list(remote: &Remote) -> Result<ExitCode> {
    let client = AdminClient::new(remote)?;
    let keys = client.call(Method::GET, &["admin", "keys"], &[], None).await?;
    let now = admin::now_ms();
    let mut table = Table::new(&["ID", "NAME", "PREFIX", "TEAM", "ENABLED", "MODELS", "LIMITS", "BUDGET"]);
    for k in keys["data"].as_array().into_iter().flatten() {
        let enabled = match (k["enabled"].as_bool(), k["expires_at"].as_i64()) {
            (Some(false), _) => "no (revoked)",
            (_, Some(at)) if at <= now => "no (expired)",
            _ => "yes",
        };
        let models = match k["models"].as_array() {
            Some(m) if !m.is_empty() => m.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            _ => "*".to_owned(),
        };
        let limits: Vec<String> = [("rpm", "rpm"), ("tpm", "tpm"), ("max_concurrency", "conc")]
            .iter()
            .filter_map(|(field, label)| k[*field].as_u64().map(|v| format!("{label}={v}")))
            .collect();
        table.row(vec![
            admin::opt(&k["id"]),
            admin::opt(&k["name"]),
            admin::opt(&k["prefix"]),
            admin::opt(&k["team"]),
            enabled.to_owned(),
            models,
            if limits.is_empty() { "-".to_owned() } else { limits.join(" ") },
            admin::budget(&k["budget"]),
        ]);
    }
    if table.is_empty() {
        eprintln!("No keys yet: create one with `hoosh keys create NAME`.");
    } else {
        print!("{}", table.render());
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(remote: &Remote, id: &str, purge: bool) -> Result<ExitCode> {
    let client = AdminClient::new(remote)?;
    let query: &[(&str, &str)] = if purge { &[("purge", "true")] } else { &[] };
    client.call(Method::DELETE, &["admin", "keys", id], query, None).await?;
    println!("{} {id}", if purge { "Deleted" } else { "Revoked" });
    Ok(ExitCode::SUCCESS)
}
