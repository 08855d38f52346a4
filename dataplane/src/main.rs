//! `riptide`: the data plane.
#![cfg_attr(test, allow(clippy::too_many_lines))]

use clap::Parser;
use riptide_dataplane::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "riptide",
    version,
    about = "Riptide: a thread-per-core Interledger connector"
)]
struct Cli {
    /// Configuration file (TOML); see riptide.example.toml.
    #[arg(long, short)]
    config: PathBuf,
    /// Executors (one per core); overrides node.shards.
    #[arg(long)]
    shards: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let env = |name: &str| std::env::var(name).ok();
    let mut config = match Config::load(&cli.config, &env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("riptide: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(shards) = cli.shards {
        config.node.shards = Some(shards);
    }
    match riptide_dataplane::node::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("riptide: {error}");
            ExitCode::from(1)
        }
    }
}
