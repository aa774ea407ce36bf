//! Byte-level behaviour over real sockets: a hand-written HTTP/1.1 server
//! sends exactly the bytes each test wants, split where the test wants, so
//! the client sees what a misbehaving or unusual server would send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use hoosh_client::types::{ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Role};
use hoosh_client::{ChatStream, ClientError, HooshClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A piece of the response, written after a pause so that it reaches the
/// client as its own read.
struct Piece {
    pause: Duration,
    bytes: Vec<u8>,
}

fn now(bytes: impl Into<Vec<u8>>) -> Piece {
    Piece { pause: Duration::from_millis(5), bytes: bytes.into() }
}

fn after(pause: Duration, bytes: impl Into<Vec<u8>>) -> Piece {
    Piece { pause, bytes: bytes.into() }
}

/// Serves one connection: reads the request (head and `Content-Length`
/// body), writes `pieces`, closes. Returns the base URL and, once done, the
/// request head as received.
async fn serve_once(pieces: Vec<Piece>) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.set_nodelay(true).unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before sending a request");
            received.extend_from_slice(&buf[..n]);
            if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        while received.len() < head_end + length {
            let n = socket.read(&mut buf).await.unwrap();
            received.extend_from_slice(&buf[..n]);
        }
        for piece in pieces {
            tokio::time::sleep(piece.pause).await;
            if socket.write_all(&piece.bytes).await.is_err() {
                break; // the client gave up (timeout tests)
            }
            let _ = socket.flush().await;
        }
        let _ = socket.shutdown().await;
        head
    });
    (url, task)
}

fn sse_head(extra_headers: &str) -> Piece {
    now(format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n{extra_headers}\r\n"))
}

fn chunk_json(content: &str) -> String {
    format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":"{content}"}},"finish_reason":null}}]}}"#
    )
}

fn request() -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: "m".into(),
        messages: vec![ChatMessage::text(Role::User, "hi")],
        ..Default::default()
    }
}

async fn drain(mut stream: ChatStream) -> Vec<Result<ChatCompletionChunk, ClientError>> {
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item);
    }
    items
}

fn text_of(items: &[Result<ChatCompletionChunk, ClientError>]) -> String {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .flat_map(|c| &c.choices)
        .filter_map(|ch| ch.delta.content.as_deref())
        .collect()
}

#[tokio::test]
async fn multibyte_characters_split_across_reads_survive() {
    // "é😀" as bytes, cut inside both characters, with CRLF line endings,
    // keep-alive comments, and one chunk spread over two `data:` lines.
    let first = format!("data: {}\r\n\r\n", chunk_json("caf\u{e9} \u{1f600}!"));
    let bytes = first.as_bytes();
    let cut_e = first.find('\u{e9}').unwrap() + 1; // inside the 2-byte é
    let cut_emoji = first.find('\u{1f600}').unwrap() + 2; // inside the 4-byte 😀
    let second = chunk_json(" more");
    let (second_a, second_b) = second.split_at(second.find("\"choices\"").unwrap());
    let pieces = vec![
        sse_head(""),
        now(": keep-alive\r\n\r\n"),
        now(&bytes[..cut_e]),
        now(&bytes[cut_e..cut_emoji]),
        now(&bytes[cut_emoji..]),
        now(format!("data: {second_a}\r")),
        now(format!("\ndata: {second_b}\r\n\r\n")),
        now("data: [DONE]"), // no final blank line: closing ends the event
    ];
    let (url, server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).build().unwrap();
    let items = drain(client.chat_stream(&request()).await.unwrap()).await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text_of(&items), "caf\u{e9} \u{1f600}! more");
    let head = server.await.unwrap();
    assert!(head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"), "{head}");
}

