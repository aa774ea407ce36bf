//! `ndjson`: newline-delimited JSON from an upstream — the line decoder
//! ([`json_lines`]) and, on top of it, Ollama's `/api/chat` stream
//! ([`stream_chunks`]), both over a real `reqwest::Response`.
//!
//! Input: one byte choosing the network chunks, then the body. Invariants:
//! the lines do not depend on the chunking, none is blank or holds a
//! newline; Ollama's stream yields at most one error and only as its last
//! item, every chunk carries the stream's one id, the first is the
//! assistant's role, and a stream that ends without an error ends with a
//! finish reason and then the usage.

use futures_util::StreamExt;
use hoosh_providers::ollama::stream_chunks;
use hoosh_providers::sse::json_lines;
use hoosh_types::openai::{ChatCompletionChunk, Role};

use crate::input::{Input, block_on, chunks, upstream_response};

pub fn ndjson(data: &[u8]) {
    let mut input = Input::new(data);
    let seed = input.byte();
    let body = input.rest();
    let pieces = chunks(body, seed);

    let whole = lines(&[body]);
    assert_eq!(lines(&pieces), whole, "the chunking changed the lines");
    for line in whole.iter().flatten() {
        assert!(!line.trim().is_empty() && !line.contains('\n'), "a blank or multi-line line: {line:?}");
    }

    let items: Vec<_> = block_on(stream_chunks(upstream_response(&pieces), "fuzz-model").collect());
    let error_at = items.iter().position(Result::is_err).unwrap_or(items.len());
    assert!(error_at + 1 >= items.len(), "items after an error: {items:?}");
    let chunks: Vec<&ChatCompletionChunk> = items.iter().filter_map(|i| i.as_ref().ok()).collect();
    if let Some(first) = chunks.first() {
        assert!(chunks.iter().all(|c| c.id == first.id && c.object == ChatCompletionChunk::OBJECT));
        assert_eq!(first.choices.first().and_then(|c| c.delta.role), Some(Role::Assistant), "{first:?}");
    }
    if error_at == items.len() {
        let [.., finish, usage] = chunks.as_slice() else { panic!("a clean end without its last two chunks") };
        assert!(usage.choices.is_empty() && usage.usage.is_some(), "{usage:?}");
        assert!(finish.choices.first().is_some_and(|c| c.finish_reason.is_some()), "{finish:?}");
    }
}

/// The lines [`json_lines`] yields, then the error that ended them.
fn lines(pieces: &[&[u8]]) -> Vec<Result<String, String>> {
    block_on(json_lines(upstream_response(pieces)).map(|l| l.map_err(|e| e.message)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLLAMA: &[u8] = b"{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n\
        \n\
        {\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:01Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":3,\"eval_count\":1}\n";

    #[test]
    fn a_real_ollama_stream_in_every_chunking() {
        for seed in 0..=255u8 {
            let mut data = vec![seed];
            data.extend_from_slice(OLLAMA);
            ndjson(&data);
        }
        let items: Vec<_> = block_on(stream_chunks(upstream_response(&[OLLAMA]), "m").collect());
        assert_eq!(items.len(), 4, "role, content, finish, usage: {items:?}");
    }

    #[test]
    fn a_cut_stream_ends_in_one_error() {
        let cut = &OLLAMA[..OLLAMA.len() / 2];
        let items: Vec<_> = block_on(stream_chunks(upstream_response(&[cut]), "m").collect());
        assert!(items.last().is_some_and(Result::is_err), "{items:?}");
        ndjson(&[[0].as_slice(), cut].concat());
    }
}
