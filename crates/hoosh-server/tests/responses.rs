//! The OpenAI Responses API (`/v1/responses`) through the real gateway over
//! HTTP, in front of a chat-completions mock vendor: the response object,
//! the streamed lifecycle, a function call round trip, stored responses
//! continued with `previous_response_id` — and, written as another tenant
//! holding a valid key, that a stored response cannot be read, continued
//! or deleted by anyone but its owner, and that a budget holds here too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hoosh_governance::NewKey;
use serde_json::{Value, json};
use support::*;

async fn post(gw: &Gateway, key: &str, body: &Value) -> (u16, Value) {
    call(gw, "POST", "/v1/responses", Some(key), Some(body.clone())).await
}

#[tokio::test]
async fn a_response_is_a_response_object_ledgered_under_the_key() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (id, key) = key(&gw, NewKey::default());
    let (status, body) = post(
        &gw,
        &key,
        &json!({"model": "mock-usage-9-4", "instructions": "Be brief.", "input": "hello", "max_output_tokens": 40, "store": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["object"].as_str(), body["status"].as_str()), (Some("response"), Some("completed")));
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    let item = &body["output"][0];
    assert_eq!((item["type"].as_str(), item["role"].as_str()), (Some("message"), Some("assistant")));
    assert_eq!(item["content"][0]["text"], "echo: hello \u{e9}\u{1f600}");
    assert_eq!(body["usage"]["input_tokens"], 9);
    assert_eq!(body["usage"]["output_tokens"], 4);
    let sent = mock.last_request().unwrap().body;
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}])
    );
    assert_eq!(sent["max_completion_tokens"], 40);
    let row = ledger_rows(&gw).pop().unwrap();
    assert_eq!((row.key_id.as_deref(), row.route.as_str()), (Some(id.as_str()), "responses"));
}

#[tokio::test]
async fn a_streamed_response_is_the_full_lifecycle_and_ends_completed() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey::default());
    let resp = http()
        .post(gw.url("/v1/responses"))
        .bearer_auth(&key)
        .json(&json!({"model": "mock-usage-9-4", "input": "hello", "stream": true, "store": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let evs = named_events(&resp.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..4],
        ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    );
    assert_eq!(
        names[names.len() - 4..],
        ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    );
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!((data["type"].as_str(), data["sequence_number"].as_u64()), (Some(name.as_str()), Some(i as u64)));
    }
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "echo: hello \u{e9}\u{1f600}");
    let done = &evs.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["usage"]["total_tokens"], 13);
}

