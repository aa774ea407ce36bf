//! What a caller hands the scheduler and what streams back.

use tokio::sync::mpsc;

use crate::error::LlmError;
use crate::sampling::SamplingParams;

/// One completion job. The prompt is final text: chat requests are rendered
/// with [`crate::LlmEngine::render_chat`] first.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// Prompt text; special tokens such as `<|im_start|>` are parsed.
    pub prompt: String,
    /// Cap on generated tokens; `None` = until the sequence's context is full.
    pub max_tokens: Option<u32>,
    pub sampling: SamplingParams,
    /// Generation ends before the first occurrence of any of these.
    pub stop: Vec<String>,
    /// Constrain the output to one JSON object (`response_format: json_object`).
    pub json: bool,
}

impl Default for GenerateRequest {
    fn default() -> Self {
        GenerateRequest {
            prompt: String::new(),
            max_tokens: Some(256),
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            json: false,
        }
    }
}

impl GenerateRequest {
    pub fn new(prompt: impl Into<String>) -> Self {
        GenerateRequest { prompt: prompt.into(), ..Self::default() }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Finish {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` reached, or the sequence's context is full.
    Length,
}

/// One item of a generation's stream. `Done` or `Error` is always last.
#[derive(Debug, Clone, PartialEq)]
pub enum GenEvent {
    /// New visible text: valid UTF-8, never part of a stop string.
    Text(String),
    /// `completion_tokens` counts every sampled token, including the
    /// end-of-generation token or the tokens of a stop string (as llama-server).
    Done {
        finish: Finish,
        prompt_tokens: u32,
        completion_tokens: u32,
        /// Prompt tokens reused from the slot's KV cache (not recomputed).
        cached_tokens: u32,
    },
    Error(LlmError),
}

/// A running (or queued) generation. Dropping it cancels the sequence: the
/// scheduler sees the closed channel before its next step and frees the slot.
#[derive(Debug)]
pub struct Generation {
    pub events: mpsc::Receiver<GenEvent>,
    pub(crate) prompt_tokens: u32,
}

/// A whole generation, gathered by [`Generation::collect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub finish: Finish,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens reused from a previous request's KV cache.
    pub cached_tokens: u32,
}

impl Generation {
    /// Prompt length in tokens, known as soon as the request is accepted.
    pub fn prompt_tokens(&self) -> u32 {
        self.prompt_tokens
    }

    /// Waits for the whole output.
    pub async fn collect(mut self) -> Result<Completion, LlmError> {
        let mut text = String::new();
        while let Some(ev) = self.events.recv().await {
            match ev {
                GenEvent::Text(t) => text.push_str(&t),
                GenEvent::Done { finish, prompt_tokens, completion_tokens, cached_tokens } => {
                    return Ok(Completion { text, finish, prompt_tokens, completion_tokens, cached_tokens });
                }
                GenEvent::Error(e) => return Err(e),
            }
        }
        // The scheduler always ends a stream with Done or Error unless it died.
        Err(LlmError::EngineStopped)
    }
}
