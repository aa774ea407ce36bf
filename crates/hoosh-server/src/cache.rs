//! The exact-match response cache.
//!
//! Key: SHA-256 of the caller's scope (`cache.scope`: its key by default,
//! else its team, or everyone) and the request's JSON with the fields that
//! do not change the answer removed (`user`, `metadata`, `stream_options`),
//! plus whether it is a stream (a cached stream replays as a stream, chunk
//! by chunk). The scope keeps tenants apart: another key never gets an
//! answer — or a `hit` telling it someone sent that prompt — unless the
//! operator chose to share. Only
//! deterministic requests are cached — `temperature` 0 — unless the caller
//! opts in with `x-hoosh-cache: true`; `x-hoosh-cache: false`, or a key whose
//! metadata says `"cache": false`, bypasses it. Entries live `ttl_secs`; the
//! least recently used go first beyond `max_entries` or `max_bytes`.
//!
//! In a cluster (`[state] backend = "cluster"`) a second tier in Redis is
//! shared by every instance: a put is also sent there (with the same TTL),
//! and a local miss asks it ([`crate::cluster::Cluster::cache_get`]). Keys
//! are the same digests, so the scope holds across instances too. Answers
//! that carry a native body (an Anthropic passthrough) stay local: that
//! body is never serialized.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use futures_util::Stream;
use hoosh_core::ChunkStream;
use hoosh_core::config::{CacheConfig, CacheScope};
use hoosh_governance::Principal;
use hoosh_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse};
use sha2::{Digest, Sha256};

/// A cached answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Answer {
    Whole(ChatCompletionResponse),
    Stream(Vec<ChatCompletionChunk>),
}

struct Entry {
    answer: Arc<Answer>,
    stored: Instant,
    last_used: u64,
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<[u8; 32], Entry>,
    bytes: usize,
    tick: u64,
}

pub struct ResponseCache {
    cfg: CacheConfig,
    inner: Mutex<Inner>,
    /// Also stores each answer put here in the shared tier (cluster).
    shared_put: std::sync::OnceLock<SharedPut>,
}

/// Sends an answer to the shared tier: its key, its JSON, how long it lives.
pub type SharedPut = Box<dyn Fn([u8; 32], Vec<u8>, Duration) + Send + Sync>;

/// What the cache decided for a request (`x-hoosh-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Hit,
    Miss,
    Bypass,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Hit => "hit",
            Verdict::Miss => "miss",
            Verdict::Bypass => "bypass",
        }
    }
}

impl Answer {
    /// Whether it carries a client API's own body (never serialized).
    fn has_native(&self) -> bool {
        match self {
            Answer::Whole(r) => r.native.is_some(),
            Answer::Stream(chunks) => chunks.iter().any(|c| c.native.is_some()),
        }
    }
}

impl ResponseCache {
    pub fn new(cfg: CacheConfig) -> Self {
        ResponseCache { cfg, inner: Mutex::new(Inner::default()), shared_put: std::sync::OnceLock::new() }
    }

    /// The caller's choice in `x-hoosh-cache`: `Some(true)` opts a sampled
    /// request in, `Some(false)` bypasses the cache.
    pub fn directive(headers: &HeaderMap) -> Option<bool> {
        let v = headers.get("x-hoosh-cache")?.to_str().ok()?;
        if v.eq_ignore_ascii_case("true") {
            Some(true)
        } else if v.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    }

