//! The command line: what each command takes. Parsing of values that clap cannot
//! check by type (limits with `/s`, `CODE=RATE`) lives here too, so that misuse is a
//! usage error (exit 2) before anything is sent.

use crate::limits::{EXPIRES_IN_S_MAX, RECORD_ID_SIZE_MAX};
use clap::{Args, Parser, Subcommand};
use riptide_proto::state::LimitScope;
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
    /// Check the ledger through a data plane: each ledger balances, no account past
    /// its limit, and (with --idle) nothing pending and no local credit waiting in
    /// the receipt journal. Exits 1 when anything is off.
    Audit {
        /// No traffic flows and every pending timeout has passed: anything pending
        /// is then a problem.
        #[arg(long)]
        idle: bool,
    },
    /// Every data plane: version, shards, packets per second, rejects by code.
    Status {
        /// Time between the two samples that give packets per second; 0 for one sample.
        #[arg(long, value_name = "MS", default_value_t = 1000,
              value_parser = clap::value_parser!(u64).range(0..=60_000))]
        interval_ms: u64,
    },
    /// Incoming payments into a wallet: create one (with the STREAM credentials that
    /// pay it), show one, or get fresh credentials for one.
    #[command(after_help = ONE_DATAPLANE)]
    IncomingPayment {
        #[command(subcommand)]
        action: IncomingPaymentAction,
    },
    /// Quote a payment from a wallet: resolve the destination, probe the path, and
    /// print the amounts and rates (the quote can be paid with `pay --quote ID`).
    #[command(after_help = ONE_DATAPLANE)]
    Quote(QuoteArgs),
    /// Pay from a wallet: a quote made earlier, or quote and pay at once; then wait
    /// until the payment ends (exit 0 when completed, 1 when failed or still sending).
    #[command(after_help = ONE_DATAPLANE)]
    Pay(PayArgs),
    /// Show an outgoing payment.
    #[command(after_help = ONE_DATAPLANE)]
    Payment {
        #[command(subcommand)]
        action: PaymentAction,
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

/// Help for the commands that talk to a single data plane.
const ONE_DATAPLANE: &str = "Talks to the first data plane given with --dataplane or \
    RIPTIDE_DATAPLANES that can be reached (the next when one cannot). Quotes, outgoing and \
    incoming payments live in the receipt store the data planes share, so any of them \
    serves every step. Paying a quote is idempotent (paid again, it answers its payment), \
    so it is retried; a payment quoted on the way (--wallet) is asked once of the first \
    data plane (a retry could pay twice). Quotes wait at least 30 s for the answer, since \
    the data plane probes the path first.";

#[derive(Subcommand)]
pub enum IncomingPaymentAction {
    /// Create an incoming payment and print its id, ILP address and shared secret.
    Create {
        /// The wallet that receives.
        #[arg(long)]
        wallet: String,
        /// Amount to receive, in the wallet's asset; without it, any amount.
        #[arg(long, value_name = "N", value_parser = parse_amount)]
        amount: Option<u64>,
        /// Seconds until it expires (default: one day; at most a year).
        #[arg(long, value_name = "S",
              value_parser = clap::value_parser!(u64).range(1..=EXPIRES_IN_S_MAX))]
        expires_in_s: Option<u64>,
    },
    /// Show an incoming payment: amount, received, state.
    Show {
        #[arg(value_parser = parse_record_id)]
        id: String,
    },
    /// Fresh STREAM credentials (ILP address, shared secret) for a pending payment.
    Credentials {
        #[arg(value_parser = parse_record_id)]
        id: String,
    },
}

#[derive(Args)]
pub struct QuoteArgs {
    /// The wallet that pays (its account is funded with `liquidity deposit --wallet`).
    #[arg(long, requires = "DestinationArgs", requires = "AmountArgs")]
    pub wallet: String,
    #[command(flatten)]
    pub payment: PaymentSpec,
}

/// Where a payment goes, how much, and the slippage allowed.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct PaymentSpec {
    #[command(flatten)]
    pub destination: DestinationArgs,
    #[command(flatten)]
    pub amount: AmountArgs,
    /// Fraction below the probed rate a packet may still deliver, from 0 to below 1
    /// (the data plane's default is 0.01).
    #[arg(long, value_name = "F", value_parser = parse_slippage)]
    pub slippage: Option<f64>,
}

