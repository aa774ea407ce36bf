//! Commands that talk to a running gateway through `hoosh-client`:
//! `chat`, `models`, `health`.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use hoosh_client::HooshClient;
use hoosh_types::openai::{ChatCompletionRequest, ChatMessage, Role};

use crate::Remote;

#[derive(clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// Model to ask.
    #[arg(short, long, env = "HOOSH_MODEL", default_value = "smollm2-135m")]
    pub model: String,
    /// System prompt.
    #[arg(short, long)]
    pub system: Option<String>,
    /// Output cap in tokens.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(short, long)]
    pub temperature: Option<f64>,
    /// Wait for the whole answer instead of streaming it.
    #[arg(long)]
    pub no_stream: bool,
    /// The prompt; read from stdin when absent.
    pub prompt: Vec<String>,
}

fn client(remote: &Remote, timeout: Duration) -> Result<HooshClient> {
    Ok(HooshClient::builder(&remote.url).api_key(remote.api_key.clone()).timeout(timeout).build()?)
}

pub async fn chat(args: ChatArgs) -> Result<ExitCode> {
    let prompt = if args.prompt.is_empty() {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the prompt from stdin")?;
        s
    } else {
        args.prompt.join(" ")
    };
    if prompt.trim().is_empty() {
        bail!("empty prompt: pass it as an argument or on stdin");
    }
    let mut messages = Vec::new();
    if let Some(sys) = &args.system {
        messages.push(ChatMessage::text(Role::System, sys.clone()));
    }
    messages.push(ChatMessage::text(Role::User, prompt));
    let req = ChatCompletionRequest {
        model: args.model.clone(),
        messages,
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        stream: !args.no_stream,
        ..Default::default()
    };
    let c = client(&args.remote, Duration::from_secs(600))?;
    let mut out = std::io::stdout().lock();
    if args.no_stream {
        let resp = c.chat(&req).await?;
        let text = resp.choices.first().and_then(|ch| ch.message.content.clone()).unwrap_or_default();
        writeln!(out, "{text}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut stream = c.chat_stream(&req).await?;
    while let Some(item) = stream.next().await {
        let chunk = item?;
        for choice in &chunk.choices {
            if let Some(t) = &choice.delta.content {
                out.write_all(t.as_bytes())?;
                out.flush()?;
            }
        }
    }
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn models(remote: Remote) -> Result<ExitCode> {
    let list = client(&remote, Duration::from_secs(30))?.models().await?;
    let mut out = std::io::stdout().lock();
    for m in list.data {
        writeln!(out, "{:<48} {}", m.id, m.owned_by)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn health(remote: Remote) -> Result<ExitCode> {
    let c = client(&remote, Duration::from_secs(10))?;
    let up = c.health().await.unwrap_or(false);
    if !up {
        eprintln!("{}: DOWN", remote.url);
        return Ok(ExitCode::FAILURE);
    }
    println!("{}: UP", remote.url);
    if let Ok(p) = c.providers().await {
        for e in p["data"].as_array().into_iter().flatten() {
            let tty = std::io::stdout().is_terminal();
            let healthy = e["healthy"].as_bool().unwrap_or(false) && e["circuit"] == "closed";
            let mark = match (healthy, tty) {
                (true, true) => "\u{2713}",
                (false, true) => "\u{2717}",
                (true, false) => "ok",
                (false, false) => "down",
            };
            println!(
                "  {mark} {:<16} circuit={:<9} latency={} in_flight={}",
                e["name"].as_str().unwrap_or("?"),
                e["circuit"].as_str().unwrap_or("?"),
                e["latency_ewma_ms"].as_f64().map(|v| format!("{v:.1}ms")).unwrap_or_else(|| "-".into()),
                e["in_flight"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
