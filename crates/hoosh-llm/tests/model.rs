//! End-to-end tests against the real GGUF (SmolLM2-135M-Instruct Q4_1).
//!
//! They need `HOOSH_TEST_GGUF=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf`; without
//! it each test prints "skipping <name>: set HOOSH_TEST_GGUF" and returns.
//! Model tests run one at a time (a shared lock): two llama.cpp contexts
//! computing at once on a small machine would distort timings and crawl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hoosh_llm::{Completion, Finish, GenEvent, GenerateRequest, LlmConfig, LlmEngine, LlmError, SamplingParams};
use hoosh_types::openai::{ChatMessage, Role};
use tokio::sync::{Mutex, MutexGuard};

const DEFAULT_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The model path, or `None` after printing a visible skip notice. The notice
/// goes straight to the process's stderr: libtest captures `eprintln!` of
/// passing tests, and a skip must not look like a pass.
fn model_path(test: &str) -> Option<PathBuf> {
    use std::io::Write;
    let why = match std::env::var_os("HOOSH_TEST_GGUF").map(PathBuf::from) {
        Some(p) if p.is_file() => return Some(p),
        Some(p) => format!("{} does not exist", p.display()),
        None => "unset".to_string(),
    };
    let _ =
        writeln!(std::io::stderr(), "skipping {test}: set HOOSH_TEST_GGUF to the SmolLM2-135M-Instruct GGUF ({why})");
    None
}

fn config(path: PathBuf) -> LlmConfig {
    LlmConfig {
        model_path: path,
        context_per_sequence: 1024,
        max_sequences: 8,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()).min(8),
        queue_capacity: 64,
        prompt_cache: false,
    }
}

/// Serialises the model tests; see the module doc.
async fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// One engine (8 sequences) shared by the tests that need no special limits.
fn shared(test: &str) -> Option<LlmEngine> {
    static ENGINE: OnceLock<LlmEngine> = OnceLock::new();
    let path = model_path(test)?;
    Some(ENGINE.get_or_init(|| LlmEngine::load(config(path)).expect("load the test GGUF")).clone())
}

fn chat(engine: &LlmEngine, user: &str) -> String {
    engine.render_chat(&[ChatMessage::text(Role::User, user)], None).unwrap()
}

fn greedy(prompt: String, max_tokens: u32) -> GenerateRequest {
    GenerateRequest { prompt, max_tokens: Some(max_tokens), sampling: SamplingParams::greedy(), ..Default::default() }
}

async fn run(engine: &LlmEngine, req: GenerateRequest) -> Completion {
    let generation = engine.submit(req).unwrap();
    tokio::time::timeout(Duration::from_secs(120), generation.collect()).await.expect("generation timed out").unwrap()
}

#[tokio::test]
async fn model_info_comes_from_the_gguf() {
    let Some(engine) = shared("model_info_comes_from_the_gguf") else { return };
    let _g = exclusive().await;
    let info = engine.info();
    assert_eq!(info.n_vocab, 49152);
    assert_eq!(info.n_ctx_train, 8192);
    assert_eq!(info.bos, "<|im_start|>");
    assert_eq!(info.eos, "<|im_end|>");
    assert_eq!(info.context_per_sequence, 1024);
    assert!(info.chat_template.as_deref().unwrap().contains(DEFAULT_SYSTEM));
}

