//! Throughput and latency of the local LLM through the scheduler.
//!
//! ```text
//! cargo run --release -p hoosh-llm --example llm_bench -- /path/to/model.gguf [threads]
//! ```
//! (or set `HOOSH_TEST_GGUF`). Prints a markdown table: load time, prefill
//! tok/s on a ~500-token prompt, and for 1, 4 and 8 concurrent sequences the
//! time to first token and the aggregate generated tok/s (128 tokens greedy
//! per request; a request may end earlier at end-of-generation).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use hoosh_llm::{GenEvent, GenerateRequest, LlmConfig, LlmEngine, SamplingParams};
use hoosh_types::openai::{ChatMessage, Role};

const QUESTIONS: [&str; 8] = [
    "Write a long story about a dragon who learns to fly.",
    "Explain in detail how rain forms.",
    "Write a long poem about autumn leaves.",
    "Describe the history of the city of Paris.",
    "Explain step by step what a computer does when it boots.",
    "Tell me about the history of bread.",
    "Write a long letter to a friend about your holiday.",
    "Describe a day at the beach in detail.",
];

struct Run {
    ttft: Duration,
    total: Duration,
    prompt_tokens: u32,
    completion_tokens: u32,
}

async fn timed(engine: &LlmEngine, req: GenerateRequest) -> Run {
    let start = Instant::now();
    let mut generation = engine.submit(req).unwrap();
    let mut ttft = None;
    loop {
        match generation.events.recv().await.expect("stream ended without Done") {
            GenEvent::Text(_) => {
                ttft.get_or_insert_with(|| start.elapsed());
            }
            GenEvent::Done { prompt_tokens, completion_tokens, .. } => {
                let total = start.elapsed();
                return Run { ttft: ttft.unwrap_or(total), total, prompt_tokens, completion_tokens };
            }
            GenEvent::Error(e) => panic!("generation failed: {e}"),
        }
    }
}

fn request(engine: &LlmEngine, user: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: engine.render_chat(&[ChatMessage::text(Role::User, user)], None).unwrap(),
        max_tokens: Some(max_tokens),
        sampling: SamplingParams::greedy(),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path =
        args.next().or_else(|| std::env::var("HOOSH_TEST_GGUF").ok()).expect("usage: llm_bench MODEL.gguf [threads]");
    let threads = args.next().map(|t| t.parse().expect("threads")).unwrap_or(LlmConfig::default().threads);

    let t = Instant::now();
    let engine =
        LlmEngine::load(LlmConfig { context_per_sequence: 1024, max_sequences: 8, threads, ..LlmConfig::new(path) })
            .unwrap();
    let load = t.elapsed();
    timed(&engine, request(&engine, "Hi", 4)).await; // warm-up

    // Prefill: a ~500-token prompt, one output token.
    let paragraph = "The gateway receives a request, checks the key, picks a provider and streams the answer back. ";
    let mut text = String::new();
    while engine.tokenize(&text, false).unwrap().len() < 480 {
        text.push_str(paragraph);
    }
    let prefill = timed(&engine, request(&engine, &format!("Summarize: {text}"), 1)).await;
    let prefill_rate = f64::from(prefill.prompt_tokens) / prefill.total.as_secs_f64();

    println!("| metric | value |\n|---|---|");
    println!("| model | {} |", engine.info().name);
    println!("| threads | {threads} |");
    println!("| load time | {} ms |", load.as_millis());
    println!(
        "| prefill ({} prompt tokens, 1 sequence) | {prefill_rate:.0} tok/s ({} ms) |",
        prefill.prompt_tokens,
        prefill.total.as_millis()
    );
    println!();
    println!(
        "| concurrent sequences | generated tokens | wall time | aggregate tok/s | mean TTFT | per-stream decode tok/s |"
    );
    println!("|---|---|---|---|---|---|");
    for n in [1usize, 4, 8] {
        let t = Instant::now();
        let runs = futures_join(&engine, n).await;
        let wall = t.elapsed();
        let generated: u32 = runs.iter().map(|r| r.completion_tokens).sum();
        let ttft_ms = runs.iter().map(|r| r.ttft.as_secs_f64() * 1000.0).sum::<f64>() / n as f64;
        let per_stream = runs
            .iter()
            .map(|r| f64::from(r.completion_tokens.saturating_sub(1)) / (r.total - r.ttft).as_secs_f64().max(1e-9))
            .sum::<f64>()
            / n as f64;
        println!(
            "| {n} | {generated} | {:.2} s | {:.1} | {ttft_ms:.0} ms | {per_stream:.1} |",
            wall.as_secs_f64(),
            f64::from(generated) / wall.as_secs_f64()
        );
    }
}

/// Submits `n` requests at once and waits for all of them.
async fn futures_join(engine: &LlmEngine, n: usize) -> Vec<Run> {
    let mut handles = Vec::with_capacity(n);
    for q in QUESTIONS.iter().cycle().take(n) {
        let engine = engine.clone();
        let req = request(&engine, q, 128);
        handles.push(tokio::spawn(async move { timed(&engine, req).await }));
    }
    let mut runs = Vec::with_capacity(n);
    for h in handles {
        runs.push(h.await.unwrap());
    }
    runs
}
