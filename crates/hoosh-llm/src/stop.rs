//! Turning token pieces into text the caller may see.
//!
//! Two problems sit between llama.cpp's token bytes and a `GenEvent::Text`:
//!
//! 1. A token is a byte string, not a string: a multi-byte character (emoji,
//!    accented letters in byte-level BPE) may be split across two or more
//!    tokens. [`Utf8Assembler`] keeps the incomplete tail of a character back
//!    until its last byte arrives, so each character is emitted once, whole.
//! 2. A stop string may span several tokens (`" of Fr"` + `"ance"`). Text that
//!    could be the start of a stop string is held back by [`StopMatcher`]
//!    until it either completes the stop (then it is never emitted) or
//!    diverges from it (then it is released).
//!
//! Both write into caller-owned buffers so the per-token path does not
//! allocate once the buffers have grown.

/// Reassembles UTF-8 text from a stream of byte pieces.
#[derive(Debug, Default)]
pub struct Utf8Assembler {
    /// Bytes of a character whose remaining bytes have not arrived yet (≤ 3).
    partial: Vec<u8>,
}

impl Utf8Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the complete characters of `partial + bytes` to `out` and keeps
    /// an incomplete trailing character for the next call. Bytes that can
    /// never become valid UTF-8 are replaced with U+FFFD.
    pub fn push(&mut self, bytes: &[u8], out: &mut String) {
        if self.partial.is_empty() {
            let rest = decode_into(bytes, out);
            self.partial.extend_from_slice(rest);
        } else {
            self.partial.extend_from_slice(bytes);
            let joined = std::mem::take(&mut self.partial);
            let rest = decode_into(&joined, out);
            self.partial.extend_from_slice(rest);
            // Give the (now empty) allocation back if it was the one we took.
            if self.partial.is_empty() {
                self.partial = joined;
                self.partial.clear();
            }
        }
    }

    /// Flushes an incomplete trailing character (as U+FFFD) at end of stream.
    pub fn finish(&mut self, out: &mut String) {
        if !self.partial.is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
            self.partial.clear();
        }
    }

    /// Whether bytes are waiting for the rest of their character.
    pub fn has_pending(&self) -> bool {
        !self.partial.is_empty()
    }
}

/// Decodes as much of `bytes` as possible into `out` and returns the
/// incomplete trailing character, if any.
fn decode_into<'a>(mut bytes: &'a [u8], out: &mut String) -> &'a [u8] {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return &[];
            }
            Err(e) => {
                let (valid, after) = bytes.split_at(e.valid_up_to());
                // `valid` is valid UTF-8 by construction of `valid_up_to`.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    // Truncated character at the end: wait for more bytes.
                    None => return after,
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        bytes = &after[n..];
                    }
                }
            }
        }
    }
}

/// Holds back text that may be the beginning of a stop string.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet released: always a proper prefix of some
    /// stop string (or empty).
    pending: String,
    stopped: bool,
}

impl StopMatcher {
    /// Empty stop strings are ignored (they would match everywhere).
    pub fn new(stops: impl IntoIterator<Item = String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        StopMatcher { stops, pending: String::new(), stopped: false }
    }

    /// Feeds `text`; appends what is safe to show to `out`. Returns `true`
    /// when a stop string was completed: `out` then ends just before it and
    /// everything from the stop string on is discarded.
    pub fn push(&mut self, text: &str, out: &mut String) -> bool {
        if self.stopped {
            return true;
        }
        if self.stops.is_empty() {
            out.push_str(text);
            return false;
        }
        self.pending.push_str(text);
        if let Some(at) = self.earliest_stop() {
            out.push_str(&self.pending[..at]);
            self.pending.clear();
            self.stopped = true;
            return true;
        }
        let keep = self.longest_stop_prefix_suffix();
        let release = self.pending.len() - keep;
        out.push_str(&self.pending[..release]);
        self.pending.drain(..release);
        false
    }

