//! The Gemini adapter against the mock Gemini server over real HTTP, and
//! the pure conversions on their own.

use std::time::Duration;

use futures_util::StreamExt;
use hoosh_core::params::{DroppedParams, ParamSupport, UnsupportedParamAction, plan};
use hoosh_core::{EmbedRequest, ErrorKind, Provider, ProviderError, Secret};
use hoosh_testkit::MockServer;
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, FinishReason, Role};
use serde_json::{Value, json};

use super::GeminiProvider;
use super::{convert, wire};
use crate::adapter::AdapterConfig;

fn provider_with_key(mock: &MockServer, key: Option<&str>) -> GeminiProvider {
    GeminiProvider::new(AdapterConfig {
        name: "gemini".into(),
        preset: crate::presets::find("gemini").unwrap(),
        base_url: mock.url(),
        api_key: key.map(Secret::new),
        headers: reqwest::header::HeaderMap::new(),
        api_version: None,
        http: reqwest::Client::new(),
    })
}

fn provider(mock: &MockServer) -> GeminiProvider {
    provider_with_key(mock, Some("test-key"))
}

fn request(v: Value) -> ChatCompletionRequest {
    serde_json::from_value(v).unwrap()
}

fn hello(model: &str) -> ChatCompletionRequest {
    request(json!({"model": model, "messages": [{"role": "user", "content": "h\u{e9}llo"}]}))
}

fn none() -> DroppedParams {
    DroppedParams::default()
}

async fn collect(stream: hoosh_core::ChunkStream) -> Vec<Result<ChatCompletionChunk, ProviderError>> {
    stream.collect().await
}

fn content_of(chunks: &[ChatCompletionChunk]) -> String {
    chunks.iter().flat_map(|c| &c.choices).filter_map(|ch| ch.delta.content.as_deref()).collect()
}

fn last_body(mock: &MockServer) -> Value {
    mock.last_request().unwrap().body
}

#[tokio::test]
async fn text_answer_with_usage() {
    let mock = hoosh_testkit::gemini::start().await;
    let resp = provider(&mock).chat(&hello("gemini-2.0-flash"), &none()).await.unwrap();
    assert_eq!(resp.object, "chat.completion");
    assert!(resp.id.starts_with("chatcmpl-"), "{}", resp.id);
    assert_eq!(resp.model, "gemini-2.0-flash");
    let choice = &resp.choices[0];
    assert_eq!(choice.message.role, Role::Assistant);
    assert_eq!(choice.message.content.as_deref(), Some(hoosh_testkit::scenario::echo_text("h\u{e9}llo").as_str()));
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    let usage = resp.usage.unwrap();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    let rec = mock.last_request().unwrap();
    assert_eq!(rec.uri, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_eq!(rec.header("x-goog-api-key"), Some("test-key"));
}

#[tokio::test]
async fn system_messages_join_the_instruction_and_roles_map() {
    let mock = hoosh_testkit::gemini::start().await;
    let req = request(json!({"model": "gemini-2.0-flash", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "assistant", "content": "salut"},
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]}
    ]}));
    provider(&mock).chat(&req, &none()).await.unwrap();
    let body = last_body(&mock);
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}));
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "salut"}]},
            {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}
        ])
    );
}

