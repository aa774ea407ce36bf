//! Commands on the local model store (`hoosh-models`): `pull` downloads
//! models into it, `models --local` lists what it holds.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use hoosh_models::{DEFAULT_IDS, ModelKind, ModelStore, Progress, PullOptions, Sources, missing_defaults_hint};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct PullArgs {
    /// Models to pull: a catalog id (smollm2-135m, minilm-l6, whisper-tiny.en,
    /// whisper-base), `hf:owner/repo[/file]`, or a local file or directory.
    pub names: Vec<String>,
    /// Pull the default local models (smollm2-135m, minilm-l6, whisper-tiny.en).
    #[arg(long)]
    pub defaults: bool,
    /// Kind of a non-catalog model: llm, embedding or speech (default: inferred from its files).
    #[arg(long)]
    pub kind: Option<ModelKind>,
    /// Install under this id instead of the derived one (only with a single NAME).
    #[arg(long)]
    pub id: Option<String>,
    /// Hugging Face branch, tag or commit sha of an `hf:` model (only with a
    /// single NAME; default `main`). Resolved to one commit, recorded in the
    /// model's source.
    #[arg(long)]
    pub revision: Option<String>,
    /// Pull catalog models again even when already installed.
    #[arg(long)]
    pub force: bool,
    /// The model store (default: ~/.cache/hoosh/models).
    #[arg(long, env = "HOOSH_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
}

/// `hoosh models --local` flags.
#[derive(clap::Args)]
pub struct LocalArgs {
    /// List the local model store instead of asking a running gateway.
    #[arg(long)]
    pub local: bool,
    /// The model store (default: ~/.cache/hoosh/models). Not `requires =
    /// "local"`: a value from the env var would then break `hoosh models`.
    #[arg(long, env = "HOOSH_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Re-hash every file and report models that do not match their manifest.
    #[arg(long, requires = "local")]
    pub verify: bool,
}

fn open_store(dir: Option<PathBuf>) -> Result<ModelStore> {
    Ok(match dir {
        Some(d) => ModelStore::new(d),
        None => ModelStore::open_default()?,
    })
}

pub async fn run(args: PullArgs) -> Result<ExitCode> {
    let store = open_store(args.models_dir)?;
    let mut names = args.names;
    if args.defaults {
        for id in DEFAULT_IDS {
            if !names.iter().any(|n| n == id) {
                names.push(id.to_owned());
            }
        }
    }
    if names.is_empty() {
        bail!("nothing to pull: name models (e.g. `hoosh pull smollm2-135m`) or pass --defaults");
    }
    if args.id.is_some() && names.len() != 1 {
        bail!("--id applies to a single model, but {} were named", names.len());
    }
    if args.revision.is_some() && names.len() != 1 {
        bail!("--revision applies to a single model, but {} were named", names.len());
    }
    let sources = Sources::from_env();
    let options = PullOptions { kind: args.kind, id: args.id.clone(), revision: args.revision.clone() };
    let bars = Bars::default();
    let started_all = Instant::now();
    let mut failed = Vec::new();
    for name in &names {
        let in_catalog = sources.catalog.iter().any(|e| &e.id == name);
        let id = args.id.as_deref().unwrap_or(name);
        if in_catalog
            && !args.force
            && let Some(m) = store.get(id)?
        {
            println!("{id}: already installed in {} (--force pulls it again)", m.dir.display());
            continue;
        }
        let started = Instant::now();
        let result = hoosh_models::pull_with(&store, &sources, name, &options, &|p| bars.update(p)).await;
        bars.finish();
        match result {
            Ok(m) => println!(
                "{}: installed {} ({}, {}) in {:.1}s from {}",
                m.id,
                m.main_path().display(),
                m.kind,
                human_bytes(m.size_bytes()),
                started.elapsed().as_secs_f64(),
                m.source
            ),
            Err(e) => {
                eprintln!("error: pulling {name}: {e}");
                failed.push(name.as_str());
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("failed: {}", failed.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    if names.len() > 1 {
        println!("done in {:.1}s; store: {}", started_all.elapsed().as_secs_f64(), store.root().display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list_local(args: LocalArgs) -> Result<ExitCode> {
    let store = open_store(args.models_dir)?;
    let models = store.list()?;
    if models.is_empty() {
        println!("no models in {}", store.root().display());
    } else {
        let rows: Vec<[String; 5]> = models
            .iter()
            .map(|m| {
                [
                    m.id.clone(),
                    m.kind.to_string(),
                    human_bytes(m.size_bytes()),
                    m.source.clone(),
                    m.main_path().display().to_string(),
                ]
            })
            .collect();
        let header = ["ID", "KIND", "SIZE", "SOURCE", "PATH"].map(String::from);
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            println!("{}", line.join("  ").trim_end());
        }
    }
    let missing: Vec<&str> = DEFAULT_IDS.into_iter().filter(|id| !models.iter().any(|m| m.id == *id)).collect();
    if !missing.is_empty() {
        eprintln!("{}", missing_defaults_hint(&missing));
    }
    if args.verify {
        let mut bad = 0;
        for m in &models {
            match store.verify(m) {
                Ok(()) => println!("{}: ok", m.id),
                Err(e) => {
                    bad += 1;
                    eprintln!("{}: {e}", m.id);
                }
            }
        }
        if bad > 0 {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One progress bar per file (bytes, speed, ETA), replaced when the next
/// file starts. indicatif hides the bars when stderr is not a terminal.
#[derive(Default)]
struct Bars {
    current: RefCell<Option<(String, ProgressBar)>>,
}

impl Bars {
    fn update(&self, p: Progress) {
        let mut current = self.current.borrow_mut();
        if current.as_ref().is_none_or(|(file, _)| *file != p.file) {
            if let Some((_, bar)) = current.take() {
                bar.finish();
            }
            *current = Some((p.file.clone(), new_bar(&p)));
        }
        if let Some((_, bar)) = current.as_ref() {
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.downloaded);
        }
    }

    fn finish(&self) {
        if let Some((_, bar)) = self.current.borrow_mut().take() {
            bar.finish();
        }
    }
}

fn new_bar(p: &Progress) -> ProgressBar {
    let (bar, template) = match p.total {
        Some(total) => (ProgressBar::new(total), "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"),
        None => (ProgressBar::new_spinner(), "{msg} {spinner} {bytes} {bytes_per_sec}"),
    };
    // A bad template is a bug here, not the user's problem: fall back to the default look.
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(p.file.clone());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Decimal units, as download sizes are usually quoted.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(98_362_432), "98.4 MB");
        assert_eq!(human_bytes(1_450_000_000), "1.4 GB");
    }
}