    /// Releases held-back text at the end of generation (no stop followed).
    pub fn finish(&mut self, out: &mut String) {
        if !self.stopped {
            out.push_str(&self.pending);
        }
        self.pending.clear();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Byte index of the earliest full stop-string match in `pending`.
    fn earliest_stop(&self) -> Option<usize> {
        self.stops.iter().filter_map(|s| self.pending.find(s.as_str())).min()
    }

    /// Length of the longest suffix of `pending` that is a proper prefix of a
    /// stop string (at a character boundary).
    fn longest_stop_prefix_suffix(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            let max = (stop.len() - 1).min(self.pending.len());
            // Longest first: the first hit is the longest for this stop.
            for len in (best + 1..=max).rev() {
                let start = self.pending.len() - len;
                if self.pending.is_char_boundary(start) && stop.starts_with(&self.pending[start..]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` through a matcher and returns (visible text, stopped).
    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()));
        let mut out = String::new();
        for p in pieces {
            if m.push(p, &mut out) {
                return (out, true);
            }
        }
        m.finish(&mut out);
        (out, false)
    }

    /// Every way of cutting `text` into two or three pieces.
    fn splits(text: &str) -> Vec<Vec<&str>> {
        let idx: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        let mut out = vec![vec![text]];
        for &a in &idx {
            out.push(vec![&text[..a], &text[a..]]);
            for &b in idx.iter().filter(|&&b| b >= a) {
                out.push(vec![&text[..a], &text[a..b], &text[b..]]);
            }
        }
        out
    }

    #[test]
    fn stop_found_at_every_split_point() {
        let text = "The capital of France is Paris.";
        for pieces in splits(text) {
            assert_eq!(run(&["Paris"], &pieces), ("The capital of France is ".to_string(), true), "{pieces:?}");
            assert_eq!(run(&[" of Fr"], &pieces), ("The capital".to_string(), true), "{pieces:?}");
        }
    }

    #[test]
    fn no_stop_releases_everything_at_every_split_point() {
        let text = "Paradise is near Pa";
        for pieces in splits(text) {
            assert_eq!(run(&["Paris"], &pieces), (text.to_string(), false), "{pieces:?}");
        }
    }

    #[test]
    fn held_back_text_is_released_as_soon_as_it_diverges() {
        let mut m = StopMatcher::new(["Paris".to_string()]);
        let mut out = String::new();
        assert!(!m.push("is Pa", &mut out));
        assert_eq!(out, "is ");
        assert!(!m.push("ra", &mut out));
        assert_eq!(out, "is Para");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        for pieces in splits("a STOP b END c") {
            assert_eq!(run(&["END", "STOP"], &pieces), ("a ".to_string(), true), "{pieces:?}");
        }
    }

    #[test]
    fn overlapping_prefixes_are_not_lost() {
        // "aab": after "aa" the matcher must keep "a" (suffix) as a candidate.
        for pieces in splits("xaaab") {
            assert_eq!(run(&["aab"], &pieces), ("xa".to_string(), true), "{pieces:?}");
        }
    }

    #[test]
    fn multibyte_stop_strings_and_text() {
        for pieces in splits("naïve café ☕ done") {
            assert_eq!(run(&["café"], &pieces), ("naïve ".to_string(), true), "{pieces:?}");
            assert_eq!(run(&["☕ d"], &pieces), ("naïve café ".to_string(), true), "{pieces:?}");
        }
    }

    #[test]
    fn empty_stop_strings_are_ignored() {
        assert_eq!(run(&[""], &["abc"]), ("abc".to_string(), false));
    }

    #[test]
    fn utf8_split_at_every_byte() {
        let text = "a😀b naïve €";
        let bytes = text.as_bytes();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut asm = Utf8Assembler::new();
                let mut out = String::new();
                let mut events = Vec::new();
                for part in [&bytes[..a], &bytes[a..b], &bytes[b..]] {
                    let before = out.len();
                    asm.push(part, &mut out);
                    events.push(out[before..].to_string());
                }
                asm.finish(&mut out);
                assert_eq!(out, text, "split at {a},{b}");
                // No piece ever contains a broken character (String guarantees
                // validity; this checks nothing was replaced or duplicated).
                assert_eq!(events.concat(), text);
            }
        }
    }

    #[test]
    fn utf8_emoji_byte_by_byte_is_emitted_once_complete() {
        let mut asm = Utf8Assembler::new();
        let mut out = String::new();
        let bytes = "😀".as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            asm.push(&[*b], &mut out);
            if i + 1 < bytes.len() {
                assert!(out.is_empty());
                assert!(asm.has_pending());
            }
        }
        assert_eq!(out, "😀");
        assert!(!asm.has_pending());
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut asm = Utf8Assembler::new();
        let mut out = String::new();
        asm.push(&[b'a', 0xFF, b'b'], &mut out);
        assert_eq!(out, "a\u{FFFD}b");
        asm.push(&[0xE2, 0x82], &mut out); // first two bytes of '€'
        asm.finish(&mut out);
        assert_eq!(out, "a\u{FFFD}b\u{FFFD}");
    }
}
