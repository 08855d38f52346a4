//! `riptide-loadgen`: measures Riptide. `send` is an upstream peer (closed or open
//! loop), `sink` a downstream peer that fulfills, `tb-ceiling` TigerBeetle's own
//! two-phase rate for comparison.

#[cfg(feature = "tigerbeetle")]
mod ceiling;
mod http;
mod report;
mod send;
mod sink;

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

#[derive(Subcommand)]
enum Command {
    /// Send Prepares to a connector as one of its peers.
    Send {
        /// ILP-over-HTTP endpoint, e.g. http://127.0.0.1:3002/ilp
        #[arg(long)]
        target: String,
        /// The bearer token the connector knows this peer by.
        #[arg(long)]
        token: String,
        /// ILP address of the packets (routed to a sink).
        #[arg(long)]
        destination: String,
        #[arg(long, default_value_t = 16)]
        connections: u32,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
        /// Packets per second in all (open loop); without it, closed loop.
        #[arg(long)]
        rate: Option<u64>,
        #[arg(long, default_value_t = 100)]
        amount: u64,
        /// Percentage of packets the sink should reject.
        #[arg(long, default_value_t = 0)]
        reject_percent: u8,
        /// Print the result as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Act as the downstream peer: fulfill (or reject, or delay) every Prepare.
    Sink {
        #[arg(long, default_value = "127.0.0.1:4000")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Measure TigerBeetle's two-phase transfers per second (needs --features tigerbeetle).
    TbCeiling {
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 1000)]
        batch: u32,
        #[arg(long, default_value_t = 4)]
        in_flight: u32,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Send {
            target,
            token,
            destination,
            connections,
            duration_s,
            rate,
            amount,
            reject_percent,
            json,
        } => {
            let (address, path) = match http::split_url(&target) {
                Ok(parts) => parts,
                Err(message) => return fail(&format!("--target: {message}")),
            };
            if riptide_dataplane::packet::Address::parse_str(&destination).is_err() {
                return fail("--destination: not a valid ILP address");
            }
            if connections == 0 || reject_percent > 100 {
                return fail("--connections must be at least 1 and --reject-percent at most 100");
            }
            let options = send::SendOptions {
                target: address,
                path,
                token,
                destination,
                connections,
                duration: Duration::from_secs(duration_s),
                rate,
                amount,
                reject_percent,
            };
            let report = send::run(options, !json);
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            ExitCode::SUCCESS
        }
        Command::Sink { listen, delay_ms } => {
            match sink::run(sink::SinkOptions {
                listen,
                delay: Duration::from_millis(delay_ms),
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&format!("sink: {error}")),
            }
        }
        Command::TbCeiling {
            address,
            batch,
            in_flight,
            duration_s,
        } => ceiling(address, batch, in_flight, duration_s),
    }
}

#[cfg(feature = "tigerbeetle")]
fn ceiling(address: String, batch: u32, in_flight: u32, duration_s: u64) -> ExitCode {
    let options = ceiling::CeilingOptions {
        address,
        batch,
        in_flight,
        duration: Duration::from_secs(duration_s),
    };
    match ceiling::run(&options) {
        Ok(rate) => {
            println!(
                "{}",
                serde_json::json!({ "two_phase_transfers_per_second": rate, "batch": batch, "in_flight": in_flight })
            );
            ExitCode::SUCCESS
        }
        Err(message) => fail(&format!("tb-ceiling: {message}")),
    }
}

#[cfg(not(feature = "tigerbeetle"))]
fn ceiling(_: String, _: u32, _: u32, _: u64) -> ExitCode {
    fail("tb-ceiling: built without TigerBeetle; rebuild with --features tigerbeetle")
}

fn fail(message: &str) -> ExitCode {
    eprintln!("riptide-loadgen: {message}");
    ExitCode::from(2)
}
