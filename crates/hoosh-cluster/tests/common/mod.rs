//! What the cluster tests share: a fresh PostgreSQL database and a fresh
//! Redis namespace per test (the real servers on this machine, or the ones
//! `HOOSH_TEST_POSTGRES` / `HOOSH_TEST_REDIS` name), and a TCP relay that
//! a test can cut to take a server "down" without stopping it for others.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

pub fn postgres_admin_url() -> String {
    std::env::var("HOOSH_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("HOOSH_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A unique name for this test's data.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A new, empty database; its URL.
pub fn fresh_database() -> String {
    let name = unique("hoosh_t");
    let mut admin = postgres::Client::connect(&postgres_admin_url(), postgres::NoTls).expect("PostgreSQL is running");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let base = postgres_admin_url();
    let (root, _) = base.rsplit_once('/').unwrap();
    format!("{root}/{name}")
}

/// A TCP relay to `target` on a port of its own. `cut()` closes every
/// relayed connection and refuses new ones until `restore()`.
pub struct Relay {
    pub port: u16,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, c, target) = (Arc::clone(&down), Arc::clone(&conns), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else { continue };
                c.lock().push(client.try_clone().unwrap());
                c.lock().push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Relay { port, down, conns }
    }

    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.conns.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}
