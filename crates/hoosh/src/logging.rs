//! Tracing setup: `HOOSH_LOG` (or `RUST_LOG`) filters, default [`DEFAULT`];
//! pretty or JSON lines on stderr.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// INFO for hoosh; llama.cpp and ggml (forwarded as target `llama-cpp-2`)
/// only from WARN — their model metadata is a hundred lines per load, shown
/// with `HOOSH_LOG=debug` — and the forwarding crate's own notes only on error.
pub const DEFAULT: &str = "info,llama-cpp-2=warn,llama_cpp_2=error";

pub fn init(format: LogFormat) {
    let filter = std::env::var("HOOSH_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
