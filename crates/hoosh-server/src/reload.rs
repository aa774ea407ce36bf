//! Hot reload: `SIGHUP` or `POST /admin/reload` reads the config again and,
//! if all of it is valid, applies it without a restart; otherwise nothing
//! changes and the reason is returned (and logged).
//!
//! Applied live: providers (a provider whose settings did not change keeps
//! its health, circuit and latency stats), model aliases, routing strategy
//! and retries, prices, health probing, keys, teams, the admin key, the
//! global budget and model/provider limits, `public_paths`,
//! `default_max_tokens`, `free_models_exempt`. Requests already running
//! finish on the config they started with.
//!
//! Needs a restart (reported in `restart_required`, old values kept):
//! `[server]` (listener, body limit, CORS), `[local]` (in-process models),
//! `[cache]`, `[audit]`, `[telemetry]`, `governance.data_dir` / `in_memory`.
//!
//! Every attempt, applied or refused, is a `config.reload` audit entry.

use std::collections::HashMap;
use std::sync::Arc;

use hoosh_audit::Draft;
use hoosh_core::Placement;
use hoosh_core::config::Config;
use hoosh_core::router::ProviderEntry;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::{AppState, Live};

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub generation: u64,
    /// Top-level sections whose settings changed and now apply.
    pub applied: Vec<&'static str>,
    /// Sections that changed but only take effect after a restart.
    pub restart_required: Vec<&'static str>,
    pub providers_added: Vec<String>,
    pub providers_removed: Vec<String>,
    /// Providers rebuilt with changed settings (their stats start over).
    pub providers_changed: Vec<String>,
}

/// Reads the config again and applies it, or changes nothing and says why.
/// `trigger` (`sighup`, `api`) and `actor` go into the audit entry.
pub async fn reload(st: &AppState, trigger: &str, actor: Option<&str>) -> Result<ReloadReport, String> {
    let _one_at_a_time = st.reload_lock.lock().await;
    let result = apply(st).await;
    let mut d = Draft::new("config.reload").field("trigger", trigger);
    if let Some(a) = actor {
        d = d.actor(a);
    }
    match &result {
        Ok(r) => {
            tracing::info!(generation = r.generation, applied = ?r.applied, restart_required = ?r.restart_required,
                added = ?r.providers_added, removed = ?r.providers_removed, "config reloaded");
            d = d.field("ok", true).field("report", serde_json::to_value(r).unwrap_or_default());
        }
        Err(e) => {
            tracing::error!(error = %e, "config reload refused; the running config stays");
            d = d.field("ok", false).field("error", e.as_str());
        }
    }
    st.audit.record(d);
    // One operator's reload is every instance's (they read their own files).
    if let Some(cluster) = st.gov.cluster()
        && result.is_ok()
        && trigger != CLUSTER_TRIGGER
    {
        cluster.bus.publish(hoosh_cluster::Event::ReloadConfig).await;
    }
    result
}

/// The `trigger` of a reload another instance of the cluster asked for.
pub const CLUSTER_TRIGGER: &str = "cluster";

/// Reloads whenever another instance of the cluster reloaded (until `cancel`).
pub fn spawn_on_cluster_request(st: &AppState, tracker: &TaskTracker, cancel: CancellationToken) {
    let Some(cluster) = st.gov.cluster() else { return };
    let (st, asked) = (st.clone(), Arc::clone(&cluster.reload_requested));
    tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = asked.notified() => {}
            }
            tracing::info!("another instance reloaded its config; reloading");
            let _ = reload(&st, CLUSTER_TRIGGER, None).await;
        }
    });
}

async fn apply(st: &AppState) -> Result<ReloadReport, String> {
    let source = st.config_source.clone().ok_or("this gateway was started without a config source to reload")?;
    let mut new = tokio::task::spawn_blocking(move || source())
        .await
        .map_err(|e| format!("reading the config failed: {e}"))??;
    let resolved = new.validate().map_err(|e| e.to_string())?;
    let old = st.live();
    let restart_required = keep_restart_only_sections(&old.config, &mut new);
    let applied = changed_sections(&old.config, &new);
    let (entries, added, removed, changed) = providers(&old, &new)?;
    // Last fallible step: nothing above changed anything.
    st.gov.reapply(&new.governance)?;
    let generation = old.generation + 1;
    st.swap_live(Live::build(new, resolved, entries, &st.gov, generation));
    Ok(ReloadReport {
        generation,
        applied,
        restart_required,
        providers_added: added,
        providers_removed: removed,
        providers_changed: changed,
    })
}

