//! The continuous-batching loop (one dedicated OS thread per model).
//!
//! Each iteration, like llama-server's:
//!
//! 1. **Admit** waiting jobs into free sequence slots (blocking only when
//!    nothing is running). A slot's index is its llama.cpp sequence id.
//! 2. **Cancel** sequences whose `Generation` was dropped (closed channel).
//! 3. **Build one batch**: the last sampled token of every decoding sequence,
//!    then prompt tokens of sequences still prefilling, chunked so the batch
//!    never exceeds `batch_tokens`.
//! 4. **Decode** once.
//! 5. **Sample** each sequence at its own logits index with its own sampler
//!    chain, turn the token into text (UTF-8 reassembly, stop strings), send
//!    it, and end the sequence on EOG / stop string (`Stop`) or on
//!    `max_tokens` / full context (`Length`). An ended sequence clears its KV
//!    range and frees its slot for the next iteration.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;
use tokio::sync::mpsc;

use crate::error::LlmError;
use crate::generation::{Finish, GenEvent};
use crate::sampling::{SamplingParams, build_chain};
use crate::stop::{StopMatcher, Utf8Assembler};

/// A request accepted by `LlmEngine::submit`, waiting for a slot.
pub(crate) struct Job {
    pub tokens: Vec<LlamaToken>,
    pub max_tokens: Option<u32>,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    pub json: bool,
    pub events: mpsc::Sender<GenEvent>,
}

/// Limits the loop enforces.
pub(crate) struct Settings {
    pub context_per_sequence: u32,
    pub max_sequences: usize,
    pub batch_tokens: usize,
    /// Keep a finished sequence's KV and reuse its longest common prompt prefix.
    pub prompt_cache: bool,
}

/// One active sequence.
struct Sequence {
    id: i32,
    events: mpsc::Sender<GenEvent>,
    sampler: LlamaSampler,
    prompt: Vec<LlamaToken>,
    prompt_tokens: u32,
    /// Prompt tokens found in the slot's KV cache and not recomputed.
    cached_tokens: u32,
    /// Prompt tokens already submitted to llama.cpp.
    prefilled: usize,
    /// Position of the next token to decode (= tokens in this sequence's KV).
    n_past: u32,
    /// Sampled, sent, and waiting to be decoded in the next batch.
    pending_token: Option<LlamaToken>,
    /// Where this sequence's logits are in the batch just decoded.
    logits_index: Option<i32>,
    completion_tokens: u32,
    max_tokens: u32,
    utf8: Utf8Assembler,
    stop: StopMatcher,
    // Reused buffers: the per-token path allocates only the event's String.
    piece: Vec<u8>,
    text: String,
    visible: String,
}

/// Outcome of one sampling step.
enum Step {
    Continue,
    Finished(Finish),
    /// The receiver is gone: the caller cancelled.
    Cancelled,
}

/// Thread body: create the context, report readiness, then serve jobs until
/// every `LlmEngine` handle is dropped and the running sequences are done.
pub(crate) fn run(
    backend: &LlamaBackend,
    model: &LlamaModel,
    params: LlamaContextParams,
    settings: Settings,
    jobs: Receiver<Job>,
    ready: Sender<Result<(), LlmError>>,
) {
    let ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(LlmError::Load(format!("cannot create the llama.cpp context: {e}"))));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    let mut scheduler = Scheduler {
        vocab: model.vocab(),
        model,
        ctx,
        batch: LlamaBatch::new(settings.batch_tokens, 1),
        slots: (0..settings.max_sequences).map(|_| None).collect(),
        kv_tokens: (0..settings.max_sequences).map(|_| Vec::new()).collect(),
        settings,
    };
    scheduler.serve(&jobs);
    tracing::debug!("llm scheduler thread stopped");
}

struct Scheduler<'m> {
    model: &'m LlamaModel,
    vocab: LlamaVocab<'m>,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    slots: Vec<Option<Sequence>>,
    /// The tokens in each slot's KV cells, positions 0.. (kept after a
    /// sequence ends when `prompt_cache` is on).
    kv_tokens: Vec<Vec<LlamaToken>>,
    settings: Settings,
}