#[tokio::test]
async fn generation_config_and_json_modes() {
    let mock = hoosh_testkit::gemini::start().await;
    let p = provider(&mock);
    let req = request(json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "max_completion_tokens": 64, "stop": "END", "seed": 7,
        "presence_penalty": 0.5, "frequency_penalty": -0.5, "response_format": {"type": "json_object"}}));
    p.chat(&req, &none()).await.unwrap();
    assert_eq!(
        last_body(&mock)["generationConfig"],
        json!({"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 64, "stopSequences": ["END"], "seed": 7,
               "presencePenalty": 0.5, "frequencyPenalty": -0.5, "responseMimeType": "application/json"})
    );

    let dropped = plan(&req, &ParamSupport::without(&["seed", "temperature"]), UnsupportedParamAction::Drop).unwrap();
    p.chat(&req, &dropped).await.unwrap();
    let cfg = &last_body(&mock)["generationConfig"];
    assert!(cfg.get("seed").is_none() && cfg.get("temperature").is_none(), "{cfg}");
    assert_eq!(cfg["topP"], json!(0.9));

    let req = request(json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "strict": true, "schema": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
            "properties": {"name": {"type": "string"}}, "required": ["name"]}}}}));
    p.chat(&req, &none()).await.unwrap();
    assert_eq!(
        last_body(&mock)["generationConfig"],
        json!({"responseMimeType": "application/json", "responseSchema": {
            "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}})
    );

    p.chat(&hello("gemini-2.0-flash"), &none()).await.unwrap();
    assert!(last_body(&mock).get("generationConfig").is_none(), "no parameters, no generationConfig");
}

#[tokio::test]
async fn images_become_inline_data_or_file_data() {
    let mock = hoosh_testkit::gemini::start().await;
    let req = request(json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?size=large"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photo"}}
    ]}]}));
    provider(&mock).chat(&req, &none()).await.unwrap();
    assert_eq!(
        last_body(&mock)["contents"][0]["parts"],
        json!([
            {"text": "what is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?size=large"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"}}
        ])
    );
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
        "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "additionalProperties": false,
            "properties": {"city": {"type": "string"},
                           "when": {"type": ["string", "null"]},
                           "opts": {"type": "object", "additionalProperties": {"type": "string"},
                                    "properties": {"unit": {"type": "string", "enum": ["c", "f"]}}}},
            "required": ["city"]}}})
}

#[tokio::test]
async fn tools_are_declared_with_cleaned_schemas() {
    let mock = hoosh_testkit::gemini::start().await;
    let req = request(json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "weather?"}],
        "tools": [weather_tool(), {"type": "function", "function": {"name": "now",
            "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}));
    provider(&mock).chat(&req, &none()).await.unwrap();
    let body = last_body(&mock);
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object",
                "properties": {"city": {"type": "string"},
                               "when": {"type": "string", "nullable": true},
                               "opts": {"type": "object", "properties": {"unit": {"type": "string", "enum": ["c", "f"]}}}},
                "required": ["city"]}},
            {"name": "now"}
        ]}])
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );

    for (choice, mode) in [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")] {
        let mut r = req.clone();
        r.tool_choice = Some(serde_json::from_value(json!(choice)).unwrap());
        provider(&mock).chat(&r, &none()).await.unwrap();
        assert_eq!(last_body(&mock)["toolConfig"], json!({"functionCallingConfig": {"mode": mode}}));
    }
}

#[tokio::test]
async fn tool_round_trip() {
    let mock = hoosh_testkit::gemini::start().await;
    let p = provider(&mock);
    let req = request(json!({"model": "mock-tool", "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [weather_tool()]}));
    let resp = p.chat(&req, &none()).await.unwrap();
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_0");
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);

    let follow_up = request(json!({"model": "gemini-2.0-flash", "tools": [weather_tool()], "messages": [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp_c\": 21}"},
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
        {"role": "user", "content": "thanks"}
    ]}));
    p.chat(&follow_up, &none()).await.unwrap();
    assert_eq!(
        last_body(&mock)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                {"text": "thanks"}]}
        ])
    );
}

#[tokio::test]
async fn invalid_tool_arguments_are_a_bad_request_naming_the_call() {
    let mock = hoosh_testkit::gemini::start().await;
    let req = request(json!({"model": "gemini-2.0-flash", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": "}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "?"}
    ]}));
    let err = provider(&mock).chat(&req, &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("call_9") && err.message.contains("get_weather"), "{}", err.message);
    assert_eq!(mock.call_count(), 0, "refused before any HTTP call");
}

#[tokio::test]
async fn streamed_text_reassembles_exactly() {
    let mock = hoosh_testkit::gemini::start().await;
    let stream = provider(&mock).chat_stream(&hello("gemini-2.0-flash"), &none()).await.unwrap();
    let chunks: Vec<_> = collect(stream).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(mock.last_request().unwrap().uri, "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse");

    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(content_of(&chunks), hoosh_testkit::scenario::echo_text("h\u{e9}llo"));
    let id = &chunks[0].id;
    assert!(chunks.iter().all(|c| &c.id == id && c.object == ChatCompletionChunk::OBJECT));

    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage_chunk = chunks.last().unwrap();
    assert!(usage_chunk.choices.is_empty());
    let usage = usage_chunk.usage.unwrap();
    assert!(usage.prompt_tokens > 0);
    assert_eq!(usage.completion_tokens, hoosh_testkit::scenario::count_tokens(&content_of(&chunks)));
    let finishes = chunks.iter().flat_map(|c| &c.choices).filter(|c| c.finish_reason.is_some()).count();
    assert_eq!(finishes, 1);
}

