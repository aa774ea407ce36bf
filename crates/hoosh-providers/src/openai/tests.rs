//! The OpenAI-compatible adapter against the mock OpenAI server: presets'
//! URLs and auth (Azure deployments, OpenRouter attribution), dialect
//! fix-ups, lenient answers, and stream endings.

use futures_util::StreamExt;
use hoosh_core::params::DroppedParams;
use hoosh_core::{EmbedRequest, ErrorKind, Provider, Secret};
use hoosh_types::openai::{ChatCompletionRequest, ChatMessage, Role};

use super::OpenAiProvider;
use crate::adapter::AdapterConfig;
use crate::presets;

fn provider(kind: &str, base_url: String, key: Option<&str>) -> OpenAiProvider {
    let preset = presets::find(kind).unwrap();
    OpenAiProvider::new(AdapterConfig {
        name: kind.into(),
        preset,
        base_url,
        api_key: key.map(Secret::new),
        headers: crate::registry::parse_headers(
            kind,
            &preset.headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>(),
        )
        .unwrap(),
        api_version: None,
        http: reqwest::Client::new(),
    })
}

fn req(model: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: model.into(),
        messages: vec![ChatMessage::text(Role::User, "hi")],
        ..Default::default()
    }
}

#[tokio::test]
async fn openai_sends_bearer_and_keeps_max_completion_tokens() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", format!("{}/v1", mock.url()), Some("sk-test"));
    let mut r = req("gpt-4o");
    r.max_completion_tokens = Some(5);
    r.messages.insert(0, ChatMessage::text(Role::Developer, "be brief"));
    let resp = p.chat(&r, &DroppedParams::default()).await.unwrap();
    assert_eq!(resp.choices[0].message.content.as_deref(), Some("echo: hi \u{e9}\u{1f600}"));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.uri, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(sent.body["max_completion_tokens"], 5);
    assert_eq!(sent.body["messages"][0]["role"], "developer", "OpenAI knows the developer role");
}

#[tokio::test]
async fn azure_uses_deployment_urls_api_version_and_api_key_header() {
    let mock = hoosh_testkit::openai::start().await;
    let preset = presets::find("azure").unwrap();
    let p = OpenAiProvider::new(AdapterConfig {
        name: "azure".into(),
        preset,
        base_url: mock.url(),
        api_key: Some(Secret::new("azure-key")),
        headers: reqwest::header::HeaderMap::new(),
        api_version: Some("2024-06-01".into()),
        http: reqwest::Client::new(),
    });
    let resp = p.chat(&req("my-deployment"), &DroppedParams::default()).await.unwrap();
    assert_eq!(resp.model, "my-deployment");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.uri, "/openai/deployments/my-deployment/chat/completions?api-version=2024-06-01");
    assert_eq!(sent.header("api-key"), Some("azure-key"));
    assert_eq!(sent.header("authorization"), None, "Azure takes api-key, not a bearer token");
    let e = p
        .embed(&EmbedRequest { model: "emb".into(), input: vec!["a".into()], dimensions: None, user: None })
        .await
        .unwrap();
    assert_eq!(e.vectors.len(), 1);
    assert!(mock.last_request().unwrap().uri.starts_with("/openai/deployments/emb/embeddings?api-version="));
    assert!(p.list_models().await.unwrap().is_empty(), "deployments are configured, not listed");
}

#[tokio::test]
async fn openrouter_sends_attribution_headers() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openrouter", format!("{}/v1", mock.url()), Some("or-key"));
    p.chat(&req("meta-llama/llama-3"), &DroppedParams::default()).await.unwrap();
    let sent = mock.last_request().unwrap();
    assert!(sent.header("http-referer").is_some());
    assert_eq!(sent.header("x-title"), Some("hoosh"));
}

#[tokio::test]
async fn local_servers_get_max_tokens_and_system_instead_of_developer() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("llamacpp", format!("{}/v1", mock.url()), None);
    let mut r = req("any");
    r.max_completion_tokens = Some(7);
    r.messages.insert(0, ChatMessage::text(Role::Developer, "sys"));
    p.chat(&r, &DroppedParams::default()).await.unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["max_tokens"], 7);
    assert!(sent.body.get("max_completion_tokens").is_none());
    assert_eq!(sent.body["messages"][0]["role"], "system");
    assert_eq!(sent.header("authorization"), None, "no key, no header");
}

#[tokio::test]
async fn streams_always_request_usage_and_end_cleanly() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", format!("{}/v1", mock.url()), None);
    let chunks: Vec<_> = p.chat_stream(&req("gpt-4o"), &DroppedParams::default()).await.unwrap().collect().await;
    assert!(chunks.iter().all(Result::is_ok));
    let last = chunks.last().unwrap().as_ref().unwrap();
    assert!(last.usage.is_some() && last.choices.is_empty(), "usage-only chunk last");
    assert_eq!(mock.last_request().unwrap().body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn a_stream_that_ends_without_done_is_an_error() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", format!("{}/v1", mock.url()), None);
    let items: Vec<_> =
        p.chat_stream(&req("mock-empty-stream"), &DroppedParams::default()).await.unwrap().collect().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);

    let items: Vec<_> = p.chat_stream(&req("mock-cut"), &DroppedParams::default()).await.unwrap().collect().await;
    assert!(items.first().unwrap().is_ok());
    assert_eq!(items.last().unwrap().as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);
}

#[tokio::test]
async fn errors_keep_status_kind_and_retry_after() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", format!("{}/v1", mock.url()), None);
    let e = p.chat(&req("mock-error-429-retry-7"), &DroppedParams::default()).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::RateLimited, Some(429)));
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(7)));
    let e = p.chat(&req("mock-error-401"), &DroppedParams::default()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    let e = p.chat(&req("mock-badjson"), &DroppedParams::default()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidResponse);
    let e = p.chat_stream(&req("mock-error-503"), &DroppedParams::default()).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::Upstream);
}

#[tokio::test]
async fn dropped_params_are_not_sent() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("groq", format!("{}/v1", mock.url()), Some("k"));
    let mut r = req("llama-3.1-8b-instant");
    r.logprobs = Some(true);
    r.temperature = Some(0.5);
    let plan =
        hoosh_core::params::plan(&r, p.param_support(), hoosh_core::params::UnsupportedParamAction::Drop).unwrap();
    assert_eq!(plan.names(), ["logprobs"]);
    p.chat(&r, &plan).await.unwrap();
    let sent = mock.last_request().unwrap().body;
    assert!(sent.get("logprobs").is_none());
    assert_eq!(sent["temperature"], 0.5);
}

#[tokio::test]
async fn lists_models_and_embeds_in_input_order() {
    let mock = hoosh_testkit::openai::start().await;
    let p = provider("openai", format!("{}/v1", mock.url()), None);
    assert_eq!(p.list_models().await.unwrap(), hoosh_testkit::openai::MODELS);
    let e = p
        .embed(&EmbedRequest {
            model: "text-embedding-3-small".into(),
            input: vec!["x".into(), "y".into()],
            dimensions: Some(4),
            user: None,
        })
        .await
        .unwrap();
    assert_eq!(e.vectors[1], hoosh_testkit::openai::fake_embedding("y", 4));
    assert_eq!(mock.last_request().unwrap().body["encoding_format"], "float");
}
