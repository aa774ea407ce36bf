//! `hoosh audit verify|export|checkpoint`: the audit chain, offline. These
//! read the chain where it is kept — `<data dir>/audit.db`, a cluster's
//! chain in PostgreSQL (`--config` naming `[state] backend = "cluster"`),
//! or a JSONL export — and need no running gateway, so an auditor can check
//! a copy on another machine with nothing but the key.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use std::sync::Arc;

use hoosh_audit::{AuditKey, AuditStore, ChainStore, Checkpoint, Report};
use hoosh_server::audit::AUDIT_DB_FILE;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the chain: every hash, signature and link, and (with a
    /// checkpoint) that nothing after it was cut off. Exit status 1 names
    /// the first bad entry and why.
    Verify(VerifyArgs),
    /// Write entries as JSONL (one entry per line, the form `verify --file` reads).
    Export(ExportArgs),
    /// Verify the chain, then sign a checkpoint of its head (seq, hash, key
    /// id, time) to keep off this machine: `verify --checkpoint` later
    /// detects a cut-off tail or a rewrite of anything up to it.
    Checkpoint(CheckpointArgs),
}

#[derive(clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub dir: DataDir,
    /// Key file(s) the chain was signed with (repeat for rotated keys); the
    /// one in force at the head signs. Default: HOOSH_AUDIT_KEY, else <data dir>/audit.key.
    #[arg(long = "key-file")]
    pub key_files: Vec<PathBuf>,
    /// Write the checkpoint to this file (atomically: a temporary file, then
    /// a rename) instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the latest checkpoint the gateway stored instead (no key needed,
    /// nothing verified).
    #[arg(long, conflicts_with = "key_files")]
    pub stored: bool,
}

#[derive(clap::Args)]
pub struct DataDir {
    /// The gateway's data directory (holds audit.db).
    #[arg(long, env = "HOOSH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The gateway's config file: its `governance.data_dir` (or, in a
    /// cluster, `state.postgres_url`) and `audit.key_file` /
    /// `previous_key_files` say where the chain and its keys are.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl DataDir {
    fn config(&self) -> Result<Option<hoosh_core::config::Config>> {
        let Some(path) = &self.config else { return Ok(None) };
        let (config, _) = crate::settings::load(Some(path))?;
        Ok(Some(config))
    }

    fn resolve(&self) -> Result<PathBuf> {
        let configured = self.config()?.and_then(|c| c.governance.data_dir);
        self.data_dir
            .clone()
            .or(configured)
            .or_else(hoosh_server::governance::default_data_dir)
            .context("no data directory: pass --data-dir, --config or set HOOSH_DATA_DIR")
    }

    /// The key files the config names (current first), if any.
    fn configured_keys(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .config()?
            .map(|c| c.audit.key_file.into_iter().chain(c.audit.previous_key_files).collect())
            .unwrap_or_default())
    }

    /// The chain the config names (a cluster's, in PostgreSQL), else the
    /// data directory's file; and where it is, for the report.
    fn open_store(&self) -> Result<(Arc<dyn ChainStore>, String)> {
        if let Some(config) = self.config()?
            && config.state.is_cluster()
            && let Some(url) = config.state.postgres_url.as_deref()
        {
            let store = hoosh_cluster::PgAuditStore::open_read_only(url)
                .with_context(|| format!("cannot open the cluster's chain at {}", super::state::redact(url)))?;
            return Ok((store, format!("PostgreSQL {}", super::state::redact(url))));
        }
        let path = self.resolve()?.join(AUDIT_DB_FILE);
        if !path.exists() {
            bail!("no audit chain at {}", path.display());
        }
        let store = AuditStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok((Arc::new(store), path.display().to_string()))
    }
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub dir: DataDir,
    /// Verify a JSONL export instead of the data directory's store (the
    /// data directory is then only where the default key is looked for).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Key file(s) the chain was signed with (repeat for rotated keys).
    /// Default: HOOSH_AUDIT_KEY, else <data dir>/audit.key.
    #[arg(long = "key-file")]
    pub key_files: Vec<PathBuf>,
    /// A checkpoint JSON kept outside the gateway: the chain must reach it
    /// and agree with it. Without one, the store's own latest checkpoint is
    /// used, which catches accidents but not someone who rewrote the store.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub dir: DataDir,
    /// Only entries sealed from then on: a duration ago (`24h`, `7d`), RFC 3339 or unix seconds. Default: all.
    #[arg(long)]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
    pub format: String,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify(args) => verify(args),
        AuditCommand::Export(args) => export(args),
        AuditCommand::Checkpoint(args) => checkpoint(args),
    }
}

fn keys(key_files: &[PathBuf], dir: &DataDir, from_file: bool) -> Result<Vec<AuditKey>> {
    let mut keys = Vec::new();
    let configured = if key_files.is_empty() { dir.configured_keys()? } else { Vec::new() };
    for path in key_files.iter().chain(&configured) {
        keys.push(AuditKey::from_file(path).with_context(|| format!("key file {}", path.display()))?);
    }
    if keys.is_empty() {
        if let Some(k) = AuditKey::from_env()? {
            keys.push(k);
        } else if !from_file {
            let path = dir.resolve()?.join("audit.key");
            keys.push(AuditKey::from_file(&path).with_context(|| {
                format!("no key given (--key-file or HOOSH_AUDIT_KEY) and cannot read {}", path.display())
            })?);
        } else {
            bail!("verifying a file needs the key: pass --key-file or set HOOSH_AUDIT_KEY");
        }
    }
    Ok(keys)
}

fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Checkpoint::from_json(text.trim()).with_context(|| format!("{} is not a checkpoint", path.display()))
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let keys = keys(&args.key_files, &args.dir, args.file.is_some())?;
    let given = args.checkpoint.as_deref().map(read_checkpoint).transpose()?;
    let (report, checkpoint, source) = match &args.file {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let report = hoosh_audit::verify_jsonl(BufReader::new(file), &keys, given.as_ref())?;
            (report, given.map(|c| (c, "given")), path.display().to_string())
        }
        None => {
            let (store, at) = args.dir.open_store()?;
            let checkpoint = match given {
                Some(c) => Some((c, "given")),
                None => store.latest_checkpoint()?.map(|c| (c, "stored")),
            };
            let report = hoosh_audit::verify_store(store.as_ref(), &keys, checkpoint.as_ref().map(|(c, _)| c))?;
            (report, checkpoint, at)
        }
    };
    print_report(&report, checkpoint.as_ref().map(|(c, how)| (c.seq, *how)), &source, args.json);
    Ok(if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_report(report: &Report, checkpoint: Option<(u64, &str)>, source: &str, json: bool) {
    if json {
        let problem = report
            .problem
            .as_ref()
            .map(|p| serde_json::json!({"seq": p.seq, "reason": p.reason.code(), "message": p.reason.to_string()}));
        let out = serde_json::json!({
            "source": source,
            "valid": report.is_ok(),
            "entries_checked": report.entries_checked,
            "first_seq": report.first_seq,
            "head_seq": report.head_seq,
            "head_hash": hoosh_audit::hex::encode(&report.head_hash),
            "checkpoint_seq": checkpoint.map(|c| c.0),
            "checkpoint": checkpoint.map(|c| c.1),
            "checkpoint_matched": report.checkpoint_matched,
            "key_changes": report.key_changes.iter().map(|c| serde_json::json!({
                "seq": c.seq,
                "from_key_id": c.from_key_id,
                "to_key_id": c.to_key_id,
                "signed_by_old_key": c.signed_by_old_key,
            })).collect::<Vec<_>>(),
            "problem": problem,
        });
        println!("{out}");
        return;
    }
    let cp = match checkpoint {
        Some((seq, how)) if report.checkpoint_matched || report.problem.is_some() => {
            format!("; {how} checkpoint at seq {seq}")
        }
        Some((seq, how)) => {
            format!("; {how} checkpoint at seq {seq} predates the kept (pruned) chain and was not compared")
        }
        None => "; no checkpoint (a cut-off tail cannot be detected)".into(),
    };
    match &report.problem {
        None => println!(
            "OK: {} entries, seq {}..{}, head {}{cp} ({source})",
            report.entries_checked,
            report.first_seq,
            report.head_seq,
            hoosh_audit::hex::encode(&report.head_hash)
        ),
        Some(p) => println!(
            "FAILED at seq {}: {} [{}]; {} entries verified before it{cp} ({source})",
            p.seq,
            p.reason,
            p.reason.code(),
            report.entries_checked
        ),
    }
    if report.problem.is_none() {
        for c in &report.key_changes {
            let how = if c.signed_by_old_key {
                "a rotation signed by the old key"
            } else {
                "an UNSIGNED key change: only the new key vouches for it"
            };
            println!("  key {} -> {} at seq {} ({how})", c.from_key_id, c.to_key_id, c.seq);
        }
    }
}

fn checkpoint(args: CheckpointArgs) -> Result<ExitCode> {
    let (store, _) = args.dir.open_store()?;
    let cp = if args.stored {
        store.latest_checkpoint()?.context("no checkpoint has been written yet")?
    } else {
        let keys = keys(&args.key_files, &args.dir, false)?;
        // Never vouch for a chain that does not verify (against the store's own checkpoint).
        let stored = store.latest_checkpoint()?;
        let report = hoosh_audit::verify_store(store.as_ref(), &keys, stored.as_ref())?;
        if let Some(p) = &report.problem {
            eprintln!(
                "the chain does not verify: FAILED at seq {}: {} [{}]; no checkpoint written",
                p.seq,
                p.reason,
                p.reason.code()
            );
            return Ok(ExitCode::FAILURE);
        }
        let mut head = None;
        store.range(report.head_seq, &mut |e| {
            head = Some(e);
            false
        })?;
        let head = head.filter(|h| h.hash == report.head_hash).context("the chain is empty")?;
        let in_force = hoosh_audit::epoch::key_after(&head);
        let key = keys.iter().find(|k| k.id() == in_force).with_context(|| {
            format!("the key in force at seq {} has id {in_force}; pass its file with --key-file", head.seq)
        })?;
        Checkpoint::sign(head.seq, head.hash, super::admin::now_ms(), key)
    };
    let text = format!("{}\n", cp.to_json());
    match &args.out {
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            eprintln!("checkpoint at seq {} written to {}", cp.seq, path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `path` holds either its old content or all of `bytes`, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().context("--out names no file")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write {}", path.display())).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn export(args: ExportArgs) -> Result<ExitCode> {
    let (store, _) = args.dir.open_store()?;
    let since = match &args.since {
        Some(s) => hoosh_server::routes::admin::usage::parse_instant(s, super::admin::now_ms())
            .map_err(|e| anyhow::anyhow!("--since: {e}"))?,
        None => i64::MIN,
    };
    let written = match &args.output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
            );
            let n = hoosh_audit::export_jsonl(store.as_ref(), since, &mut file)?;
            file.flush()?;
            n
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            hoosh_audit::export_jsonl(store.as_ref(), since, &mut lock)?
        }
    };
    eprintln!("{written} entries exported");
    Ok(ExitCode::SUCCESS)
}
