//! `sse`: the two server-sent-event decoders — `hoosh_providers::sse` (what
//! upstreams send: OpenAI, Anthropic, Gemini, OpenAI audio) and
//! `hoosh_client::sse` (what the client reads from a gateway).
//!
//! Input: one byte choosing how the body is cut into network chunks, then
//! the body. Invariants, for each decoder: the events (and the error that
//! stops them) do not depend on where the chunks are cut; the providers'
//! decoder gives the same through [`sse_events`] over a real
//! `reqwest::Response`; the events, written back out as SSE, decode to the
//! same events. Across decoders: on a body both read the same way (UTF-8, no
//! `\r`, no byte-order mark), they agree.

use std::collections::VecDeque;

use futures_util::StreamExt;
use hoosh_client::sse as client;
use hoosh_providers::sse::{self as providers, sse_events};

use crate::input::{Input, block_on, chunks, upstream_response};

/// What a decoder made of a body: the events, then the error that ended it.
type Outcome<E> = (Vec<E>, Option<String>);

pub fn sse(data: &[u8]) {
    let mut input = Input::new(data);
    let seed = input.byte();
    let body = input.rest();
    let pieces = chunks(body, seed);

    let upstream = provider_events(&[body]);
    assert_eq!(provider_events(&pieces), upstream, "providers' decoder: the chunking changed the events");
    let via_response =
        block_on(sse_events(upstream_response(&pieces)).map(|item| item.map_err(|e| e.message)).collect::<Vec<_>>());
    assert_eq!(split_outcome(via_response), upstream, "sse_events over a response differs from the parser");
    if upstream.1.is_none() {
        let again = provider_events(&[encode(&upstream.0, |e| (e.event.as_deref(), &e.data), "\r\n").as_bytes()]);
        assert_eq!(again, upstream, "providers' decoder: events written back out decode differently");
    }

    let gateway = client_events(&[body]);
    assert_eq!(client_events(&pieces), gateway, "hoosh-client's decoder: the chunking changed the events");
    if gateway.1.is_none() {
        let again = client_events(&[encode(&gateway.0, |e| (e.event.as_deref(), &e.data), "\n").as_bytes()]);
        assert_eq!(again, gateway, "hoosh-client's decoder: events written back out decode differently");
    }

    if std::str::from_utf8(body).is_ok() && !body.contains(&b'\r') && !body.starts_with(b"\xEF\xBB\xBF") {
        let upstream: Vec<_> = upstream.0.iter().map(|e| (e.event.as_deref(), e.data.as_str())).collect();
        let gateway: Vec<_> = gateway.0.iter().map(|e| (e.event.as_deref(), e.data.as_str())).collect();
        assert_eq!(upstream, gateway, "the two decoders disagree on a body both read alike");
    }
}

fn provider_events(pieces: &[&[u8]]) -> Outcome<providers::SseEvent> {
    let mut parser = providers::SseParser::default();
    let mut events = Vec::new();
    for piece in pieces {
        parser.push(piece);
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(e) => return (events, Some(e.message)),
            }
        }
    }
    match parser.finish() {
        Ok(last) => events.extend(last),
        Err(e) => return (events, Some(e.message)),
    }
    (events, None)
}

fn client_events(pieces: &[&[u8]]) -> Outcome<client::SseEvent> {
    let mut parser = client::SseParser::new();
    let mut events = VecDeque::new();
    for piece in pieces {
        if let Err(e) = parser.feed(piece, &mut events) {
            return (events.into(), Some(e.to_string()));
        }
    }
    let end = parser.finish(&mut events).err().map(|e| e.to_string());
    (events.into(), end)
}

/// The items of a stream that ends at its first error, as an [`Outcome`].
fn split_outcome<T>(items: Vec<Result<T, String>>) -> Outcome<T> {
    let mut events = Vec::new();
    for item in items {
        match item {
            Ok(event) => events.push(event),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

/// `events` as an SSE body with `eol` line endings: `event:` when named, one
/// `data:` line per line of data, a blank line after each.
fn encode<E>(events: &[E], fields: impl Fn(&E) -> (Option<&str>, &String), eol: &str) -> String {
    let mut out = String::new();
    for event in events {
        let (name, data) = fields(event);
        if let Some(name) = name {
            out.push_str(&format!("event: {name}{eol}"));
        }
        for line in data.split('\n') {
            out.push_str(&format!("data: {line}{eol}"));
        }
        out.push_str(eol);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openai_stream_in_every_chunking() {
        let body =
            b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"h\xC3\xA9\"}}]}\n\n: ping\n\ndata: [DONE]\n\n";
        for seed in 0..=255u8 {
            let mut data = vec![seed];
            data.extend_from_slice(body);
            sse(&data);
        }
        assert_eq!(provider_events(&[body]).0.len(), 2);
    }

    #[test]
    fn decoders_that_disagreed_would_be_caught() {
        // hoosh-client ends a line at a lone `\r`, the providers' decoder does
        // not: bodies with `\r` are kept out of the comparison for that reason.
        let body: &[u8] = b"data: a\rdata: b\n\n";
        assert_ne!(provider_events(&[body]).0[0].data, client_events(&[body]).0[0].data);
    }
}
