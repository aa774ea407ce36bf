//! Reading structure out of fuzz bytes: choices, numbers and chunk sizes
//! from the front, the payload from what is left. Running out of bytes is
//! never an error (zeros follow), so every input is a valid one.

use std::future::Future;

/// A cursor over the fuzz input.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// The next byte, 0 once the input is used up.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { usize::from(self.u16()) % n }
    }

    /// Up to `max` bytes, the count read first.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let len = self.below(max + 1).min(self.data.len());
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        taken
    }

    /// Up to `max` bytes as text (invalid UTF-8 replaced).
    pub fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Cuts `body` into network-sized pieces chosen by `seed`: one piece for 0,
/// otherwise pieces of 1 to `seed % 64 + 1` bytes in a seeded order, so the
/// fuzzer can put a boundary anywhere (inside a `\r\n`, a UTF-8 character,
/// a multipart boundary).
pub fn chunks(body: &[u8], seed: u8) -> Vec<&[u8]> {
    if seed == 0 || body.is_empty() {
        return vec![body];
    }
    let max = usize::from(seed % 64) + 1;
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        // xorshift32: deterministic, and different seeds give different cuts.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state as usize % max + 1).min(rest.len());
        let (piece, tail) = rest.split_at(size);
        out.push(piece);
        rest = tail;
    }
    out
}

/// A `200` upstream response whose body arrives as `pieces`, one network
/// chunk each: what the providers' stream decoders are handed.
pub fn upstream_response(pieces: &[&[u8]]) -> reqwest::Response {
    let owned: Vec<Result<bytes::Bytes, std::io::Error>> =
        pieces.iter().map(|p| Ok(bytes::Bytes::copy_from_slice(p))).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(owned));
    reqwest::Response::from(http::Response::new(body))
}

/// Runs `fut` to completion on this thread's current-thread runtime. The
/// targets' futures read in-memory bodies, so this never waits on I/O.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => panic!("the fuzz harness cannot build a tokio runtime: {e}"),
        };
    }
    RUNTIME.with(|rt| rt.block_on(fut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_body_in_order() {
        let body: Vec<u8> = (0..=255).collect();
        for seed in 0..=255u8 {
            let pieces = chunks(&body, seed);
            assert_eq!(pieces.concat(), body, "seed {seed}");
            assert!(pieces.iter().all(|p| !p.is_empty()));
            if seed != 0 {
                assert!(pieces.iter().all(|p| p.len() <= usize::from(seed % 64) + 1));
            }
        }
        assert_eq!(chunks(&body, 0).len(), 1);
        assert!(chunks(&body, 1).len() > 100, "seed 1 cuts one or two bytes at a time");
    }

    #[test]
    fn input_runs_dry_into_zeros() {
        let mut input = Input::new(&[7, 1, 0, 2, 0, 0xaa, 0xbb, 0xcc]);
        assert_eq!(input.byte(), 7);
        assert_eq!(input.u16(), 1);
        assert_eq!(input.bytes(10), &[0xaa, 0xbb], "a count of 2, then two bytes");
        assert_eq!(input.clone().rest(), &[0xcc]);
        assert_eq!(input.byte(), 0xcc);
        assert_eq!((input.byte(), input.u64(), input.below(5)), (0, 0, 0));
        assert_eq!(input.bytes(10), &[] as &[u8]);
    }
}