/// `--spsp URL`, or `--ilp-address A --shared-secret S`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[group(multiple = true)]
pub struct DestinationArgs {
    /// The receiver's SPSP URL, e.g. https://wallet.example/alice.
    #[arg(long, value_name = "URL", conflicts_with_all = ["ilp_address", "shared_secret"])]
    pub spsp: Option<String>,
    /// The receiver's ILP address (from its incoming payment), with --shared-secret.
    #[arg(long, value_name = "ADDRESS", requires = "shared_secret")]
    pub ilp_address: Option<String>,
    /// The receiver's STREAM shared secret: 32 bytes in base64 or base64url.
    #[arg(long, value_name = "BASE64", requires = "ilp_address",
          value_parser = parse_shared_secret)]
    pub shared_secret: Option<String>,
}

/// `--send N` (fixed send, in the wallet's units) or `--receive N` (fixed delivery,
/// in the receiver's units).
#[derive(Args, Debug, Clone, Copy, PartialEq, Eq)]
#[group(multiple = false)]
pub struct AmountArgs {
    /// Send exactly this much from the wallet.
    #[arg(long, value_name = "N", value_parser = parse_amount)]
    pub send: Option<u64>,
    /// Deliver exactly this much to the receiver.
    #[arg(long, value_name = "N", value_parser = parse_amount)]
    pub receive: Option<u64>,
}

#[derive(Args)]
pub struct PayArgs {
    /// A quote made with `riptidectl quote` on the same data plane; or give the
    /// options of `quote` to quote and pay at once.
    #[arg(long = "quote", value_name = "ID", value_parser = parse_record_id,
          required_unless_present = "wallet",
          conflicts_with_all = ["wallet", "spsp", "ilp_address", "shared_secret", "send",
                                "receive", "slippage"])]
    pub quote_id: Option<String>,
    /// The wallet that pays, when quoting on the way.
    #[arg(long, requires = "DestinationArgs", requires = "AmountArgs")]
    pub wallet: Option<String>,
    #[command(flatten)]
    pub payment: PaymentSpec,
    /// Print the payment as created and return, without waiting for it to end.
    #[arg(long)]
    pub no_wait: bool,
    /// Longest wait for the payment to end, polling every 200 ms.
    #[arg(long, value_name = "S", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub wait_s: u64,
}