impl Scheduler<'_> {
    fn serve(&mut self, jobs: &Receiver<Job>) {
        let mut accepting = true;
        loop {
            if self.active() == 0 {
                if !accepting {
                    return;
                }
                match jobs.recv() {
                    Ok(job) => self.admit(job),
                    Err(_) => return,
                }
            }
            while accepting && self.free_slot().is_some() {
                match jobs.try_recv() {
                    Ok(job) => self.admit(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => accepting = false,
                }
            }
            self.drop_cancelled();
            if self.fill_batch() == 0 {
                continue;
            }
            if let Err(e) = self.ctx.decode(&mut self.batch) {
                tracing::error!(error = %e, tokens = self.batch.n_tokens(), "llama_decode failed");
                self.fail_all(&LlmError::Inference(format!("llama.cpp decode failed: {e}")));
                continue;
            }
            self.sample_all();
        }
    }

    fn active(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(Option::is_none)
    }

    /// Puts a job into the lowest free slot (low ids keep the active set
    /// contiguous, which lets llama.cpp put them in one micro-batch).
    fn admit(&mut self, job: Job) {
        if job.events.is_closed() {
            return; // cancelled while queued
        }
        let Some(slot) = self.pick_slot(&job.tokens) else {
            let _ = job.events.try_send(GenEvent::Error(LlmError::Inference("no free sequence slot".into())));
            return;
        };
        let sampler = match build_chain(&job.sampling, self.model, job.json) {
            Ok(s) => s,
            Err(e) => {
                let _ = job.events.try_send(GenEvent::Error(e));
                return;
            }
        };
        // `slot` < max_sequences ≤ 256.
        let id = slot as i32;
        // Reuse the longest common prefix of the slot's cached tokens (at
        // least one prompt token is always decoded, to get logits).
        let mut reuse = if self.settings.prompt_cache {
            common_prefix(&self.kv_tokens[slot], &job.tokens).min(job.tokens.len().saturating_sub(1))
        } else {
            0
        };
        let cleared = self.ctx.clear_kv_cache_seq(Some(slot as u32), Some(reuse as u32), None);
        if reuse > 0 && !matches!(cleared, Ok(true)) {
            let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
            reuse = 0;
        }
        self.kv_tokens[slot].truncate(reuse);
        self.slots[slot] = Some(Sequence {
            id,
            events: job.events,
            sampler,
            prompt_tokens: u32::try_from(job.tokens.len()).unwrap_or(u32::MAX),
            cached_tokens: reuse as u32,
            prompt: job.tokens,
            prefilled: reuse,
            n_past: reuse as u32,
            pending_token: None,
            logits_index: None,
            completion_tokens: 0,
            max_tokens: job.max_tokens.unwrap_or(u32::MAX),
            utf8: Utf8Assembler::new(),
            stop: StopMatcher::new(job.stop),
            piece: Vec::with_capacity(32),
            text: String::with_capacity(32),
            visible: String::with_capacity(32),
        });
    }

    /// The free slot for a new prompt: the one whose cached tokens share the
    /// longest prefix with it, else the lowest (low ids keep the active set
    /// contiguous, which lets llama.cpp put them in one micro-batch).
    fn pick_slot(&self, prompt: &[LlamaToken]) -> Option<usize> {
        let free = (0..self.slots.len()).filter(|&i| self.slots[i].is_none());
        if !self.settings.prompt_cache {
            return free.min();
        }
        free.max_by_key(|&i| (common_prefix(&self.kv_tokens[i], prompt), std::cmp::Reverse(i)))
    }

    fn free(&mut self, slot: usize) {
        if self.slots[slot].take().is_some() && !self.settings.prompt_cache {
            self.clear_slot(slot);
        }
    }

    fn clear_slot(&mut self, slot: usize) {
        self.kv_tokens[slot].clear();
        if let Err(e) = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None) {
            tracing::warn!(slot, error = %e, "clearing a sequence's KV cache failed");
        }
    }

    fn drop_cancelled(&mut self) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|s| s.events.is_closed()) {
                tracing::debug!(slot, "generation cancelled by its caller");
                self.free(slot);
            }
        }
    }

    /// Builds the next batch; returns its token count.
    fn fill_batch(&mut self) -> usize {
        self.batch.clear();
        let cap = self.settings.batch_tokens;
        // Decoding sequences first: one token each, always fits (≤ 256 < cap).
        for seq in self.slots.iter_mut().flatten() {
            if let Some(token) = seq.pending_token.take() {
                let at = self.batch.n_tokens();
                if self.batch.add(token, seq.n_past as i32, &[seq.id], true).is_err() {
                    seq.pending_token = Some(token);
                    continue;
                }
                seq.logits_index = Some(at);
                seq.n_past += 1;
                self.kv_tokens[seq.id as usize].push(token);
            }
        }
        // Then prompt chunks, in slot order, while room is left.
        for seq in self.slots.iter_mut().flatten() {
            let room = cap.saturating_sub(self.batch.n_tokens() as usize);
            if room == 0 {
                break;
            }
            let remaining = seq.prompt.len() - seq.prefilled;
            if remaining == 0 {
                continue;
            }
            let take = remaining.min(room);
            let last = seq.prefilled + take == seq.prompt.len();
            for i in 0..take {
                let token = seq.prompt[seq.prefilled + i];
                let want_logits = last && i + 1 == take;
                let at = self.batch.n_tokens();
                // Cannot fail: `take` ≤ room.
                let _ = self.batch.add(token, seq.n_past as i32, &[seq.id], want_logits);
                if want_logits {
                    seq.logits_index = Some(at);
                }
                seq.n_past += 1;
                self.kv_tokens[seq.id as usize].push(token);
            }
            seq.prefilled += take;
            if last {
                // The prompt is no longer needed.
                seq.prompt = Vec::new();
                seq.prefilled = 0;
            }
        }
        self.batch.n_tokens() as usize
    }

    /// Ends every active sequence: after a failed decode their KV state is
    /// unknown.
    fn fail_all(&mut self, err: &LlmError) {
        for slot in 0..self.slots.len() {
            if let Some(seq) = self.slots[slot].take() {
                let _ = seq.events.try_send(GenEvent::Error(err.clone()));
            }
            self.clear_slot(slot);
        }
    }

    fn sample_all(&mut self) {
        for slot in 0..self.slots.len() {
            let Some(seq) = self.slots[slot].as_mut() else { continue };
            let Some(index) = seq.logits_index.take() else { continue };
            match step(seq, &self.ctx, &self.vocab, self.settings.context_per_sequence, index) {
                Step::Continue => {}
                Step::Finished(finish) => {
                    let _ = seq.events.try_send(GenEvent::Done {
                        finish,
                        prompt_tokens: seq.prompt_tokens,
                        completion_tokens: seq.completion_tokens,
                        cached_tokens: seq.cached_tokens,
                    });
                    self.free(slot);
                }
                Step::Cancelled => self.free(slot),
            }
        }
    }
}