    /// The request's cache key, or `None` when it must not be cached.
    pub fn key(&self, req: &ChatCompletionRequest, directive: Option<bool>, principal: &Principal) -> Option<[u8; 32]> {
        if !self.cfg.enabled || req.n.is_some_and(|n| n > 1) {
            return None;
        }
        if directive == Some(false) || principal.record.metadata.get("cache") == Some(&false.into()) {
            return None;
        }
        let deterministic = req.temperature == Some(0.0);
        if !deterministic && directive != Some(true) {
            return None;
        }
        let mut canonical = req.clone();
        canonical.user = None;
        canonical.metadata = None;
        canonical.stream_options = None;
        let json = serde_json::to_vec(&canonical).ok()?;
        let scope = match self.cfg.scope {
            // A key without a team is its own team.
            CacheScope::Team if principal.record.team.is_some() => {
                format!("team:{}", principal.record.team.as_deref().unwrap_or_default())
            }
            CacheScope::Key | CacheScope::Team => format!("key:{}", principal.record.id),
            CacheScope::Global => String::new(),
        };
        let mut hash = Sha256::new();
        // Length-prefixed, so no scope can be spelled to collide with another's request.
        hash.update((scope.len() as u64).to_le_bytes());
        hash.update(scope.as_bytes());
        hash.update(&json);
        // A client's own body (see `hoosh_types::native`) may say more than
        // its canonical form (server tools, betas): it is part of the question.
        if let Some(native) = &req.native {
            hash.update(b"\0native");
            hash.update(serde_json::to_vec(&native.body).ok()?);
            for (name, value) in &native.headers {
                hash.update((name.len() as u64).to_le_bytes());
                hash.update(name.as_bytes());
                hash.update((value.len() as u64).to_le_bytes());
                hash.update(value.as_bytes());
            }
        }
        Some(hash.finalize().into())
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<Arc<Answer>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        let ttl = Duration::from_secs(self.cfg.ttl_secs);
        match inner.map.get_mut(key) {
            Some(e) if e.stored.elapsed() < ttl => {
                e.last_used = tick;
                Some(Arc::clone(&e.answer))
            }
            Some(_) => {
                if let Some(old) = inner.map.remove(key) {
                    inner.bytes -= old.bytes;
                }
                None
            }
            None => None,
        }
    }

    /// Stores `answer` here and, in a cluster, in the shared tier.
    pub fn put(&self, key: [u8; 32], answer: Answer) {
        if let Some(share) = self.shared_put.get()
            && !answer.has_native()
            && let Ok(json) = serde_json::to_vec(&answer)
        {
            // Its size here is the size of what is shared: serialized once.
            let bytes = json.len();
            if bytes <= self.cfg.max_bytes {
                share(key, json, Duration::from_secs(self.cfg.ttl_secs));
            }
            self.put_sized(key, answer, bytes);
            return;
        }
        self.put_local(key, answer);
    }

    /// Stores `answer` here only (one found in the shared tier, say).
    pub fn put_local(&self, key: [u8; 32], answer: Answer) {
        let bytes = match &answer {
            Answer::Whole(r) => serde_json::to_vec(r).map_or(0, |v| v.len()),
            Answer::Stream(chunks) => chunks.iter().map(|c| serde_json::to_vec(c).map_or(0, |v| v.len())).sum(),
        };
        self.put_sized(key, answer, bytes);
    }

    fn put_sized(&self, key: [u8; 32], answer: Answer, bytes: usize) {
        if bytes > self.cfg.max_bytes || self.cfg.max_entries == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let entry = Entry { answer: Arc::new(answer), stored: Instant::now(), last_used: inner.tick, bytes };
        if let Some(old) = inner.map.insert(key, entry) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.map.len() > self.cfg.max_entries || inner.bytes > self.cfg.max_bytes {
            let Some(oldest) = inner.map.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| *k) else { break };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes -= old.bytes;
            }
        }
    }

    /// Installs the shared tier's put (once).
    pub fn set_shared_put(&self, put: SharedPut) {
        let _ = self.shared_put.set(put);
    }

    /// Drops every answer past its TTL (housekeeping; lookups drop them too).
    pub fn prune_expired(&self) {
        let ttl = Duration::from_secs(self.cfg.ttl_secs);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut freed = 0;
        inner.map.retain(|_, e| {
            let keep = e.stored.elapsed() < ttl;
            if !keep {
                freed += e.bytes;
            }
            keep
        });
        inner.bytes -= freed;
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `stream`, storing its chunks once it ends cleanly.
    pub fn record_stream(self: &Arc<Self>, key: [u8; 32], stream: ChunkStream) -> ChunkStream {
        Box::pin(Recording { inner: stream, cache: Arc::clone(self), key, chunks: Some(Vec::new()) })
    }
}

