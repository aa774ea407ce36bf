//! `hoosh usage`: requests, tokens and cost by key, team, model or provider,
//! from a running gateway's ledger; `--csv` prints the per-request export.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use reqwest::Method;
use serde_json::Value;

use super::admin::{self, AdminClient, Table};
use crate::Remote;

#[derive(clap::Args)]
pub struct UsageArgs {
    /// How to group the report.
    #[arg(long, default_value = "key", value_parser = ["key", "team", "model", "provider"])]
    pub by: String,
    /// Start: a duration ago (`24h`, `7d`), RFC 3339 (`2026-11-27T00:00:00Z`) or unix seconds.
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// End (exclusive), same forms; default now.
    #[arg(long)]
    pub until: Option<String>,
    /// Print one CSV line per request instead of the grouped table.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn run(args: UsageArgs) -> Result<ExitCode> {
    let client = AdminClient::new(&args.remote)?;
    let mut query = vec![("from", args.since.as_str())];
    if let Some(until) = &args.until {
        query.push(("to", until));
    }
    if args.csv {
        let csv = client.text(&["admin", "usage", "export"], &query).await?;
        std::io::stdout().lock().write_all(csv.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    query.push(("group_by", &args.by));
    let report = client.call(Method::GET, &["admin", "usage"], &query, None).await?;
    // Key ids say little to a reader: add names when this key may list keys.
    let names: HashMap<String, String> = if args.by == "key" {
        match client.call(Method::GET, &["admin", "keys"], &[], None).await {
            Ok(keys) => keys["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| Some((k["id"].as_str()?.to_owned(), k["name"].as_str()?.to_owned())))
                .collect(),
            Err(_) => HashMap::new(),
        }
    } else {
        HashMap::new()
    };
    let rows = report["data"].as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        eprintln!("No requests since {}.", args.since);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&args.by, rows, &names).render());
    Ok(ExitCode::SUCCESS)
}

const NUMBERS: [&str; 6] =
    ["requests", "prompt_tokens", "completion_tokens", "cost_nanos", "unpriced_requests", "errors"];

fn table(by: &str, rows: &[Value], names: &HashMap<String, String>) -> Table {
    let group = match by {
        "team" => "TEAM",
        "model" => "MODEL",
        "provider" => "PROVIDER",
        _ => "KEY",
    };
    let with_names = !names.is_empty();
    let mut header = vec![group];
    if with_names {
        header.push("NAME");
    }
    let first_number = header.len();
    header.extend(["REQUESTS", "TOKENS IN", "TOKENS OUT", "COST USD", "UNPRICED", "ERRORS"]);
    let mut t = Table::new(&header).right_align(&(first_number..header.len()).collect::<Vec<_>>());
    let mut totals = [0u64; NUMBERS.len()];
    let cells = |label: String, name: Option<String>, values: [u64; NUMBERS.len()]| {
        let mut row = vec![label];
        if with_names {
            row.push(name.unwrap_or_else(|| "-".to_owned()));
        }
        for (i, v) in values.iter().enumerate() {
            row.push(if NUMBERS[i] == "cost_nanos" { admin::usd(*v as f64 / 1e9) } else { v.to_string() });
        }
        row
    };
    for r in rows {
        let values = NUMBERS.map(|n| r[n].as_u64().unwrap_or(0));
        for (total, v) in totals.iter_mut().zip(values) {
            *total = total.saturating_add(v);
        }
        let label = r["group"].as_str().unwrap_or("(none)").to_owned();
        let name = names.get(&label).cloned();
        t.row(cells(label, name, values));
    }
    if rows.len() > 1 {
        t.row(cells("TOTAL".to_owned(), None, totals));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_report_has_a_row_per_group_and_a_total() {
        let rows = [
            json!({"group": "key_a", "requests": 2, "prompt_tokens": 10, "completion_tokens": 4,
                   "cost_nanos": 1_500_000_000u64, "unpriced_requests": 0, "errors": 1}),
            json!({"group": null, "requests": 1, "prompt_tokens": 3, "completion_tokens": 0,
                   "cost_nanos": 0, "unpriced_requests": 1, "errors": 1}),
        ];
        let names = HashMap::from([("key_a".to_owned(), "ci".to_owned())]);
        let text = table("key", &rows, &names).render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("KEY") && lines[0].contains("NAME") && lines[0].ends_with("ERRORS"));
        let cols: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cols, ["key_a", "ci", "2", "10", "4", "$1.50", "0", "1"]);
        assert!(lines[2].starts_with("(none)"));
        let total: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(total, ["TOTAL", "-", "3", "13", "4", "$1.50", "1", "2"]);
    }
}
