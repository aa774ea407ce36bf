//! The gateway's side of the audit chain: `[audit]` config → an open
//! [`AuditLog`] in `<data_dir>/audit.db`, and one method per kind of event.
//!
//! | kind | recorded by | from |
//! |---|---|---|
//! | `inference` | the ledger writer thread (a [`hoosh_governance::LedgerTap`]) | every finished request: its ledger row, 499s included |
//! | `inference.denied` | [`crate::pipeline`] | an admission refused (model not allowed, rate, concurrency, budget) |
//! | `inference.content` | [`crate::pipeline`] | the request's messages, only with `include_content = true` |
//! | `auth.failure` | [`crate::auth`] | a 401 (at most `max_auth_failures_per_sec`, the rest summarised) |
//! | `key.*`, `team.*`, `budget.set`, `audit.prune` | [`admin_actions`] | every admin API call that changes something, refused ones included |
//! | `config.reload` | [`crate::reload`] | every reload, by SIGHUP or the API, applied or refused |
//! | `chain.*` | [`hoosh_audit::AuditLog`] | start, stop, rotation, pruning |
//!
//! Nothing here blocks a request: [`AuditLog::record`] only enqueues. Entries
//! carry ids, models, token counts, costs and statuses, never a key's
//! plaintext and never prompt text unless the operator opts in.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hoosh_audit::{AuditKey, AuditLog, AuditOptions, AuditStore, Draft, Durability, KeySource, Report};
use hoosh_core::config::{AuditConfig, AuditDurability};
use hoosh_governance::{Principal, UsageRecord};
use serde_json::{Value, json};

use crate::state::AppState;

/// File name of the chain inside the data directory.
pub const AUDIT_DB_FILE: &str = "audit.db";

/// The chain as the server holds it; `Audit::disabled()` records nothing.
pub struct Audit {
    log: Option<Arc<AuditLog>>,
    /// Every key that may have signed entries (current first), for verification.
    keys: Vec<AuditKey>,
    include_content: bool,
    auth_failures: FailureWindow,
    db_path: Option<PathBuf>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("enabled", &self.log.is_some()).field("db_path", &self.db_path).finish()
    }
}

impl Audit {
    pub fn disabled() -> Audit {
        Audit {
            log: None,
            keys: Vec::new(),
            include_content: false,
            auth_failures: FailureWindow::new(0),
            db_path: None,
        }
    }

