//! Incremental decoders for streamed bodies: server-sent events (OpenAI,
//! Anthropic, Gemini) and newline-delimited JSON (Ollama).
//!
//! Both split on raw bytes and decode UTF-8 only once a line is complete, so
//! a multi-byte character split across network chunks is never mangled into
//! U+FFFD (a bug of the reference implementation).

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use hoosh_core::{ErrorKind, ProviderError};

/// Longest line accepted from an upstream stream. Generous on purpose: one
/// SSE line can carry a whole base64 image or audio part.
pub const MAX_LINE: usize = 8 * 1024 * 1024;

/// Most `data:` an SSE event may gather over its lines before the blank line
/// that ends it. With [`MAX_LINE`] it bounds what one stream holds in memory
/// whatever the upstream sends: a line without end, or `data:` lines without
/// a blank one.
pub const MAX_EVENT: usize = 8 * 1024 * 1024;

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Splits a byte buffer into complete lines (`\n`, `\r\n`).
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: BytesMut,
    /// How much of `buf` is known to hold no `\n`: each byte is looked at
    /// once, so a long line arriving in small chunks costs linear time.
    scanned: usize,
}

impl LineSplitter {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line without its terminator.
    pub fn next_line(&mut self) -> Result<Option<String>, ProviderError> {
        let Some(pos) = self.buf[self.scanned..].iter().position(|b| *b == b'\n').map(|p| p + self.scanned) else {
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_LINE {
                return Err(line_too_long());
            }
            return Ok(None);
        };
        self.scanned = 0;
        let mut line = self.buf.split_to(pos);
        self.buf.advance(1);
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > MAX_LINE {
            return Err(line_too_long());
        }
        utf8(line)
    }

    /// Whatever is left after the body ended (a last line without `\n`).
    pub fn finish(&mut self) -> Result<Option<String>, ProviderError> {
        self.scanned = 0;
        if self.buf.is_empty() {
            return Ok(None);
        }
        utf8(std::mem::take(&mut self.buf))
    }
}

fn line_too_long() -> ProviderError {
    ProviderError::invalid_response(format!("upstream stream line exceeds {MAX_LINE} bytes"))
}

fn utf8(line: BytesMut) -> Result<Option<String>, ProviderError> {
    String::from_utf8(Vec::from(line))
        .map(Some)
        .map_err(|_| ProviderError::invalid_response("upstream stream is not valid UTF-8"))
}

/// Accumulates SSE lines into events (`event:`, multi-line `data:`,
/// comments ignored, dispatch on a blank line).
#[derive(Debug, Default)]
pub struct SseParser {
    lines: LineSplitter,
    event: Option<String>,
    data: Vec<String>,
    /// Bytes in `data`, newlines between lines included.
    data_len: usize,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) {
        self.lines.push(chunk);
    }

    pub fn next_event(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        while let Some(line) = self.lines.next_line()? {
            if let Some(ev) = self.feed_line(&line)? {
                return Ok(Some(ev));
            }
        }
        Ok(None)
    }

    /// Flushes a final event that the upstream did not terminate with a blank line.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        if let Some(line) = self.lines.finish()?
            && let Some(ev) = self.feed_line(&line)?
        {
            return Ok(Some(ev));
        }
        Ok(self.dispatch())
    }

    fn feed_line(&mut self, line: &str) -> Result<Option<SseEvent>, ProviderError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data_len += value.len() + usize::from(!self.data.is_empty());
                if self.data_len > MAX_EVENT {
                    return Err(ProviderError::invalid_response(format!(
                        "upstream stream event exceeds {MAX_EVENT} bytes"
                    )));
                }
                self.data.push(value.to_owned());
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        self.data_len = 0;
        if self.data.is_empty() {
            self.event = None;
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        Some(SseEvent { event: self.event.take(), data })
    }
}

/// The events of an SSE response body. A transport failure mid-body is an
/// `Err(StreamInterrupted)` item; the stream then ends.
pub fn sse_events(resp: reqwest::Response) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send {
    decode(resp, SseParser::default(), |p, c| p.push(c), SseParser::next_event, SseParser::finish)
}

/// The lines of an NDJSON response body (blank lines skipped).
pub fn json_lines(resp: reqwest::Response) -> impl Stream<Item = Result<String, ProviderError>> + Send {
    decode(
        resp,
        LineSplitter::default(),
        |p, c| p.push(c),
        |p| loop {
            match p.next_line()? {
                Some(l) if l.trim().is_empty() => continue,
                other => return Ok(other),
            }
        },
        |p| Ok(p.finish()?.filter(|l| !l.trim().is_empty())),
    )
}

