//! `hoosh config check FILE` and `hoosh info`: what a configuration resolves
//! to, without starting a server or calling a provider.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use hoosh_core::config::Config;
use hoosh_providers::registry;

use crate::settings;

pub fn check(file: &Path) -> Result<ExitCode> {
    let (config, _) = settings::load(Some(file))?;
    for p in config.providers.iter().filter(|p| p.enabled) {
        let r = registry::resolve(p)?;
        if let Some(w) = registry::missing_key_warning(&r) {
            println!("warning: provider `{}`: {w}", p.name);
        }
    }
    println!("{}: OK", file.display());
    print_routes(&config)?;
    Ok(ExitCode::SUCCESS)
}

pub fn info(config: Option<&Path>) -> Result<ExitCode> {
    println!("hoosh {}", env!("CARGO_PKG_VERSION"));
    let (config, source) = settings::load(config)?;
    println!("configuration: {source}");
    println!("listen: {}:{}", config.server.bind, config.server.port);
    print_routes(&config)?;
    Ok(ExitCode::SUCCESS)
}

fn print_routes(config: &Config) -> Result<()> {
    println!("strategy: {}", config.routing.strategy.as_str());
    if config.providers.is_empty() {
        println!(
            "providers: none (set OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, GROQ_API_KEY, ... or use --config)"
        );
    } else {
        println!("providers:");
    }
    for p in &config.providers {
        if !p.enabled {
            println!("  {} ({}) disabled", p.name, p.kind);
            continue;
        }
        let r = registry::resolve(p)?;
        let key = match (&p.api_key_env, &p.api_key_file, r.adapter.preset.key_env) {
            (Some(env), _, _) if r.adapter.api_key.is_none() => format!("key from ${env}: unset"),
            (Some(env), _, _) => format!("key from ${env}"),
            (_, Some(file), _) => format!("key from file {}", file.display()),
            (_, _, Some(env)) if r.adapter.api_key.is_some() => format!("key from ${env}"),
            _ => "no key".to_owned(),
        };
        println!(
            "  {name:<14} type={kind:<18} priority={prio:<4} {placement:<6} {url}  [{key}]",
            name = p.name,
            kind = p.kind,
            prio = p.priority,
            placement = r.placement.as_str(),
            url = r.adapter.base_url,
        );
        println!("  {:<14} models: {}", "", r.models.join(", "));
    }
    if !config.model_aliases.is_empty() {
        println!("aliases:");
        for (alias, targets) in &config.model_aliases {
            println!("  {alias} -> {}", targets.join(" | "));
        }
    }
    Ok(())
}