/// How many leading tokens two sequences share.
fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Samples one token for `seq` and streams its text.
fn step(seq: &mut Sequence, ctx: &LlamaContext<'_>, vocab: &LlamaVocab<'_>, context_limit: u32, index: i32) -> Step {
    // `sample` also feeds the token to the chain (penalties, grammar state).
    let token = seq.sampler.sample(ctx, index);
    seq.completion_tokens += 1;
    if vocab.is_eog(token) {
        return flush(seq, Finish::Stop);
    }
    seq.piece.clear();
    vocab.token_to_piece_into(token, &mut seq.piece, false, None);
    seq.text.clear();
    seq.utf8.push(&seq.piece, &mut seq.text);
    seq.visible.clear();
    let stopped = seq.stop.push(&seq.text, &mut seq.visible);
    if !seq.visible.is_empty() && seq.events.try_send(GenEvent::Text(seq.visible.clone())).is_err() {
        return Step::Cancelled;
    }
    if stopped {
        return Step::Finished(Finish::Stop);
    }
    // The sampled token itself still needs a KV cell at `n_past`.
    if seq.completion_tokens >= seq.max_tokens || seq.n_past >= context_limit {
        return flush(seq, Finish::Length);
    }
    seq.pending_token = Some(token);
    Step::Continue
}

/// Releases held-back text (no stop string followed) and finishes.
fn flush(seq: &mut Sequence, finish: Finish) -> Step {
    seq.text.clear();
    seq.utf8.finish(&mut seq.text);
    seq.visible.clear();
    let stopped = seq.stop.push(&seq.text, &mut seq.visible);
    if !stopped {
        seq.stop.finish(&mut seq.visible);
    }
    if !seq.visible.is_empty() && seq.events.try_send(GenEvent::Text(seq.visible.clone())).is_err() {
        return Step::Cancelled;
    }
    Step::Finished(if stopped { Finish::Stop } else { finish })
}
