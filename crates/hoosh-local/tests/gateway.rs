//! The bundled models through the whole gateway path (HTTP → router →
//! executor → local provider → engine). Needs the default models in a store:
//! `HOOSH_TEST_MODELS_DIR` (scripts/test.sh sets it after `hoosh pull
//! --defaults`); without it every test here says it is skipping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use hoosh_core::config::Config;
use hoosh_server::AppState;
use serde_json::{Value, json};

fn models_dir() -> Option<std::path::PathBuf> {
    match std::env::var("HOOSH_TEST_MODELS_DIR") {
        Ok(d) if std::path::Path::new(&d).join("smollm2-135m").exists() => Some(d.into()),
        _ => {
            eprintln!("skipping: set HOOSH_TEST_MODELS_DIR to a store with the default models (hoosh pull --defaults)");
            None
        }
    }
}

async fn boot(dir: std::path::PathBuf, tweak: impl FnOnce(&mut Config)) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = Config::default();
    config.health.interval_secs = 0;
    config.local.models_dir = Some(dir);
    config.local.verify_on_load = false;
    tweak(&mut config);
    let setup = hoosh_local::build(&config.local, &config.circuit_breaker).await.unwrap();
    let entries = vec![setup.entry.expect("local models installed")];
    let state = AppState::new(config, entries).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hoosh_server::serve::run(listener, state, async move {
        let _ = rx.await;
    }));
    (url, tx)
}

