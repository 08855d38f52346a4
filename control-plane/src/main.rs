//! `riptidectl`: Riptide's control plane and operator CLI.
//!
//! `apply` and `serve` push a desired state from a file to every data plane; the
//! other commands change or show the running state through the data planes' admin
//! API. Exit codes: 0 done, 1 an operation failed or a data plane did not
//! acknowledge, 2 usage error or invalid input.
#![cfg_attr(test, allow(clippy::too_many_lines))]

mod apply;
mod cli;
mod dataplane_client;
mod decode;
mod edit;
mod error;
mod fleet;
mod limits;
mod liquidity;
mod payments;
mod rates_feed;
mod serve;
mod state_file;
mod status;
mod table;
mod targets;
mod version;
mod views;

use clap::Parser;
use cli::{
    Cli, Command, GlobalArgs, LimitsAction, LiquidityAction, PeerAction, RatesAction, RouteAction,
};
use error::CtlError;
use fleet::Fleet;
use riptide_proto::admin_api::LiquidityDirection;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("riptidectl: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn run(cli: &Cli) -> Result<(), CtlError> {
    let global = &cli.global;
    match &cli.command {
        Command::Apply { file } => apply::run(global, file),
        Command::Serve(args) => serve::run(global, args),
        Command::Decode {
            packet_hex,
            shared_secret,
        } => run_decode(packet_hex, shared_secret.as_deref()),
        Command::IncomingPayment { action } => payments::incoming_payment(global, action),
        Command::Quote(args) => payments::quote(global, args),
        Command::Pay(args) => payments::pay(global, args),
        Command::Payment { action } => payments::payment(global, action),
        other => run_against_dataplanes(global, other),
    }
}

/// Where tokens come from on this command line.
pub(crate) fn token_sources(global: &GlobalArgs) -> targets::TokenSources {
    targets::TokenSources {
        token: global.admin_token.clone(),
        token_file: global.admin_token_file.clone(),
    }
}

/// The commands that talk to the data planes named by `--dataplane` or
/// `RIPTIDE_DATAPLANES`.
fn run_against_dataplanes(global: &GlobalArgs, command: &Command) -> Result<(), CtlError> {
    let targets = targets::resolve(&global.dataplanes, &token_sources(global), None)?;
    let fleet = Fleet::new(
        targets,
        Duration::from_millis(global.timeout_ms),
        global.attempts,
    );
    let json = global.json;
    match command {
        Command::Peer { action } => match action {
            PeerAction::Add(args) => edit::run(&fleet, json, |s| edit::add_peer(s, args)),
            PeerAction::Update(args) => edit::run(&fleet, json, |s| edit::update_peer(s, args)),
            PeerAction::Remove { id } => edit::run(&fleet, json, |s| edit::remove_peer(s, id)),
            PeerAction::List => views::peers(&fleet, json),
        },
        Command::Route { action } => match action {
            RouteAction::Add { prefix, peer } => {
                edit::run(&fleet, json, |s| edit::add_route(s, prefix, peer))
            }
            RouteAction::Remove { prefix, peer } => edit::run(&fleet, json, |s| {
                edit::remove_route(s, prefix, peer.as_deref())
            }),
            RouteAction::List => views::routes(&fleet, json),
        },
        Command::Limits {
            action: LimitsAction::Set { peer, limits },
        } => edit::run(&fleet, json, |s| edit::set_limits(s, peer, limits)),
        Command::Rates { action } => match action {
            RatesAction::Set { rates, base } => {
                edit::run(&fleet, json, |s| edit::set_rates(s, rates, base.as_deref()))
            }
            RatesAction::Show => views::rates(&fleet, json),
        },
        Command::Liquidity { action } => match action {
            LiquidityAction::Deposit(args) => {
                liquidity::run(&fleet, LiquidityDirection::Deposit, args, json)
            }
            LiquidityAction::Withdraw(args) => {
                liquidity::run(&fleet, LiquidityDirection::Withdraw, args, json)
            }
        },
        Command::Balance => views::balances(&fleet, json),
        Command::Audit { idle } => views::audit(&fleet, *idle, json),
        Command::Status { interval_ms } => {
            status::run(&fleet, Duration::from_millis(*interval_ms), json)
        }
        Command::Apply { .. }
        | Command::Serve(_)
        | Command::Decode { .. }
        | Command::IncomingPayment { .. }
        | Command::Quote(_)
        | Command::Pay(_)
        | Command::Payment { .. } => Ok(()),
    }
}

fn run_decode(packet_hex: &str, shared_secret: Option<&str>) -> Result<(), CtlError> {
    let json = read_hex_argument(packet_hex)
        .and_then(|bytes| decode::decode_to_json(&bytes, shared_secret))
        .map_err(|message| CtlError::Failed(format!("decode: {message}")))?;
    println!("{json:#}");
    Ok(())
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
