//! The admin API through the real gateway over HTTP, in front of a mock
//! OpenAI server: keys (create → use → revoke), scopes, teams, budgets,
//! usage reports and the CSV export.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hoosh_testkit::server::MockServer;
use serde_json::{Value, json};
use support::*;

/// A gateway whose admin key is known (read from a file: the variable it
/// would come from first is one nobody sets).
struct Admin {
    gw: Gateway,
    master: String,
    _mock: MockServer,
}

impl Admin {
    async fn start() -> Admin {
        let mock = hoosh_testkit::openai::start().await;
        let mut c = config(vec![openai("up", &mock.url())]);
        let master = format!("hk-test-master-{}", uuid::Uuid::new_v4().simple());
        c.governance.master_key_env = format!("HOOSH_TEST_UNSET_{}", uuid::Uuid::new_v4().simple());
        c.governance.master_key_file = Some(secret_file(&master));
        Admin { gw: Gateway::start(c).await, master, _mock: mock }
    }

    /// `method path` with `key` (none when `None`) and a JSON body; → (status, JSON).
    async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        call(&self.gw, method, path, key, body).await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(&self.master.clone()), body).await
    }

    /// Creates a key; → (id, plaintext).
    async fn key(&self, body: Value) -> (String, String) {
        let (status, k) = self.admin("POST", "/admin/keys", Some(body)).await;
        assert_eq!(status, 201, "{k}");
        (k["id"].as_str().unwrap().to_owned(), k["key"].as_str().unwrap().to_owned())
    }

    async fn chat(&self, key: &str, model: &str) -> (u16, Value) {
        self.call("POST", "/v1/chat/completions", Some(key), Some(chat_body(model, "hi"))).await
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn param(body: &Value) -> &str {
    body["error"]["param"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_created_key_works_is_listed_without_secrets_and_stops_at_revoke() {
    let a = Admin::start().await;
    let (status, created) = a
        .admin(
            "POST",
            "/admin/keys",
            Some(json!({"name": "ci", "team": "research", "models": ["gpt-*", "mock-*"], "rpm": 60, "tpm": 100000,
                        "max_concurrency": 4, "budget": {"tokens": 100000, "usd": 5.0, "period": "daily"},
                        "metadata": {"owner": "qa"}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(id.starts_with("key_") && key.starts_with("hk-"), "{created}");
    assert_eq!(created["prefix"], key[..8]);
    assert_eq!((created["rpm"].as_u64(), created["max_concurrency"].as_u64()), (Some(60), Some(4)));
    assert_eq!(created["budget"], json!({"tokens": 100000, "usd": 5.0, "period": "daily"}));
    assert_eq!(created["scopes"], json!(["inference"]));
    assert!(created.get("hash").is_none(), "{created}");

    let (status, answer) = a.chat(&key, "gpt-4o").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["choices"][0]["message"]["content"], "echo: hi \u{e9}\u{1f600}");

    let listing = http().get(a.gw.url("/admin/keys")).bearer_auth(&a.master).send().await.unwrap();
    assert_eq!(listing.status(), 200);
    let text = listing.text().await.unwrap();
    assert!(!text.contains(&key) && !text.contains("hash"), "{text}");
    let listing: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listing["object"], "list");
    let listed = &listing["data"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(listed["prefix"], key[..8]);
    assert!(listed.get("key").is_none());

    let (status, one) = a.admin("GET", &format!("/admin/keys/{id}"), None).await;
    assert_eq!((status, one["name"].as_str()), (200, Some("ci")));

    // PATCH: absent fields stay, null clears.
    let (status, patched) =
        a.admin("PATCH", &format!("/admin/keys/{id}"), Some(json!({"name": "ci-2", "rpm": null}))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["name"].as_str(), patched["rpm"].as_u64()), (Some("ci-2"), None));
    assert_eq!((patched["tpm"].as_u64(), patched["team"].as_str()), (Some(100000), Some("research")));

    let (status, revoked) = a.admin("DELETE", &format!("/admin/keys/{id}"), None).await;
    assert_eq!((status, revoked["enabled"].as_bool()), (200, Some(false)), "{revoked}");
    let (status, denied) = a.chat(&key, "gpt-4o").await;
    assert_eq!((status, code(&denied)), (401, "revoked_api_key"));
    let (_, still) = a.admin("GET", &format!("/admin/keys/{id}"), None).await;
    assert_eq!(still["enabled"], false, "a revoked key stays listed");

    let (status, gone) = a.admin("DELETE", &format!("/admin/keys/{id}?purge=true"), None).await;
    assert_eq!((status, gone["deleted"].as_bool()), (200, Some(true)));
    let (status, _) = a.admin("GET", &format!("/admin/keys/{id}"), None).await;
    assert_eq!(status, 404);
    let (status, denied) = a.chat(&key, "gpt-4o").await;
    assert_eq!((status, code(&denied)), (401, "invalid_api_key"));
}

#[tokio::test]
async fn admin_routes_need_a_key_with_the_admin_scope() {
    let a = Admin::start().await;
    let (status, body) = a.call("GET", "/admin/keys", None, None).await;
    assert_eq!((status, code(&body)), (401, "missing_api_key"));
    let (status, body) = a.call("GET", "/admin/keys", Some("hk-not-a-key"), None).await;
    assert_eq!((status, code(&body)), (401, "invalid_api_key"));

    let (_, plain) = a.key(json!({"name": "app"})).await;
    for (method, path) in [
        ("GET", "/admin/keys"),
        ("GET", "/admin/teams"),
        ("GET", "/admin/budgets"),
        ("GET", "/admin/usage"),
        ("GET", "/admin/usage/export"),
    ] {
        let (status, body) = a.call(method, path, Some(&plain), None).await;
        assert_eq!((status, code(&body)), (403, "insufficient_scope"), "{method} {path}");
    }
    // The scope is checked before the body: no validation detail leaks.
    let (status, body) = a.call("POST", "/admin/keys", Some(&plain), Some(json!({"nope": 1}))).await;
    assert_eq!((status, code(&body)), (403, "insufficient_scope"));
    let (status, _) = a.call("PUT", "/admin/budgets/global", Some(&plain), Some(json!({"tokens": 1}))).await;
    assert_eq!(status, 403);

    // read_usage reads usage and nothing else.
    let (_, reader) = a.key(json!({"name": "finance", "scopes": ["read_usage"]})).await;
    let (status, body) = a.call("GET", "/admin/usage", Some(&reader), None).await;
    assert_eq!((status, body["object"].as_str()), (200, Some("list")), "{body}");
    let resp = http().get(a.gw.url("/admin/usage/export")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = a.call("POST", "/admin/keys", Some(&reader), Some(json!({"name": "x"}))).await;
    assert_eq!((status, code(&body)), (403, "insufficient_scope"));
    let (status, _) = a.call("GET", "/admin/budgets", Some(&reader), None).await;
    assert_eq!(status, 403);
    let (status, body) = a.chat(&reader, "gpt-4o").await;
    assert_eq!((status, code(&body)), (403, "insufficient_scope"), "no inference scope, no chat");

    // A key given the admin scope administers.
    let (_, admin) = a.key(json!({"name": "ops", "scopes": ["admin"]})).await;
    let (status, _) = a.call("GET", "/admin/keys", Some(&admin), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_bodies_name_the_field() {
    let a = Admin::start().await;
    for (method, path) in [
        ("GET", "/admin/keys/key_0000000000000000"),
        ("PATCH", "/admin/keys/key_0000000000000000"),
        ("DELETE", "/admin/keys/key_0000000000000000"),
        ("DELETE", "/admin/keys/key_0000000000000000?purge=true"),
        ("GET", "/admin/teams/nobody"),
        ("PATCH", "/admin/teams/nobody"),
        ("DELETE", "/admin/teams/nobody"),
    ] {
        let body = (method == "PATCH").then(|| json!({}));
        let (status, err) = a.admin(method, path, body).await;
        assert_eq!((status, code(&err)), (404, "not_found"), "{method} {path}: {err}");
    }
    let (status, err) = a.admin("PUT", "/admin/budgets/key:key_0000000000000000", Some(json!({"tokens": 5}))).await;
    assert_eq!(status, 404, "{err}");

    for (body, field) in [
        (json!({"name": "x", "rmp": 5}), "rmp"),
        (json!({"name": 5}), "name"),
        (json!({"models": ["gpt-*"]}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "budget": {"tokens": "lots"}}), "budget.tokens"),
        (json!({"name": "x", "budget": {"tokens": 5, "perod": "daily"}}), "budget.perod"),
        (json!({"name": "x", "budget": {"period": "daily"}}), "budget"),
        (json!({"name": "x", "budget": {"usd": -1.0}}), "budget.usd"),
        (json!({"name": "x", "rpm": 0}), "rpm"),
        (json!({"name": "x", "scopes": ["root"]}), "scopes[0]"),
    ] {
        let (status, err) = a.admin("POST", "/admin/keys", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {err}");
        assert!(
            param(&err) == field || err["error"]["message"].as_str().unwrap().contains(field),
            "{body}: expected `{field}` named in {err}"
        );
    }
    let (status, err) = a.admin("POST", "/admin/keys", Some(json!({"name": "x", "models": ["["]}))).await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = a.admin("PUT", "/admin/budgets/nowhere", Some(json!({"tokens": 5}))).await;
    assert_eq!((status, param(&err)), (400, "pool"));
    let (status, err) = a.admin("GET", "/admin/usage?group_by=colour", None).await;
    assert_eq!((status, param(&err)), (400, "group_by"));
    let (status, err) = a.admin("GET", "/admin/usage?groupby=key", None).await;
    assert_eq!((status, param(&err)), (400, "groupby"));
    let (status, err) = a.admin("GET", "/admin/usage?from=yesterday", None).await;
    assert_eq!((status, param(&err)), (400, "from"));
    assert!(err["error"]["message"].as_str().unwrap().contains("RFC 3339"), "{err}");
}

#[tokio::test]
async fn a_key_restricted_to_some_models_gets_403_for_others() {
    let a = Admin::start().await;
    let (_, key) = a.key(json!({"name": "narrow", "models": ["mock-a*"]})).await;
    let (status, body) = a.chat(&key, "mock-alpha").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = a.chat(&key, "gpt-4o").await;
    assert_eq!((status, code(&body)), (403, "model_not_allowed"));
}

#[tokio::test]
async fn teams_are_created_changed_and_removed() {
    let a = Admin::start().await;
    let team = json!({"name": "research", "rpm": 100, "budget": {"tokens": 5000, "period": "monthly"}});
    let (status, created) = a.admin("POST", "/admin/teams", Some(team.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["rpm"].as_u64(), created["keys"].as_u64()), (Some(100), Some(0)));
    let (status, err) = a.admin("POST", "/admin/teams", Some(team)).await;
    assert_eq!((status, code(&err)), (409, "already_exists"));
    let (status, err) = a.admin("POST", "/admin/teams", Some(json!({"name": "x", "tmp": 1}))).await;
    assert!(status == 400 && err.to_string().contains("tmp"), "{err}");

    a.key(json!({"name": "member", "team": "research"})).await;
    let (status, patched) =
        a.admin("PATCH", "/admin/teams/research", Some(json!({"rpm": null, "max_concurrency": 2}))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["rpm"].as_u64(), patched["max_concurrency"].as_u64()), (None, Some(2)));
    assert_eq!(patched["keys"], 1);
    assert_eq!(patched["budget"]["tokens"], 5000, "absent fields stay");

    let (_, list) = a.admin("GET", "/admin/teams", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, budgets) = a.admin("GET", "/admin/budgets", None).await;
    assert!(budgets["data"].as_array().unwrap().iter().any(|b| b["pool"] == "team:research"), "{budgets}");

    let (status, _) = a.admin("DELETE", "/admin/teams/research", None).await;
    assert_eq!(status, 200);
    let (status, _) = a.admin("GET", "/admin/teams/research", None).await;
    assert_eq!(status, 404);
    let (_, budgets) = a.admin("GET", "/admin/budgets", None).await;
    assert!(!budgets["data"].as_array().unwrap().iter().any(|b| b["pool"] == "team:research"));
}

#[tokio::test]
async fn budgets_are_set_shown_enforced_and_removed() {
    let a = Admin::start().await;
    let (status, set) =
        a.admin("PUT", "/admin/budgets/global", Some(json!({"tokens": 1000000, "period": "daily"}))).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!((set["pool"].as_str(), set["spec"]["tokens"].as_u64()), (Some("global"), Some(1000000)));
    assert!(set["resets_at"].as_i64().unwrap() > 0);

    let (id, key) = a.key(json!({"name": "tight"})).await;
    let (status, _) = a.chat(&key, "gpt-4o").await;
    assert_eq!(status, 200);
    // Smaller than one request's estimate (prompt + the default output cap).
    let (status, set) = a.admin("PUT", &format!("/admin/budgets/key:{id}"), Some(json!({"tokens": 10}))).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["spec"]["period"], "never");
    assert!(set["used_tokens"].as_u64().unwrap() > 0, "what was spent before still counts: {set}");
    let (status, body) = a.chat(&key, "gpt-4o").await;
    assert_eq!((status, code(&body)), (429, "budget_exceeded"), "{body}");

    let (status, _) = a.admin("PUT", "/admin/budgets/team:ops", Some(json!({"usd": 2.5, "period": "weekly"}))).await;
    assert_eq!(status, 200);
    let (status, team) = a.admin("GET", "/admin/teams/ops", None).await;
    assert_eq!((status, team["budget"]["usd"].as_f64()), (200, Some(2.5)), "a team budget creates the team");

    let (_, all) = a.admin("GET", "/admin/budgets", None).await;
    let pools: Vec<&str> = all["data"].as_array().unwrap().iter().map(|b| b["pool"].as_str().unwrap()).collect();
    assert_eq!(pools, ["global", "team:ops", &format!("key:{id}")]);
    let global = &all["data"][0];
    for field in ["used_tokens", "reserved_tokens", "remaining_tokens", "used_usd", "resets_at", "window_start"] {
        assert!(global.get(field).is_some(), "{field} in {global}");
    }

    let (status, removed) = a.admin("PUT", &format!("/admin/budgets/key:{id}"), Some(Value::Null)).await;
    assert_eq!((status, removed["deleted"].as_bool()), (200, Some(true)), "{removed}");
    let (status, _) = a.chat(&key, "gpt-4o").await;
    assert_eq!(status, 200, "the budget is gone");
    let (status, _) = a.admin("PUT", "/admin/budgets/global", Some(Value::Null)).await;
    assert_eq!(status, 200);
    let (_, all) = a.admin("GET", "/admin/budgets", None).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
}

#[tokio::test]
async fn usage_is_reported_by_group_and_exported_as_csv() {
    let a = Admin::start().await;
    let (id, key) = a.key(json!({"name": "reporter", "team": "analytics"})).await;
    for _ in 0..2 {
        let (status, body) = a.chat(&key, "mock-usage-12-34").await;
        assert_eq!(status, 200, "{body}");
    }

    let (status, report) = a.admin("GET", "/admin/usage?group_by=key", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["object"].as_str(), report["group_by"].as_str()), (Some("list"), Some("key")));
    let row = report["data"].as_array().unwrap().iter().find(|r| r["group"] == id.as_str()).unwrap();
    assert_eq!(row["requests"], 2, "{row}");
    assert_eq!((row["prompt_tokens"].as_u64(), row["completion_tokens"].as_u64()), (Some(24), Some(68)));
    assert_eq!(row["errors"], 0);

    for (by, group) in [("team", "analytics"), ("model", "mock-usage-12-34"), ("provider", "up")] {
        let (_, r) = a.admin("GET", &format!("/admin/usage?group_by={by}&from=1h"), None).await;
        let row = r["data"].as_array().unwrap().iter().find(|r| r["group"] == group);
        assert_eq!(row.map(|r| r["requests"].as_u64()), Some(Some(2)), "{by}: {r}");
    }
    let (_, later) = a.admin("GET", "/admin/usage?from=2999-01-01T00:00:00Z&to=2999-01-02", None).await;
    assert_eq!(later["data"], json!([]), "{later}");
    let (_, earlier) = a.admin("GET", "/admin/usage?from=0&to=1000000000", None).await;
    assert_eq!(earlier["data"], json!([]));

    let resp = http().get(a.gw.url("/admin/usage/export?from=7d")).bearer_auth(&a.master).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment; filename=\"hoosh-usage-"), "{disposition}");
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], hoosh_governance::csv::HEADER);
    assert_eq!(lines.len(), 3, "{csv}");
    for line in &lines[1..] {
        assert!(line.contains(&id) && line.contains(",12,34,"), "{line}");
    }
}

#[tokio::test]
async fn an_open_gateway_has_no_admin_but_shows_usage() {
    let mock = hoosh_testkit::openai::start().await;
    let gw = Gateway::start(config(vec![openai("up", &mock.url())])).await;
    let resp = http().get(gw.url("/admin/keys")).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("HOOSH_MASTER_KEY"), "{body}");
    let resp = http().get(gw.url("/admin/usage")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