#[tokio::test]
async fn streamed_tool_call_is_one_complete_delta() {
    let mock = hoosh_testkit::gemini::start().await;
    let req = request(json!({"model": "mock-tool", "messages": [{"role": "user", "content": "weather?"}],
        "tools": [weather_tool()]}));
    let stream = provider(&mock).chat_stream(&req, &none()).await.unwrap();
    let chunks: Vec<_> = collect(stream).await.into_iter().map(Result::unwrap).collect();
    let calls: Vec<_> =
        chunks.iter().flat_map(|c| &c.choices).filter_map(|c| c.delta.tool_calls.as_ref()).flatten().collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].index, 0);
    assert_eq!(calls[0].id.as_deref(), Some("call_0"));
    let f = calls[0].function.as_ref().unwrap();
    assert_eq!(f.name.as_deref(), Some("get_weather"));
    assert_eq!(f.arguments.as_deref(), Some(r#"{"city":"Paris"}"#));
    let reasons: Vec<_> = chunks.iter().flat_map(|c| &c.choices).filter_map(|c| c.finish_reason).collect();
    assert_eq!(reasons, [FinishReason::ToolCalls]);
    assert!(chunks.last().unwrap().usage.is_some());
}

#[tokio::test]
async fn stream_cut_mid_way_ends_with_an_error() {
    let mock = hoosh_testkit::gemini::start().await;
    let items = collect(provider(&mock).chat_stream(&hello("mock-cut"), &none()).await.unwrap()).await;
    let (last, before) = items.split_last().unwrap();
    assert_eq!(last.as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);
    assert!(before.iter().all(Result::is_ok));
    assert!(before.iter().flatten().flat_map(|c| &c.choices).all(|c| c.finish_reason.is_none()));
}

#[tokio::test]
async fn stream_edge_cases() {
    let mock = hoosh_testkit::gemini::start().await;
    let p = provider(&mock);

    let items = collect(p.chat_stream(&hello("mock-empty-stream"), &none()).await.unwrap()).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().kind, ErrorKind::StreamInterrupted);

    let chunks: Vec<_> = collect(p.chat_stream(&hello("mock-length"), &none()).await.unwrap())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let reasons: Vec<_> = chunks.iter().flat_map(|c| &c.choices).filter_map(|c| c.finish_reason).collect();
    assert_eq!(reasons, [FinishReason::Length]);

    let chunks: Vec<_> = collect(p.chat_stream(&hello("mock-stall-30"), &none()).await.unwrap())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(content_of(&chunks), hoosh_testkit::scenario::echo_text("h\u{e9}llo"));

    let err = p.chat_stream(&hello("mock-error-503"), &none()).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::Upstream);
}

#[tokio::test]
async fn error_statuses_are_classified() {
    let mock = hoosh_testkit::gemini::start().await;
    let p = provider(&mock);

    let err = p.chat(&hello("mock-error-429-retry-3"), &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.status, Some(429));
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)), "read from the RetryInfo detail");

    let err = p.chat(&hello("mock-error-403"), &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);

    let err = p.chat(&hello("mock-error-400"), &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert_eq!(err.message, "Invalid JSON payload received. Unknown name \"mock\": Cannot find field.");

    let err = p.chat(&hello("mock-error-500"), &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Upstream);
    assert!(err.retryable());

    let err = p.chat(&hello("mock-badjson"), &none()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidResponse);

    let err = provider_with_key(&mock, None).chat(&hello("gemini-2.0-flash"), &none()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Auth, Some(403)));

    let wrong = provider_with_key(&mock, Some(hoosh_testkit::gemini::INVALID_KEY));
    let err = wrong.chat(&hello("gemini-2.0-flash"), &none()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Auth, Some(400)), "Google's 400 API_KEY_INVALID is an auth failure");
}

#[tokio::test]
async fn flaky_upstream_answers_after_failures() {
    let mock = hoosh_testkit::gemini::start().await;
    let p = provider(&mock);
    for _ in 0..2 {
        assert_eq!(p.chat(&hello("mock-flaky-2"), &none()).await.unwrap_err().kind, ErrorKind::Upstream);
    }
    assert!(p.chat(&hello("mock-flaky-2"), &none()).await.is_ok());
}

