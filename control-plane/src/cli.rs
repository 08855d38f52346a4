//! The command line: what each command takes. Parsing of values that clap cannot
//! check by type (limits with `/s`, `CODE=RATE`) lives here too, so that misuse is a
//! usage error (exit 2) before anything is sent.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "riptidectl",
    version,
    about = "Operate Riptide: Interledger connector control plane",
    after_help = "Exit codes: 0 done; 1 an operation failed or a data plane did not acknowledge; \
                  2 usage error or invalid input.\n\
                  Data planes: --dataplane URL (repeatable) or RIPTIDE_DATAPLANES=URL,URL. \
                  Admin token: RIPTIDE_ADMIN_TOKEN, --admin-token-file, or --admin-token."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct GlobalArgs {
    /// Admin API base URL of a data plane, e.g. http://10.0.0.5:3003 (repeatable).
    #[arg(
        long = "dataplane",
        value_name = "URL",
        env = "RIPTIDE_DATAPLANES",
        value_delimiter = ',',
        global = true
    )]
    pub dataplanes: Vec<String>,
    /// Admin token of the data planes (prefer the environment variable or a file: a
    /// command line is visible to other users of the host).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "RIPTIDE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
    /// File whose first line is the admin token.
    #[arg(long, value_name = "PATH", global = true)]
    pub admin_token_file: Option<PathBuf>,
    /// Print JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// Longest wait for one request to a data plane.
    #[arg(long, value_name = "MS", default_value_t = 5000, global = true,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub timeout_ms: u64,
    /// Tries per data plane before it is reported as failed (with backoff between).
    #[arg(long, default_value_t = 5, global = true,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
}

#[derive(Subcommand)]
pub enum Command {
    /// Push the desired state in a file to every data plane, versioned.
    Apply {
        /// State file (TOML): assets, peers, wallets, rates, and [control].
        #[arg(short = 'f', long = "file", value_name = "PATH")]
        file: PathBuf,
    },
    /// Run the control plane: watch the file and the rates feed, keep every data
    /// plane on the desired state, re-push to data planes that restart.
    Serve(ServeArgs),
    /// Add, change, remove or list peers.
    Peer {
        #[command(subcommand)]
        action: PeerAction,
    },
    /// Add, remove or list routes (address prefixes to peers).
    Route {
        #[command(subcommand)]
        action: RouteAction,
    },
    /// Set a peer's limits.
    Limits {
        #[command(subcommand)]
        action: LimitsAction,
    },
    /// Set or show exchange rates.
    Rates {
        #[command(subcommand)]
        action: RatesAction,
    },
    /// Move money between a liquidity account and its settlement account.
    Liquidity {
        #[command(subcommand)]
        action: LiquidityAction,
    },
    /// Every account of the state with its balances.
    Balance,
    /// Every data plane: version, shards, packets per second, rejects by code.
    Status {
        /// Time between the two samples that give packets per second; 0 for one sample.
        #[arg(long, value_name = "MS", default_value_t = 1000,
              value_parser = clap::value_parser!(u64).range(0..=60_000))]
        interval_ms: u64,
    },
    /// Print an ILP packet (hex) as JSON; with the shared secret, its STREAM packet too.
    Decode {
        /// The packet as hex (spaces and a 0x prefix are allowed); `-` reads stdin.
        packet_hex: String,
        /// STREAM shared secret (base64 or base64url) to decrypt the packet's data.
        #[arg(long)]
        shared_secret: Option<String>,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// State file (TOML), re-read when it changes.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: PathBuf,
    /// Address of the status endpoint (GET /status), e.g. 127.0.0.1:3010.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// How often the file's modification time is checked.
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub watch_ms: u64,
    /// How often each data plane's version is checked.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub poll_ms: u64,
}

#[derive(Subcommand)]
pub enum PeerAction {
    /// Add a peer.
    Add(PeerAddArgs),
    /// Change a peer's settings; what is not given stays.
    Update(PeerUpdateArgs),
    /// Remove a peer: its tokens are refused from the next packet on.
    Remove { id: String },
    /// List peers.
    List,
}

#[derive(Args)]
pub struct PeerAddArgs {
    pub id: String,
    #[arg(long)]
    pub asset: String,
    /// Bearer token the peer sends (repeatable).
    #[arg(long = "incoming-token", value_name = "TOKEN")]
    pub incoming_tokens: Vec<String>,
    #[arg(long, value_name = "URL")]
    pub outgoing_url: Option<String>,
    #[arg(long, value_name = "TOKEN")]
    pub outgoing_token: Option<String>,
    /// Address prefix routed to the peer (repeatable).
    #[arg(long = "route", value_name = "PREFIX")]
    pub routes: Vec<String>,
    #[arg(long, value_name = "ADDRESS")]
    pub static_ilp_address: Option<String>,
    /// Deposited once into the peer's account: what it may send in.
    #[arg(long, default_value_t = 0)]
    pub initial_liquidity: u64,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Args)]
pub struct PeerUpdateArgs {
    pub id: String,
    #[arg(long)]
    pub asset: Option<String>,
    /// Accept this token too (rotation: add the new, later remove the old).
    #[arg(long = "add-incoming-token", value_name = "TOKEN")]
    pub add_incoming_tokens: Vec<String>,
    #[arg(long = "remove-incoming-token", value_name = "TOKEN")]
    pub remove_incoming_tokens: Vec<String>,
    #[arg(long, value_name = "URL")]
    pub outgoing_url: Option<String>,
    #[arg(long, value_name = "TOKEN")]
    pub outgoing_token: Option<String>,
    #[arg(long, value_name = "ADDRESS")]
    pub static_ilp_address: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// A limit to set, or `none` to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Set(u64),
    Remove,
}