    /// Opens (or resumes) the chain in `data_dir`. When the stored chain was
    /// signed by one of `previous_key_files` and the current key differs,
    /// writes a `chain.rotate` entry signed by the old key first.
    pub fn open(cfg: &AuditConfig, data_dir: &Path) -> Result<Audit, String> {
        if !cfg.enabled {
            return Ok(Audit::disabled());
        }
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create data directory {}: {e}", data_dir.display()))?;
        let (key, source) = AuditKey::resolve(cfg.key_file.as_deref(), data_dir).map_err(|e| e.to_string())?;
        match &source {
            KeySource::Generated(p) => tracing::warn!(
                key_file = %p.display(),
                "audit: no HOOSH_AUDIT_KEY or audit.key_file, so a signing key was generated into the data directory; \
                 keep a copy elsewhere: verifying the chain needs it"
            ),
            KeySource::File(p) => tracing::info!(key_file = %p.display(), key_id = key.id(), "audit key"),
            KeySource::Env => tracing::info!(key_id = key.id(), "audit key from HOOSH_AUDIT_KEY"),
        }
        let mut previous = Vec::new();
        for p in &cfg.previous_key_files {
            previous.push(AuditKey::from_file(p).map_err(|e| format!("audit.previous_key_files: {e}"))?);
        }
        let path = data_dir.join(AUDIT_DB_FILE);
        let durability = match cfg.durability {
            AuditDurability::Normal => Durability::Normal,
            AuditDurability::Full => Durability::Full,
        };
        let store = Arc::new(
            AuditStore::open_with(&path, durability).map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        );
        let head_key = store.head().map_err(|e| e.to_string())?.map(|h| h.key_id);
        let options = AuditOptions { checkpoint_every: cfg.checkpoint_every, ..AuditOptions::default() };
        let clock = hoosh_audit::system_clock();
        let log = match head_key.as_deref() {
            Some(id) if id != key.id() => match previous.iter().find(|k| k.id() == id) {
                Some(old) => {
                    let log = AuditLog::open_with(store, old.clone(), clock, options).map_err(|e| e.to_string())?;
                    log.rotate(key.clone()).map_err(|e| e.to_string())?;
                    log
                }
                None => {
                    tracing::warn!(
                        stored_key_id = id,
                        key_id = key.id(),
                        "audit: the stored chain was signed by another key, not in audit.previous_key_files; \
                         continuing under the new key without a signed rotation (verification needs both keys)"
                    );
                    let log = AuditLog::open_with(store, key.clone(), clock, options).map_err(|e| e.to_string())?;
                    log.record(Draft::new("chain.key_changed").field("previous_key_id", id));
                    log
                }
            },
            _ => AuditLog::open_with(store, key.clone(), clock, options).map_err(|e| e.to_string())?,
        };
        let mut keys = vec![key];
        keys.extend(previous);
        Ok(Audit {
            log: Some(Arc::new(log)),
            keys,
            include_content: cfg.include_content,
            auth_failures: FailureWindow::new(cfg.max_auth_failures_per_sec),
            db_path: Some(path),
        })
    }

    pub fn enabled(&self) -> bool {
        self.log.is_some()
    }

    pub fn include_content(&self) -> bool {
        self.include_content && self.log.is_some()
    }

    pub fn log(&self) -> Option<&Arc<AuditLog>> {
        self.log.as_ref()
    }

    pub fn keys(&self) -> &[AuditKey] {
        &self.keys
    }

    pub fn record(&self, draft: Draft) {
        if let Some(log) = &self.log {
            log.record(draft);
        }
    }

    /// Drafts waiting for the writer (0 when disabled).
    pub fn queue_depth(&self) -> u64 {
        self.log.as_ref().map_or(0, |l| l.queue_depth())
    }

    /// The tap the ledger writer calls with each batch: one `inference` entry per row.
    pub fn ledger_tap(&self) -> Option<hoosh_governance::LedgerTap> {
        let log = Arc::clone(self.log.as_ref()?);
        Some(Box::new(move |rows: &[UsageRecord]| {
            for row in rows {
                log.record(inference(row));
            }
        }))
    }

    /// An admission refused before any provider was called.
    pub fn denied(&self, principal: &Principal, request_id: &str, model: &str, reason: &str) {
        if self.log.is_none() {
            return;
        }
        let mut d = Draft::new("inference.denied")
            .actor(principal.record.id.as_str())
            .field("model", model)
            .field("reason", reason);
        if let Some(team) = &principal.record.team {
            d = d.field("team", team.as_str());
        }
        self.record(with_request_id(d, request_id));
    }

    /// The request's messages, when the operator opted in.
    pub fn content(&self, principal: &Principal, request_id: &str, model: &str, messages: Value) {
        if !self.include_content() {
            return;
        }
        let d = Draft::new("inference.content")
            .actor(principal.record.id.as_str())
            .field("model", model)
            .field("messages", messages);
        self.record(with_request_id(d, request_id));
    }

    /// A request refused with 401. `key_prefix` is the first characters of
    /// what was presented (never the whole key).
    pub fn auth_failure(
        &self,
        now_ms: i64,
        code: &str,
        method: &Method,
        path: &str,
        client: Option<String>,
        key_prefix: Option<String>,
    ) {
        if self.log.is_none() {
            return;
        }
        let suppressed = match self.auth_failures.admit(now_ms) {
            Admit::Yes { suppressed_before } => suppressed_before,
            Admit::No => return,
        };
        if suppressed > 0 {
            self.record(Draft::new("auth.failure.suppressed").field("count", suppressed));
        }
        let mut d = Draft::new("auth.failure").field("code", code).field("method", method.as_str()).field("path", path);
        if let Some(c) = client {
            d = d.field("client", c);
        }
        if let Some(p) = key_prefix {
            d = d.field("key_prefix", p);
        }
        self.record(d);
    }

