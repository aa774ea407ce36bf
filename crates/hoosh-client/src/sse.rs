//! A byte-level Server-Sent Events parser (the WHATWG `text/event-stream`
//! grammar, minus `id`/`retry` which a chat stream never needs).
//!
//! Bytes are split into lines before any UTF-8 decoding, and a line is only
//! decoded once it is complete, so a multi-byte character that a network
//! chunk boundary cuts in two is reassembled, never replaced by U+FFFD.
//! Lines end in `\n`, `\r\n` or a lone `\r` (also when the `\r` and `\n` of
//! one `\r\n` arrive in different chunks). Lines starting with `:` are
//! comments (keep-alives); several `data:` lines of one event are joined
//! with `\n`; a blank line ends the event.

use std::collections::VecDeque;
use std::str::Utf8Error;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when the server named the event.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser: [`feed`](SseParser::feed) it network chunks as they
/// arrive, then call [`finish`](SseParser::finish) at end of body. After an
/// error the parser's state is unspecified; drop it.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line not yet terminated.
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` opening the next one belongs
    /// to that line ending, not to a new empty line.
    after_cr: bool,
    /// Whether the first line (which may carry a byte-order mark) was seen.
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseParser {
    pub fn new() -> Self {
        SseParser::default()
    }

    /// Consumes `bytes`, pushing every event they complete onto `out`.
    /// Fails when a complete line is not valid UTF-8.
    pub fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), Utf8Error> {
        let mut input = bytes;
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        let mut rest = input;
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let line_tail = &rest[..end];
            if self.partial.is_empty() {
                self.line(line_tail, out)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(line_tail);
                self.line(&line, out)?;
            }
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            rest = &rest[next..];
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// Ends the body: an unterminated last line is taken as complete and an
    /// event still open is dispatched. The spec would drop that event, but
    /// servers that close right after `data: [DONE]\n` are common, and
    /// dropping their last event would report a finished stream as cut.
    pub fn finish(&mut self, out: &mut VecDeque<SseEvent>) -> Result<(), Utf8Error> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn line(&mut self, mut line: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), Utf8Error> {
        if !self.started {
            self.started = true;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(std::str::from_utf8(value)?);
                self.has_data = true;
            }
            b"event" => self.event = Some(std::str::from_utf8(value)?.to_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut VecDeque<SseEvent>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push_back(SseEvent { event, data: std::mem::take(&mut self.data) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape the parser must handle, with multi-byte characters (2- and
    /// 4-byte) that most split points cut in two.
    const SAMPLE: &[u8] = b"\xEF\xBB\xBF: keep-alive\r\n\
        data: {\"c\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}\r\n\r\n\
        event: note\n\
        data: line one \xC3\xA9\n\
        data:line two\n\
        data\n\
        \n\
        : ping\r\r\
        data: \xF0\x9F\x98\x80\xF0\x9F\x98\x80\r\r\
        id: 7\n\
        retry: 10\n\
        \n\n\
        data: [DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent { event: None, data: "{\"c\":\"caf\u{e9} \u{1f600}\"}".into() },
            SseEvent { event: Some("note".into()), data: "line one \u{e9}\nline two\n".into() },
            SseEvent { event: None, data: "\u{1f600}\u{1f600}".into() },
            SseEvent { event: None, data: "[DONE]".into() },
        ]
    }

    fn parse_pieces(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = VecDeque::new();
        for piece in pieces {
            parser.feed(piece, &mut out).unwrap();
        }
        parser.finish(&mut out).unwrap();
        out.into_iter().collect()
    }

    #[test]
    fn whole_sample() {
        assert_eq!(parse_pieces(&[SAMPLE]), expected());
    }

    #[test]
    fn every_single_split_point() {
        for i in 0..=SAMPLE.len() {
            let (a, b) = SAMPLE.split_at(i);
            assert_eq!(parse_pieces(&[a, b]), expected(), "split at byte {i}");
        }
    }

    #[test]
    fn every_pair_of_split_points() {
        for i in 0..=SAMPLE.len() {
            for j in i..=SAMPLE.len() {
                let pieces = [&SAMPLE[..i], &SAMPLE[i..j], &SAMPLE[j..]];
                assert_eq!(parse_pieces(&pieces), expected(), "split at bytes {i} and {j}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let pieces: Vec<&[u8]> = SAMPLE.chunks(1).collect();
        assert_eq!(parse_pieces(&pieces), expected());
    }

    #[test]
    fn events_are_emitted_as_soon_as_complete() {
        let mut parser = SseParser::new();
        let mut out = VecDeque::new();
        parser.feed(b"data: a\n", &mut out).unwrap();
        assert!(out.is_empty());
        parser.feed(b"\ndata: b", &mut out).unwrap();
        assert_eq!(out.pop_front().map(|e| e.data), Some("a".into()));
        assert!(out.is_empty());
    }

    #[test]
    fn cr_then_lf_in_separate_chunks_is_one_line_ending() {
        // Were the `\n` read as a second line ending, the blank line would
        // dispatch "a" alone instead of joining it with "b".
        assert_eq!(
            parse_pieces(&[b"data: a\r", b"\ndata: b\n\n"]),
            vec![SseEvent { event: None, data: "a\nb".into() }]
        );
        assert_eq!(
            parse_pieces(&[b"data: a\r", b"", b"\ndata: b\n\n"]),
            vec![SseEvent { event: None, data: "a\nb".into() }]
        );
    }

    #[test]
    fn unterminated_last_event_is_dispatched_at_finish() {
        assert_eq!(parse_pieces(&[b"data: [DONE]"]), vec![SseEvent { event: None, data: "[DONE]".into() }]);
        assert_eq!(parse_pieces(&[b"data: [DONE]\n"]), vec![SseEvent { event: None, data: "[DONE]".into() }]);
        assert!(parse_pieces(&[b": only a comment\n"]).is_empty());
    }

    #[test]
    fn invalid_utf8_in_a_complete_line_is_an_error() {
        let mut parser = SseParser::new();
        let mut out = VecDeque::new();
        // An incomplete character is fine while the line is still open...
        assert!(parser.feed(b"data: \xC3", &mut out).is_ok());
        // ...but not once the line ends without its continuation byte.
        assert!(parser.feed(b"\n\n", &mut out).is_err());
    }
}