/// Golden token ids, recorded once from llama.cpp's tokenizer (this crate's
/// `tokenize` is llama.cpp's) for prompts rendered by our minijinja template.
#[tokio::test]
async fn rendered_chat_tokenizes_to_golden_ids() {
    let Some(engine) = shared("rendered_chat_tokenizes_to_golden_ids") else { return };
    let _g = exclusive().await;

    // The system turn SmolLM2's template adds when none is given.
    const SYS: &[i32] = &[
        1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2,
        198,
    ];
    let cases: &[(&str, &[i32])] = &[
        (
            "What is the capital of France?",
            &[1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198],
        ),
        (
            "In 2024, 12345 people paid $3.50 each",
            &[
                1, 4093, 198, 788, 216, 34, 32, 34, 36, 28, 216, 33, 34, 35, 36, 37, 701, 5940, 1885, 35, 30, 37, 32,
                971, 2, 198, 1, 520, 9531, 198,
            ],
        ),
        ("Rate it: 😀👍", &[1, 4093, 198, 28221, 357, 42, 40303, 218, 10813, 235, 231, 2, 198, 1, 520, 9531, 198]),
        ("naïve café", &[1, 4093, 198, 3546, 46494, 37366, 2, 198, 1, 520, 9531, 198]),
    ];
    // The smollm pre-tokenizer splits digits one by one.
    assert_eq!(engine.detokenize(&[34, 32, 34, 36]).unwrap(), "2024");
    let mut mismatches = Vec::new();
    for (user, golden_tail) in cases {
        let prompt = chat(&engine, user);
        assert!(prompt.starts_with(&format!("<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n")), "{prompt:?}");
        let ids = engine.tokenize(&prompt, false).unwrap();
        let expected: Vec<i32> = SYS.iter().chain(golden_tail.iter()).copied().collect();
        if ids != expected {
            mismatches.push(format!("{user:?}: tail {:?}", &ids[SYS.len().min(ids.len())..]));
        }
        assert_eq!(engine.detokenize(&ids).unwrap(), prompt, "round trip for {user:?}");
    }
    assert!(mismatches.is_empty(), "token ids differ from the golden ones:\n{}", mismatches.join("\n"));

    // Multi-turn with an explicit system message: no default system prompt.
    let msgs = [
        ChatMessage::text(Role::System, "Be brief."),
        ChatMessage::text(Role::User, "Hi!"),
        ChatMessage::text(Role::Assistant, "Hello."),
        ChatMessage::text(Role::User, "Bye"),
    ];
    let prompt = engine.render_chat(&msgs, None).unwrap();
    assert!(!prompt.contains(DEFAULT_SYSTEM));
    let ids = engine.tokenize(&prompt, false).unwrap();
    assert_eq!(
        ids,
        [
            1, 9690, 198, 6077, 5453, 30, 2, 198, 1, 4093, 198, 26843, 17, 2, 198, 1, 520, 9531, 198, 19556, 30, 2,
            198, 1, 4093, 198, 3087, 85, 2, 198, 1, 520, 9531, 198
        ]
    );
}

/// The question as llama.cpp's built-in (non-Jinja) ChatML renders it: no
/// system turn. This is the prompt the research notes measured.
const FRANCE_NO_SYSTEM: &str = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";

#[tokio::test]
async fn greedy_answers_are_the_golden_ones() {
    let Some(engine) = shared("greedy_answers_are_the_golden_ones") else { return };
    let _g = exclusive().await;
    let out = run(&engine, greedy(FRANCE_NO_SYSTEM.to_string(), 64)).await;
    assert_eq!(out.text, "The capital of France is Paris.");
    assert_eq!(out.finish, Finish::Stop);
    assert_eq!((out.prompt_tokens, out.completion_tokens), (16, 8));

    // With the GGUF's own template the default system prompt is there, and
    // this 135M model answers (greedily, no penalty) in French, then loops.
    let with_system = run(&engine, greedy(chat(&engine, "What is the capital of France?"), 16)).await;
    assert_eq!(with_system.prompt_tokens, 37);
    assert!(with_system.text.starts_with("L'Étoile, la Marseillaise"), "{:?}", with_system.text);
    assert_eq!(with_system.finish, Finish::Length);
}

#[tokio::test]
async fn seeded_sampling_is_reproducible_even_when_batched() {
    let Some(engine) = shared("seeded_sampling_is_reproducible_even_when_batched") else { return };
    let _g = exclusive().await;
    let req = |seed| GenerateRequest {
        prompt: chat(&engine, "Write a short poem about the sea."),
        max_tokens: Some(48),
        sampling: SamplingParams { temperature: 1.0, seed: Some(seed), ..Default::default() },
        ..Default::default()
    };
    let alone = run(&engine, req(42)).await;

    // Same request again, now sharing every batch with three other sequences.
    let others: Vec<_> = ["Tell me about cats.", "Count to ten.", "What is rust?"]
        .iter()
        .map(|q| engine.submit(greedy(chat(&engine, q), 48)).unwrap())
        .collect();
    let batched = run(&engine, req(42)).await;
    for g in others {
        g.collect().await.unwrap();
    }
    assert_eq!(alone.text, batched.text, "same seed and prompt must give the same text");
    assert!(!alone.text.is_empty());
    eprintln!("seed 42: {:?}", alone.text);
}

