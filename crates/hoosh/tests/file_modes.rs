//! File modes after a real start: the data directory is 0700 and `hoosh.db`
//! with its `-wal` and `-shm` are 0600, whatever the umask and whatever an
//! older build left behind; a directory other users can write is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

mod support;

use support::{BIN, Served};

const KEY: &str = "hk-file-modes-test-key-0123456789abcdefghijklmnopq";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A scratch directory (removed at the end) and a config with one key and
/// one provider at `upstream`.
fn scratch(tag: &str, upstream: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("hoosh-modes-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let config = root.join("hoosh.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[local]
enabled = false
[health]
interval_secs = 0
[[providers]]
name = "up"
type = "openai"
base_url = "{upstream}/v1"
models = ["*"]
[governance]
master_key_env = "HOOSH_FILE_MODES_TEST_MASTER_UNSET"
[[governance.keys]]
name = "app"
key_env = "HOOSH_FILE_MODES_TEST_KEY"
"#
        ),
    )
    .unwrap();
    (root, config)
}

fn serve(config: &Path, data: &Path) -> Served {
    Served::start_with(
        config.to_str().unwrap(),
        &["--data-dir", data.to_str().unwrap()],
        &[("HOOSH_FILE_MODES_TEST_KEY", KEY)],
    )
}

/// One answered request, so a ledger row has been written through the WAL.
async fn one_request(url: &str) {
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Waits (bounded) until the ledger row is in the database: the writer
/// thread commits after the response.
async fn until_ledger_has_a_row(db: &Path) {
    for _ in 0..100 {
        let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let rows: i64 = conn.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0)).unwrap_or(0);
        if rows > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no ledger row after 5 s");
}

fn assert_private(data: &Path) {
    assert_eq!(mode(data), 0o700, "data directory {}", data.display());
    for name in ["hoosh.db", "hoosh.db-wal", "hoosh.db-shm"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_directory_and_its_database_are_owner_only() {
    let mock = hoosh_testkit::openai::start().await;
    let (root, config) = scratch("fresh", &mock.url());
    // Two levels that do not exist yet: hoosh creates both.
    let data = root.join("state/hoosh");
    let served = serve(&config, &data);
    one_request(&served.url).await;
    until_ledger_has_a_row(&data.join("hoosh.db")).await;
    // While it runs: the WAL and shared-memory files exist and are 0600.
    assert_private(&data);
    assert!(served.terminate().success());
    let _ = std::fs::remove_dir_all(&root);
}

/// Someone upgrading from a build that used the umask: a 0755 data
/// directory holding a 0644 database (and a WAL left by a crash). The next
/// start tightens them all, and keeps the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readable_data_directory_from_an_older_build_is_tightened() {
    let mock = hoosh_testkit::openai::start().await;
    let (root, config) = scratch("older", &mock.url());
    let data = root.join("data");
    let served = serve(&config, &data);
    one_request(&served.url).await;
    until_ledger_has_a_row(&data.join("hoosh.db")).await;
    assert!(served.terminate().success());

    // What an older build (umask 022) would have left.
    set_mode(&data, 0o755);
    for name in ["hoosh.db", "hoosh.db-wal", "hoosh.db-shm"] {
        let p = data.join(name);
        if !p.exists() {
            std::fs::write(&p, b"").unwrap();
        }
        set_mode(&p, 0o644);
    }

    let served = serve(&config, &data);
    assert_private(&data);
    one_request(&served.url).await;
    assert!(served.terminate().success());
    let conn = rusqlite::Connection::open(data.join("hoosh.db")).unwrap();
    let rows: i64 = conn.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 2, "the earlier row was kept");
    let _ = std::fs::remove_dir_all(&root);
}

/// A data directory other users can write may already hold their files
/// (a `hoosh.db` symlink aimed at something of ours): hoosh refuses to
/// start in it, says why and how to fix it, and changes nothing.
#[test]
fn a_data_directory_others_can_write_is_refused() {
    let (root, config) = scratch("shared", "http://127.0.0.1:9");
    for (name, loose) in [("world", 0o777), ("group", 0o775), ("tmp-like", 0o1777)] {
        let data = root.join(name);
        std::fs::create_dir(&data).unwrap();
        set_mode(&data, loose);
        let out = Command::new(BIN)
            .args(["serve", "--port", "0", "--config", config.to_str().unwrap(), "--data-dir"])
            .arg(&data)
            .env("HOOSH_FILE_MODES_TEST_KEY", KEY)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: started in a {loose:o} directory");
        assert!(out.stdout.is_empty(), "{name}: never listened");
        assert!(stderr.contains(&data.display().to_string()) && stderr.contains("writable by other users"), "{stderr}");
        assert!(stderr.contains("chmod 700"), "{stderr}");
        assert_eq!(mode(&data), loose, "{name}: left as it was");
        assert!(!data.join("hoosh.db").exists(), "{name}: no database created");
    }
    let _ = std::fs::remove_dir_all(&root);
}
