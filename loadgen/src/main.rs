//! `riptide-loadgen`: measures Riptide. `send` is an upstream peer (closed or open
//! loop), `sink` a downstream peer that fulfills, `tb-ceiling` TigerBeetle's own
//! two-phase rate for comparison.
#![cfg_attr(test, allow(clippy::too_many_lines))]

#[cfg(feature = "tigerbeetle")]
mod ceiling;
mod cpu;
mod http;
mod limits;
mod report;
mod send;
mod send_async;
mod sink;
mod stream;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "riptide-loadgen",
    version,
    about = "Load generator and test peers for Riptide"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What every sending mode takes: where, as whom, how hard and how long.
#[derive(clap::Args)]
struct LoadArgs {
    /// ILP-over-HTTP endpoint, e.g. http://127.0.0.1:3002/ilp, or https:// for a
    /// connector serving TLS (with --ca-file).
    #[arg(long)]
    target: String,
    /// PEM CAs trusted for an https:// target, whose certificate must name its IP.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// The bearer token the connector knows this peer by.
    #[arg(long)]
    token: String,
    /// Connections, each with one request in flight; in open loop they share the rate.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Length of the measured window, after the warm-up.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Seconds of sending before the measured window, not recorded (connection
    /// set-up, first-packet costs).
    #[arg(long, default_value_t = 1)]
    warmup_s: u64,
    /// Report the CPU time this process (all its threads) used in the measured
    /// window, and CPU microseconds per fulfilled packet; repeatable.
    #[arg(long = "cpu-pid", value_name = "PID")]
    cpu_pids: Vec<u32>,
    /// Packets per second in all (open loop); without it, closed loop.
    #[arg(long)]
    rate: Option<u64>,
    /// Amount of each packet, in the sender's units; with --amount-max, the least.
    #[arg(long, default_value_t = 100)]
    amount: u64,
    /// Draw each packet's amount uniformly from --amount to this (inclusive).
    #[arg(long)]
    amount_max: Option<u64>,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Worker threads of the event-driven sender (plain HTTP targets; TLS takes
    /// a thread per connection); 0 is one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Send Prepares to a connector as one of its peers.
    Send {
        #[command(flatten)]
        load: LoadArgs,
        /// ILP address of the packets (routed to a sink).
        #[arg(long)]
        destination: String,
        /// Percentage of packets the sink should reject.
        #[arg(long, default_value_t = 0)]
        reject_percent: u8,
    },
    /// Pay a wallet with STREAM, as a peer of the connector: each connection asks
    /// SPSP for its own credentials, then sends fulfillable STREAM Prepares.
    Stream {
        #[command(flatten)]
        load: LoadArgs,
        /// The wallet's SPSP URL, e.g. http://127.0.0.1:3004/shop
        #[arg(long)]
        spsp: String,
    },
    /// Act as the downstream peer: fulfill (or reject, or delay) every Prepare.
    Sink {
        #[arg(long, default_value = "127.0.0.1:4000")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Worker threads; 0 is one per core.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Measure TigerBeetle's two-phase transfers per second (needs --features tigerbeetle).
    TbCeiling {
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 1000)]
        batch: u32,
        #[arg(long, default_value_t = 4)]
        in_flight: u32,
        /// Client sessions the requests in flight are spread over.
        #[arg(long, default_value_t = 1)]
        clients: u32,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Send {
            load,
            destination,
            reject_percent,
        } => {
            if riptide_proto::packet::Address::parse_str(&destination).is_err() {
                return fail("--destination: not a valid ILP address");
            }
            if reject_percent > 100 {
                return fail("--reject-percent must be at most 100");
            }
            run_load(
                load,
                send::Payload::Sink {
                    destination,
                    reject_percent,
                },
            )
        }
        Command::Stream { load, spsp } => match http::split_url(&spsp) {
            Ok(endpoint) if !endpoint.tls => run_load(
                load,
                send::Payload::Stream {
                    spsp: endpoint.address,
                    path: endpoint.path,
                },
            ),
            Ok(_) => fail("--spsp: only http:// SPSP endpoints"),
            Err(message) => fail(&format!("--spsp: {message}")),
        },
        Command::Sink {
            listen,
            delay_ms,
            threads,
        } => {
            match sink::run(sink::SinkOptions {
                listen,
                delay: Duration::from_millis(delay_ms),
                threads,
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&format!("sink: {error}")),
            }
        }
        Command::TbCeiling {
            address,
            batch,
            in_flight,
            clients,
            duration_s,
        } => ceiling(address, batch, (in_flight, clients), duration_s),
    }
}

#[cfg(feature = "tigerbeetle")]
fn ceiling(
    address: String,
    batch: u32,
    (in_flight, clients): (u32, u32),
    duration_s: u64,
) -> ExitCode {
    let options = ceiling::CeilingOptions {
        address,
        batch,
        in_flight,
        clients,
        duration: Duration::from_secs(duration_s),
    };
    match ceiling::run(&options) {
        Ok(rate) => {
            println!(
                "{}",
                serde_json::json!({ "two_phase_transfers_per_second": rate, "batch": batch, "in_flight": in_flight, "clients": clients })
            );
            ExitCode::SUCCESS
        }
        Err(message) => fail(&format!("tb-ceiling: {message}")),
    }
}

#[cfg(not(feature = "tigerbeetle"))]
fn ceiling(_: String, _: u32, _: (u32, u32), _: u64) -> ExitCode {
    fail("tb-ceiling: built without TigerBeetle; rebuild with --features tigerbeetle")
}

fn run_load(load: LoadArgs, payload: send::Payload) -> ExitCode {
    let target = match http::split_url(&load.target) {
        Ok(endpoint) => endpoint,
        Err(message) => return fail(&format!("--target: {message}")),
    };
    let tls = match (target.tls, &load.ca_file) {
        (false, None) => None,
        (false, Some(_)) => return fail("--ca-file: only for an https:// --target"),
        (true, None) => return fail("--target: an https:// target needs --ca-file"),
        (true, Some(file)) => match http::tls_config(file) {
            Ok(config) => Some(config),
            Err(message) => return fail(&format!("--ca-file: {message}")),
        },
    };
    if load.connections == 0 {
        return fail("--connections must be at least 1");
    }
    if load.duration_s == 0 {
        return fail("--duration-s must be at least 1");
    }
    if load.amount_max.is_some_and(|max| max < load.amount) {
        return fail("--amount-max must be at least --amount");
    }
    let json = load.json;
    let options = send::SendOptions {
        target: target.address,
        path: target.path,
        tls,
        token: load.token,
        payload,
        connections: load.connections,
        warmup: Duration::from_secs(load.warmup_s),
        duration: Duration::from_secs(load.duration_s),
        rate: load.rate,
        amounts: send::Amounts {
            least: load.amount,
            most: load.amount_max.unwrap_or(load.amount),
        },
        cpu_pids: load.cpu_pids,
        threads: load.threads,
    };
    let report = match send::run(options, !json) {
        Ok(report) => report,
        Err(message) => return fail(&format!("--cpu-pid: {message}")),
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("riptide-loadgen: {message}");
    ExitCode::from(2)
}
