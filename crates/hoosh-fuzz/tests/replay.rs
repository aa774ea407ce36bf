//! The fuzz targets on stable, in the normal test suite (and so in CI), with
//! no sanitizer build: each target replays its committed corpus
//! (`fuzz/corpus/<target>/`) and every crash kept from a fuzzing run
//! (`crates/hoosh-fuzz/regressions/<target>/`), then runs on seeded
//! mutations of that corpus for a short budget — `HOOSH_FUZZ_REPLAY_SECS`
//! seconds, 2 unless set. The mutations are a fixed sequence per target;
//! the budget only decides how far along it a run gets.
//!
//! A failing input is written under the test's temporary directory and its
//! path printed, ready to copy into `regressions/<target>/`. An input that
//! aborts the process (a failed allocation: no unwinding) cannot be caught
//! that way: rerun with `HOOSH_FUZZ_REPLAY_KEEP=1`, which writes each input
//! to `<that directory>/<target>/current` before running it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hoosh_fuzz::TARGETS;

/// Mutated inputs a run tries at most, whatever its budget.
const MAX_MUTATIONS: u64 = 1_000_000;
/// Longest input a mutation makes.
const MAX_LEN: usize = 64 * 1024;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Vec<u8>)> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.')))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

fn budget() -> Duration {
    let secs = std::env::var("HOOSH_FUZZ_REPLAY_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(secs.clamp(0.0, 3_600.0))
}

fn failures(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hoosh-fuzz-failures").join(name);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Runs `input` through the target; on a panic, keeps the input and fails.
fn run_one(name: &str, run: fn(&[u8]), input: &[u8], origin: &str) {
    if std::env::var_os("HOOSH_FUZZ_REPLAY_KEEP").is_some() {
        let _ = std::fs::write(failures(name).join("current"), input);
    }
    if catch_unwind(AssertUnwindSafe(|| run(input))).is_err() {
        let path = failures(name).join(format!("{:016x}", fnv1a(input)));
        let _ = std::fs::write(&path, input);
        panic!("target `{name}` failed on {origin}; the input is kept at {}", path.display());
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// One to four byte-level mutations of `base`, splicing from `corpus`.
fn mutate(rng: &mut fastrand::Rng, base: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let len = out.len();
        match rng.u8(0..7) {
            0 if len > 0 => {
                let i = rng.usize(..len);
                out[i] ^= 1 << rng.u8(0..8);
            }
            1 if len > 0 => {
                let i = rng.usize(..len);
                out[i] = *rng.choice(&[0u8, 0xff, b'\n', b'\r', b'"', b':', b'{', b'[', b'-', b'0']).unwrap_or(&0);
            }
            2 => out.insert(rng.usize(..=len), rng.u8(..)),
            3 if len > 0 => {
                let start = rng.usize(..len);
                let end = rng.usize(start..=len.min(start + 64));
                out.drain(start..end);
            }
            4 if len > 0 => {
                // Repeat a run of bytes (a line, a field, a boundary).
                let start = rng.usize(..len);
                let end = rng.usize(start..=len.min(start + 64));
                let run = out[start..end].to_vec();
                let at = rng.usize(..=out.len());
                out.splice(at..at, run.iter().copied().cycle().take(run.len() * rng.usize(1..=8)));
            }
            5 if !corpus.is_empty() => {
                // Splice in a piece of another corpus entry.
                let other = &corpus[rng.usize(..corpus.len())];
                if !other.is_empty() {
                    let start = rng.usize(..other.len());
                    let end = rng.usize(start..=other.len().min(start + 256));
                    let at = rng.usize(..=out.len());
                    out.splice(at..at, other[start..end].iter().copied());
                }
            }
            6 if len > 0 => out.truncate(rng.usize(..len)),
            _ => out.push(rng.u8(..)),
        }
    }
    out.truncate(MAX_LEN);
    out
}

fn replay_and_mutate(name: &str) {
    let target = TARGETS.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no target `{name}`"));
    let corpus = files(&root().join("fuzz/corpus").join(name));
    assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ is empty: each target keeps seed inputs");
    let regressions = files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions").join(name));
    for (path, bytes) in corpus.iter().chain(&regressions) {
        run_one(name, target.run, bytes, &path.display().to_string());
    }

    let seeds: Vec<Vec<u8>> = corpus.into_iter().chain(regressions).map(|(_, b)| b).collect();
    let mut rng = fastrand::Rng::with_seed(fnv1a(name.as_bytes()));
    let (start, budget) = (Instant::now(), budget());
    let mut tried = 0u64;
    while tried < MAX_MUTATIONS && start.elapsed() < budget {
        let base = &seeds[rng.usize(..seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        run_one(name, target.run, &input, &format!("mutation {tried} of seed {:#x}", fnv1a(name.as_bytes())));
        tried += 1;
    }
    println!("{name}: {} corpus and regression inputs, {tried} mutations in {:.1?}", seeds.len(), start.elapsed());
}

#[test]
fn every_target_is_replayed_here() {
    let here = include_str!("replay.rs");
    for t in TARGETS {
        assert!(here.contains(&format!("fn {}()", t.name)), "target `{}` has no replay test", t.name);
    }
}

#[test]
fn sse() {
    replay_and_mutate("sse");
}

#[test]
fn ndjson() {
    replay_and_mutate("ndjson");
}

#[test]
fn multipart() {
    replay_and_mutate("multipart");
}

#[test]
fn chat_request() {
    replay_and_mutate("chat_request");
}

#[test]
fn embeddings_request() {
    replay_and_mutate("embeddings_request");
}

#[test]
fn speech_request() {
    replay_and_mutate("speech_request");
}

#[test]
fn audio_container() {
    replay_and_mutate("audio_container");
}

#[test]
fn audit_rows() {
    replay_and_mutate("audit_rows");
}

#[test]
fn config_toml() {
    replay_and_mutate("config_toml");
}
