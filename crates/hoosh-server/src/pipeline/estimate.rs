//! What a request may consume, before it runs: prompt tokens (counted by the
//! model's own tokenizer when one is at hand, else estimated from the text),
//! the output allowance (`n ×` the cap that is sent upstream) and media
//! (audio seconds, speech characters). Admission reserves this; settlement
//! replaces it with what the provider reports.

use hoosh_core::router::Candidate;
use hoosh_types::content::TextOrParts;
use hoosh_types::openai::{ChatCompletionRequest, ContentPart, content_text};

/// Bytes per token of the estimate (English text with BPE tokenizers runs
/// at 3.5–4.5; the estimate is corrected at settle anyway).
const BYTES_PER_TOKEN: u64 = 4;
/// Framing tokens per message (role, separators), as OpenAI counts them.
const TOKENS_PER_MESSAGE: u64 = 4;
/// An image sent with `detail: "low"`: OpenAI's fixed figure.
const TOKENS_PER_LOW_DETAIL_IMAGE: u64 = 85;
/// Any other image, whatever its size: the most the families bill for one
/// image after their own downscaling (OpenAI high detail at 768×2048 is
/// 85 + 8 × 170 = 1445; Anthropic caps images near 1.15 MP ≈ 1600 tokens).
const TOKENS_PER_IMAGE: u64 = 1600;
/// Audio input parts: OpenAI bills about 10 tokens per second; base64 of
/// 16 kHz 16-bit mono is ~43 KB per second, so one token per 4 KiB of
/// base64 is above it for any common format.
const AUDIO_BASE64_BYTES_PER_TOKEN: u64 = 4096;

/// Everything a request may consume, as admission reserves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Prompt tokens (counted or estimated).
    pub prompt: u64,
    /// `prompt` was counted by the model's own tokenizer.
    pub exact: bool,
    /// The output allowance: `n ×` the per-choice cap sent upstream.
    pub output: u64,
    pub media: Media,
}

/// The non-token part of a request's bill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Media {
    pub audio_ms: u64,
    pub tts_chars: u64,
}

/// Estimated tokens of `text`.
pub fn text_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(BYTES_PER_TOKEN)
}

/// Estimated tokens of a JSON value as sent upstream.
fn json_tokens<T: serde::Serialize>(value: &T) -> u64 {
    serde_json::to_string(value).map_or(0, |s| text_tokens(&s))
}

/// Estimated prompt tokens of a chat request: text, framing, names, tool
/// calls and definitions, images and audio parts, and everything else a
/// provider may count as prompt (`response_format` schemas, `tool_choice`,
/// fields passed through as they are).
pub fn chat_prompt(req: &ChatCompletionRequest) -> u64 {
    let mut tokens = 3;
    if let Some(rf) = &req.response_format {
        tokens += json_tokens(rf);
    }
    if let Some(tc) = &req.tool_choice {
        tokens += json_tokens(tc);
    }
    if !req.extra.is_empty() {
        tokens += json_tokens(&req.extra);
    }
    for m in &req.messages {
        tokens += TOKENS_PER_MESSAGE;
        if let Some(name) = &m.name {
            tokens += text_tokens(name);
        }
        if let Some(c) = &m.content {
            tokens += text_tokens(&content_text(c));
            if let TextOrParts::Parts(parts) = c {
                tokens += parts.iter().map(media_part_tokens).sum::<u64>();
            }
        }
        for call in m.tool_calls.iter().flatten() {
            tokens += text_tokens(&call.function.name) + text_tokens(&call.function.arguments);
        }
    }
    for tool in req.tools.iter().flatten() {
        tokens += json_tokens(tool);
    }
    tokens
}

fn media_part_tokens(part: &ContentPart) -> u64 {
    match part {
        ContentPart::Text { .. } => 0,
        ContentPart::ImageUrl { image_url } if image_url.detail.as_deref() == Some("low") => {
            TOKENS_PER_LOW_DETAIL_IMAGE
        }
        ContentPart::ImageUrl { .. } => TOKENS_PER_IMAGE,
        ContentPart::InputAudio { input_audio } => {
            (input_audio.data.len() as u64).div_ceil(AUDIO_BASE64_BYTES_PER_TOKEN).max(1)
        }
    }
}

/// The prompt's tokens: counted by the model's own tokenizer when every
/// candidate is that model at hand (a loaded local model; `true`), else
/// estimated (`false`).
pub fn prompt_tokens(candidates: &[Candidate], req: &ChatCompletionRequest) -> (u64, bool) {
    let counted = candidates.first().and_then(|c| c.entry.provider.count_prompt_tokens(&c.model, req));
    match counted {
        Some(n) if candidates.len() == 1 => (n, true),
        Some(n) => (n.max(chat_prompt(req)), false),
        None => (chat_prompt(req), false),
    }
}

/// Estimated tokens of embedding inputs.
pub fn inputs(inputs: &[String]) -> u64 {
    inputs.iter().map(|s| text_tokens(s).max(1)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_types::openai::{ChatMessage, ImageUrl, Role};

    #[test]
    fn the_estimate_counts_text_messages_and_framing() {
        let req = ChatCompletionRequest {
            model: "m".into(),
            messages: vec![ChatMessage::text(Role::System, "abcd"), ChatMessage::text(Role::User, "abcdefgh")],
            ..Default::default()
        };
        assert_eq!(chat_prompt(&req), 3 + 2 * TOKENS_PER_MESSAGE + 1 + 2);
        assert_eq!(inputs(&["a".into(), "abcde".into()]), 1 + 2);
    }

    #[test]
    fn an_image_is_bounded_by_the_dearest_rule_unless_low_detail() {
        let image = |detail: Option<&str>| {
            let mut m = ChatMessage::text(Role::User, "");
            m.content = Some(TextOrParts::Parts(vec![ContentPart::ImageUrl {
                image_url: ImageUrl { url: "https://example.invalid/a.png".into(), detail: detail.map(str::to_owned) },
            }]));
            ChatCompletionRequest { model: "m".into(), messages: vec![m], ..Default::default() }
        };
        let framing = 3 + TOKENS_PER_MESSAGE;
        assert_eq!(chat_prompt(&image(None)), framing + TOKENS_PER_IMAGE);
        assert_eq!(chat_prompt(&image(Some("high"))), framing + TOKENS_PER_IMAGE);
        assert_eq!(chat_prompt(&image(Some("low"))), framing + TOKENS_PER_LOW_DETAIL_IMAGE);
    }
}
