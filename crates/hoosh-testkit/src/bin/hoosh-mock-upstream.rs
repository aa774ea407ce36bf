//! A standalone mock vendor, for end-to-end tests, the demo and load tests:
//! `hoosh-mock-upstream [openai|anthropic|ollama|gemini] [ADDR]`.
//! Prints `mock <vendor> listening on http://ADDR` once ready, then serves
//! until killed.

use std::io::Write;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let vendor = args.next().unwrap_or_else(|| "openai".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let router = match vendor.as_str() {
        "openai" => hoosh_testkit::openai::router(),
        "anthropic" => hoosh_testkit::anthropic::router(),
        "ollama" => hoosh_testkit::ollama::router(),
        "gemini" => hoosh_testkit::gemini::router(),
        other => {
            eprintln!("unknown vendor `{other}`: expected openai, anthropic, ollama or gemini");
            std::process::exit(2);
        }
    };
    let server = hoosh_testkit::MockServer::start_on(&addr, router).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "mock {vendor} listening on {}", server.url())?;
    out.flush()?;
    drop(out);
    std::future::pending::<()>().await;
    Ok(())
}
