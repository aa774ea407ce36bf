//! `hoosh budgets set | show`: token and dollar budgets of the gateway
//! (`global`), a team (`team:NAME`) or a key (`key:ID`).

use std::process::ExitCode;

use anyhow::{Result, bail};
use reqwest::Method;
use serde_json::Value;

use super::admin::{self, AdminClient, Table};
use super::keys::budget_body;
use crate::Remote;

#[derive(clap::Subcommand)]
pub enum BudgetsCommand {
    /// Set the budget of a pool (what was spent in the current window still counts), or remove it with --clear.
    Set(SetArgs),
    /// Every budget: used, reserved for requests in flight, remaining, and when it resets.
    Show {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(clap::Args)]
pub struct SetArgs {
    /// `global`, `team:NAME` or `key:ID`.
    pub pool: String,
    /// Token cap (prompt + completion) per period.
    #[arg(long)]
    pub tokens: Option<u64>,
    /// Dollar cap per period.
    #[arg(long)]
    pub usd: Option<f64>,
    /// When the budget starts over (UTC calendar); default never, a lifetime cap.
    #[arg(long, value_parser = ["hourly", "daily", "weekly", "monthly", "never"])]
    pub period: Option<String>,
    /// Remove the pool's budget.
    #[arg(long, conflicts_with_all = ["tokens", "usd", "period"])]
    pub clear: bool,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn run(command: BudgetsCommand) -> Result<ExitCode> {
    match command {
        BudgetsCommand::Set(args) => set(args).await,
        BudgetsCommand::Show { remote } => show(&remote).await,
    }
}

async fn set(args: SetArgs) -> Result<ExitCode> {
    let body = match budget_body(args.tokens, args.usd, args.period.as_deref())? {
        Some(b) => b,
        None if args.clear => Value::Null,
        None => bail!("say what to cap with --tokens and/or --usd, or remove the budget with --clear"),
    };
    let client = AdminClient::new(&args.remote)?;
    let answer = client.call(Method::PUT, &["admin", "budgets", &args.pool], &[], Some(&body)).await?;
    if body.is_null() {
        println!("Removed the budget of {}", args.pool);
    } else {
        print!("{}", table(std::slice::from_ref(&answer)).render());
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(remote: &Remote) -> Result<ExitCode> {
    let client = AdminClient::new(remote)?;
    let list = client.call(Method::GET, &["admin", "budgets"], &[], None).await?;
    let rows = list["data"].as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        eprintln!("No budgets set: see `hoosh budgets set --help`.");
    } else {
        print!("{}", table(rows).render());
    }
    Ok(ExitCode::SUCCESS)
}

/// `used / cap` per dimension; `-` where the dimension is not capped.
fn table(rows: &[Value]) -> Table {
    let mut t = Table::new(&["POOL", "PERIOD", "TOKENS USED", "USD USED", "RESERVED", "REMAINING", "RESETS IN"])
        .right_align(&[2, 3, 4]);
    let now = admin::now_ms();
    for b in rows {
        let spec = &b["spec"];
        let tokens = match spec["tokens"].as_u64() {
            Some(cap) => format!("{} / {cap}", b["used_tokens"].as_u64().unwrap_or(0)),
            None => "-".to_owned(),
        };
        let dollars = match spec["usd"].as_f64() {
            Some(cap) => format!("{} / {}", admin::usd(b["used_usd"].as_f64().unwrap_or(0.0)), admin::usd(cap)),
            None => "-".to_owned(),
        };
        let reserved = b["reserved_tokens"].as_u64().unwrap_or(0);
        let mut remaining = Vec::new();
        if let Some(t) = b["remaining_tokens"].as_u64() {
            remaining.push(format!("{t} tok"));
        }
        if let Some(u) = b["remaining_usd"].as_f64() {
            remaining.push(admin::usd(u));
        }
        let resets = match b["resets_at"].as_i64() {
            Some(at) => admin::duration(at - now),
            None => "never".to_owned(),
        };
        t.row(vec![
            admin::opt(&b["pool"]),
            admin::opt(&spec["period"]),
            tokens,
            dollars,
            format!("{reserved} tok"),
            remaining.join(" + "),
            resets,
        ]);
    }
    t
}
