//! hoosh-fuzz: the bodies of hoosh's fuzz targets, one `pub fn(&[u8])` per
//! parser that takes bytes from outside — a client, an upstream, a file.
//!
//! Each function feeds the bytes to the real parser (no copies of it) and
//! panics only when an invariant breaks: the parser panicked, two ways of
//! feeding the same bytes disagree, a decoded value does not survive
//! re-encoding, an error that should be the client's came out as a 500, a
//! forged audit chain verified. Two drivers share them:
//!
//! - `fuzz/` (cargo-fuzz, libFuzzer, sanitizers; not a workspace member):
//!   one one-line target per function, run for minutes by `scripts/fuzz.sh`;
//! - `tests/replay.rs` (stable, in the normal test suite and so in CI):
//!   every committed corpus file and every crash kept in `regressions/`,
//!   then a short seeded mutation run of each target.
//!
//! Layout (one target per file, named as the target):
//! - [`sse`]: both SSE decoders (providers' upstream one, hoosh-client's);
//! - [`ndjson`]: the NDJSON line decoder and Ollama's stream on top of it;
//! - [`multipart`]: the audio transcription form through axum's extractor;
//! - [`requests`]: chat, embeddings and speech JSON bodies, decoded and validated;
//! - [`audio`]: audio containers through [`hoosh_audio::decode`];
//! - [`audit`]: audit chains, honest, tampered and forged, and raw JSONL rows;
//! - [`config`]: `hoosh.toml` text through parse and `validate()`;
//! - [`input`]: reading structure (choices, chunk sizes) out of the bytes.

pub mod audio;
pub mod audit;
pub mod config;
pub mod input;
pub mod multipart;
pub mod ndjson;
pub mod requests;
pub mod sse;

pub use audio::audio_container;
pub use audit::audit_rows;
pub use config::config_toml;
pub use multipart::multipart;
pub use ndjson::ndjson;
pub use requests::{chat_request, embeddings_request, speech_request};
pub use sse::sse;

/// A fuzz target: its name (the folder of its corpus and regressions, the
/// name of its libFuzzer binary) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "sse", run: sse },
    Target { name: "ndjson", run: ndjson },
    Target { name: "multipart", run: multipart },
    Target { name: "chat_request", run: chat_request },
    Target { name: "embeddings_request", run: embeddings_request },
    Target { name: "speech_request", run: speech_request },
    Target { name: "audio_container", run: audio_container },
    Target { name: "audit_rows", run: audit_rows },
    Target { name: "config_toml", run: config_toml },
];
