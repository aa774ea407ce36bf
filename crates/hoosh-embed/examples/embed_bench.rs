//! Times model load and batches of 1, 8 and 32 sentences, printing a
//! markdown table.
//!
//! ```text
//! cargo run --release -p hoosh-embed --example embed_bench -- /path/to/all-MiniLM-L6-v2 [threads]
//! ```
//!
//! `threads` defaults to candle's choice (`RAYON_NUM_THREADS`, else physical
//! cores).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hoosh_embed::{Embedder, EmbedderOptions};

const SENTENCES: [&str; 8] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
];

const ROUNDS: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: embed_bench <model-dir> [threads]")?);
    let threads = args.next().map(|t| t.parse::<usize>()).transpose()?;

    let started = Instant::now();
    let embedder = Embedder::load_with(&dir, EmbedderOptions { threads, ..EmbedderOptions::default() })?;
    let load = started.elapsed();
    let rayon_env = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into());
    println!("{embedder:?}, RAYON_NUM_THREADS={rayon_env}\n");
    println!("| batch | tokens | min ms | median ms | sentences/s (median) |");
    println!("|---:|---:|---:|---:|---:|");
    println!("| load | – | {:.1} | – | – |", ms(load));

    for size in [1usize, 8, 32] {
        let texts: Vec<String> = SENTENCES.iter().cycle().take(size).map(|s| s.to_string()).collect();
        embedder.embed(&texts)?; // warm-up
        let mut times = Vec::with_capacity(ROUNDS);
        let mut tokens = 0;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            tokens = embedder.embed(&texts)?.prompt_tokens;
            times.push(t.elapsed());
        }
        times.sort();
        let median = times[ROUNDS / 2];
        println!(
            "| {size} | {tokens} | {:.1} | {:.1} | {:.0} |",
            ms(times[0]),
            ms(median),
            size as f64 / median.as_secs_f64()
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
