//! The client against the testkit's mock OpenAI server, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use hoosh_client::types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatMessage, EmbeddingRequest, EmbeddingVector, FinishReason,
    FunctionDef, Role, StreamOptions, Tool, ToolKind,
};
use hoosh_client::{ChatStream, ClientError, HooshClient};
use hoosh_testkit::MockServer;
use hoosh_types::content::OneOrMany;

const ECHO_HI: &str = "echo: hi \u{e9}\u{1f600}";

async fn setup() -> (MockServer, HooshClient) {
    let mock = hoosh_testkit::openai::start().await;
    let client = HooshClient::builder(mock.url()).build().unwrap();
    (mock, client)
}

fn request(model: &str, text: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: model.into(),
        messages: vec![ChatMessage::text(Role::User, text)],
        ..Default::default()
    }
}

/// Every item of a stream, errors included.
async fn drain(mut stream: ChatStream) -> Vec<Result<ChatCompletionChunk, ClientError>> {
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item);
    }
    items
}

fn text_of(chunks: &[ChatCompletionChunk]) -> String {
    chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.delta.content.as_deref()).collect()
}

#[tokio::test]
async fn chat_returns_the_echo() {
    let (mock, client) = setup().await;
    let mut req = request("gpt-4o", "hi");
    req.stream = true; // forced off by chat()
    req.stream_options = Some(StreamOptions { include_usage: Some(true) });
    let resp = client.chat(&req).await.unwrap();
    assert_eq!(resp.choices[0].message.content.as_deref(), Some(ECHO_HI));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    assert!(resp.usage.is_some());
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.uri, "/v1/chat/completions");
    assert!(sent.body.get("stream").is_none() || sent.body["stream"] == false);
    assert!(sent.body.get("stream_options").is_none());
}

#[tokio::test]
async fn base_url_with_v1_suffix_works() {
    let mock = hoosh_testkit::openai::start().await;
    let client = HooshClient::builder(format!("{}/v1/", mock.url())).build().unwrap();
    let resp = client.chat(&request("gpt-4o", "hi")).await.unwrap();
    assert_eq!(resp.choices[0].message.content.as_deref(), Some(ECHO_HI));
}

#[tokio::test]
async fn chat_stream_reassembles_the_text_exactly() {
    let (mock, client) = setup().await;
    let mut req = request("gpt-4o", "hi");
    req.stream_options = Some(StreamOptions { include_usage: Some(true) });
    let items = drain(client.chat_stream(&req).await.unwrap()).await;
    let chunks: Vec<ChatCompletionChunk> = items.into_iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(text_of(&chunks), ECHO_HI);
    let finish: Vec<_> = chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.finish_reason).collect();
    assert_eq!(finish, vec![FinishReason::Stop]);
    assert!(chunks.last().unwrap().usage.is_some(), "trailing usage chunk");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn tool_call_response_is_parsed() {
    let (_mock, client) = setup().await;
    let mut req = request("mock-tool", "weather in Paris?");
    req.tools = Some(vec![Tool {
        kind: ToolKind::Function,
        function: FunctionDef { name: "lookup_weather".into(), description: None, parameters: None, strict: None },
    }]);
    let resp = client.chat(&req).await.unwrap();
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_mock_1");
    assert_eq!(calls[0].function.name, "lookup_weather");
    assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);
}

#[tokio::test]
async fn streamed_tool_call_fragments_arrive_in_order() {
    let (_mock, client) = setup().await;
    let items = drain(client.chat_stream(&request("mock-tool", "weather?")).await.unwrap()).await;
    let chunks: Vec<ChatCompletionChunk> = items.into_iter().collect::<Result<_, _>>().unwrap();
    let deltas: Vec<_> =
        chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.delta.tool_calls.as_ref()).flatten().collect();
    assert_eq!(deltas[0].id.as_deref(), Some("call_mock_1"));
    let args: String = deltas.iter().filter_map(|d| d.function.as_ref()?.arguments.as_deref()).collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    assert_eq!(chunks.last().unwrap().choices[0].finish_reason, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn embeddings_are_returned_per_input() {
    let (mock, client) = setup().await;
    let req = EmbeddingRequest {
        model: "text-embedding-3-small".into(),
        input: OneOrMany::Many(vec!["a".into(), "b c".into()]),
        encoding_format: None,
        dimensions: Some(4),
        user: None,
    };
    let resp = client.embeddings(&req).await.unwrap();
    assert_eq!(resp.data.len(), 2);
    assert_eq!(resp.data[1].index, 1);
    match &resp.data[0].embedding {
        EmbeddingVector::Float(v) => assert_eq!(v.len(), 4),
        other => panic!("expected floats, got {other:?}"),
    }
    assert_eq!(resp.usage.prompt_tokens, 3);
    assert_eq!(mock.last_request().unwrap().uri, "/v1/embeddings");
}

#[tokio::test]
async fn models_are_listed() {
    let (_mock, client) = setup().await;
    let list = client.models().await.unwrap();
    let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, hoosh_testkit::openai::MODELS);
}

