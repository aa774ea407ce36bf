//! The gateway's side of the audit chain: `[audit]` config → an open
//! [`AuditLog`] — in `<data_dir>/audit.db`, or in a cluster the one chain
//! all instances share in PostgreSQL ([`ChainHome`]) — and one method per
//! kind of event.
//!
//! | kind | recorded by | from |
//! |---|---|---|
//! | `inference` | the ledger writer thread (a [`hoosh_governance::LedgerTap`]) | every finished request: its ledger row, 499s included |
//! | `inference.denied` | [`crate::pipeline`] | an admission refused (model not allowed, rate, concurrency, budget) |
//! | `inference.content` | [`crate::pipeline`] | the request's messages, only with `include_content = true` |
//! | `auth.failure` | [`crate::auth`] | a 401: at most `max_auth_failures_per_source_per_min` per client and `max_auth_failures_per_sec` in all; the rest counted into one `auth.failure.suppressed` a minute |
//! | `key.*`, `team.*`, `budget.set`, `audit.prune` | [`admin_actions`] | every admin API call that changes something; refused ones without their body |
//! | `config.reload` | [`crate::reload`] | every reload, by SIGHUP or the API, applied or refused |
//! | `chain.*` | [`hoosh_audit::AuditLog`] | start, stop, rotation, pruning |
//!
//! Nothing here blocks a request: [`AuditLog::record`] only enqueues, and
//! never drops; [`Audit::overloaded`] tells the edge to refuse new requests
//! while the backlog is at `audit.max_backlog`. Entries carry ids, models,
//! token counts, costs and statuses, never a key's plaintext (a presented
//! credential only as a keyed tag) and never prompt text unless the operator
//! opts in. What a client controls is capped: a recorded path at
//! [`MAX_RECORDED_PATH`] bytes, an admin body at [`MAX_RECORDED_BODY`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hoosh_audit::{AuditKey, AuditLog, AuditOptions, AuditStore, ChainStore, Draft, Durability, KeySource, Report};
use hoosh_core::config::{AuditConfig, AuditDurability};
use hoosh_governance::{Principal, Scope, UsageRecord};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// File name of the chain inside the data directory.
pub const AUDIT_DB_FILE: &str = "audit.db";
/// Most bytes of a request path recorded (longer ones are cut on a character
/// boundary and marked `path_truncated`, with `path_bytes`).
pub const MAX_RECORDED_PATH: usize = 256;
/// Most bytes of a request method recorded (methods are client-chosen tokens).
pub const MAX_RECORDED_METHOD: usize = 32;
/// Largest admin request body recorded; a larger one is recorded by size and SHA-256.
pub const MAX_RECORDED_BODY: usize = 16 * 1024;
/// Deepest admin body recorded as JSON; a deeper one is recorded by size and SHA-256.
pub const MAX_RECORDED_BODY_DEPTH: usize = 32;

/// The chain as the server holds it; `Audit::disabled()` records nothing.
pub struct Audit {
    log: Option<Arc<AuditLog>>,
    /// Every key that may have signed entries (current first), for verification.
    keys: Vec<AuditKey>,
    include_content: bool,
    auth_failures: FailureLimiter,
    /// `audit.db`; `None` for the cluster's chain.
    db_path: Option<PathBuf>,
    /// `audit.lock`, exclusively locked while this process writes the chain
    /// (released when the file is closed, also by a crash).
    _writer_lock: Option<std::fs::File>,
    /// `hoosh serve --instance-id`, written into every entry the gateway records.
    instance: Option<Arc<str>>,
}

/// `draft` with `data.instance` set (when this process has a name).
fn stamp(mut draft: Draft, instance: Option<&str>) -> Draft {
    if let Some(id) = instance {
        draft.data.insert("instance".into(), serde_json::Value::String(id.to_owned()));
    }
    draft
}

/// The lock file beside `audit.db`: one writer per chain.
pub const AUDIT_LOCK_FILE: &str = "audit.lock";
/// In a cluster, the entries PostgreSQL could not take yet (in the data directory).
pub const AUDIT_SPILL_FILE: &str = "audit-spill.jsonl";

/// Where the chain is kept.
#[derive(Debug, Clone, Copy)]
pub enum ChainHome<'a> {
    /// `<data_dir>/audit.db`, this process its only writer.
    File,
    /// The one chain every instance of a cluster appends to, in PostgreSQL;
    /// the data directory keeps what waits for it ([`AUDIT_SPILL_FILE`]).
    Cluster { postgres_url: &'a str, instance: &'a str },
}

