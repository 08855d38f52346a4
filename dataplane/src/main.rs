//! `riptide`: the data plane.
#![cfg_attr(test, allow(clippy::too_many_lines))]

use clap::Parser;
use riptide_dataplane::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

// Under AddressSanitizer (`scripts/asan.sh` sets `--cfg riptide_asan`) the
// sanitizer's own allocator must see every allocation.
#[cfg(not(riptide_asan))]
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
    /// CPUs the executors are pinned to, as taskset lists them (0-3,8);
    /// overrides node.cpus.
    #[arg(long, value_parser = cpu_list)]
    cpus: Option<CpuList>,
}

/// `--cpus`, parsed whole (clap would take a bare `Vec` for a repeated option).
#[derive(Clone, Debug)]
struct CpuList(Vec<u32>);

fn cpu_list(text: &str) -> Result<CpuList, String> {
    riptide_dataplane::placement::parse_cpu_list(text).map(CpuList)
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
    if let Some(CpuList(cpus)) = cli.cpus {
        config.node.cpus = Some(cpus);
    }
    match riptide_dataplane::node::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("riptide: {error}");
            ExitCode::from(1)
        }
    }
}