#[tokio::test]
async fn error_status_surfaces_the_openai_error() {
    let (_mock, client) = setup().await;
    let err = client.chat(&request("mock-error-404", "hi")).await.unwrap_err();
    match &err {
        ClientError::Api { status, error, .. } => {
            assert_eq!(*status, 404);
            assert_eq!(error.message, "The model does not exist");
            assert_eq!(error.kind, "invalid_request_error");
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert_eq!(err.to_string(), "404 invalid_request_error: The model does not exist");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn rate_limit_surfaces_on_chat_stream_and_embeddings() {
    let (_mock, client) = setup().await;
    let err = client.chat_stream(&request("mock-error-429-retry-1", "hi")).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Api { status: 429, error, .. } if error.message == "Rate limit reached"),
        "{err:?}"
    );
    let req = EmbeddingRequest {
        model: "mock-error-429-retry-1".into(),
        input: OneOrMany::One("x".into()),
        encoding_format: None,
        dimensions: None,
        user: None,
    };
    let err = client.embeddings(&req).await.unwrap_err();
    assert!(matches!(&err, ClientError::Api { status: 429, error, .. } if error.kind == "rate_limit_error"), "{err:?}");
}

#[tokio::test]
async fn bearer_header_is_sent_only_when_a_key_is_set() {
    let mock = hoosh_testkit::openai::start().await;
    let client = HooshClient::builder(mock.url()).api_key(Some("sk-test-123".into())).build().unwrap();
    client.models().await.unwrap();
    assert_eq!(mock.last_request().unwrap().header("authorization"), Some("Bearer sk-test-123"));
    drain(client.chat_stream(&request("gpt-4o", "hi")).await.unwrap()).await;
    assert_eq!(mock.last_request().unwrap().header("authorization"), Some("Bearer sk-test-123"));

    let anonymous = HooshClient::builder(mock.url()).api_key(None).build().unwrap();
    anonymous.models().await.unwrap();
    assert_eq!(mock.last_request().unwrap().header("authorization"), None);
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error() {
    let (_mock, client) = setup().await;
    let items = drain(client.chat_stream(&request("mock-cut", "hi")).await.unwrap()).await;
    let (last, before) = items.split_last().unwrap();
    assert!(before.iter().all(Result::is_ok), "only the last item is an error: {items:?}");
    assert!(matches!(last, Err(ClientError::Transport(_) | ClientError::StreamTruncated)), "{last:?}");
}

#[tokio::test]
async fn an_empty_stream_is_truncated() {
    let (_mock, client) = setup().await;
    let items = drain(client.chat_stream(&request("mock-empty-stream", "hi")).await.unwrap()).await;
    assert!(matches!(items.as_slice(), [Err(ClientError::StreamTruncated)]), "{items:?}");
}

#[tokio::test]
async fn a_200_that_is_not_json_is_a_decode_error() {
    let (_mock, client) = setup().await;
    let err = client.chat(&request("mock-badjson", "hi")).await.unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
}

#[tokio::test]
async fn routes_the_mock_lacks_give_plain_http_errors() {
    let (_mock, client) = setup().await;
    // The mock serves no /health: a reachable gateway that is not healthy.
    assert!(!client.health().await.unwrap());
    let err = client.providers().await.unwrap_err();
    assert!(matches!(err, ClientError::Http { status: 404, .. }), "{err:?}");
    let err = client.model("gpt-4o").await.unwrap_err();
    assert!(matches!(err, ClientError::Http { status: 404, .. }), "{err:?}");
}

#[tokio::test]
async fn unreachable_gateway_is_a_transport_error() {
    // Bind then drop, so the port is (very likely) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = HooshClient::builder(format!("http://127.0.0.1:{port}")).build().unwrap();
    let err = client.health().await.unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert!(err.to_string().starts_with("request failed: "), "{err}");
}