/// Takes the chain's writer lock in `data_dir`, or says who to blame. Two
/// processes appending to one chain would each assign the same sequence
/// numbers; the second start is refused instead.
fn writer_lock(data_dir: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(AUDIT_LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another hoosh process is writing the audit chain in {}: give each instance its own data directory \
             (HOOSH_DATA_DIR, governance.data_dir), or stop the other one",
            data_dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// A cluster's instances sign one chain, so its key must be given to each
/// (never generated by one of them): `HOOSH_AUDIT_KEY` or `audit.key_file`.
fn shared_key(cfg: &AuditConfig) -> Result<(AuditKey, KeySource), String> {
    if let Some(key) = AuditKey::from_env().map_err(|e| e.to_string())? {
        return Ok((key, KeySource::Env));
    }
    match cfg.key_file.as_deref() {
        Some(path) => Ok((AuditKey::from_file(path).map_err(|e| e.to_string())?, KeySource::File(path.to_path_buf()))),
        None => Err("in a cluster every instance signs the one audit chain and needs its key: set HOOSH_AUDIT_KEY \
                     or audit.key_file (the same on every instance)"
            .into()),
    }
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
            auth_failures: FailureLimiter::new(0, 0),
            db_path: None,
            _writer_lock: None,
            instance: None,
        }
    }

    /// Names this instance in every entry it records (`data.instance`).
    pub fn with_instance(mut self, instance: &str) -> Audit {
        self.instance = Some(Arc::from(instance));
        self
    }

    /// Opens (or resumes) the chain at `home`. When the stored chain ends
    /// under one of `previous_key_files` and the current key differs, writes
    /// a `chain.rotate` entry signed by the old key first. When it ends under
    /// a key not given, one gateway's chain continues with an unsigned
    /// `chain.key_changed` (see [`hoosh_audit::epoch`]); a cluster's is not
    /// opened at all — every other instance still signs with the chain's key,
    /// so a second key would break it for all of them.
    pub fn open(cfg: &AuditConfig, data_dir: &Path, home: ChainHome<'_>) -> Result<Audit, String> {
        if !cfg.enabled {
            return Ok(Audit::disabled());
        }
        if cfg.max_backlog == 0 {
            return Err("audit.max_backlog must be at least 1".into());
        }
        hoosh_governance::ensure_private_dir(data_dir).map_err(|e| format!("data directory: {e}"))?;
        let lock = writer_lock(data_dir)?;
        let (key, source) = match home {
            ChainHome::File => AuditKey::resolve(cfg.key_file.as_deref(), data_dir).map_err(|e| e.to_string())?,
            ChainHome::Cluster { .. } => shared_key(cfg)?,
        };
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
        let (store, db_path): (Arc<dyn ChainStore>, _) = match home {
            ChainHome::File => {
                let path = data_dir.join(AUDIT_DB_FILE);
                let durability = match cfg.durability {
                    AuditDurability::Normal => Durability::Normal,
                    AuditDurability::Full => Durability::Full,
                };
                let store = AuditStore::open_with(&path, durability)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                (Arc::new(store), Some(path))
            }
            ChainHome::Cluster { postgres_url, instance } => {
                let spill = data_dir.join(AUDIT_SPILL_FILE);
                let ring = std::iter::once(&key).chain(&previous).cloned().collect();
                let store = hoosh_cluster::PgAuditStore::open(postgres_url, spill, instance, ring)
                    .map_err(|e| format!("the cluster's chain in PostgreSQL: {e}"))?;
                (store, None)
            }
        };
        // The key in force at the head: a rotation there has handed over already.
        let head_key = store.head().map_err(|e| e.to_string())?.map(|h| hoosh_audit::epoch::key_after(&h).to_owned());
        let options = AuditOptions {
            checkpoint_every: cfg.checkpoint_every,
            max_backlog: cfg.max_backlog,
            ..AuditOptions::default()
        };
        let clock = hoosh_audit::system_clock();
        let log = match head_key.as_deref() {
            Some(id) if id != key.id() => match previous.iter().find(|k| k.id() == id) {
                Some(old) => {
                    let log = AuditLog::open_with(store, old.clone(), clock, options).map_err(|e| e.to_string())?;
                    log.rotate(key.clone()).map_err(|e| e.to_string())?;
                    log
                }
                None if matches!(home, ChainHome::Cluster { .. }) => {
                    return Err(format!(
                        "the cluster's audit chain is signed by key {id}, and this instance's key is {}: give every \
                         instance the same key (HOOSH_AUDIT_KEY or audit.key_file); to rotate, give one the new key \
                         with the old one in audit.previous_key_files, then the others the new key",
                        key.id()
                    ));
                }
                None => {
                    tracing::warn!(
                        stored_key_id = id,
                        key_id = key.id(),
                        "audit: the stored chain was signed by another key, not in audit.previous_key_files; \
                         continuing under the new key with an unsigned chain.key_changed (verification needs both \
                         keys and reports the change)"
                    );
                    AuditLog::open_with(store, key.clone(), clock, options).map_err(|e| e.to_string())?
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
            auth_failures: FailureLimiter::new(cfg.max_auth_failures_per_sec, cfg.max_auth_failures_per_source_per_min),
            db_path,
            _writer_lock: Some(lock),
            instance: None,
        })
    }

    /// `audit.db`, when the chain is this gateway's own file.
    pub fn db_path(&self) -> Option<&Path> {
        self.db_path.as_deref()
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
            log.record(stamp(draft, self.instance.as_deref()));
        }
    }

    /// Drafts waiting for the writer (0 when disabled).
    pub fn queue_depth(&self) -> u64 {
        self.log.as_ref().map_or(0, |l| l.queue_depth())
    }

    /// The writer's backlog is at `audit.max_backlog`: refuse new requests
    /// (503, `Retry-After`) rather than queue more — entries are never dropped.
    pub fn overloaded(&self) -> bool {
        self.log.as_ref().is_some_and(|l| l.overloaded())
    }

    /// The tap the ledger writer calls with each batch, before writing it:
    /// one `inference` entry per row. With `wake`, the audit writer is woken
    /// for them at once, so they commit while the ledger commits its rows —
    /// for answers that wait for both — instead of at its next poll.
    pub fn ledger_tap(&self, wake: bool) -> Option<hoosh_governance::LedgerTap> {
        let log = Arc::clone(self.log.as_ref()?);
        let instance = self.instance.clone();
        Some(Box::new(move |rows: &[UsageRecord]| {
            for row in rows {
                log.record(stamp(inference(row), instance.as_deref()));
            }
            if wake {
                log.wake();
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

    /// A request refused with 401, from `client` (the peer address),
    /// having presented `credential` (if anything). Recorded within the
    /// per-source and global limits, else counted into the minute's
    /// `auth.failure.suppressed` summary; the credential only as
    /// [`hoosh_audit::AuditKey::credential_tag`], the path capped.
    pub fn auth_failure(
        &self,
        now_ms: i64,
        code: &str,
        method: &Method,
        path: &str,
        client: Option<IpAddr>,
        credential: Option<&str>,
    ) {
        if self.log.is_none() {
            return;
        }
        let (admitted, summary) = self.auth_failures.admit(now_ms, Source::of(client));
        if let Some(summary) = summary {
            self.record(summary);
        }
        if !admitted {
            return;
        }
        let mut d = Draft::new("auth.failure").field("code", code);
        d = capped_field(d, "method", method.as_str(), MAX_RECORDED_METHOD);
        d = capped_field(d, "path", path, MAX_RECORDED_PATH);
        if let Some(ip) = client {
            d = d.field("client", ip.to_string());
        }
        if let Some(c) = credential.filter(|c| !c.is_empty())
            && let Some(key) = self.keys.first()
        {
            d = d.field("credential_tag", key.credential_tag(c.as_bytes()));
        }
        self.record(d);
    }

    /// Verifies the stored chain (blocking: run it off the async workers).
    pub fn verify(&self) -> Option<Result<Report, String>> {
        let log = self.log.as_ref()?;
        // Everything recorded so far is part of what gets verified.
        log.flush();
        let checkpoint = log.store().latest_checkpoint().ok().flatten();
        Some(
            hoosh_audit::verify_store(log.store().as_ref(), &self.keys, checkpoint.as_ref()).map_err(|e| e.to_string()),
        )
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

    /// Writes the pending `auth.failure.suppressed` summary, `chain.stop`
    /// and a checkpoint, flushes (shutdown).
    pub fn close(&self) {
        if let Some(log) = &self.log {
            if let Some(summary) = self.auth_failures.take_summary() {
                log.record(summary);
            }
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

/// `field` = `text` cut to `max` bytes (on a character boundary); a cut one
/// also gets `{field}_truncated: true` and `{field}_bytes`, its real length.
fn capped_field(d: Draft, field: &str, text: &str, max: usize) -> Draft {
    if text.len() <= max {
        return d.field(field, text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    d.field(field, &text[..end]).field(format!("{field}_truncated"), true).field(format!("{field}_bytes"), text.len())
}

/// Whom an auth failure is charged to: an IPv4 address, or the /64 an IPv6
/// address is in (one host is commonly handed a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(Ipv4Addr),
    V6Net(u64),
    /// No peer address (a request not from a socket).
    Unknown,
    /// Sources beyond [`MAX_SOURCES`] in one window share this budget.
    Other,
}

impl Source {
    fn of(ip: Option<IpAddr>) -> Source {
        match ip {
            Some(IpAddr::V4(a)) => Source::V4(a),
            Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4),
                None => Source::V6Net((u128::from(a) >> 64) as u64),
            },
            None => Source::Unknown,
        }
    }

    fn label(&self) -> String {
        match self {
            Source::V4(a) => a.to_string(),
            Source::V6Net(net) => format!("{}/64", Ipv6Addr::from(u128::from(*net) << 64)),
            Source::Unknown => "unknown".into(),
            Source::Other => "other".into(),
        }
    }
}

/// One summary covers this long, aligned to the clock.
const WINDOW_MS: i64 = 60_000;
/// Sources counted apart in one window; the map never grows beyond this (+1).
const MAX_SOURCES: usize = 4096;
/// Sources named in a summary, most suppressed first.
const TOP_SOURCES: usize = 10;

/// Which auth failures become entries: per source per minute, and in all
/// per second. What goes over is counted, and reported as one
/// `auth.failure.suppressed` entry when the minute is over (at the first
/// failure after it, or at shutdown).
struct FailureLimiter {
    per_sec: u32,
    per_source_per_min: u32,
    windows: Mutex<FailureWindows>,
}

#[derive(Default)]
struct FailureWindows {
    /// The minute (unix ms / 60 000) the counts below belong to.
    minute: i64,
    second: i64,
    recorded_this_second: u32,
    sources: HashMap<Source, SourceCount>,
    suppressed: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct SourceCount {
    recorded: u32,
    suppressed: u32,
}

impl FailureLimiter {
    fn new(per_sec: u32, per_source_per_min: u32) -> FailureLimiter {
        FailureLimiter { per_sec, per_source_per_min, windows: Mutex::new(FailureWindows::default()) }
    }

    /// Whether this failure is recorded, and the summary of a minute that just ended, if any.
    fn admit(&self, now_ms: i64, source: Source) -> (bool, Option<Draft>) {
        let mut w = self.windows.lock();
        let minute = now_ms.div_euclid(WINDOW_MS);
        let summary = if minute != w.minute {
            let summary = w.summary();
            *w = FailureWindows { minute, ..FailureWindows::default() };
            summary
        } else {
            None
        };
        let second = now_ms.div_euclid(1000);
        if second != w.second {
            w.second = second;
            w.recorded_this_second = 0;
        }
        let source =
            if w.sources.len() >= MAX_SOURCES && !w.sources.contains_key(&source) { Source::Other } else { source };
        let over_second = w.recorded_this_second >= self.per_sec;
        let count = w.sources.entry(source).or_default();
        if count.recorded >= self.per_source_per_min || over_second {
            count.suppressed = count.suppressed.saturating_add(1);
            w.suppressed += 1;
            return (false, summary);
        }
        count.recorded += 1;
        w.recorded_this_second += 1;
        (true, summary)
    }

    /// The current minute's summary, resetting its count (shutdown).
    fn take_summary(&self) -> Option<Draft> {
        let mut w = self.windows.lock();
        let summary = w.summary();
        w.suppressed = 0;
        w.sources.values_mut().for_each(|c| c.suppressed = 0);
        summary
    }

    #[cfg(test)]
    fn tracked_sources(&self) -> usize {
        self.windows.lock().sources.len()
    }
}

impl FailureWindows {
    fn summary(&self) -> Option<Draft> {
        if self.suppressed == 0 {
            return None;
        }
        let mut top: Vec<(Source, u32)> =
            self.sources.iter().filter(|(_, c)| c.suppressed > 0).map(|(s, c)| (*s, c.suppressed)).collect();
        let sources = top.len();
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.label().cmp(&b.0.label())));
        top.truncate(TOP_SOURCES);
        let top: Vec<Value> = top.into_iter().map(|(s, n)| json!({"source": s.label(), "count": n})).collect();
        Some(
            Draft::new("auth.failure.suppressed")
                .field("window_start_ms", self.minute * WINDOW_MS)
                .field("window_ms", WINDOW_MS)
                .field("count", self.suppressed)
                .field("sources", sources)
                .field("top", top),
        )
    }
}

/// Middleware on the admin API: every call that changes something (any
/// method but GET/HEAD/OPTIONS) becomes an entry named after the resource and
/// verb, with the caller, the status and — for a caller holding the `admin`
/// scope — the request body (admin bodies hold no secrets: a key's plaintext
/// only ever appears in a response), up to [`MAX_RECORDED_BODY`] bytes. A
/// caller without the scope is refused by the handler from the request head;
/// its call is recorded without the body, which is never read here.
pub async fn admin_actions(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !st.audit.enabled() || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    // A reload records its own, more detailed, entry.
    let Some(kind) = admin_kind(req.method(), req.uri().path()) else { return next.run(req).await };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let principal = req.extensions().get::<Arc<Principal>>().cloned();
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut d = Draft::new(kind);
    d = capped_field(d, "method", method.as_str(), MAX_RECORDED_METHOD);
    d = capped_field(d, "path", &path, MAX_RECORDED_PATH);
    if let Some(p) = &principal {
        d = d.actor(p.record.id.as_str());
    }
    let authorized = !st.gov.is_open() && principal.is_some_and(|p| p.has_scope(Scope::Admin));
    let response = if authorized {
        let limit = st.live().config.server.body_limit_bytes;
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(b) => b,
            Err(_) => return crate::ApiError::PayloadTooLarge.into_response(),
        };
        d = with_body(d, &bytes);
        next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
    } else {
        next.run(req).await
    };
    d = d.field("status", response.status().as_u16());
    st.audit.record(with_request_id(d, &request_id));
    response
}

/// The admin body as recorded: the JSON itself when it is small and shallow,
/// `{"unparsed_bytes": n}` when it is not JSON, else its size and SHA-256.
fn with_body(d: Draft, bytes: &[u8]) -> Draft {
    if bytes.is_empty() {
        return d;
    }
    let omitted = |d: Draft, why: &str| {
        d.field("body_omitted", why)
            .field("body_bytes", bytes.len())
            .field("body_sha256", hoosh_audit::hex::encode(&Sha256::digest(bytes)))
    };
    if bytes.len() > MAX_RECORDED_BODY {
        return omitted(d, "too_large");
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) if hoosh_audit::chain::nesting_depth(&v) > MAX_RECORDED_BODY_DEPTH => omitted(d, "too_deep"),
        Ok(v) => d.field("body", v),
        Err(_) => d.field("body", json!({ "unparsed_bytes": bytes.len() })),
    }
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

    /// A second writer on one chain is refused at start, with the fix in
    /// the message; once the first is gone the chain opens again.
    #[test]
    fn one_chain_has_one_writer() {
        let dir = std::env::temp_dir().join(format!("hoosh-audit-lock-{}", uuid::Uuid::new_v4().simple()));
        let cfg = AuditConfig { key_file: None, ..AuditConfig::default() };
        let first = Audit::open(&cfg, &dir, ChainHome::File).unwrap();
        let err = Audit::open(&cfg, &dir, ChainHome::File).unwrap_err();
        assert!(err.contains("another hoosh process is writing the audit chain"), "{err}");
        first.close();
        drop(first);
        let again = Audit::open(&cfg, &dir, ChainHome::File).unwrap();
        again.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    const T: i64 = 1_700_000_040_000; // the start of a minute

    fn v4(n: u32) -> Source {
        Source::of(Some(IpAddr::V4(Ipv4Addr::from(n))))
    }

    fn data(d: &Draft) -> Value {
        Value::Object(d.data.clone())
    }

    #[test]
    fn one_source_gets_its_budget_a_minute_and_the_rest_is_summarised() {
        let l = FailureLimiter::new(1000, 3);
        let (a, b) = (v4(0x0a00_0001), v4(0x0a00_0002));
        for i in 0..3 {
            assert!(l.admit(T + i, a).0);
        }
        for i in 3..50 {
            assert_eq!(l.admit(T + i, a), (false, None), "over its budget, counted");
        }
        assert!(l.admit(T + 60, b).0, "another source is not crowded out");
        // The next minute: a fresh budget, and one summary of the last.
        let (admitted, summary) = l.admit(T + WINDOW_MS, a);
        assert!(admitted);
        let summary = summary.expect("the minute's summary");
        assert_eq!(summary.kind, "auth.failure.suppressed");
        assert_eq!(
            data(&summary),
            json!({"window_start_ms": T, "window_ms": 60_000, "count": 47, "sources": 1,
                   "top": [{"source": "10.0.0.1", "count": 47}]})
        );
        assert_eq!(l.admit(T + WINDOW_MS + 1, a).1.map(|d| d.kind), None, "reported once");
    }

    #[test]
    fn all_sources_together_get_the_per_second_budget() {
        let l = FailureLimiter::new(2, 100);
        assert!(l.admit(T, v4(1)).0);
        assert!(l.admit(T + 1, v4(2)).0);
        assert!(!l.admit(T + 999, v4(3)).0);
        assert!(l.admit(T + 1000, v4(3)).0, "the next second has room again");
        let summary = l.take_summary().unwrap();
        assert_eq!(data(&summary)["count"], 1);
        assert!(l.take_summary().is_none(), "taken once");
    }

    #[test]
    fn a_spray_of_sources_keeps_the_map_bounded_and_shares_one_budget_beyond_it() {
        let l = FailureLimiter::new(u32::MAX, 1);
        let n = 3 * MAX_SOURCES as u32;
        let admitted = (0..n).filter(|i| l.admit(T + i64::from(*i % 1000), v4(*i)).0).count();
        assert_eq!(l.tracked_sources(), MAX_SOURCES + 1, "the cap plus the shared `other`");
        assert_eq!(admitted, MAX_SOURCES + 1, "one each, then one for all the rest together");
        let (_, summary) = l.admit(T + WINDOW_MS, v4(1));
        let summary = data(&summary.unwrap());
        assert_eq!(summary["count"], u64::from(n) - (MAX_SOURCES as u64 + 1));
        assert_eq!(summary["top"][0]["source"], "other");
        assert_eq!(l.tracked_sources(), 1, "a new minute starts from an empty map");
    }

    #[test]
    fn an_ipv6_64_is_one_source_and_a_mapped_ipv4_is_its_ipv4() {
        let ip = |s: &str| Source::of(Some(s.parse().unwrap()));
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(ip("2001:db8:1:2::1").label(), "2001:db8:1:2::/64");
        assert_eq!(Source::of(None).label(), "unknown");
        let l = FailureLimiter::new(1000, 2);
        assert!(l.admit(T, ip("2001:db8::1")).0 && l.admit(T, ip("2001:db8::2")).0);
        assert!(!l.admit(T, ip("2001:db8::3")).0, "rotating addresses inside a /64 does not buy a new budget");
    }

    #[test]
    fn a_recorded_path_is_capped_on_a_character_boundary() {
        let long = "é".repeat(32 * 1024); // 64 KiB, two bytes a character
        let d = data(&capped_field(Draft::new("x"), "path", &format!("/{long}"), MAX_RECORDED_PATH));
        let kept = d["path"].as_str().unwrap();
        assert!(kept.len() <= MAX_RECORDED_PATH && kept.len() >= MAX_RECORDED_PATH - 1, "{}", kept.len());
        assert_eq!((d["path_truncated"].clone(), d["path_bytes"].clone()), (json!(true), json!(64 * 1024 + 1)));
        let d = data(&capped_field(Draft::new("x"), "path", "/v1/models", MAX_RECORDED_PATH));
        assert_eq!(d, json!({"path": "/v1/models"}), "a short path is untouched and unmarked");
    }

    #[test]
    fn an_admin_body_is_recorded_only_when_small_shallow_json() {
        let body = |bytes: &[u8]| data(&with_body(Draft::new("x"), bytes));
        assert_eq!(body(br#"{"name":"alice"}"#), json!({"body": {"name": "alice"}}));
        assert_eq!(body(b""), json!({}));
        assert_eq!(body(b"not json"), json!({"body": {"unparsed_bytes": 8}}));
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(MAX_RECORDED_BODY));
        let d = body(big.as_bytes());
        assert_eq!((d["body_omitted"].as_str(), d["body_bytes"].as_u64()), (Some("too_large"), Some(big.len() as u64)));
        assert_eq!(d["body_sha256"], hoosh_audit::hex::encode(&Sha256::digest(big.as_bytes())));
        assert!(d.get("body").is_none());
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(body(deep.as_bytes())["body_omitted"], "too_deep");
    }
}