#[derive(Subcommand)]
pub enum PaymentAction {
    /// Show an outgoing payment: state, sent, delivered, last error.
    Show {
        #[arg(value_parser = parse_record_id)]
        id: String,
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
    /// Prepares ready together that may share one send to the peer (1 to 64).
    #[arg(long, value_name = "COUNT", default_value_t = 1)]
    pub outgoing_pipeline_max: u16,
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
    /// Prepares ready together that may share one send to the peer (1 to 64).
    #[arg(long, value_name = "COUNT")]
    pub outgoing_pipeline_max: Option<u16>,
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
    /// Liquidity at or below which a `peer.liquidity_low` webhook goes out, or `none`.
    #[arg(long, value_name = "N|none", value_parser = parse_amount_limit)]
    pub liquidity_threshold: Option<Limit>,
    /// Where the rate and throughput limits count: `dataplane` (each data plane
    /// allows the whole limit) or `shared` (all data planes together).
    #[arg(long, value_name = "dataplane|shared", value_parser = parse_limit_scope)]
    pub limit_scope: Option<LimitScope>,
}

impl LimitArgs {
    pub fn is_empty(&self) -> bool {
        self.max_packet.is_none()
            && self.rate.is_none()
            && self.throughput.is_none()
            && self.liquidity_threshold.is_none()
            && self.limit_scope.is_none()
    }
}

fn parse_limit_scope(text: &str) -> Result<LimitScope, String> {
    match text {
        "dataplane" => Ok(LimitScope::Dataplane),
        "shared" => Ok(LimitScope::Shared),
        _ => Err("expected dataplane or shared".into()),
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
    /// A wallet's account: what its outgoing payments spend.
    #[arg(long)]
    pub wallet: Option<String>,
}

pub fn parse_amount(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be greater than 0".into()),
        Ok(value) => Ok(value),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// A slippage: a fraction from 0 to below 1, as the data plane takes it.
pub fn parse_slippage(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if (0.0..1.0).contains(&value) => Ok(value),
        Ok(_) => Err("must be at least 0 and below 1 (0.01 is 1%)".into()),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// A STREAM shared secret: 32 bytes in base64 or base64url, padding optional;
/// given on in standard padded base64, which the data plane reads.
pub fn parse_shared_secret(text: &str) -> Result<String, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let unpadded = text.trim().trim_end_matches('=');
    let decoded = STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .map_err(|_| "must be base64 or base64url".to_owned())?;
    if decoded.len() != 32 {
        return Err(format!("must be 32 bytes, not {}", decoded.len()));
    }
    Ok(STANDARD.encode(decoded))
}

/// The id of an incoming payment, quote or outgoing payment: letters, digits, `-`
/// and `_`, so that it is one path segment of the admin API.
pub fn parse_record_id(text: &str) -> Result<String, String> {
    let id = text.trim();
    let valid = !id.is_empty()
        && id.len() <= RECORD_ID_SIZE_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(id.to_owned())
    } else {
        Err(format!(
            "{text:?} is not an id (letters, digits, - and _, at most {RECORD_ID_SIZE_MAX})"
        ))
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

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("riptidectl").chain(args.iter().copied()))
    }

    #[test]
    fn limits_set_takes_a_liquidity_threshold_as_the_readme_shows() {
        let cli =
            parse(&["limits", "set", "alice", "--liquidity-threshold", "5000"]).expect("valid");
        let Command::Limits {
            action: LimitsAction::Set { peer, limits },
        } = cli.command
        else {
            panic!("not limits set");
        };
        assert_eq!(peer, "alice");
        assert_eq!(
            limits.liquidity_threshold.and_then(Limit::value),
            Some(5000)
        );
        let none =
            parse(&["limits", "set", "alice", "--liquidity-threshold", "none"]).expect("valid");
        let Command::Limits {
            action: LimitsAction::Set { limits, .. },
        } = none.command
        else {
            panic!("not limits set");
        };
        assert_eq!(limits.liquidity_threshold, Some(Limit::Remove));
    }

    #[test]
    fn liquidity_takes_a_wallet_too() {
        let cli = parse(&["liquidity", "withdraw", "--wallet", "payer", "10"]).expect("valid");
        let Command::Liquidity {
            action: LiquidityAction::Withdraw(args),
        } = cli.command
        else {
            panic!("not a withdrawal");
        };
        assert_eq!(args.account.wallet.as_deref(), Some("payer"));
        assert!(parse(&["liquidity", "deposit", "--wallet", "w", "--peer", "p", "10"]).is_err());
    }

    const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn a_quote_needs_one_destination_and_one_amount() {
        let cli = parse(&[
            "quote",
            "--wallet",
            "w",
            "--ilp-address",
            "test.b.x",
            "--shared-secret",
            SECRET,
            "--receive",
            "5000",
            "--slippage",
            "0.02",
        ])
        .expect("valid");
        let Command::Quote(QuoteArgs { wallet, payment }) = cli.command else {
            panic!("not a quote");
        };
        assert_eq!(wallet, "w");
        assert_eq!(payment.destination.ilp_address.as_deref(), Some("test.b.x"));
        assert_eq!(payment.amount.receive, Some(5000));
        assert_eq!(payment.slippage, Some(0.02));
        let spsp = ["quote", "--wallet", "w", "--spsp", "http://h/x"];
        assert!(parse(&[&spsp[..], &["--send", "5"]].concat()).is_ok());
        for bad in [
            &[&spsp[..], &[]].concat(),
            &[&spsp[..], &["--send", "5", "--receive", "5"]].concat(),
            &[&spsp[..], &["--send", "0"]].concat(),
            &[&spsp[..], &["--send", "5", "--slippage", "1"]].concat(),
            &[&spsp[..], &["--send", "5", "--ilp-address", "g.x"]].concat(),
            &["quote", "--wallet", "w", "--send", "5"][..],
            &["quote", "--spsp", "http://h/x", "--send", "5"][..],
            &[
                "quote",
                "--wallet",
                "w",
                "--ilp-address",
                "g.x",
                "--send",
                "5",
            ][..],
            &[
                "quote",
                "--wallet",
                "w",
                "--shared-secret",
                SECRET,
                "--send",
                "5",
            ][..],
            &[
                "quote",
                "--wallet",
                "w",
                "--ilp-address",
                "g.x",
                "--shared-secret",
                "AAAA",
                "--send",
                "5",
            ][..],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pay_takes_a_quote_or_a_quote_request() {
        let cli = parse(&["pay", "--quote", "0a1b", "--no-wait"]).expect("valid");
        let Command::Pay(args) = cli.command else {
            panic!("not a payment");
        };
        assert_eq!(args.quote_id.as_deref(), Some("0a1b"));
        assert!(args.wallet.is_none() && args.payment.destination.spsp.is_none());
        assert!(args.no_wait);
        assert_eq!(args.wait_s, 60);

        let cli = parse(&[
            "pay",
            "--wallet",
            "w",
            "--spsp",
            "http://h/x",
            "--send",
            "7",
            "--wait-s",
            "5",
        ])
        .expect("valid");
        let Command::Pay(args) = cli.command else {
            panic!("not a payment");
        };
        assert_eq!(args.wallet.as_deref(), Some("w"));
        assert_eq!(args.payment.amount.send, Some(7));
        assert_eq!(args.wait_s, 5);

        for bad in [
            &["pay"][..],
            &["pay", "--quote", "a", "--wallet", "w"],
            &["pay", "--quote", "a", "--send", "5"],
            &["pay", "--quote", "a/../b"],
            &["pay", "--wallet", "w", "--send", "5"],
            &["pay", "--wallet", "w", "--spsp", "http://h/x"],
            &["pay", "--spsp", "http://h/x", "--send", "5"],
            &["pay", "--quote", "a", "--wait-s", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn incoming_payments_and_ids_are_checked() {
        assert!(parse(&["incoming-payment", "create", "--wallet", "shop"]).is_ok());
        assert!(parse(&[
            "incoming-payment",
            "create",
            "--wallet",
            "shop",
            "--amount",
            "5000",
            "--expires-in-s",
            "60"
        ])
        .is_ok());
        assert!(parse(&[
            "incoming-payment",
            "create",
            "--wallet",
            "s",
            "--amount",
            "0"
        ])
        .is_err());
        assert!(parse(&[
            "incoming-payment",
            "create",
            "--wallet",
            "s",
            "--expires-in-s",
            "0"
        ])
        .is_err());
        assert!(parse(&["incoming-payment", "create", "--amount", "5"]).is_err());
        assert!(parse(&[
            "incoming-payment",
            "show",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        ])
        .is_ok());
        assert!(parse(&["incoming-payment", "credentials", "x?y"]).is_err());
        assert!(parse(&["payment", "show", "feed"]).is_ok());
        assert!(parse(&["payment", "show", ""]).is_err());
        assert_eq!(parse_record_id(" ab-c_1 "), Ok("ab-c_1".to_owned()));
        assert!(parse_record_id(&"a".repeat(129)).is_err());
        assert!(parse_record_id("a/b").is_err());
    }

    #[test]
    fn secrets_and_slippage_are_checked() {
        assert_eq!(parse_shared_secret(SECRET), Ok(SECRET.to_owned()));
        let unpadded = SECRET.trim_end_matches('=');
        assert_eq!(parse_shared_secret(unpadded), Ok(SECRET.to_owned()));
        // base64url comes out as standard base64, padded, as the data plane reads it.
        assert_eq!(
            parse_shared_secret("-__7__v_-__7__v_-__7__v_-__7__v_-__7__v_-_8"),
            Ok("+//7//v/+//7//v/+//7//v/+//7//v/+//7//v/+/8=".to_owned())
        );
        assert!(parse_shared_secret("AAAA").is_err());
        assert!(parse_shared_secret("not base64!").is_err());
        assert_eq!(parse_slippage("0"), Ok(0.0));
        assert_eq!(parse_slippage("0.5"), Ok(0.5));
        for bad in ["1", "-0.1", "NaN", "inf", "x"] {
            assert!(parse_slippage(bad).is_err(), "{bad}");
        }
    }
}