#[tokio::test]
async fn a_namespaced_function_call_round_trip() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey::default());
    let tools = json!([{"type": "namespace", "name": "mcp", "description": "a server",
        "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]}, {"type": "web_search"}]);
    let (status, body) =
        post(&gw, &key, &json!({"model": "mock-tool", "input": "weather?", "tools": tools, "store": false})).await;
    assert_eq!(status, 200, "{body}");
    let call = body["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call").unwrap().clone();
    assert_eq!((call["namespace"].as_str(), call["name"].as_str()), (Some("mcp"), Some("weather")));
    assert_eq!(call["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(mock.last_request().unwrap().body["tools"][0]["function"]["name"], "mcp__weather");
    // The hosted tool no provider here can run is left out, and said so.
    let resp = http()
        .post(gw.url("/v1/responses"))
        .bearer_auth(&key)
        .json(&json!({"model": "m", "input": "x", "tools": tools, "store": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-hoosh-ingress-dropped"], "tools[web_search]");
    assert_eq!(mock.last_request().unwrap().body["tools"].as_array().unwrap().len(), 1);
    let round = json!({"model": "m", "tools": tools, "store": false, "input": [
        {"role": "user", "content": "weather?"},
        call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    ]});
    let (status, body) = post(&gw, &key, &round).await;
    assert_eq!(status, 200, "{body}");
    let sent = mock.last_request().unwrap().body;
    assert_eq!(sent["messages"][1]["tool_calls"][0]["function"]["name"], "mcp__weather");
    assert_eq!(sent["messages"][2], json!({"role": "tool", "content": "sunny", "tool_call_id": call["call_id"]}));
}

/// Stored responses continue a conversation for their owner only. Another
/// key with a valid id in hand gets "not found" for reading, continuing
/// and deleting; the owner's response survives the attempt.
#[tokio::test]
async fn a_stored_response_continues_for_its_owner_and_no_one_else() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, owner) = key(&gw, NewKey { name: "owner".into(), ..Default::default() });
    let (_, other) = key(&gw, NewKey { name: "other".into(), ..Default::default() });
    let (status, first) =
        post(&gw, &owner, &json!({"model": "m", "instructions": "Only the first time.", "input": "my name is Ada"}))
            .await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();

    for (method, path) in [
        ("GET", format!("/v1/responses/{id}")),
        ("GET", format!("/v1/responses/{id}/input_items")),
        ("DELETE", format!("/v1/responses/{id}")),
    ] {
        let (status, body) = call(&gw, method, &path, Some(&other), None).await;
        assert_eq!(status, 404, "{method} {path} by another key: {body}");
    }
    let (status, body) =
        post(&gw, &other, &json!({"model": "m", "input": "and mine?", "previous_response_id": id})).await;
    assert_eq!(status, 404, "continuing another key's response: {body}");

    let (status, got) = call(&gw, "GET", &format!("/v1/responses/{id}"), Some(&owner), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["output"], first["output"]);
    let (_, items) = call(&gw, "GET", &format!("/v1/responses/{id}/input_items"), Some(&owner), None).await;
    assert_eq!(items["data"][0]["content"][0]["text"], "my name is Ada");

    let (status, second) =
        post(&gw, &owner, &json!({"model": "m", "input": "what is my name?", "previous_response_id": id})).await;
    assert_eq!(status, 200, "{second}");
    let sent = mock.last_request().unwrap().body;
    let roles: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"], "the earlier turn, without its instructions: {sent}");
    assert_eq!(sent["messages"][1]["content"], "echo: my name is Ada \u{e9}\u{1f600}");

    let (status, _) = call(&gw, "DELETE", &format!("/v1/responses/{id}"), Some(&owner), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&gw, "GET", &format!("/v1/responses/{id}"), Some(&owner), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn store_false_keeps_nothing() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let (_, key) = key(&gw, NewKey::default());
    let (_, body) = post(&gw, &key, &json!({"model": "m", "input": "x", "store": false})).await;
    let (status, _) =
        call(&gw, "GET", &format!("/v1/responses/{}", body["id"].as_str().unwrap()), Some(&key), None).await;
    assert_eq!(status, 404);
}

/// A caller with a token budget bursts Responses requests, each capped by
/// `max_output_tokens`: spend lands exactly on the budget, and a request
/// without a cap gets the gateway's default sent upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_holds_through_the_responses_api() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = governed(&mock.url()).await;
    let mut body = json!({"model": "m", "input": "spend", "max_output_tokens": 30, "store": false});
    let typed = serde_json::from_value(body.clone()).unwrap();
    let canonical = hoosh_server::ingress::responses::decode(typed, Vec::new()).unwrap().req;
    let prompt = hoosh_server::pipeline::estimate::chat_prompt(&canonical);
    body["model"] = json!(format!("mock-bill-{prompt}"));
    let capacity = 6 * (prompt + 30);
    let (_, free) = key(&gw, NewKey::default());
    let (id, key) = key(&gw, budget_key(capacity));
    let client = http();
    let burst = (0..30).map(|_| {
        let req = client.post(gw.url("/v1/responses")).bearer_auth(&key).json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(burst).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 6, "{statuses:?}");
    assert_eq!(used(&gw, &id), (capacity, 0));
    let (status, _) = post(&gw, &free, &json!({"model": "m", "input": "no cap", "store": false})).await;
    assert_eq!(status, 200);
    let default = gw.state.live().config.governance.default_max_tokens;
    assert_eq!(mock.last_request().unwrap().body["max_completion_tokens"], default);
}