/// Sections a running gateway cannot change keep their old values in the
/// new config (so the live config says what is in effect); returns their names.
fn keep_restart_only_sections(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut names = Vec::new();
    if new.server != old.server {
        names.push("server");
        new.server = old.server.clone();
    }
    if new.local != old.local {
        names.push("local");
        new.local = old.local.clone();
    }
    if new.cache != old.cache {
        names.push("cache");
        new.cache = old.cache.clone();
    }
    if new.audit != old.audit {
        names.push("audit");
        new.audit = old.audit.clone();
    }
    if new.telemetry != old.telemetry {
        names.push("telemetry");
        new.telemetry = old.telemetry.clone();
    }
    if new.state != old.state {
        names.push("state");
        new.state = old.state.clone();
    }
    let (o, n) = (&old.governance, &mut new.governance);
    if n.data_dir != o.data_dir || n.in_memory != o.in_memory {
        names.push("governance.data_dir");
        n.data_dir = o.data_dir.clone();
        n.in_memory = o.in_memory;
    }
    names
}

fn changed_sections(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut names = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            names.push(name);
        }
    };
    check("providers", old.providers != new.providers || old.circuit_breaker != new.circuit_breaker);
    check("model_aliases", old.model_aliases != new.model_aliases);
    check("routing", old.routing != new.routing);
    check("health", old.health != new.health);
    check("governance", old.governance != new.governance);
    check("pricing", old.pricing != new.pricing);
    names
}

type ProviderChange = (Vec<Arc<ProviderEntry>>, Vec<String>, Vec<String>, Vec<String>);

/// The new provider entries: the configured ones (nearby and remote) built
/// from `new`, each keeping the stats of the old entry of the same name when
/// its settings are the same; the in-process one carried over (the gateway
/// built it, not the config; `[local]` changes need a restart). A configured
/// provider is never carried over, so each is there once, or not at all
/// when `new` no longer names it.
fn providers(old: &Live, new: &Config) -> Result<ProviderChange, String> {
    let built = hoosh_providers::registry::build_entries(new).map_err(|e| e.to_string())?;
    let in_process = |e: &&Arc<ProviderEntry>| e.placement == Placement::InProcess;
    let old_by_name: HashMap<&str, &Arc<ProviderEntry>> =
        old.router.entries().iter().filter(|e| !in_process(e)).map(|e| (e.name(), e)).collect();
    let old_cfg: HashMap<&str, _> = old.config.providers.iter().map(|p| (p.name.as_str(), p)).collect();
    let same_breaker = old.config.circuit_breaker == new.circuit_breaker;
    let (mut added, mut changed) = (Vec::new(), Vec::new());
    let mut entries: Vec<Arc<ProviderEntry>> = old.router.entries().iter().filter(in_process).cloned().collect();
    for entry in built {
        let name = entry.name().to_owned();
        let new_cfg = new.providers.iter().find(|p| p.name == name);
        match old_by_name.get(name.as_str()) {
            Some(prev) if same_breaker && new_cfg.is_some() && old_cfg.get(name.as_str()).copied() == new_cfg => {
                entries.push(Arc::new(ProviderEntry {
                    provider: Arc::clone(&entry.provider),
                    patterns: entry.patterns.clone(),
                    priority: entry.priority,
                    weight: entry.weight,
                    placement: entry.placement,
                    timeouts: entry.timeouts,
                    stats: Arc::clone(&prev.stats),
                }));
            }
            Some(_) => {
                changed.push(name);
                entries.push(entry);
            }
            None => {
                added.push(name);
                entries.push(entry);
            }
        }
    }
    let kept: std::collections::HashSet<&str> = entries.iter().map(|e| e.name()).collect();
    let removed = old_by_name.keys().filter(|n| !kept.contains(*n)).map(|n| (*n).to_owned()).collect();
    Ok((entries, added, removed, changed))
}

/// Reloads on every `SIGHUP` until `cancel` (supervised: a panic in a
/// reload restarts the listener).
pub fn spawn_on_sighup(st: &AppState, tracker: &TaskTracker, cancel: CancellationToken) {
    let st = st.clone();
    let stop = cancel.clone();
    crate::supervise::supervise(tracker, cancel, "sighup", move || on_sighup(st.clone(), stop.clone()));
}

async fn on_sighup(st: AppState, cancel: CancellationToken) {
    #[cfg(unix)]
    {
        let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /admin/reload");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            tracing::info!("SIGHUP: reloading the config");
            let _ = reload(&st, "sighup", None).await;
        }
    }
    #[cfg(not(unix))]
    let _ = (st, cancel);
}
