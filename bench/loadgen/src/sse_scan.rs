//! Counts SSE events in a body that arrives in arbitrary pieces: an event
//! may be split across frames, or several may share one.

#[derive(Default)]
pub struct SseScan {
    /// The unterminated tail of the last frame.
    carry: Vec<u8>,
    /// `data:` events seen, `[DONE]` included.
    pub events: u64,
    pub saw_done: bool,
}

impl SseScan {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.carry.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = find(&self.carry[start..], b"\n\n") {
            let event = &self.carry[start..start + end];
            // Comments (`: keep-alive`) and other fields are not data events.
            if let Some(data) = event.split(|&b| b == b'\n').find_map(|line| line.strip_prefix(b"data:")) {
                self.events += 1;
                if data.trim_ascii() == b"[DONE]" {
                    self.saw_done = true;
                }
            }
            start += end + 2;
        }
        self.carry.drain(..start);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::SseScan;

    #[test]
    fn events_split_across_frames_count_once() {
        let body = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        for cut in 0..body.len() {
            let mut s = SseScan::default();
            s.feed(&body[..cut]);
            s.feed(&body[cut..]);
            assert_eq!((s.events, s.saw_done), (3, true), "cut at {cut}");
        }
    }
}
