//! `riptidectl`: Riptide's control plane and operator CLI.

mod decode;

use clap::{Parser, Subcommand};
use std::io::Read;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "riptidectl",
    version,
    about = "Operate Riptide: Interledger connector control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print an ILP packet (hex) as JSON; with the shared secret, its STREAM packet too.
    Decode {
        /// The packet as hex (spaces and a 0x prefix are allowed); `-` reads stdin.
        packet_hex: String,
        /// STREAM shared secret (base64 or base64url) to decrypt the packet's data.
        #[arg(long)]
        shared_secret: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode {
            packet_hex,
            shared_secret,
        } => run_decode(&packet_hex, shared_secret.as_deref()),
    }
}

fn run_decode(packet_hex: &str, shared_secret: Option<&str>) -> ExitCode {
    let result = read_hex_argument(packet_hex)
        .and_then(|bytes| decode::decode_to_json(&bytes, shared_secret));
    match result {
        Ok(json) => {
            println!("{json:#}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("riptidectl decode: {message}");
            ExitCode::from(1)
        }
    }
}

fn read_hex_argument(argument: &str) -> Result<Vec<u8>, String> {
    let text = if argument == "-" {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        input
    } else {
        argument.to_owned()
    };
    let compact: String = text.split_whitespace().collect();
    let digits = compact.strip_prefix("0x").unwrap_or(&compact);
    hex::decode(digits).map_err(|e| format!("packet is not hex: {e}"))
}
