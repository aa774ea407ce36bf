//! Starting the real `hoosh` binary for end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_hoosh");

/// A running `hoosh serve` on a free port.
pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Served {
    /// `hoosh serve` with its own data directory (two servers on one
    /// directory would be refused: one audit chain has one writer).
    pub fn start(config: &str) -> Served {
        let dir = std::env::temp_dir().join(format!("hoosh-served-{}", uuid::Uuid::new_v4().simple()));
        Served::start_with(config, &["--data-dir", dir.to_str().unwrap()], &[])
    }

    /// `hoosh serve` with extra arguments and environment variables.
    pub fn start_with(config: &str, args: &[&str], envs: &[(&str, &str)]) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--config", config, "--port", "0"])
            .args(args)
            .envs(envs.iter().copied())
            .env("HOOSH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        Served { child, url }
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.stop()
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().unwrap();
        panic!("hoosh did not stop within 5 s of SIGTERM");
    }
}

/// A test that fails before `terminate` must not leave its gateway running
/// (holding its port, data directory and database connections).
impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