#[tokio::test]
async fn stop_strings_spanning_tokens_end_the_text_before_them() {
    let Some(engine) = shared("stop_strings_spanning_tokens_end_the_text_before_them") else { return };
    let _g = exclusive().await;
    // " of Fr" covers the whole token " of" and part of " France".
    let of_france = engine.tokenize(" of France", false).unwrap();
    assert_eq!(of_france.len(), 2, "{of_france:?}");
    for (stop, expected) in [("Paris", "The capital of France is "), (" of Fr", "The capital")] {
        let req = GenerateRequest {
            stop: vec![stop.to_string(), "never-seen".to_string()],
            ..greedy(FRANCE_NO_SYSTEM.to_string(), 64)
        };
        let out = run(&engine, req).await;
        assert_eq!(out.text, expected, "stop {stop:?}");
        assert_eq!(out.finish, Finish::Stop);
    }
}

#[tokio::test]
async fn max_tokens_ends_with_length() {
    let Some(engine) = shared("max_tokens_ends_with_length") else { return };
    let _g = exclusive().await;
    let out = run(&engine, greedy(chat(&engine, "Write a long story about a dragon."), 5)).await;
    assert_eq!(out.finish, Finish::Length);
    assert_eq!(out.completion_tokens, 5);
    assert!(!out.text.is_empty());
}

#[tokio::test]
async fn json_mode_output_parses() {
    let Some(engine) = shared("json_mode_output_parses") else { return };
    let _g = exclusive().await;
    let req = GenerateRequest {
        json: true,
        ..greedy(chat(&engine, "Describe a cat named Tom, aged 3, as a JSON object with keys name and age."), 200)
    };
    let out = run(&engine, req).await;
    eprintln!("json mode: {:?} ({:?})", out.text, out.finish);
    let value: serde_json::Value = serde_json::from_str(&out.text).expect("JSON mode output must parse");
    assert!(value.is_object());
    assert_eq!(out.finish, Finish::Stop);
}

#[tokio::test]
async fn eight_concurrent_generations_complete_with_more_throughput() {
    let Some(engine) = shared("eight_concurrent_generations_complete_with_more_throughput") else { return };
    let _g = exclusive().await;
    let prompts = [
        "Write a story about a dragon.",
        "Explain how rain forms.",
        "Write a poem about autumn.",
        "Describe the city of Paris.",
        "Explain what a computer does.",
        "Tell me about the history of bread.",
        "Write a letter to a friend.",
        "Describe a day at the beach.",
    ];
    let req = |p: &str| GenerateRequest { max_tokens: Some(64), ..greedy(chat(&engine, p), 64) };

    let t = Instant::now();
    let one = run(&engine, req(prompts[0])).await;
    let rate_1 = f64::from(one.completion_tokens) / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let gens: Vec<_> = prompts.iter().map(|p| engine.submit(req(p)).unwrap()).collect();
    let mut total = 0;
    for g in gens {
        let out = tokio::time::timeout(Duration::from_secs(300), g.collect()).await.unwrap().unwrap();
        assert!(out.completion_tokens > 0);
        total += out.completion_tokens;
    }
    let rate_8 = f64::from(total) / t.elapsed().as_secs_f64();
    eprintln!("aggregate decode: 1 sequence {rate_1:.1} tok/s; 8 sequences {rate_8:.1} tok/s ({total} tokens)");
}

#[tokio::test]
async fn dropping_a_generation_frees_its_slot() {
    let Some(path) = model_path("dropping_a_generation_frees_its_slot") else { return };
    let _g = exclusive().await;
    let engine = LlmEngine::load(LlmConfig { max_sequences: 1, queue_capacity: 4, ..config(path) }).unwrap();
    let prompt = chat(&engine, "Write a very long story about a dragon.");

    // The first request would run to the end of its context (~1000 tokens).
    let mut first = engine
        .submit(GenerateRequest { prompt: prompt.clone(), max_tokens: None, ..greedy(String::new(), 1) })
        .unwrap();
    assert!(matches!(first.events.recv().await, Some(GenEvent::Text(_))));
    let second = engine.submit(greedy(prompt, 5)).unwrap();
    let t = Instant::now();
    drop(first);
    let out =
        tokio::time::timeout(Duration::from_secs(20), second.collect()).await.expect("slot was not freed").unwrap();
    assert_eq!(out.completion_tokens, 5);
    eprintln!("second request done {:?} after the first was dropped", t.elapsed());
}

