//! Chat-shaped work: any client API whose request becomes the canonical
//! (OpenAI chat) request — chat completions, legacy completions, and the
//! next ones — is one [`ChatCall`] with its own [`ChatFormat`] for the answer.
//!
//! The output cap: a request that sets none gets
//! `governance.default_max_tokens`, both reserved and sent upstream (as
//! `max_completion_tokens`; each provider family maps it to its own field),
//! so no provider generates past what was reserved. With `n` choices the
//! reservation is `n ×` the cap.

use std::time::Duration;

use axum::response::Response;
use hoosh_core::ChunkStream;
use hoosh_core::executor::{Executor, Failure, Outcome};
use hoosh_core::router::{Candidate, Need};
use hoosh_governance::Principal;
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse, Usage};

use super::estimate::{self, Estimate};
use super::{Endpoint, Reply, ServedBy};
use crate::cache::Answer;
use crate::state::{AppState, Live};

/// How a chat answer is shown in one client API.
pub trait ChatFormat: Send + Sync + 'static {
    /// The route's name in metrics and ledger rows.
    const ROUTE: &'static str;
    fn whole(&self, resp: ChatCompletionResponse) -> Response;
    fn stream(&self, chunks: ChunkStream, req: &ChatCompletionRequest, keepalive: Duration) -> Response;
}

/// A chat request on its way through the pipeline.
pub struct ChatCall<F> {
    pub req: ChatCompletionRequest,
    pub format: F,
    /// The caller's `x-hoosh-cache` choice.
    pub cache_directive: Option<bool>,
}

impl<F: ChatFormat> Endpoint for ChatCall<F> {
    type Output = ChatCompletionResponse;
    const NEED: Need = Need::Chat;

    fn route(&self) -> &'static str {
        F::ROUTE
    }

    fn model(&self) -> &str {
        &self.req.model
    }

    /// One output cap, sent as `max_completion_tokens`: the caller's (the
    /// smaller, if it sent both fields — a provider may honour either), else
    /// the default.
    fn prepare(&mut self, live: &Live) {
        let cap = match (self.req.max_completion_tokens, self.req.max_tokens) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => live.config.governance.default_max_tokens,
        };
        self.req.max_completion_tokens = Some(cap);
        self.req.max_tokens = None;
    }

    fn estimate(&self, candidates: &[Candidate]) -> Estimate {
        let per_choice = u64::from(self.req.output_cap().unwrap_or(0));
        let choices = u64::from(self.req.n.unwrap_or(1).max(1));
        let (prompt, exact) = estimate::prompt_tokens(candidates, &self.req);
        Estimate { prompt, exact, output: choices.saturating_mul(per_choice), media: estimate::Media::default() }
    }

    fn content(&self) -> serde_json::Value {
        serde_json::json!(self.req.messages)
    }

    async fn execute(
        &self,
        executor: &Executor,
        candidates: &[Candidate],
    ) -> Result<Outcome<Reply<ChatCompletionResponse>>, Failure> {
        if self.req.stream {
            executor.chat_stream(candidates, &self.req).await.map(|o| o.map(Reply::Stream))
        } else {
            executor.chat(candidates, &self.req).await.map(|o| o.map(Reply::Whole))
        }
    }

    fn usage(&self, out: &ChatCompletionResponse, estimate: &Estimate) -> Usage {
        out.usage.unwrap_or_else(|| counted_usage(estimate.prompt, out))
    }

    fn respond(&self, reply: Reply<ChatCompletionResponse>, _served: &ServedBy, live: &Live) -> Response {
        match reply {
            Reply::Whole(resp) => self.format.whole(resp),
            Reply::Stream(chunks) => {
                let keepalive = Duration::from_secs(live.config.server.sse_keepalive_secs.max(1));
                self.format.stream(chunks, &self.req, keepalive)
            }
        }
    }

    fn cache_key(&self, st: &AppState, principal: &Principal) -> Option<[u8; 32]> {
        st.cache.key(&self.req, self.cache_directive, principal)
    }

    fn caches(&self) -> bool {
        true
    }

    fn replay_cached(&self, answer: &Answer) -> Option<Reply<ChatCompletionResponse>> {
        match (answer, self.req.stream) {
            (Answer::Whole(r), false) => Some(Reply::Whole(r.clone())),
            (Answer::Stream(chunks), true) => {
                let replay = futures_util::stream::iter(chunks.clone().into_iter().map(Ok));
                Some(Reply::Stream(Box::pin(replay)))
            }
            _ => None,
        }
    }

    fn cacheable_answer(&self, out: &ChatCompletionResponse) -> Option<Answer> {
        Some(Answer::Whole(out.clone()))
    }
}

/// Usage for a provider that reported none: the prompt estimate and the
/// answer's text counted the same way.
pub fn counted_usage(prompt: u64, resp: &ChatCompletionResponse) -> Usage {
    let completion: u64 = resp
        .choices
        .iter()
        .map(|c| estimate::text_tokens(c.message.content.as_deref().unwrap_or_default()).max(1))
        .sum();
    Usage::new(prompt, completion)
}