struct Recording {
    inner: ChunkStream,
    cache: Arc<ResponseCache>,
    key: [u8; 32],
    /// `None` once the stream failed: a broken answer is not cached.
    chunks: Option<Vec<ChatCompletionChunk>>,
}

impl Stream for Recording {
    type Item = <ChunkStream as Stream>::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.as_mut().poll_next(cx);
        match &next {
            std::task::Poll::Ready(Some(Ok(chunk))) => {
                if let Some(c) = this.chunks.as_mut() {
                    c.push(chunk.clone());
                }
            }
            std::task::Poll::Ready(Some(Err(_))) => this.chunks = None,
            std::task::Poll::Ready(None) => {
                if let Some(chunks) = this.chunks.take() {
                    this.cache.put(this.key, Answer::Stream(chunks));
                }
            }
            std::task::Poll::Pending => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_types::openai::{ChatMessage, Role};

    fn cache(max_entries: usize) -> ResponseCache {
        ResponseCache::new(CacheConfig {
            enabled: true,
            ttl_secs: 60,
            max_entries,
            max_bytes: 1 << 20,
            scope: CacheScope::Key,
        })
    }

    fn principal(metadata: serde_json::Value) -> Principal {
        let mut p = Principal::master(0);
        p.record.metadata = metadata.as_object().cloned().unwrap_or_default();
        p
    }

    fn req(temperature: Option<f64>, user: Option<&str>) -> ChatCompletionRequest {
        ChatCompletionRequest {
            model: "m".into(),
            messages: vec![ChatMessage::text(Role::User, "hi")],
            temperature,
            user: user.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn only_deterministic_or_opted_in_requests_have_a_key() {
        let c = cache(10);
        let p = principal(serde_json::json!({}));
        assert!(c.key(&req(Some(0.0), None), None, &p).is_some());
        assert!(c.key(&req(None, None), None, &p).is_none(), "default temperature samples");
        let mut opt_in = HeaderMap::new();
        opt_in.insert("x-hoosh-cache", "TRUE".parse().unwrap());
        assert!(c.key(&req(Some(0.7), None), ResponseCache::directive(&opt_in), &p).is_some());
        let mut opt_out = HeaderMap::new();
        opt_out.insert("x-hoosh-cache", "false".parse().unwrap());
        assert!(c.key(&req(Some(0.0), None), ResponseCache::directive(&opt_out), &p).is_none());
        assert!(c.key(&req(Some(0.0), None), None, &principal(serde_json::json!({"cache": false}))).is_none());
        assert_eq!(
            c.key(&req(Some(0.0), Some("a")), None, &p),
            c.key(&req(Some(0.0), Some("b")), None, &p),
            "`user` does not change the answer"
        );
        let mut streamed = req(Some(0.0), None);
        streamed.stream = true;
        assert_ne!(c.key(&streamed, None, &p), c.key(&req(Some(0.0), None), None, &p));
    }

    /// Two Messages requests whose canonical forms are equal but whose
    /// bodies are not (a server tool only Anthropic runs, a beta) are two
    /// questions: the second must not get the first's cached answer.
    #[test]
    fn a_native_body_is_part_of_the_key() {
        use hoosh_types::native::{NativeApi, NativeRequest};
        let c = cache(10);
        let p = principal(serde_json::json!({}));
        let with = |body: serde_json::Value, beta: &str| {
            let mut r = req(Some(0.0), None);
            r.native = Some(std::sync::Arc::new(NativeRequest {
                api: NativeApi::AnthropicMessages,
                body: body.as_object().cloned().unwrap(),
                headers: vec![("anthropic-beta".into(), beta.into())],
            }));
            c.key(&r, None, &p)
        };
        let plain = with(serde_json::json!({"max_tokens": 5}), "a");
        assert_ne!(plain, with(serde_json::json!({"max_tokens": 5, "tools": [{"type": "web_search_20250305"}]}), "a"));
        assert_ne!(plain, with(serde_json::json!({"max_tokens": 5}), "b"));
        assert_eq!(plain, with(serde_json::json!({"max_tokens": 5}), "a"));
        assert_ne!(plain, c.key(&req(Some(0.0), None), None, &p));
    }

    fn keyed(id: &str, team: Option<&str>) -> Principal {
        let mut p = principal(serde_json::json!({}));
        p.record.id = id.into();
        p.record.team = team.map(str::to_owned);
        p
    }

    #[test]
    fn scopes_keep_tenants_apart_unless_the_operator_shares() {
        let (a, b, c) = (keyed("key_a", Some("red")), keyed("key_b", Some("red")), keyed("key_c", None));
        let q = req(Some(0.0), None);
        let with = |scope| {
            ResponseCache::new(CacheConfig { enabled: true, ttl_secs: 60, max_entries: 10, max_bytes: 1 << 20, scope })
        };
        let per_key = with(CacheScope::Key);
        assert_ne!(per_key.key(&q, None, &a), per_key.key(&q, None, &b), "two keys never share by default");
        let per_team = with(CacheScope::Team);
        assert_eq!(per_team.key(&q, None, &a), per_team.key(&q, None, &b), "one team shares");
        assert_ne!(per_team.key(&q, None, &a), per_team.key(&q, None, &c), "a key without a team is alone");
        let global = with(CacheScope::Global);
        assert_eq!(global.key(&q, None, &a), global.key(&q, None, &c));
    }

    #[test]
    fn least_recently_used_go_first_at_the_entry_limit() {
        let c = cache(2);
        let answer = || Answer::Stream(Vec::new());
        c.put([1; 32], answer());
        c.put([2; 32], answer());
        assert!(c.get(&[1; 32]).is_some()); // 1 is now the most recent
        c.put([3; 32], answer());
        assert_eq!(c.len(), 2, "exactly at the limit");
        assert!(c.get(&[2; 32]).is_none(), "the least recently used went");
        assert!(c.get(&[1; 32]).is_some() && c.get(&[3; 32]).is_some());
    }

    #[test]
    fn the_byte_limit_holds_at_its_edge_and_entries_expire() {
        let resp = || {
            Answer::Whole(ChatCompletionResponse {
                native: None,
                id: "x".into(),
                object: "chat.completion".into(),
                created: 0,
                model: "m".into(),
                choices: Vec::new(),
                usage: None,
                system_fingerprint: None,
            })
        };
        let size = match resp() {
            Answer::Whole(r) => serde_json::to_vec(&r).unwrap().len(),
            Answer::Stream(_) => unreachable!(),
        };
        let with = |max_bytes, ttl_secs| {
            ResponseCache::new(CacheConfig {
                enabled: true,
                ttl_secs,
                max_entries: 10,
                max_bytes,
                scope: CacheScope::Key,
            })
        };
        let exact = with(2 * size, 60);
        exact.put([1; 32], resp());
        exact.put([2; 32], resp());
        assert_eq!(exact.len(), 2, "two answers fit exactly");
        let short = with(2 * size - 1, 60);
        short.put([1; 32], resp());
        short.put([2; 32], resp());
        assert_eq!(short.len(), 1, "one byte short: the older answer goes");
        assert!(short.get(&[2; 32]).is_some());
        let expired = with(2 * size, 0);
        expired.put([1; 32], resp());
        assert!(expired.get(&[1; 32]).is_none(), "a zero TTL serves nothing");
        assert!(expired.is_empty(), "the expired entry is dropped");
        // Answers nobody asks for again go too, and their bytes with them.
        expired.put([2; 32], resp());
        expired.put([3; 32], resp());
        exact.prune_expired();
        expired.prune_expired();
        assert_eq!((exact.len(), expired.len()), (2, 0), "only expired answers are pruned");
        expired.put([4; 32], resp());
        expired.put([5; 32], resp());
        assert_eq!(expired.len(), 2, "the freed bytes are free again");
    }
}