fn decode<P, T>(
    resp: reqwest::Response,
    parser: P,
    push: fn(&mut P, &[u8]),
    next: fn(&mut P) -> Result<Option<T>, ProviderError>,
    finish: fn(&mut P) -> Result<Option<T>, ProviderError>,
) -> impl Stream<Item = Result<T, ProviderError>> + Send
where
    P: Send + 'static,
    T: Send + 'static,
{
    struct St<P> {
        body: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
        parser: P,
        ended: bool,
    }
    let st = St { body: Box::pin(resp.bytes_stream()), parser, ended: false };
    futures_util::stream::unfold(st, move |mut st| async move {
        loop {
            if st.ended {
                return None;
            }
            match next(&mut st.parser) {
                Ok(Some(item)) => return Some((Ok(item), st)),
                Ok(None) => {}
                Err(e) => {
                    st.ended = true;
                    return Some((Err(e), st));
                }
            }
            match st.body.next().await {
                Some(Ok(chunk)) => push(&mut st.parser, &chunk),
                Some(Err(e)) => {
                    st.ended = true;
                    let e = ProviderError::new(ErrorKind::StreamInterrupted, format!("upstream stream broke: {e}"));
                    return Some((Err(e), st));
                }
                None => {
                    st.ended = true;
                    return match finish(&mut st.parser) {
                        Ok(Some(item)) => Some((Ok(item), st)),
                        Ok(None) => None,
                        Err(e) => Some((Err(e), st)),
                    };
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_arbitrary_chunk_boundaries() {
        let text = "event: a\ndata: {\"x\":\"h\u{e9}llo \u{1f600}\"}\n\n: keep-alive\n\ndata: line1\ndata: line2\r\n\r\ndata: [DONE]\n\n";
        let bytes = text.as_bytes();
        for split in 1..bytes.len() {
            let mut p = SseParser::default();
            let mut out = Vec::new();
            for chunk in bytes.chunks(split) {
                p.push(chunk);
                while let Some(ev) = p.next_event().unwrap() {
                    out.push(ev);
                }
            }
            assert!(p.finish().unwrap().is_none());
            assert_eq!(out.len(), 3, "split {split}");
            assert_eq!(out[0].event.as_deref(), Some("a"));
            assert_eq!(out[0].data, "{\"x\":\"h\u{e9}llo \u{1f600}\"}", "split {split}");
            assert_eq!(out[1].data, "line1\nline2");
            assert_eq!(out[2].data, "[DONE]");
        }
    }

    #[test]
    fn unterminated_last_event_is_flushed() {
        let mut p = SseParser::default();
        p.push(b"data: tail");
        assert!(p.next_event().unwrap().is_none());
        assert_eq!(p.finish().unwrap().unwrap().data, "tail");
    }

    #[test]
    fn a_line_past_the_limit_is_an_error_whether_or_not_it_ends() {
        let mut l = LineSplitter::default();
        let piece = vec![b'x'; 64 * 1024];
        let mut pushed = 0;
        let err = loop {
            l.push(&piece);
            pushed += piece.len();
            match l.next_line() {
                Ok(None) => assert!(pushed <= MAX_LINE, "held {pushed} bytes without a newline"),
                Ok(Some(_)) => panic!("no newline was sent"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind, ErrorKind::InvalidResponse);
        assert!(pushed <= MAX_LINE + piece.len());

        // The newline arrives in the same chunk that crosses the limit.
        let mut l = LineSplitter::default();
        let mut long = vec![b'y'; MAX_LINE + 1];
        long.push(b'\n');
        l.push(&long);
        assert!(l.next_line().is_err());
        let mut l = LineSplitter::default();
        long[MAX_LINE] = b'\n';
        l.push(&long[..=MAX_LINE]);
        assert_eq!(l.next_line().unwrap().map(|s| s.len()), Some(MAX_LINE), "exactly the limit is fine");
    }

    #[test]
    fn data_lines_without_a_blank_line_are_cut_at_the_event_limit() {
        let mut p = SseParser::default();
        let line = format!("data: {}\n", "z".repeat(1023));
        let mut fed = 0;
        let err = loop {
            p.push(line.as_bytes());
            fed += 1024;
            match p.next_event() {
                Ok(None) => assert!(fed <= MAX_EVENT + 1024, "gathered {fed} bytes into one event"),
                Ok(Some(_)) => panic!("no event was ended"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind, ErrorKind::InvalidResponse);
        assert!(err.message.contains("event exceeds"), "{}", err.message);

        // Events under the limit, one after another, never add up.
        let mut p = SseParser::default();
        let event = format!("data: {}\ndata: {}\n\n", "a".repeat(MAX_EVENT / 4), "b".repeat(MAX_EVENT / 4));
        for _ in 0..8 {
            p.push(event.as_bytes());
            assert_eq!(p.next_event().unwrap().unwrap().data.len(), MAX_EVENT / 2 + 1);
        }
    }

    #[test]
    fn invalid_utf8_is_a_clean_error() {
        let mut p = SseParser::default();
        p.push(b"data: {\"x\":\"\xff\xfe\"}\n\n");
        assert_eq!(p.next_event().unwrap_err().kind, ErrorKind::InvalidResponse);
        let mut l = LineSplitter::default();
        l.push(b"\xc3");
        assert!(l.next_line().unwrap().is_none());
        assert_eq!(l.finish().unwrap_err().kind, ErrorKind::InvalidResponse, "a cut multi-byte character at the end");
    }

    #[test]
    fn line_splitter_holds_partial_utf8() {
        let s = "\u{1f600}\n".as_bytes();
        let mut l = LineSplitter::default();
        l.push(&s[..2]);
        assert!(l.next_line().unwrap().is_none());
        l.push(&s[2..]);
        assert_eq!(l.next_line().unwrap().unwrap(), "\u{1f600}");
    }
}