    /// Verifies the stored chain (blocking: run it off the async workers).
    pub fn verify(&self) -> Option<Result<Report, String>> {
        let log = self.log.as_ref()?;
        // Everything recorded so far is part of what gets verified.
        log.flush();
        let checkpoint = log.store().latest_checkpoint().ok().flatten();
        Some(hoosh_audit::verify_store(log.store(), &self.keys, checkpoint.as_ref()).map_err(|e| e.to_string()))
    }

    /// Prunes entries older than `retention_days` now and then every hour
    /// (each prune is a signed `chain.prune` record), until `cancel`.
    pub fn spawn_retention(
        self: &Arc<Self>,
        retention_days: u32,
        clock: Arc<dyn hoosh_governance::Clock>,
        tracker: &tokio_util::task::TaskTracker,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let Some(log) = self.log.clone() else { return };
        if retention_days == 0 {
            return;
        }
        let keep_ms = i64::from(retention_days) * hoosh_governance::period::DAY_MS;
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let log = Arc::clone(&log);
                let before = clock.now_ms() - keep_ms;
                match tokio::task::spawn_blocking(move || log.prune_before(before)).await {
                    Ok(Ok(Some(r))) => tracing::info!(first_kept_seq = r.first_kept_seq, "audit retention: pruned"),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "audit retention: prune failed"),
                    Err(e) => tracing::warn!(error = %e, "audit retention task failed"),
                }
            }
        });
    }

    /// Writes `chain.stop` and a checkpoint, flushes (shutdown).
    pub fn close(&self) {
        if let Some(log) = &self.log {
            log.close();
        }
    }
}

fn with_request_id(d: Draft, request_id: &str) -> Draft {
    if request_id.is_empty() { d } else { d.request_id(request_id) }
}

/// The `inference` entry of a ledger row.
fn inference(row: &UsageRecord) -> Draft {
    let mut d = Draft::new("inference")
        .field("route", row.route.as_str())
        .field("model", row.model.as_str())
        .field("status", row.status)
        .field("prompt_tokens", row.prompt_tokens)
        .field("completion_tokens", row.completion_tokens)
        .field("latency_ms", row.latency_ms);
    if let Some(k) = &row.key_id {
        d = d.actor(k.as_str());
    }
    if let Some(t) = &row.team {
        d = d.field("team", t.as_str());
    }
    if let Some(p) = &row.provider {
        d = d.field("provider", p.as_str());
    }
    if row.cached_tokens > 0 {
        d = d.field("cached_tokens", row.cached_tokens);
    }
    d = d.field("cost_nanos", row.cost_nanos.map_or(Value::Null, Value::from));
    if row.cache_hit {
        d = d.field("cache_hit", true);
    }
    // The ledger row's own id: unique, unlike the caller's request id.
    d = d.field("ledger_id", row.id.as_str());
    with_request_id(d, &row.request_id)
}

/// A per-second budget of entries; what goes over is counted, then reported.
struct FailureWindow {
    per_sec: u64,
    /// (second, count in it) packed: second << 32 | count.
    window: AtomicU64,
    suppressed: AtomicU64,
}

enum Admit {
    Yes { suppressed_before: u64 },
    No,
}

impl FailureWindow {
    fn new(per_sec: u32) -> FailureWindow {
        FailureWindow { per_sec: u64::from(per_sec), window: AtomicU64::new(0), suppressed: AtomicU64::new(0) }
    }

