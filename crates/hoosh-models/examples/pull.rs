//! Pulls models into a store without the `hoosh` CLI, printing one line per
//! model: `cargo run --release -p hoosh-models --example pull -- DIR [NAME...]`
//! (no NAME: the defaults). Handy for timing the pipeline alone.

use std::process::ExitCode;
use std::time::Instant;

use hoosh_models::{DEFAULT_IDS, ModelStore, pull};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: pull DIR [NAME...]");
        return ExitCode::FAILURE;
    };
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = DEFAULT_IDS.iter().map(|s| (*s).to_owned()).collect();
    }
    let store = ModelStore::new(dir);
    for name in names {
        let started = Instant::now();
        match pull(&store, &name, None, &|_| {}).await {
            Ok(m) => println!("{}: {} bytes in {:.1}s", m.id, m.size_bytes(), started.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!("error: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