#[tokio::test]
async fn a_full_queue_is_refused() {
    let Some(path) = model_path("a_full_queue_is_refused") else { return };
    let _g = exclusive().await;
    let engine = LlmEngine::load(LlmConfig { max_sequences: 1, queue_capacity: 2, ..config(path) }).unwrap();
    let prompt = chat(&engine, "Write a very long story about a dragon.");
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 0..5 {
        match engine.submit(greedy(prompt.clone(), 200)) {
            Ok(g) => accepted.push(g),
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    // One running + two waiting at most: the fourth request cannot fit.
    let (i, err) = refused.expect("the queue never filled");
    assert!((2..=3).contains(&i), "refused at request {i}");
    assert_eq!(err, LlmError::QueueFull { retry_after_secs: 1 });
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_prompt_longer_than_the_context_is_refused() {
    let Some(engine) = shared("a_prompt_longer_than_the_context_is_refused") else { return };
    let _g = exclusive().await;
    let err = engine.submit(GenerateRequest::new("hello ".repeat(5000))).unwrap_err();
    match err {
        LlmError::ContextOverflow { prompt_tokens, limit } => {
            assert_eq!(limit, 1024);
            assert!(prompt_tokens >= 5000, "{prompt_tokens}");
        }
        other => panic!("expected ContextOverflow, got {other:?}"),
    }
    // Exactly at the limit there is no room for one output token.
    let ids_per_word = engine.tokenize("hello hello", false).unwrap().len();
    assert_eq!(ids_per_word, 2);
    let err = engine.submit(GenerateRequest::new("hello".to_string() + &" hello".repeat(1023))).unwrap_err();
    assert_eq!(err, LlmError::ContextOverflow { prompt_tokens: 1024, limit: 1024 });
    assert!(engine.submit(greedy("hello".to_string() + &" hello".repeat(1022), 1)).is_ok());
}

#[tokio::test]
async fn images_are_unsupported() {
    let Some(engine) = shared("images_are_unsupported") else { return };
    let msg: ChatMessage = serde_json::from_value(serde_json::json!({
        "role": "user",
        "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]
    }))
    .unwrap();
    assert!(matches!(engine.render_chat(&[msg], None), Err(LlmError::Unsupported(_))));
}

#[tokio::test]
async fn a_shared_prompt_prefix_is_reused_from_the_kv_cache() {
    let Some(path) = model_path("a_shared_prompt_prefix_is_reused_from_the_kv_cache") else { return };
    let _g = exclusive().await;
    let engine = LlmEngine::load(LlmConfig { max_sequences: 2, prompt_cache: true, ..config(path) }).unwrap();
    let first = run(&engine, greedy(chat(&engine, "Which city is the capital of France?"), 12)).await;
    assert_eq!(first.cached_tokens, 0, "cold cache");
    // The same prompt again: everything but the last token comes from the cache.
    let again = run(&engine, greedy(chat(&engine, "Which city is the capital of France?"), 12)).await;
    assert_eq!(again.cached_tokens, again.prompt_tokens - 1);
    // A different question after the same system prompt reuses the shared prefix only.
    let other = run(&engine, greedy(chat(&engine, "Name three colors."), 12)).await;
    assert!(other.cached_tokens > 10 && other.cached_tokens < other.prompt_tokens - 3, "{other:?}");
    assert!(!other.text.is_empty());
    // Without the cache nothing is reused.
    let cold = shared("a_shared_prompt_prefix_is_reused_from_the_kv_cache").unwrap();
    let c = run(&cold, greedy(chat(&cold, "Which city is the capital of France?"), 4)).await;
    let c2 = run(&cold, greedy(chat(&cold, "Which city is the capital of France?"), 4)).await;
    assert_eq!((c.cached_tokens, c2.cached_tokens), (0, 0));
}