impl Limit {
    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Set(value) => Some(value),
            Limit::Remove => None,
        }
    }
}

#[derive(Args, Default)]
pub struct LimitArgs {
    /// Largest Prepare amount (F08 above), or `none`.
    #[arg(long, value_name = "N|none", value_parser = parse_amount_limit)]
    pub max_packet: Option<Limit>,
    /// Packets per second, `N/s` (T05 above), or `none`.
    #[arg(long, value_name = "N/s|none", value_parser = parse_per_second_limit)]
    pub rate: Option<Limit>,
    /// Amount per second, `N/s` (T04 above), or `none`.
    #[arg(long, value_name = "N/s|none", value_parser = parse_per_second_limit)]
    pub throughput: Option<Limit>,
}

impl LimitArgs {
    pub fn is_empty(&self) -> bool {
        self.max_packet.is_none() && self.rate.is_none() && self.throughput.is_none()
    }
}

#[derive(Subcommand)]
pub enum RouteAction {
    /// Route an address prefix to a peer.
    Add {
        prefix: String,
        #[arg(long)]
        peer: String,
    },
    /// Remove a route (from every peer, or only from --peer).
    Remove {
        prefix: String,
        #[arg(long)]
        peer: Option<String>,
    },
    /// List routes.
    List,
}

#[derive(Subcommand)]
pub enum LimitsAction {
    /// Set, change or remove (`none`) a peer's limits.
    Set {
        peer: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Subcommand)]
pub enum RatesAction {
    /// Set rates: units of CODE per unit of the base; other rates stay.
    Set {
        #[arg(required = true, value_name = "CODE=RATE", value_parser = parse_rate_pair)]
        rates: Vec<(String, f64)>,
        /// Change the base code too.
        #[arg(long)]
        base: Option<String>,
    },
    /// Show the rates in force.
    Show,
}

#[derive(Subcommand)]
pub enum LiquidityAction {
    /// Into the account, from its asset's settlement account.
    Deposit(LiquidityArgs),
    /// Out of the account, back to its asset's settlement account.
    Withdraw(LiquidityArgs),
}

#[derive(Args)]
pub struct LiquidityArgs {
    #[command(flatten)]
    pub account: AccountArg,
    /// Amount in the asset's smallest unit.
    #[arg(value_parser = parse_amount)]
    pub amount: u64,
    /// Idempotency key: the same key moves money once, however often it is sent.
    /// Without it a key is made and printed, to retry with.
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct AccountArg {
    /// A peer's account.
    #[arg(long)]
    pub peer: Option<String>,
    /// An asset's liquidity account.
    #[arg(long)]
    pub asset: Option<String>,
}

pub fn parse_amount(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be greater than 0".into()),
        Ok(value) => Ok(value),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

fn parse_amount_limit(text: &str) -> Result<Limit, String> {
    if text.trim() == "none" {
        return Ok(Limit::Remove);
    }
    parse_amount(text).map(Limit::Set)
}

/// `1000/s`, `1000`, or `none`.
fn parse_per_second_limit(text: &str) -> Result<Limit, String> {
    let number = text.trim().strip_suffix("/s").unwrap_or(text.trim());
    parse_amount_limit(number)
}

/// `EUR=0.92`: a code and a positive, finite rate.
pub fn parse_rate_pair(text: &str) -> Result<(String, f64), String> {
    let (code, rate) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not CODE=RATE"))?;
    let code = code.trim();
    if code.is_empty() {
        return Err(format!("{text:?} has no code"));
    }
    let rate: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: the rate is not a number"))?;
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!("{text:?}: the rate must be positive"));
    }
    Ok((code.to_owned(), rate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn limits_take_per_second_suffixes_and_none() {
        assert_eq!(parse_per_second_limit("1000/s"), Ok(Limit::Set(1000)));
        assert_eq!(parse_per_second_limit("25"), Ok(Limit::Set(25)));
        assert_eq!(parse_per_second_limit("none"), Ok(Limit::Remove));
        assert!(parse_per_second_limit("0/s").is_err());
        assert!(parse_amount_limit("10/s").is_err());
        assert!(parse_amount("-5").is_err());
    }

    #[test]
    fn rate_pairs_are_checked() {
        assert_eq!(parse_rate_pair("EUR=0.92"), Ok(("EUR".to_owned(), 0.92)));
        assert!(parse_rate_pair("EUR").is_err());
        assert!(parse_rate_pair("EUR=0").is_err());
        assert!(parse_rate_pair("EUR=NaN").is_err());
        assert!(parse_rate_pair("=1").is_err());
    }

    #[test]
    fn liquidity_needs_exactly_one_account() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|_| ());
        assert!(parse(&["riptidectl", "liquidity", "deposit", "--peer", "a", "10"]).is_ok());
        assert!(parse(&["riptidectl", "liquidity", "deposit", "10"]).is_err());
        assert!(parse(&[
            "riptidectl",
            "liquidity",
            "deposit",
            "--peer",
            "a",
            "--asset",
            "USD",
            "10"
        ])
        .is_err());
    }
}