fn chat(content: &str) -> Value {
    json!({"model": "smollm2-135m", "messages": [{"role": "user", "content": content}], "temperature": 0, "max_tokens": 24})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_embeddings_and_json_mode() {
    let Some(dir) = models_dir() else { return };
    // Cold prefill for every request, so the blocking and streamed greedy
    // answers below are computed identically.
    let (url, _stop) = boot(dir, |c| c.local.prompt_cache = false).await;
    let http = reqwest::Client::new();

    let r: Value = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat("Which city is the capital of France?"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = r["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("Paris"), "{text}");
    assert!(r["usage"]["prompt_tokens"].as_u64().unwrap() > 10);
    assert_eq!(r["model"], "smollm2-135m");

    let mut body = chat("Which city is the capital of France?");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let sse = http.post(format!("{url}/v1/chat/completions")).json(&body).send().await.unwrap().text().await.unwrap();
    let data: Vec<&str> = sse.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(*data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, text, "greedy stream equals greedy blocking answer");
    assert!(chunks.last().unwrap()["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let mut length = chat("Count from one to fifty.");
    length["max_tokens"] = json!(5);
    let r: Value =
        http.post(format!("{url}/v1/chat/completions")).json(&length).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["choices"][0]["finish_reason"], "length");
    assert_eq!(r["usage"]["completion_tokens"], 5);

    let mut js = chat("Give me a JSON object describing a cat with a name and an age.");
    js["response_format"] = json!({"type": "json_object"});
    js["max_tokens"] = json!(80);
    let r: Value =
        http.post(format!("{url}/v1/chat/completions")).json(&js).send().await.unwrap().json().await.unwrap();
    let content = r["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(r["choices"][0]["finish_reason"], "stop", "{content}");
    let parsed: Value =
        serde_json::from_str(content).unwrap_or_else(|e| panic!("JSON mode output does not parse: {e}: {content}"));
    assert!(parsed.is_object());

    let e: Value = http
        .post(format!("{url}/v1/embeddings"))
        .json(&json!({"model": "minilm-l6", "input": ["A man is eating food.", "A man is eating a piece of bread."]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a: Vec<f32> = serde_json::from_value(e["data"][0]["embedding"].clone()).unwrap();
    let b: Vec<f32> = serde_json::from_value(e["data"][1]["embedding"].clone()).unwrap();
    assert_eq!(a.len(), 384);
    let cos: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    assert!((cos - 0.7553).abs() < 1e-3, "cos {cos}");

    // Wrong kind of model for the endpoint: a clear 400.
    let resp = http
        .post(format!("{url}/v1/embeddings"))
        .json(&json!({"model": "smollm2-135m", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let models: Value = http.get(format!("{url}/v1/models")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"smollm2-135m") && ids.contains(&"minilm-l6"), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_streams_complete_and_a_disconnect_frees_its_slot() {
    let Some(dir) = models_dir() else { return };
    let (url, _stop) = boot(dir, |_| {}).await;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let http = http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut body = chat(&format!("Tell me a fact about the number {i}."));
            body["stream"] = json!(true);
            let text =
                http.post(format!("{url}/v1/chat/completions")).json(&body).send().await.unwrap().text().await.unwrap();
            text.trim_end().ends_with("data: [DONE]")
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap(), "every stream finished with [DONE]");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_503_with_retry_after_and_disconnect_frees_the_slot() {
    let Some(dir) = models_dir() else { return };
    let (url, _stop) = boot(dir, |c| {
        c.local.max_sequences = 1;
        c.local.queue_capacity = 1;
        c.routing.max_retries = 0;
    })
    .await;
    let http = reqwest::Client::new();
    let mut long = chat("Write a very long story about a dragon.");
    long["max_tokens"] = json!(400);
    long["stream"] = json!(true);
    // One running; of three more, the queue (capacity 1, plus at most one job
    // the scheduler holds while waiting for a slot) cannot take them all.
    let running = http.post(format!("{url}/v1/chat/completions")).json(&long).send().await.unwrap();
    let mut stream = running.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let http = http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let r = http.post(format!("{url}/v1/chat/completions")).json(&chat("Say hi.")).send().await.unwrap();
                (r.status().as_u16(), r.headers().get("retry-after").is_some())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Disconnecting the running stream frees its sequence for the queued ones.
    drop(stream);
    let mut statuses = Vec::new();
    for w in waiting {
        statuses.push(tokio::time::timeout(Duration::from_secs(120), w).await.unwrap().unwrap());
    }
    assert!(statuses.iter().any(|(s, ra)| *s == 503 && *ra), "a full queue answers 503 + Retry-After: {statuses:?}");
    assert!(statuses.iter().any(|(s, _)| *s == 200), "queued requests complete once the slot frees: {statuses:?}");
    assert!(statuses.iter().all(|(s, _)| *s == 200 || *s == 503), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_longer_than_the_context_is_a_400() {
    let Some(dir) = models_dir() else { return };
    let (url, _stop) = boot(dir, |c| c.local.context_per_sequence = 256).await;
    let huge = "word ".repeat(2000);
    let resp =
        reqwest::Client::new().post(format!("{url}/v1/chat/completions")).json(&chat(&huge)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("context"), "{e}");
    // The same refusal in every other client API's own shape.
    let http = reqwest::Client::new();
    let cases = [
        (
            "/v1/messages",
            json!({"model": "smollm2-135m", "max_tokens": 16, "messages": [{"role": "user", "content": huge}]}),
        ),
        ("/v1/responses", json!({"model": "smollm2-135m", "input": huge, "store": false})),
        (
            "/api/chat",
            json!({"model": "smollm2-135m", "stream": false, "messages": [{"role": "user", "content": huge}]}),
        ),
    ];
    for (path, body) in cases {
        let resp = http.post(format!("{url}{path}")).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let e: Value = resp.json().await.unwrap();
        let message = match path {
            "/v1/messages" => {
                assert_eq!(
                    (e["type"].as_str(), e["error"]["type"].as_str()),
                    (Some("error"), Some("invalid_request_error"))
                );
                e["error"]["message"].as_str()
            }
            "/api/chat" => e["error"].as_str(),
            _ => e["error"]["message"].as_str(),
        };
        assert!(message.unwrap().contains("context"), "{path}: {e}");
    }
}

/// A local model as an agent back end: a required tool call comes back as
/// a structured call through every client API — the prompt is prefilled
/// with the call's opening tag and the rest constrained to JSON, so even a
/// 135M-parameter model answers with a call that parses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_model_makes_a_required_tool_call_in_every_client_api() {
    let Some(dir) = models_dir() else { return };
    let (url, _stop) = boot(dir, |_| {}).await;
    let http = reqwest::Client::new();
    let params = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let ask = "What is the weather in Paris?";
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "smollm2-135m", "max_tokens": 48, "temperature": 0,
            "messages": [{"role": "user", "content": ask}], "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": params}}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "smollm2-135m", "max_tokens": 48, "temperature": 0,
            "messages": [{"role": "user", "content": ask}], "tool_choice": {"type": "any"},
            "tools": [{"name": "get_weather", "input_schema": params}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "smollm2-135m", "max_output_tokens": 48, "temperature": 0, "store": false,
            "input": ask, "tool_choice": "required",
            "tools": [{"type": "function", "name": "get_weather", "parameters": params}]}),
        ),
    ];
    for (path, body) in cases {
        let r: Value = http.post(format!("{url}{path}")).json(&body).send().await.unwrap().json().await.unwrap();
        let (name, args) = match path {
            "/v1/chat/completions" => {
                assert_eq!(r["choices"][0]["finish_reason"], "tool_calls", "{r}");
                let f = &r["choices"][0]["message"]["tool_calls"][0]["function"];
                (f["name"].clone(), serde_json::from_str::<Value>(f["arguments"].as_str().unwrap()).unwrap())
            }
            "/v1/messages" => {
                assert_eq!(r["stop_reason"], "tool_use", "{r}");
                let block = r["content"].as_array().unwrap().iter().find(|b| b["type"] == "tool_use").unwrap().clone();
                (block["name"].clone(), block["input"].clone())
            }
            _ => {
                let item =
                    r["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call").unwrap().clone();
                (item["name"].clone(), serde_json::from_str::<Value>(item["arguments"].as_str().unwrap()).unwrap())
            }
        };
        assert_eq!(name, "get_weather", "{path}: {r}");
        assert!(args.is_object(), "{path}: arguments are a JSON object: {args}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_prompt_is_served_from_the_kv_cache_and_reported() {
    let Some(dir) = models_dir() else { return };
    let (url, _stop) = boot(dir, |_| {}).await;
    let http = reqwest::Client::new();
    // The response cache would answer the repeat without the engine.
    let ask = || async {
        let r: Value = http
            .post(format!("{url}/v1/chat/completions"))
            .header("x-hoosh-cache", "false")
            .json(&chat("Name three colors."))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["usage"].clone()
    };
    let cold = ask().await;
    assert!(cold.get("prompt_tokens_details").is_none(), "{cold}");
    let warm = ask().await;
    let prompt = warm["prompt_tokens"].as_u64().unwrap();
    assert_eq!(warm["prompt_tokens_details"]["cached_tokens"].as_u64(), Some(prompt - 1), "{warm}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_models_unload_and_reload_on_the_next_request() {
    let Some(dir) = models_dir() else { return };
    let mut config = Config::default();
    config.local.models_dir = Some(dir);
    config.local.verify_on_load = false;
    config.local.keep_alive_secs = 1;
    config.local.preload = false;
    let setup = hoosh_local::build(&config.local, &config.circuit_breaker).await.unwrap();
    let provider = setup.provider.unwrap();
    assert!(provider.loaded().is_empty(), "preload = false loads on first use");
    let req = hoosh_types::openai::ChatCompletionRequest {
        model: "smollm2-135m".into(),
        messages: vec![hoosh_types::openai::ChatMessage::text(hoosh_types::openai::Role::User, "Say hi.")],
        max_tokens: Some(4),
        ..Default::default()
    };
    use hoosh_core::Provider;
    let dropped = hoosh_core::params::DroppedParams::default();
    provider.chat(&req, &dropped).await.unwrap();
    assert_eq!(provider.loaded(), vec!["smollm2-135m".to_owned()]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(provider.loaded().is_empty(), "unloaded after 1 s idle");
    let again = provider.chat(&req, &dropped).await.unwrap();
    assert_eq!(again.usage.unwrap().completion_tokens, 4, "reloaded on demand");
}

/// Estimated sizes of the two default models with `config`.
fn estimates(config: &Config, dir: &std::path::Path) -> (u64, u64) {
    let store = hoosh_models::ModelStore::new(dir.to_path_buf());
    let list = store.list().unwrap();
    let size = |id: &str| hoosh_local::memory::estimate(list.iter().find(|m| m.id == id).unwrap(), &config.local);
    (size("smollm2-135m"), size("minilm-l6"))
}

fn lru_config(dir: std::path::PathBuf) -> Config {
    let mut config = Config::default();
    config.health.interval_secs = 0;
    config.local.models_dir = Some(dir);
    config.local.models = vec!["smollm2-135m".into(), "minilm-l6".into()];
    config.local.verify_on_load = false;
    config.local.preload = false;
    config.local.context_per_sequence = 256;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_bound_unloads_the_least_recently_used_idle_model() {
    let Some(dir) = models_dir() else { return };
    use hoosh_core::Provider;
    let mut config = lru_config(dir.clone());
    let (llm, emb) = estimates(&config, &dir);
    assert!(llm > 50 << 20 && emb > 50 << 20, "estimates: {llm} {emb}");
    let mib = 1u64 << 20;
    let chat = hoosh_types::openai::ChatCompletionRequest {
        model: "smollm2-135m".into(),
        messages: vec![hoosh_types::openai::ChatMessage::text(hoosh_types::openai::Role::User, "Say hi.")],
        max_tokens: Some(2),
        ..Default::default()
    };
    let embed = hoosh_core::EmbedRequest {
        model: "minilm-l6".into(),
        input: vec!["hello".into()],
        dimensions: None,
        user: None,
    };
    let dropped = hoosh_core::params::DroppedParams::default();

    // Exactly enough for both (rounded up to whole MiB): both stay loaded.
    config.local.max_memory_mb = (llm + emb).div_ceil(mib);
    let p = hoosh_local::build(&config.local, &config.circuit_breaker).await.unwrap().provider.unwrap();
    p.chat(&chat, &dropped).await.unwrap();
    p.embed(&embed).await.unwrap();
    assert_eq!(p.loaded(), vec!["minilm-l6".to_owned(), "smollm2-135m".to_owned()]);
    drop(p);

    // One MiB less than both need: loading the second unloads the first.
    config.local.max_memory_mb = (llm + emb).div_ceil(mib) - 1;
    let p = hoosh_local::build(&config.local, &config.circuit_breaker).await.unwrap().provider.unwrap();
    p.chat(&chat, &dropped).await.unwrap();
    assert_eq!(p.loaded(), vec!["smollm2-135m".to_owned()]);
    p.embed(&embed).await.unwrap();
    assert_eq!(p.loaded(), vec!["minilm-l6".to_owned()], "the idle LLM made room");
    assert!(p.resident_bytes() <= config.local.max_memory_mb * mib);
    let again = p.chat(&chat, &dropped).await.unwrap();
    assert_eq!(again.usage.unwrap().completion_tokens, 2, "reloaded on demand");
    assert_eq!(p.loaded(), vec!["smollm2-135m".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_show_whether_loaded_and_a_model_in_use_is_never_evicted() {
    let Some(dir) = models_dir() else { return };
    let config = lru_config(dir.clone());
    let (llm, emb) = estimates(&config, &dir);
    let (url, _stop) = boot(dir, |c| {
        *c = lru_config(c.local.models_dir.clone().unwrap());
        c.local.max_memory_mb = (llm + emb) / (1 << 20) - 1;
    })
    .await;
    let http = reqwest::Client::new();
    let loaded = |list: &Value, id: &str| {
        list["data"].as_array().unwrap().iter().find(|m| m["id"] == id).map(|m| m["loaded"].clone()).unwrap()
    };
    let list: Value = http.get(format!("{url}/v1/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!((loaded(&list, "smollm2-135m"), loaded(&list, "minilm-l6")), (json!(false), json!(false)), "{list}");

    // A long stream keeps the LLM in use...
    let mut body = chat("Write a long story about a dragon.");
    body["max_tokens"] = json!(256);
    body["stream"] = json!(true);
    let resp = http.post(format!("{url}/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let one: Value = http.get(format!("{url}/v1/models/smollm2-135m")).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["loaded"], json!(true), "{one}");

    // ...so the embedding model has no room: a retryable 503, and the
    // stream goes on.
    let emb_req = json!({"model": "minilm-l6", "input": "hello"});
    let r = http.post(format!("{url}/v1/embeddings")).json(&emb_req).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let err: Value = r.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().contains("max_memory_mb"), "{err}");
    drop(stream);

    // Once the stream is gone the LLM is idle and makes room.
    let mut ok = false;
    for _ in 0..50 {
        let r = http.post(format!("{url}/v1/embeddings")).json(&emb_req).send().await.unwrap();
        if r.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "embeddings served after the stream ended");
    let list: Value = http.get(format!("{url}/v1/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!((loaded(&list, "smollm2-135m"), loaded(&list, "minilm-l6")), (json!(false), json!(true)), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_reserve_the_prompt_counted_by_the_models_own_tokenizer() {
    let Some(dir) = models_dir() else { return };
    let (url, _stop) = boot(dir, |c| {
        c.governance.budget = Some(hoosh_core::config::BudgetConfig { tokens: Some(100_000), ..Default::default() });
    })
    .await;
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat("Which city is the capital of France?"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let remaining: u64 = resp.headers()["x-hoosh-budget-remaining-tokens"].to_str().unwrap().parse().unwrap();
    assert_eq!(resp.headers()["x-hoosh-cost-usd"], "0.000000000", "local models are free");
    let body: Value = resp.json().await.unwrap();
    let prompt = body["usage"]["prompt_tokens"].as_u64().unwrap();
    // Reserved: the exact prompt (llama.cpp's count, as usage reports it) + max_tokens (24).
    assert_eq!(remaining, 100_000 - prompt - 24, "{body}");
}

fn audio_fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../tests/fixtures/audio/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Lowercase words without punctuation, "3" spelled out (the research's WER normalisation).
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace('3', " three ")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Word-level edit distance (substitutions, insertions, deletions).
fn word_edits(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, wa) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, wb) in b.iter().enumerate() {
            row.push((prev[j] + usize::from(wa != wb)).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

async fn transcribe(url: &str, file: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
    let mut form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(audio_fixture(file)).file_name(file.to_owned()));
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    let resp =
        reqwest::Client::new().post(format!("{url}/v1/audio/transcriptions")).multipart(form).send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_transcribes_every_container_alike_in_every_format() {
    let Some(dir) = models_dir() else { return };
    let (url, _stop) = boot(dir, |_| {}).await;
    let model = ("model", "whisper-tiny.en");
    let (status, _, body) = transcribe(&url, "s2.wav", &[model]).await;
    assert_eq!(status, 200, "{body}");
    let text = serde_json::from_str::<Value>(&body).unwrap()["text"].as_str().unwrap().to_owned();
    let want = words("Please schedule a meeting with the engineering team for next Tuesday at three o'clock.");
    assert_eq!(words(&text), want, "{text}");

    // The same sentence in every container: the same words from lossless
    // ones; lossy codecs (at the fixtures' ~64 kbps) may move tiny.en by at
    // most two of the nine words.
    let (_, _, wav) = transcribe(&url, "s1.wav", &[model]).await;
    let reference = words(serde_json::from_str::<Value>(&wav).unwrap()["text"].as_str().unwrap());
    for (file, max_diff) in [("s1.flac", 0), ("s1.mp3", 2), ("s1.ogg", 2), ("s1.m4a", 2)] {
        let (status, _, body) = transcribe(&url, file, &[model]).await;
        assert_eq!(status, 200, "{file}: {body}");
        let got = words(serde_json::from_str::<Value>(&body).unwrap()["text"].as_str().unwrap());
        assert!(word_edits(&got, &reference) <= max_diff, "{file}: {got:?} vs {reference:?}");
    }

    // Formats: text, SRT and VTT cues, verbose_json with segments.
    let (_, ct, plain) = transcribe(&url, "s2.wav", &[model, ("response_format", "text")]).await;
    assert!(ct.starts_with("text/plain") && words(&plain) == want, "{ct}: {plain}");
    let (_, _, srt) = transcribe(&url, "s2.wav", &[model, ("response_format", "srt")]).await;
    let cue = srt.lines().nth(1).unwrap();
    assert!(srt.starts_with("1\n") && cue.contains(" --> ") && cue.len() == 29, "{srt}");
    let (_, ct, vtt) = transcribe(&url, "s2.wav", &[model, ("response_format", "vtt")]).await;
    assert!(ct.starts_with("text/vtt") && vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    let (_, _, verbose) = transcribe(&url, "s2.wav", &[model, ("response_format", "verbose_json")]).await;
    let v: Value = serde_json::from_str(&verbose).unwrap();
    assert_eq!((v["task"].as_str(), v["language"].as_str()), (Some("transcribe"), Some("english")));
    let segments = v["segments"].as_array().unwrap();
    assert!(!segments.is_empty());
    let end = segments.last().unwrap()["end"].as_f64().unwrap();
    let duration = v["duration"].as_f64().unwrap();
    assert!(end <= duration + 0.5 && end > duration - 2.0, "last segment ends at {end} of {duration}");

    // Streamed: deltas, then the whole text.
    let (status, ct, sse) = transcribe(&url, "s2.wav", &[model, ("stream", "true")]).await;
    assert!(status == 200 && ct.starts_with("text/event-stream"), "{ct}");
    let events: Vec<Value> =
        sse.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect();
    assert!(events.iter().any(|e| e["type"] == "transcript.text.delta"));
    let done = events.last().unwrap();
    assert_eq!(done["type"], "transcript.text.done");
    assert_eq!(words(done["text"].as_str().unwrap()), want);

    // An English-only model cannot translate; the server answers and stays up.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(audio_fixture("s1.wav")).file_name("s1.wav"))
        .text("model", "whisper-tiny.en");
    let resp =
        reqwest::Client::new().post(format!("{url}/v1/audio/translations")).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().contains("English-only"), "{err}");
    assert_eq!(transcribe(&url, "s3.wav", &[model]).await.0, 200);
}
