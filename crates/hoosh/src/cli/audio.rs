//! `hoosh transcribe FILE` and `hoosh speak TEXT -o FILE`: the audio API of
//! a running gateway, from the terminal.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;

use crate::Remote;

#[derive(clap::Args)]
pub struct TranscribeArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// The audio file (wav, mp3, flac, ogg, m4a).
    pub file: PathBuf,
    /// Speech-to-text model.
    #[arg(short, long, env = "HOOSH_STT_MODEL", default_value = "whisper-tiny.en")]
    pub model: String,
    /// Output format.
    #[arg(short, long, default_value = "text", value_parser = ["text", "json", "srt", "vtt", "verbose_json"])]
    pub format: String,
    /// Spoken language (ISO-639-1, e.g. `en`); detected when absent.
    #[arg(short, long)]
    pub language: Option<String>,
    /// Translate into English instead of transcribing.
    #[arg(long)]
    pub translate: bool,
    /// Text that precedes the audio (names, spelling, style).
    #[arg(long)]
    pub prompt: Option<String>,
}

#[derive(clap::Args)]
pub struct SpeakArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// The text to speak.
    pub text: String,
    /// Where to write the audio.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Text-to-speech model.
    #[arg(short, long, default_value = "tts-1")]
    pub model: String,
    #[arg(short, long, default_value = "alloy")]
    pub voice: String,
    /// Audio format; by default from the output file's extension (else mp3).
    #[arg(short, long, value_parser = ["mp3", "opus", "aac", "flac", "wav", "pcm"])]
    pub format: Option<String>,
}

fn http(remote: &Remote) -> Result<(reqwest::Client, Option<String>)> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(600)).build()?;
    Ok((client, remote.api_key.clone()))
}

/// The gateway's error message, or the status.
async fn failure(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    match body["error"]["message"].as_str() {
        Some(m) => anyhow::anyhow!("{m} ({status})"),
        None => anyhow::anyhow!("the gateway answered {status}"),
    }
}

pub async fn transcribe(args: TranscribeArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let name = args.file.file_name().map_or_else(|| "audio".into(), |n| n.to_string_lossy().into_owned());
    let mut form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name))
        .text("model", args.model.clone())
        .text("response_format", args.format.clone());
    if let Some(l) = &args.language {
        if args.translate {
            bail!("--language and --translate do not go together: translation always produces English");
        }
        form = form.text("language", l.clone());
    }
    if let Some(p) = &args.prompt {
        form = form.text("prompt", p.clone());
    }
    let path = if args.translate { "translations" } else { "transcriptions" };
    let (client, key) = http(&args.remote)?;
    let mut req = client.post(format!("{}/v1/audio/{path}", args.remote.url.trim_end_matches('/'))).multipart(form);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.with_context(|| format!("cannot reach {}", args.remote.url))?;
    if !resp.status().is_success() {
        return Err(failure(resp).await);
    }
    let text = resp.text().await?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn speak(args: SpeakArgs) -> Result<ExitCode> {
    let format = args.format.clone().unwrap_or_else(|| {
        match args.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some(e @ ("opus" | "aac" | "flac" | "wav" | "pcm")) => e.to_owned(),
            Some("ogg") => "opus".to_owned(),
            _ => "mp3".to_owned(),
        }
    });
    let body =
        serde_json::json!({"model": args.model, "input": args.text, "voice": args.voice, "response_format": format});
    let (client, key) = http(&args.remote)?;
    let mut req = client.post(format!("{}/v1/audio/speech", args.remote.url.trim_end_matches('/'))).json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.with_context(|| format!("cannot reach {}", args.remote.url))?;
    if !resp.status().is_success() {
        return Err(failure(resp).await);
    }
    // Streamed to a temporary file, renamed when complete: no half-written output.
    let tmp = args.output.with_extension("part");
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut stream = resp.bytes_stream();
    let mut written = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("the audio stream broke off")?;
        file.write_all(&chunk)?;
        written += chunk.len();
    }
    file.sync_all()?;
    std::fs::rename(&tmp, &args.output)?;
    eprintln!("wrote {} ({written} bytes, {format})", args.output.display());
    Ok(ExitCode::SUCCESS)
}
