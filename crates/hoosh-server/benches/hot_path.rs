//! The gateway's own per-request work, without the network: decode a chat
//! request, validate it, pick candidates among 50 providers, match a model
//! glob, look up a price and cost an answer, plan the parameters, encode a
//! response, and relay one stream chunk (upstream SSE bytes → parsed chunk →
//! the client's SSE event).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hoosh_core::config::{Config, ProviderConfig};
use hoosh_core::params::{self, UnsupportedParamAction};
use hoosh_core::pricing::{Pricing, Tokens};
use hoosh_core::router::Need;
use hoosh_providers::sse::SseParser;
use hoosh_server::AppState;
use hoosh_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Choice, Delta, FinishReason, ResponseMessage,
    Usage,
};

const REQUEST: &str = r#"{"model":"gpt-4o","messages":[
 {"role":"system","content":"You are a helpful assistant that answers briefly."},
 {"role":"user","content":"What is the weather like in Paris today? Answer in one sentence."},
 {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
 {"role":"tool","tool_call_id":"call_1","content":"{\"temp\":21,\"sky\":\"clear\"}"}],
 "tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
 "temperature":0.2,"max_tokens":256,"stream":false}"#;

fn state() -> AppState {
    let mut providers = Vec::new();
    for i in 0..49 {
        let mut p = ProviderConfig::new(format!("p{i}"), "openai-compatible");
        p.base_url = Some(format!("http://127.0.0.1:{}/v1", 10_000 + i));
        p.models = Some(vec![format!("model-{i}-*"), "llama*".into()]);
        providers.push(p);
    }
    let mut openai = ProviderConfig::new("openai", "openai");
    openai.base_url = Some("http://127.0.0.1:9/v1".into());
    providers.push(openai);
    let config = Config { providers, ..Config::default() };
    let entries = hoosh_providers::registry::build_entries(&config).unwrap();
    AppState::new(config, entries).expect("a valid bench config")
}

fn response() -> ChatCompletionResponse {
    ChatCompletionResponse {
        native: None,
        id: "chatcmpl-123".into(),
        object: "chat.completion".into(),
        created: 1_700_000_000,
        model: "gpt-4o".into(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage::assistant(Some("It is sunny and 21 degrees in Paris today.".into())),
            finish_reason: Some(FinishReason::Stop),
            logprobs: None,
        }],
        usage: Some(Usage::new(120, 14)),
        system_fingerprint: None,
    }
}

fn bench(c: &mut Criterion) {
    let st = state();
    let live = st.live();
    let bytes = REQUEST.as_bytes();
    let req: ChatCompletionRequest = hoosh_server::extract::parse(bytes).unwrap();
    let resp = response();
    let chunk = ChatCompletionChunk::delta("chatcmpl-123", 1_700_000_000, "gpt-4o", Delta::content("sunny"), None);

    c.bench_function("decode_chat_request", |b| {
        b.iter(|| hoosh_server::extract::parse::<ChatCompletionRequest>(black_box(bytes)).unwrap())
    });
    c.bench_function("validate", |b| b.iter(|| hoosh_server::validate::chat(black_box(&req)).unwrap()));
    c.bench_function("route_50_providers", |b| {
        b.iter(|| live.router.candidates(black_box("gpt-4o"), Need::Chat).unwrap())
    });
    let glob = glob::Pattern::new("claude-3-5-sonnet-*").unwrap();
    c.bench_function("glob_match", |b| b.iter(|| glob.matches(black_box("claude-3-5-sonnet-20241022"))));
    let pricing = Pricing::shipped();
    let tokens = Tokens { prompt: 1_200, cached_read: 400, completion: 180, ..Tokens::default() };
    c.bench_function("cost (price lookup + bill)", |b| {
        b.iter(|| pricing.lookup(black_box("openai"), black_box("gpt-4o-mini")).map(|p| p.cost_nanos(tokens)))
    });
    c.bench_function("cost (unpriced model: every row tried)", |b| {
        b.iter(|| pricing.lookup(black_box("nginx"), black_box("house-model")).is_none())
    });
    let upstream = format!("data: {}\n\n", serde_json::to_string(&chunk).unwrap());
    c.bench_function("sse_chunk_relay", |b| {
        let mut parser = SseParser::default();
        b.iter(|| {
            parser.push(black_box(upstream.as_bytes()));
            let event = parser.next_event().unwrap().unwrap();
            let parsed: ChatCompletionChunk = serde_json::from_str(&event.data).unwrap();
            hoosh_server::sse::render_chat(parsed).unwrap()
        })
    });
    c.bench_function("param_plan", |b| {
        let support = live.router.entries()[0].provider.param_support().clone();
        b.iter(|| params::plan(black_box(&req), &support, UnsupportedParamAction::Drop).unwrap())
    });
    c.bench_function("encode_response", |b| b.iter(|| serde_json::to_vec(black_box(&resp)).unwrap()));
    c.bench_function("encode_chunk", |b| b.iter(|| serde_json::to_vec(black_box(&chunk)).unwrap()));
    c.bench_function("hot_path_total", |b| {
        b.iter(|| {
            let req: ChatCompletionRequest = hoosh_server::extract::parse(black_box(bytes)).unwrap();
            hoosh_server::validate::chat(&req).unwrap();
            let cands = live.router.candidates(&req.model, Need::Chat).unwrap();
            let plan =
                params::plan(&req, cands[0].entry.provider.param_support(), UnsupportedParamAction::Drop).unwrap();
            black_box(plan);
            serde_json::to_vec(&resp).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
