//! The real `hoosh` binary: config check, serve + client commands, and a
//! graceful stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod support;

use support::{BIN, Served};

fn hoosh(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).env_remove("HOOSH_CONFIG").output().unwrap()
}

fn example() -> String {
    format!("{}/../../config/hoosh.example.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn config_check_accepts_the_example_and_names_bad_keys() {
    let out = hoosh(&["config", "check", &example()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OK") && stdout.contains("fast -> groq/llama-3.1-8b-instant"), "{stdout}");

    let dir = std::env::temp_dir().join(format!("hoosh-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[routing]\nstrategy = \"priority\"\nretries = 3\n").unwrap();
    let out = hoosh(&["config", "check", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("retries") && stderr.contains("line 3") && stderr.contains("bad.toml"), "{stderr}");

    std::fs::write(&bad, "[[providers]]\nname = \"x\"\ntype = \"nope\"\n").unwrap();
    let out = hoosh(&["config", "check", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown type `nope`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_chat_models_health_and_sigterm() {
    let mock = hoosh_testkit::openai::start().await;
    let dir = std::env::temp_dir().join(format!("hoosh-cli-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hoosh.toml");
    std::fs::write(
        &config,
        format!(
            "[health]\ninterval_secs = 0\n[[providers]]\nname = \"mock\"\ntype = \"openai\"\nbase_url = \"{}/v1\"\nmodels = [\"*\"]\n",
            mock.url()
        ),
    )
    .unwrap();
    let served = Served::start(config.to_str().unwrap());
    let url = served.url.clone();
    let run = move |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut full = args;
            full.extend(["--url".to_owned(), url]);
            Command::new(BIN).args(&full).output().unwrap()
        })
    };

    let out = run(vec!["chat".into(), "-m".into(), "gpt-4o".into(), "hello".into(), "there".into()]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "echo: hello there \u{e9}\u{1f600}");

    let out = run(vec!["chat".into(), "-m".into(), "gpt-4o".into(), "--no-stream".into(), "hi".into()]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "echo: hi \u{e9}\u{1f600}");

    let out = run(vec!["chat".into(), "-m".into(), "mock-error-400".into(), "hi".into()]).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mock says: bad request"));

    let out = run(vec!["models".into()]).await.unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("gpt-4o") && listed.contains("mock"),
        "{listed} / {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(vec!["health".into()]).await.unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("UP"));

    let status = tokio::task::spawn_blocking(move || served.terminate()).await.unwrap();
    assert!(status.success(), "graceful exit 0 on SIGTERM, got {status}");
}

#[test]
fn health_of_a_dead_gateway_exits_non_zero() {
    let out = hoosh(&["health", "--url", "http://127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DOWN"));
}

/// A config with one mock OpenAI provider, in a fresh directory.
fn mock_config(dir: &std::path::Path, mock_url: &str) -> std::path::PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("hoosh.toml");
    std::fs::write(
        &config,
        format!(
            "[health]\ninterval_secs = 0\n[[providers]]\nname = \"mock\"\ntype = \"openai\"\nbase_url = \"{mock_url}/v1\"\nmodels = [\"*\"]\n"
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_budgets_and_usage_through_the_cli() {
    let mock = hoosh_testkit::openai::start().await;
    let dir = std::env::temp_dir().join(format!("hoosh-cli-admin-{}", std::process::id()));
    let config = mock_config(&dir, &mock.url());
    let data = dir.join("data");
    let master = format!("hk-cli-master-{}", std::process::id());
    let served = Served::start_with(
        config.to_str().unwrap(),
        &["--data-dir", data.to_str().unwrap()],
        &[("HOOSH_MASTER_KEY", &master)],
    );
    let url = served.url.clone();
    // Admin commands find the admin key in HOOSH_MASTER_KEY, like an operator's shell.
    let run = |args: &[&str], master: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(args).args(["--url", &url]).env_remove("HOOSH_API_KEY").env_remove("HOOSH_MASTER_KEY");
        if let Some(m) = master {
            cmd.env("HOOSH_MASTER_KEY", m);
        }
        // Blocking, but off the worker threads the mock upstream runs on.
        let out = tokio::task::block_in_place(|| cmd.output().unwrap());
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let chat = |key: String| {
        let url = served.url.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&serde_json::json!({"model": "mock-usage-7-3", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    let (ok, stdout, stderr) = run(&["keys", "create", "ci", "--rpm", "5"], Some(&master));
    assert!(ok, "{stderr}");
    let key = stdout.lines().find(|l| l.starts_with("hk-")).unwrap().trim().to_owned();
    assert_eq!(key.len(), 46, "{stdout}");
    assert!(stderr.contains("not shown again"), "{stderr}");
    assert_eq!(chat(key.clone()).await, 200);

    let (ok, stdout, stderr) = run(&["keys", "list"], Some(&master));
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("ID"), "{stdout}");
    let row = stdout.lines().find(|l| l.split_whitespace().nth(1) == Some("ci")).unwrap();
    let id = row.split_whitespace().next().unwrap().to_owned();
    assert!(id.starts_with("key_") && row.contains(&key[..8]) && row.contains("rpm=5") && row.contains("yes"), "{row}");
    assert!(!stdout.contains(&key), "the key is never listed");

    let (ok, stdout, stderr) = run(&["usage", "--by", "key", "--since", "1h"], Some(&master));
    assert!(ok, "{stderr}");
    let row = stdout.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{id} in {stdout}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    // KEY NAME REQUESTS TOKENS-IN TOKENS-OUT COST UNPRICED ERRORS
    assert_eq!((cols[1], cols[2], cols[3], cols[4], cols[7]), ("ci", "1", "7", "3", "0"), "{stdout}");

    let pool = format!("key:{id}");
    let (ok, _, stderr) = run(&["budgets", "set", &pool, "--tokens", "100000", "--period", "daily"], Some(&master));
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = run(&["budgets", "show"], Some(&master));
    assert!(ok && stdout.contains(&pool) && stdout.contains("10 / 100000"), "{stdout}");
    let (ok, _, stderr) = run(&["budgets", "set", &pool, "--clear"], Some(&master));
    assert!(ok, "{stderr}");

    let (ok, _, stderr) = run(&["keys", "list"], None);
    assert!(!ok && stderr.contains("401") && stderr.contains("HOOSH_MASTER_KEY"), "{stderr}");
    let (ok, _, stderr) = run(&["keys", "list", "--api-key", &key], None);
    assert!(!ok && stderr.contains("insufficient_scope"), "{stderr}");

    let (ok, stdout, stderr) = run(&["keys", "revoke", &id], Some(&master));
    assert!(ok && stdout.contains(&id), "{stderr}");
    assert_eq!(chat(key.clone()).await, 401);
    let (_, stdout, _) = run(&["keys", "list"], Some(&master));
    assert!(stdout.contains("no (revoked)"), "{stdout}");

    let status = tokio::task::spawn_blocking(move || served.terminate()).await.unwrap();
    assert!(status.success(), "graceful exit 0 on SIGTERM, got {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With no keys and no admin key, a non-loopback bind is refused unless
/// `--allow-unauthenticated`; loopback runs open (with a warning).
#[test]
fn an_open_gateway_is_refused_off_loopback() {
    let dir = std::env::temp_dir().join(format!("hoosh-cli-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("open.toml");
    std::fs::write(&config, "[local]\nenabled = false\n[governance]\nmaster_key_env = \"HOOSH_TEST_UNSET_MASTER\"\n")
        .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--bind", "0.0.0.0", "--port", "0", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to serve 0.0.0.0 without authentication"), "{stderr}");
    assert!(stderr.contains("--allow-unauthenticated"), "{stderr}");

    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "0.0.0.0", "--port", "0", "--allow-unauthenticated", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening on http://0.0.0.0:"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_file_and_keeps_serving_on_a_bad_one() {
    let mock = hoosh_testkit::openai::start().await;
    let dir = std::env::temp_dir().join(format!("hoosh-cli-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hoosh.toml");
    let base = format!(
        "[local]\nenabled = false\n[health]\ninterval_secs = 0\n[[providers]]\nname = \"mock\"\ntype = \"openai\"\nbase_url = \"{}/v1\"\nmodels = [\"*\"]\n",
        mock.url()
    );
    std::fs::write(&config, &base).unwrap();
    let served = Served::start_with(config.to_str().unwrap(), &["--data-dir", dir.to_str().unwrap()], &[]);
    let models = |url: String| async move {
        let v: serde_json::Value = reqwest::get(format!("{url}/v1/models")).await.unwrap().json().await.unwrap();
        v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let hup = |pid: u32| Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
    let until = |want: bool, url: String| async move {
        for _ in 0..100 {
            if models(url.clone()).await.contains(&"fast".to_owned()) == want {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    };
    assert!(!models(served.url.clone()).await.contains(&"fast".to_owned()));

    // A broken file is refused whole: the running config stays.
    std::fs::write(
        &config,
        format!("{base}[model_aliases]\nfast = [\"mock/gpt-4o\"]\n[routing]\nstrategy = \"nonsense\"\n"),
    )
    .unwrap();
    assert!(hup(served.child.id()).success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(until(false, served.url.clone()).await);

    std::fs::write(&config, format!("{base}[model_aliases]\nfast = [\"mock/gpt-4o\"]\n")).unwrap();
    assert!(hup(served.child.id()).success());
    assert!(until(true, served.url.clone()).await, "the alias appears after SIGHUP");
    assert!(served.terminate().success());

    // Both attempts are in the audit chain, the refused one with its reason.
    let out = Command::new(BIN).args(["audit", "export", "--data-dir", dir.to_str().unwrap()]).output().unwrap();
    let reloads: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "config.reload")
        .collect();
    assert_eq!(reloads.len(), 2, "{reloads:?}");
    assert_eq!(
        (&reloads[0]["data"]["ok"], &reloads[1]["data"]["ok"]),
        (&serde_json::json!(false), &serde_json::json!(true))
    );
    assert!(reloads[0]["data"]["error"].as_str().unwrap().contains("nonsense"), "{:?}", reloads[0]);
    assert_eq!(reloads[0]["data"]["trigger"], "sighup");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribe_and_speak_through_a_running_gateway() {
    let mock = hoosh_testkit::openai::start().await;
    let dir = std::env::temp_dir().join(format!("hoosh-cli-audio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hoosh.toml");
    std::fs::write(
        &config,
        format!(
            "[local]\nenabled = false\n[health]\ninterval_secs = 0\n[[providers]]\nname = \"mock\"\ntype = \"openai\"\nbase_url = \"{}/v1\"\nmodels = [\"*\"]\n",
            mock.url()
        ),
    )
    .unwrap();
    let served = Served::start_with(config.to_str().unwrap(), &["--data-dir", dir.to_str().unwrap()], &[]);
    let wav = format!("{}/../../tests/fixtures/audio/s1.wav", env!("CARGO_MANIFEST_DIR"));
    let url = served.url.clone();
    let run = |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).args(["--url", &url]).output().unwrap())
    };
    let out =
        run(vec!["transcribe".into(), wav.clone(), "-m".into(), "whisper-1".into(), "--format".into(), "srt".into()])
            .await
            .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let srt = String::from_utf8_lossy(&out.stdout);
    assert!(srt.starts_with("1\n") && srt.contains(" --> ") && srt.contains("mock transcript"), "{srt}");

    let out = run(vec!["transcribe".into(), wav, "-m".into(), "whisper-1".into(), "--translate".into()]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("mock translation"));

    let target = dir.join("hello.wav");
    let out = run(vec![
        "speak".into(),
        "Hello there.".into(),
        "-o".into(),
        target.display().to_string(),
        "-m".into(),
        "tts-1".into(),
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(&std::fs::read(&target).unwrap()[..4], b"RIFF", "the .wav extension picked the format");

    // A bad file: the gateway's message, exit status 1.
    let junk = dir.join("junk.mp3");
    std::fs::write(&junk, "not audio").unwrap();
    let out =
        run(vec!["transcribe".into(), junk.display().to_string(), "-m".into(), "whisper-1".into()]).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not usable"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(served.terminate().success());
    let _ = std::fs::remove_dir_all(&dir);
}