#[tokio::test]
async fn embeddings_one_vector_per_input_in_order() {
    let mock = hoosh_testkit::gemini::start().await;
    let req = EmbedRequest {
        model: "text-embedding-004".into(),
        input: vec!["alpha".into(), "beta".into(), "gamma".into()],
        dimensions: Some(4),
        user: None,
    };
    let resp = provider(&mock).embed(&req).await.unwrap();
    assert_eq!(resp.vectors.len(), 3);
    for (v, text) in resp.vectors.iter().zip(["alpha", "beta", "gamma"]) {
        assert_eq!(v, &hoosh_testkit::openai::fake_embedding(text, 4));
    }
    assert_eq!(resp.usage.prompt_tokens, 0);
    let rec = mock.last_request().unwrap();
    assert_eq!(rec.uri, "/v1beta/models/text-embedding-004:batchEmbedContents");
    assert_eq!(
        rec.body["requests"][1],
        json!({"model": "models/text-embedding-004", "content": {"parts": [{"text": "beta"}]}, "outputDimensionality": 4})
    );
    assert!(provider(&mock).capabilities().embeddings);
}

#[tokio::test]
async fn list_models_strips_the_prefix() {
    let mock = hoosh_testkit::gemini::start().await;
    let models = provider(&mock).list_models().await.unwrap();
    assert_eq!(models, ["gemini-2.0-flash", "gemini-2.5-pro", "text-embedding-004"]);
    provider(&mock).health().await.unwrap();
}

#[tokio::test]
async fn the_key_never_appears_in_a_url() {
    let mock = hoosh_testkit::gemini::start().await;
    let p = provider(&mock);
    p.chat(&hello("gemini-2.0-flash"), &none()).await.unwrap();
    let _ = collect(p.chat_stream(&hello("gemini-2.0-flash"), &none()).await.unwrap()).await;
    let embed =
        EmbedRequest { model: "text-embedding-004".into(), input: vec!["a".into()], dimensions: None, user: None };
    p.embed(&embed).await.unwrap();
    p.list_models().await.unwrap();
    let requests = mock.requests();
    assert_eq!(requests.len(), 4);
    for r in requests {
        assert!(!r.uri.contains("test-key") && !r.uri.contains("key="), "{}", r.uri);
        assert_eq!(r.header("x-goog-api-key"), Some("test-key"));
    }
}

#[tokio::test]
async fn model_names_cannot_escape_their_path_segment() {
    let mock = hoosh_testkit::gemini::start().await;
    let _ = provider(&mock).chat(&hello("models/evil?x=1/../../y"), &none()).await;
    let uri = mock.last_request().unwrap().uri;
    assert!(uri.starts_with("/v1beta/models/evil%3Fx=1%2F..%2F..%2Fy:generateContent"), "{uri}");
}

mod pure {
    use super::*;

    #[test]
    fn schema_cleaning_is_recursive_and_keeps_property_names() {
        let schema = json!({
            "$schema": "x", "type": "object", "additionalProperties": false,
            "properties": {
                "additionalProperties": {"type": "string", "examples": ["a"]},
                "list": {"type": "array", "items": {"type": "object", "additionalProperties": true,
                    "properties": {"v": {"type": ["integer", "null"]}}}},
                "either": {"anyOf": [{"type": "string", "$comment": "c"}, {"type": "number"}]},
                "mode": {"type": "string", "enum": ["additionalProperties"], "default": {"additionalProperties": 1}}
            }
        });
        assert_eq!(
            convert::clean_schema(&schema),
            json!({"type": "object", "properties": {
                "additionalProperties": {"type": "string"},
                "list": {"type": "array", "items": {"type": "object",
                    "properties": {"v": {"type": "integer", "nullable": true}}}},
                "either": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "mode": {"type": "string", "enum": ["additionalProperties"], "default": {"additionalProperties": 1}}
            }})
        );
    }

