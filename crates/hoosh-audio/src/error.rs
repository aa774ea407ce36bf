//! [`AudioError`]: why an upload could not be turned into samples.

/// Every variant is the caller's fault (a bad or unsupported upload), so all
/// map to HTTP 400; the `Display` text is written to be shown to the caller.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum AudioError {
    /// The container or codec is not one this build decodes.
    #[error("unsupported audio: {what}")]
    Unsupported { what: String },
    /// The bytes claim a known format but are truncated or damaged.
    #[error("corrupt audio: {detail}")]
    Corrupt { detail: String },
    /// Zero bytes, or a file that decodes to no samples.
    #[error("audio is empty")]
    Empty,
    /// Longer than [`crate::DecodeLimits::max_duration_secs`]. `secs` is the
    /// duration from the file's metadata, or how far decoding got before
    /// stopping when the metadata has none.
    #[error("audio is too long: {secs:.1} s (limit {max_secs:.1} s)")]
    TooLong { secs: f64, max_secs: f64 },
}