#[tokio::test]
async fn in_band_error_event_becomes_api_error() {
    let error =
        r#"{"error":{"message":"upstream went away","type":"server_error","param":null,"code":"upstream_error"}}"#;
    let pieces = vec![
        sse_head("x-request-id: req-42\r\n"),
        now(format!("data: {}\n\n", chunk_json("partial"))),
        now(format!("data: {error}\n\n")),
        now(format!("data: {}\n\n", chunk_json("never seen"))),
        now("data: [DONE]\n\n"),
    ];
    let (url, _server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).build().unwrap();
    let stream = client.chat_stream(&request()).await.unwrap();
    assert_eq!(stream.request_id(), Some("req-42"));
    let items = drain(stream).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(text_of(&items), "partial");
    let err = items[1].as_ref().unwrap_err();
    match err {
        ClientError::Api { status, error, request_id } => {
            assert_eq!(*status, 200);
            assert_eq!(error.code.as_deref(), Some("upstream_error"));
            assert_eq!(error.message, "upstream went away");
            assert_eq!(request_id.as_deref(), Some("req-42"));
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert_eq!(err.to_string(), "error in stream: upstream_error: upstream went away (request id: req-42)");
}

#[tokio::test]
async fn clean_close_without_done_is_truncated() {
    let pieces = vec![sse_head(""), now(format!("data: {}\n\n", chunk_json("half an answer")))];
    let (url, _server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).build().unwrap();
    let items = drain(client.chat_stream(&request()).await.unwrap()).await;
    assert_eq!(text_of(&items), "half an answer");
    assert!(matches!(items.last(), Some(Err(ClientError::StreamTruncated))), "{items:?}");
}

#[tokio::test]
async fn garbage_event_is_a_decode_error() {
    let pieces = vec![sse_head(""), now("data: {\"not\": \"a chunk\"}\n\n"), now("data: [DONE]\n\n")];
    let (url, _server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).build().unwrap();
    let items = drain(client.chat_stream(&request()).await.unwrap()).await;
    assert!(matches!(items.as_slice(), [Err(ClientError::Decode(_))]), "{items:?}");
}

#[tokio::test]
async fn a_silent_stream_times_out() {
    let pieces = vec![
        sse_head(""),
        now(format!("data: {}\n\n", chunk_json("first"))),
        after(Duration::from_secs(3), format!("data: {}\n\n", chunk_json("too late"))),
    ];
    let (url, _server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).timeout(Duration::from_millis(300)).build().unwrap();
    let items = drain(client.chat_stream(&request()).await.unwrap()).await;
    assert_eq!(text_of(&items), "first");
    let last = items.last().unwrap();
    assert!(matches!(last, Err(ClientError::Transport(m)) if m.starts_with("timed out")), "{last:?}");
}

#[tokio::test]
async fn json_answer_to_a_stream_request_is_reported() {
    let body =
        r#"{"error":{"message":"streaming is disabled","type":"invalid_request_error","param":"stream","code":null}}"#;
    let pieces = vec![now(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))];
    let (url, _server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).build().unwrap();
    let err = client.chat_stream(&request()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Api { status: 200, error, .. } if error.param.as_deref() == Some("stream")),
        "{err:?}"
    );
}

#[tokio::test]
async fn model_by_id_encodes_slashes_and_parses() {
    let body = r#"{"id":"openai/gpt-4o","object":"model","created":0,"owned_by":"openai"}"#;
    let pieces = vec![now(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))];
    let (url, server) = serve_once(pieces).await;
    let client = HooshClient::builder(format!("{url}/v1")).api_key(Some("sk-1".into())).build().unwrap();
    let model = client.model("openai/gpt-4o").await.unwrap();
    assert_eq!(model.id, "openai/gpt-4o");
    let head = server.await.unwrap();
    assert!(head.starts_with("GET /v1/models/openai%2Fgpt-4o HTTP/1.1\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains("authorization: bearer sk-1\r\n"), "{head}");
}

#[tokio::test]
async fn health_is_true_on_2xx() {
    let pieces = vec![now("HTTP/1.1 204 No Content\r\n\r\n")];
    let (url, server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).build().unwrap();
    assert!(client.health().await.unwrap());
    assert!(server.await.unwrap().starts_with("GET /health HTTP/1.1\r\n"));
}

#[tokio::test]
async fn providers_returns_the_json_as_is() {
    let body = r#"{"providers":[{"name":"openai","healthy":true}]}"#;
    let pieces = vec![now(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))];
    let (url, server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).build().unwrap();
    let value = client.providers().await.unwrap();
    assert_eq!(value["providers"][0]["name"], "openai");
    assert!(server.await.unwrap().starts_with("GET /v1/providers HTTP/1.1\r\n"));
}

#[tokio::test]
async fn non_openai_error_body_is_an_http_error() {
    let body = "<html><body>502 Bad Gateway</body></html>";
    let pieces = vec![now(format!(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))];
    let (url, _server) = serve_once(pieces).await;
    let client = HooshClient::builder(url).build().unwrap();
    let err = client.models().await.unwrap_err();
    assert!(matches!(&err, ClientError::Http { status: 502, body: b } if b == body), "{err:?}");
    assert_eq!(err.to_string(), format!("502 Bad Gateway: {body}"));
}
