//! What a newcomer sees when `hoosh serve` starts with no config: a few
//! true INFO lines (where it listens, auth, each provider and its models,
//! the data and model directories, where the config came from) and no
//! library chatter; and a start that cannot succeed says why before it
//! ever claims to listen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

/// `hoosh serve` on a free port with nothing from this machine's
/// environment that would change a first start (vendor keys, configs,
/// log filters), plus `envs`.
fn first_start(envs: &[(&str, &str)]) -> Command {
    let data = fresh_dir("data");
    let mut cmd = Command::new(support::BIN);
    cmd.args(["serve", "--port", "0", "--data-dir", data.to_str().unwrap()]);
    for (name, _) in std::env::vars() {
        let vendor = name.ends_with("_API_KEY") || name.ends_with("_BASE_URL") || name == "OLLAMA_HOST";
        if vendor || name.starts_with("HOOSH_") || name == "RUST_LOG" {
            cmd.env_remove(&name);
        }
    }
    cmd.envs(envs.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Starts it, waits for "listening", stops it; its stderr without colours.
fn start_and_stop(mut cmd: Command) -> String {
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("hoosh listening on http://127.0.0.1:"), "{line}");
    // At once: a signal right after the announcement is a graceful stop too.
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    let err = without_colours(&err);
    assert!(status.success() && err.contains("hoosh stopped"), "not a graceful stop: {status:?}\n{err}");
    err
}

/// A new empty directory under the system's temp dir.
fn fresh_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hoosh-first-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The lines logged from the start through the summary (it ends with `config: `).
fn start_lines(stderr: &str) -> Vec<&str> {
    let end = stderr.lines().position(|l| l.contains(" config: ")).expect("the summary's config line");
    stderr.lines().take(end + 1).collect()
}

#[test]
fn a_first_start_with_the_local_models_says_where_it_is_in_a_few_true_lines() {
    let Ok(models) = std::env::var("HOOSH_TEST_MODELS_DIR") else {
        eprintln!("skipped: HOOSH_TEST_MODELS_DIR not set (scripts/test.sh sets it after `hoosh pull --defaults`)");
        return;
    };
    let stderr = start_and_stop(first_start(&[("HOOSH_MODELS_DIR", &models)]));
    let lines = start_lines(&stderr);
    // llama.cpp's model metadata (a hundred lines) and the engines' details stay at DEBUG.
    assert!(!stderr.contains("llama-cpp-2") && !stderr.contains("print_info"), "{stderr}");
    assert!(lines.len() <= 12, "{} lines to the end of the summary:\n{stderr}", lines.len());
    let has = |text: &str| lines.iter().any(|l| l.contains(text));
    assert!(has("auth: OFF"), "{stderr}");
    assert!(has("NO AUTHENTICATION"), "the warning stays:\n{stderr}");
    let local = lines.iter().find(|l| l.contains("provider local (in process): ")).expect("the local provider");
    for model in ["smollm2-135m", "minilm-l6", "whisper-tiny.en"] {
        assert!(local.contains(model), "{local}");
    }
    assert!(has(&format!("models: {models}")), "{stderr}");
    assert!(has("data: ") && has("audit chain in audit.db"), "{stderr}");
    assert!(has("config: none (zero-config: no config file, no vendor API key in the environment)"), "{stderr}");
}

#[test]
fn a_vendor_key_in_the_environment_is_named_with_the_provider_it_made() {
    let empty = fresh_dir("models");
    let stderr = start_and_stop(first_start(&[
        ("OPENAI_API_KEY", "sk-test-not-used"),
        ("HOOSH_MODELS_DIR", empty.to_str().unwrap()),
    ]));
    let lines = start_lines(&stderr);
    let has = |text: &str| lines.iter().any(|l| l.contains(text));
    assert!(has("provider openai (remote): "), "{stderr}");
    assert!(has("config: none (zero-config: providers from OPENAI_API_KEY in the environment)"), "{stderr}");
    assert!(!has("provider local"), "no local models installed:\n{stderr}");
    assert!(has("hoosh pull --defaults"), "says how to get the local models:\n{stderr}");
}

#[test]
fn no_provider_at_all_is_said_plainly() {
    let empty = fresh_dir("models");
    let stderr = start_and_stop(first_start(&[("HOOSH_MODELS_DIR", empty.to_str().unwrap())]));
    assert!(start_lines(&stderr).iter().any(|l| l.contains("providers: none")), "{stderr}");
}

#[test]
fn a_start_that_cannot_succeed_says_why_before_it_listens() {
    let empty = fresh_dir("models");
    let out = first_start(&[("HOOSH_AUDIT_KEY", "too-short"), ("HOOSH_MODELS_DIR", empty.to_str().unwrap())])
        .output()
        .unwrap();
    let stderr = without_colours(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "claimed to listen");
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert!(stderr.contains("HOOSH_AUDIT_KEY"), "{stderr}");
}
