//! The edge's bounds, tested with real sockets the way an abusive client
//! would use them: connections that never finish their headers, bodies that
//! drip, clients that stop reading a stream, more connections than allowed,
//! junk methods, a ledger that cannot keep up, audio from a caller who would
//! be refused anyway. Each bound is set small and tested at its edge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hoosh_governance::{BudgetSpec, Limits, NewKey};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(gw: &Gateway) -> String {
    gw.url.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes (or `limit` passes); `true` if it closed.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Reads one response head and as much body as came with it.
async fn read_response(conn: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(limit, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&out);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    return;
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

fn with_server(edit: impl FnOnce(&mut hoosh_core::config::ServerConfig)) -> hoosh_core::config::Config {
    let mut c = config(Vec::new());
    edit(&mut c.server);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_connections_are_closed_at_the_header_timeout_while_real_requests_go_on() {
    let gw = Gateway::start(with_server(|s| s.header_read_timeout_secs = 1)).await;
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..300 {
        let mut c = TcpStream::connect(addr(&gw)).await.unwrap();
        match i % 3 {
            0 => {}                                                                                // says nothing
            1 => c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n").await.unwrap(), // never ends its head
            _ => c.write_all(b"GET /health HTTP/1.1\r\nX-Drip: ").await.unwrap(),                  // drips below
        }
        held.push(c);
    }
    // Drip a byte on every third connection, well inside any idle timer.
    let mut dripping = held;
    let drip = tokio::spawn(async move {
        for _ in 0..10 {
            for c in dripping.iter_mut().skip(2).step_by(3) {
                let _ = c.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        dripping
    });
    // Meanwhile real callers are served.
    for _ in 0..20 {
        let (status, _) = call(&gw, "GET", "/health", None, None).await;
        assert_eq!(status, 200);
    }
    let mut held = drip.await.unwrap();
    for (i, c) in held.iter_mut().enumerate() {
        assert!(closed_within(c, Duration::from_secs(3)).await, "connection {i} still open");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "all closed at the 1 s header timeout, took {elapsed:?}");
    let (status, _) = call(&gw, "GET", "/health", None, None).await;
    assert_eq!(status, 200, "the server is still up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dripping_body_is_cut_at_the_body_deadline_with_an_openai_shaped_408() {
    let gw = Gateway::start(with_server(|s| s.body_read_timeout_secs = 1)).await;
    for (path, content_type) in
        [("/v1/chat/completions", "application/json"), ("/v1/audio/transcriptions", "multipart/form-data; boundary=XX")]
    {
        let mut c = TcpStream::connect(addr(&gw)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        // A byte every 100 ms: each inside any per-chunk timer, never done.
        let (mut rd, mut wr) = c.into_split();
        let drip = tokio::spawn(async move {
            let first = if content_type.starts_with("multipart") { "--XX\r\n" } else { "{" };
            let _ = wr.write_all(first.as_bytes()).await;
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if wr.write_all(b" ").await.is_err() {
                    return;
                }
            }
        });
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(4), rd.read_to_end(&mut out)).await;
        drip.abort();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
        assert!(text.contains("\"code\":\"request_timeout\""), "{path}: {text}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{path}: {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_connection_is_closed_but_a_long_answer_is_not_idle() {
    let mock = hoosh_testkit::openai::start().await;
    let mut c = config(vec![openai("up", &mock.url())]);
    c.server.idle_timeout_secs = 1;
    c.server.header_read_timeout_secs = 30;
    let gw = Gateway::start(c).await;

    // Kept alive after one request, then idle: closed at the idle timeout.
    let mut conn = TcpStream::connect(addr(&gw)).await.unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut conn, Duration::from_secs(2)).await.starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    assert!(closed_within(&mut conn, Duration::from_secs(3)).await, "idle connection left open");
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());

    // An answer that takes 2.5 s is not idle time: it arrives whole.
    let body = chat_body("mock-slow-2500", "take your time").to_string();
    let mut conn = TcpStream::connect(addr(&gw)).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let resp = read_response(&mut conn, Duration::from_secs(6)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("take your time"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_connection_cap_new_clients_wait_until_one_closes() {
    let gw = Gateway::start(with_server(|s| s.max_connections = 4)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(addr(&gw)).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        assert!(read_response(&mut c, Duration::from_secs(2)).await.starts_with("HTTP/1.1 200"));
        held.push(c); // kept alive
    }
    // The fifth connects (the kernel's backlog) but is not served...
    let mut fifth = TcpStream::connect(addr(&gw)).await.unwrap();
    fifth.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let waiting = read_response(&mut fifth, Duration::from_millis(500)).await;
    assert!(waiting.is_empty(), "served past the cap: {waiting}");
    // ...until one of the four goes.
    drop(held.pop());
    let served = read_response(&mut fifth, Duration::from_secs(3)).await;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    drop((held, fifth));
    let (_, metrics) = call(&gw, "GET", "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(metric(&metrics, "hoosh_http_connection_cap_reached_total") >= 1.0, "{metrics}");
}

/// The value of an unlabelled metric in a Prometheus text body.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_junk_methods_leave_the_metrics_bounded() {
    let gw = Gateway::start(config(Vec::new())).await;
    for i in 0..1000 {
        let mut c = TcpStream::connect(addr(&gw)).await.unwrap();
        let req = format!("JUNK{i:04}X /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        c.write_all(req.as_bytes()).await.unwrap();
        let _ = read_response(&mut c, Duration::from_secs(2)).await;
    }
    let (status, text) = call(&gw, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_owned();
    let mut methods: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("hoosh_http_requests_total{"))
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    assert!(methods.contains(&"other"), "{methods:?}");
    for m in &methods {
        assert!(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"].contains(m), "{m}");
    }
    assert!(!text.contains("JUNK"), "a client's method became a label");
}

/// An upstream that answers every request with an endless, fast SSE stream
/// of chat chunks; `closed` turns true once the gateway hangs up on it.
async fn endless_stream_upstream() -> (String, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let closed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&closed);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let flag = Arc::clone(&flag);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = conn.read(&mut buf).await; // the request (small, one read)
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let text = "x".repeat(2000);
                let event = format!(
                    "data: {}\n\n",
                    json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
                        "choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]})
                );
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                loop {
                    if conn.write_all(chunk.as_bytes()).await.is_err() {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    (url, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_a_stream_is_cut_at_the_write_timeout_and_settled() {
    let (upstream, upstream_closed) = endless_stream_upstream().await;
    let gw = governed_with(&upstream, |c| {
        c.server.write_timeout_secs = 1;
    })
    .await;
    let (id, key) = key(
        &gw,
        NewKey {
            name: "reader".into(),
            budget: Some(BudgetSpec { tokens: Some(100_000_000), ..Default::default() }),
            ..Default::default()
        },
    );
    let body = json!({"model":"m","stream":true,"max_tokens":100000,"messages":[{"role":"user","content":"go on"}]})
        .to_string();
    // A client with a small receive window that sends its request and reads nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(addr(&gw).parse().unwrap()).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let started = Instant::now();
    while !upstream_closed.load(Ordering::SeqCst) {
        assert!(started.elapsed() < Duration::from_secs(15), "the stalled stream was never cut");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Settled: nothing left reserved, and a ledger row says the client left.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (used_tokens, reserved) = used(&gw, &id);
        if reserved == 0 && used_tokens > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not settled: used {used_tokens}, reserved {reserved}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.state.gov.inner.ledger().flush();
    let mut statuses = Vec::new();
    gw.state.gov.inner.store().usage_rows(0, i64::MAX, &mut |r| statuses.push(r.status)).unwrap();
    assert_eq!(statuses, vec![499], "one row, marked as a client that left");
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ledger_that_cannot_keep_up_refuses_new_work_and_loses_no_row() {
    let mock = hoosh_testkit::openai::start().await;
    let dir = tempdir();
    let db = dir.join("hoosh.db");
    let mut c = config(vec![openai("up", &mock.url())]);
    c.governance.max_ledger_backlog = 3;
    c.governance.master_key_env = "HOOSH_TEST_MASTER_KEY_UNSET".into();
    c.governance.master_key_file = Some(secret_file(MASTER));
    let entries = hoosh_providers::registry::build_entries(&c).unwrap();
    let store = Arc::new(hoosh_governance::SqliteStore::open(&db).unwrap());
    let gov = hoosh_server::governance::open_with_store(&c.governance, store, Some(db.clone())).unwrap();
    let gw = Gateway::serve(hoosh_server::AppState::with_governance(c, entries, gov).unwrap()).await;
    let (_, key) = key(&gw, NewKey { name: "k".into(), ..Default::default() });

    // Another process holds the database: the ledger's writer cannot commit.
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut answered = Vec::new();
    for i in 0..12 {
        let (status, body) =
            call(&gw, "POST", "/v1/chat/completions", Some(&key), Some(chat_body("m", &format!("r{i}")))).await;
        answered.push((status, body));
    }
    let ok = answered.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&Value> = answered.iter().filter(|(s, _)| *s == 503).map(|(_, b)| b).collect();
    assert_eq!(ok, 3, "admitted up to the backlog bound: {answered:?}");
    assert_eq!(refused.len(), 9, "{answered:?}");
    assert_eq!(refused[0]["error"]["code"], "overloaded");
    assert!(gw.state.gov.inner.ledger().queue_depth() <= 3);

    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    gw.state.gov.inner.ledger().flush();
    let mut rows = 0;
    gw.state.gov.inner.store().usage_rows(0, i64::MAX, &mut |_| rows += 1).unwrap();
    assert_eq!(rows, 3, "every admitted request has its row");
    let (status, _) = call(&gw, "POST", "/v1/chat/completions", Some(&key), Some(chat_body("m", "after"))).await;
    assert_eq!(status, 200, "served again once the ledger caught up");
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hoosh-edge-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A multipart transcription request whose file is not audio at all.
fn garbage_audio(model: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("model", model.to_owned())
        .part("file", reqwest::multipart::Part::bytes(vec![0x42u8; 4096]).file_name("noise.wav"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_who_would_be_refused_is_refused_before_the_audio_is_decoded() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let send = |key: String, model: &'static str| {
        let url = gw.url("/v1/audio/transcriptions");
        async move {
            let resp = http().post(url).bearer_auth(key).multipart(garbage_audio(model)).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    // Undecodable audio from a caller in good standing: the decode runs and says so.
    let (_, good) = key(&gw, NewKey { name: "good".into(), ..Default::default() });
    let (status, body) = send(good, "whisper-1").await;
    assert_eq!(status, 400, "{body}");

    // The same file from callers who would be refused: refused first, never decoded.
    let (_, spent) = key(
        &gw,
        NewKey {
            name: "spent".into(),
            budget: Some(BudgetSpec { tokens: Some(0), ..Default::default() }),
            ..Default::default()
        },
    );
    let (status, body) = send(spent, "whisper-1").await;
    assert_eq!(status, 429, "out of budget: {body}");
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");

    let (_, narrow) = key(&gw, NewKey { name: "narrow".into(), models: vec!["gpt-*".into()], ..Default::default() });
    let (status, body) = send(narrow, "whisper-1").await;
    assert_eq!(status, 403, "model not allowed: {body}");

    let (_, busy) = key(
        &gw,
        NewKey { name: "busy".into(), limits: Limits { rpm: Some(1), ..Default::default() }, ..Default::default() },
    );
    let ok = http()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&busy)
        .json(&chat_body("m", "use my one request"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let (status, body) = send(busy, "whisper-1").await;
    assert_eq!(status, 429, "over its rate: {body}");
}
