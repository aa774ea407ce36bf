//! `loadgen`: the load tools bench/ needs that wrk and nginx cannot play.
//!
//! Layout:
//! - `drip`    — an OpenAI-compatible upstream whose streams send one chunk
//!   per interval (the slow model), for the concurrent-streams test.
//! - `sse`     — closed-loop load: C connections, each sending its next
//!   request when the last answer ended; time to first body byte and
//!   whole-response time per request.
//! - `streams` — N streams open at once, ramped in batches; per stream the
//!   longest silence and whether it ended whole (`data: [DONE]`).
//!
//! Shared pieces: `args` (flags), `target` (URL, headers, body template,
//! connecting), `sse_scan` (counting SSE events across frames), `stats`
//! (histograms to JSON), `limits` (open-file limit). Every subcommand prints
//! one JSON object on stdout; progress and errors go to stderr.

mod args;
mod drip;
mod limits;
mod sse;
mod sse_scan;
mod stats;
mod streams;
mod target;

use std::process::ExitCode;

const USAGE: &str = "\
usage:
  loadgen drip    --port P [--bind ADDR] [--interval-ms 200] [--chunks 50]
  loadgen sse     --url URL --body FILE [-H 'name: value']... [-c 16] [-d 10] [--count-header NAME]
                  [--rate RPS] [--requests N] [--every-s S]
  loadgen streams --url URL --body FILE [-H 'name: value']... -n N [--batch 256] [--batch-ms 100]
                  [--stall-ms 1000] [--timeout-s 600]

A body may contain {n}: each request replaces it with a counter (distinct
prompts, to stay clear of a response cache).";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let parsed = match args::Args::parse(rest) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cmd.as_str() {
            "drip" => drip::run(&parsed).await,
            "sse" => sse::run(&parsed).await,
            "streams" => streams::run(&parsed).await,
            other => Err(format!("unknown subcommand {other:?}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
