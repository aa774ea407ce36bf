//! A TCP relay to a real server (PostgreSQL, Redis) on a port of its own,
//! which a test can cut to make that server unreachable for one client
//! without stopping it for anyone else: [`Relay::cut`] closes every
//! relayed connection and refuses new ones until [`Relay::restore`].

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Relay {
    pub port: u16,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays `127.0.0.1:<port>` to `target` (`host:port`).
    pub fn start(target: &str) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
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
                let Ok(server) = TcpStream::connect(&target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (Ok(c1), Ok(c2), Ok(s1), Ok(s2)) =
                    (client.try_clone(), client.try_clone(), server.try_clone(), server.try_clone())
                else {
                    continue;
                };
                c.lock().unwrap_or_else(|p| p.into_inner()).extend([c1, s1]);
                pipe(c2, s2);
                pipe(server, client);
            }
        });
        Ok(Relay { port, down, conns })
    }

    /// `url` with its `host:port` (`target`) replaced by this relay's.
    pub fn url(&self, url: &str, target: &str) -> String {
        url.replacen(target, &format!("127.0.0.1:{}", self.port), 1)
    }

    /// Drops every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.conns.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Relays again.
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
