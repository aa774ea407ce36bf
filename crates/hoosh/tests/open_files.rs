//! `hoosh serve` raises its open-file soft limit to the hard limit at start:
//! started with a soft limit of 256 (a stream holds two sockets, so that
//! would cap it near 128 streams), it runs with the hard limit.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod support;

use support::BIN;

/// The soft and hard "Max open files" of a running process.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let nums: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (nums[0], nums[1])
}

#[test]
fn serve_raises_the_soft_open_file_limit_to_the_hard_limit() {
    let dir = std::env::temp_dir().join(format!("hoosh-nofile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hoosh.toml");
    std::fs::write(&config, "[local]\nenabled = false\n[health]\ninterval_secs = 0\n").unwrap();
    // prlimit execs hoosh in place: the child's pid is hoosh's.
    let mut child = Command::new("prlimit")
        .args(["--nofile=256:4096", "--", BIN, "serve", "--port", "0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("HOOSH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("prlimit (util-linux)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("http://127.0.0.1:"), "hoosh did not start: {line}");
    let limits = open_file_limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(limits, (4096, 4096), "soft limit not raised to the hard limit");
}