    #[test]
    fn mime_guesses() {
        assert_eq!(convert::guess_mime("https://x.test/a/b.PNG"), "image/png");
        assert_eq!(convert::guess_mime("https://x.test/a.gif#frag"), "image/gif");
        assert_eq!(convert::guess_mime("https://x.test/a.v2/photo"), "image/jpeg");
        assert_eq!(convert::guess_mime("https://x.test/doc.pdf?dl=1"), "application/pdf");
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(convert::finish_reason("STOP"), FinishReason::Stop);
        assert_eq!(convert::finish_reason("MAX_TOKENS"), FinishReason::Length);
        for r in ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"] {
            assert_eq!(convert::finish_reason(r), FinishReason::ContentFilter, "{r}");
        }
        assert_eq!(convert::finish_reason("OTHER"), FinishReason::Stop);
    }

    fn parse(v: Value) -> wire::GenerateContentResponse {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn thoughts_and_usage_details() {
        let w = parse(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Let me think. ", "thought": true}, {"text": "The answer"}, {"text": " is 4."},
                {"executableCode": {"language": "PYTHON", "code": "2+2"}}]},
                "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7,
                              "cachedContentTokenCount": 4, "totalTokenCount": 22},
            "modelVersion": "gemini-2.5-pro-001"
        }));
        let resp = convert::chat_response(w, "gemini-2.5-pro").unwrap();
        assert_eq!(resp.model, "gemini-2.5-pro");
        let m = &resp.choices[0].message;
        assert_eq!(m.content.as_deref(), Some("The answer is 4."));
        assert_eq!(m.reasoning_content.as_deref(), Some("Let me think. "));
        let u = resp.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (10, 12, 22));
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 4);
        assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 7);
    }

    #[test]
    fn blocked_prompt_is_a_content_filter_error() {
        let w = parse(json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}));
        assert_eq!(convert::chat_response(w.clone(), "m").unwrap_err().kind, ErrorKind::ContentFilter);
        let mut state = convert::StreamState::new("m");
        assert_eq!(state.on_event(w).unwrap_err().kind, ErrorKind::ContentFilter);
        let safety = parse(json!({"candidates": [{"finishReason": "SAFETY"}]}));
        let resp = convert::chat_response(safety, "m").unwrap();
        assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ContentFilter));
    }

    #[test]
    fn stream_state_orders_role_text_finish_usage() {
        let mut s = convert::StreamState::new("m");
        let first = s
            .on_event(parse(json!({"candidates": [{"content": {"parts": [
                {"text": "hmm", "thought": true}, {"text": "Hi"}]}}], "usageMetadata": {"promptTokenCount": 3}})))
            .unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(first[0].choices[0].delta.role, Some(Role::Assistant));
        assert_eq!(first[1].choices[0].delta.reasoning_content.as_deref(), Some("hmm"));
        assert_eq!(first[2].choices[0].delta.content.as_deref(), Some("Hi"));
        assert!(!s.finished());
        let last = s
            .on_event(parse(json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f"}}]},
                "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}})))
            .unwrap();
        let call = &last[0].choices[0].delta.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.function.as_ref().unwrap().arguments.as_deref(), Some("{}"));
        assert_eq!(last[1].choices[0].finish_reason, Some(FinishReason::ToolCalls));
        let end = s.on_end().unwrap();
        assert_eq!(end[0].usage.unwrap().total_tokens, 5);
    }

    #[test]
    fn error_hints_from_google_details() {
        let body = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#;
        let hints = convert::error_hints(body);
        assert_eq!(hints.retry_delay, Some(Duration::from_millis(1500)));
        assert!(!hints.api_key_invalid);
        assert_eq!(convert::error_hints(b"<html>"), convert::ErrorHints::default());
        assert_eq!(convert::parse_duration("-1s"), None);
        // A hostile retryDelay saturates instead of panicking.
        assert_eq!(convert::parse_duration("1e300s"), Some(crate::http::MAX_RETRY_AFTER));
        assert_eq!(convert::parse_duration("infs"), Some(crate::http::MAX_RETRY_AFTER));
        assert_eq!(convert::parse_duration("NaNs"), None);
    }

    #[test]
    fn tool_result_without_a_matching_call_is_refused() {
        let req = request(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}]}));
        let err = convert::chat_body(&req, &none()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(err.message.contains("nope"), "{}", err.message);
    }

    #[test]
    fn tool_choice_without_tools_is_left_out() {
        let req =
            request(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}));
        let body = convert::chat_body(&req, &none()).unwrap();
        assert!(body.tools.is_empty() && body.tool_config.is_none());
        assert!(body.system_instruction.is_none() && body.generation_config.is_none());
    }

    #[test]
    fn embed_count_mismatch_is_invalid() {
        let w = wire::BatchEmbedResponse { embeddings: vec![wire::ContentEmbedding::default()], usage_metadata: None };
        assert_eq!(convert::embed_response(w, 2).unwrap_err().kind, ErrorKind::InvalidResponse);
    }
}