    fn admit(&self, now_ms: i64) -> Admit {
        let second = (u64::try_from(now_ms).unwrap_or(0) / 1000) & 0xffff_ffff;
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (sec, count) = (current >> 32, current & 0xffff_ffff);
            let next = if sec == second { (sec << 32) | (count + 1).min(0xffff_ffff) } else { (second << 32) | 1 };
            match self.window.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if (next & 0xffff_ffff) > self.per_sec {
                        self.suppressed.fetch_add(1, Ordering::Relaxed);
                        return Admit::No;
                    }
                    return Admit::Yes { suppressed_before: self.suppressed.swap(0, Ordering::Relaxed) };
                }
                Err(seen) => current = seen,
            }
        }
    }
}

/// Middleware on the admin API: every call that changes something (any
/// method but GET/HEAD) becomes an entry named after the resource and verb,
/// with the caller, the status and the request body (admin bodies hold no
/// secrets: a key's plaintext only ever appears in a response).
pub async fn admin_actions(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !st.audit.enabled() || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let actor = req.extensions().get::<Arc<Principal>>().map(|p| p.record.id.clone());
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let limit = st.live().config.server.body_limit_bytes;
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return crate::ApiError::PayloadTooLarge.into_response(),
    };
    let body_json: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({ "unparsed_bytes": bytes.len() }))
    };
    let response = next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await;
    // A reload records its own, more detailed, entry.
    let Some(kind) = admin_kind(&method, &path) else { return response };
    let mut d = Draft::new(kind)
        .field("method", method.as_str())
        .field("path", path.as_str())
        .field("status", response.status().as_u16());
    if !body_json.is_null() {
        d = d.field("body", body_json);
    }
    if let Some(a) = actor {
        d = d.actor(a);
    }
    st.audit.record(with_request_id(d, &request_id));
    response
}

/// `POST /admin/keys` → `key.create`, `DELETE /admin/teams/x` → `team.delete`, …;
/// `None` for a reload.
fn admin_kind(method: &Method, path: &str) -> Option<String> {
    let resource = path.trim_start_matches("/admin/").split('/').next().unwrap_or("");
    let noun = match resource {
        "keys" => "key",
        "teams" => "team",
        "budgets" => "budget",
        "reload" => return None,
        "audit" => return Some(format!("audit.{}", path.rsplit('/').next().unwrap_or("action"))),
        other => other,
    };
    let verb = match *method {
        Method::POST => "create",
        Method::PUT => "set",
        Method::PATCH => "update",
        Method::DELETE => "delete",
        _ => "action",
    };
    Some(format!("{noun}.{verb}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_kinds_name_resource_and_verb() {
        let kind = |m, p| admin_kind(m, p).unwrap_or_default();
        assert_eq!(kind(&Method::POST, "/admin/keys"), "key.create");
        assert_eq!(kind(&Method::PATCH, "/admin/keys/key_1"), "key.update");
        assert_eq!(kind(&Method::DELETE, "/admin/teams/red"), "team.delete");
        assert_eq!(kind(&Method::PUT, "/admin/budgets/global"), "budget.set");
        assert_eq!(kind(&Method::POST, "/admin/audit/prune"), "audit.prune");
        assert_eq!(admin_kind(&Method::POST, "/admin/reload"), None);
    }

    #[test]
    fn auth_failures_over_the_per_second_budget_are_counted_then_reported() {
        let w = FailureWindow::new(3);
        let t = 1_700_000_000_000;
        for _ in 0..3 {
            assert!(matches!(w.admit(t), Admit::Yes { suppressed_before: 0 }));
        }
        assert!(matches!(w.admit(t + 10), Admit::No));
        assert!(matches!(w.admit(t + 999), Admit::No));
        // The next second starts a new budget and reports the two suppressed.
        assert!(matches!(w.admit(t + 1000), Admit::Yes { suppressed_before: 2 }));
        assert!(matches!(w.admit(t + 1001), Admit::Yes { suppressed_before: 0 }));
    }
}
