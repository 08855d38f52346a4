//! Configuration: the static node settings and the dynamic state document, read
//! from a TOML file (with Rafiki's environment variables as overrides) or, for the
//! state, from the admin API's JSON. Every error names the field, and in a file its
//! line, so an operator can fix it without guessing.

use crate::limits::{IN_FLIGHT_MAX, PENDING_TIMEOUT_S_MAX, POST_TRIES_MIN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use riptide_proto::packet::Address;
pub use riptide_proto::state::{
    line_of, locate, AssetConfig, DocumentError, FieldError, FieldPath, PathSegment, PeerConfig,
    RatesConfig, StateDocument, WalletConfig,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::Path;
use thiserror::Error;

mod connections;
mod dns;
mod receipts;
mod telemetry;
mod tls;
mod webhooks;
pub use connections::ConnectionsConfig;
pub use dns::DnsConfig;
pub use receipts::ReceiptsConfig;
pub use telemetry::TelemetryConfig;
pub use tls::TlsConfig;
pub use webhooks::WebhooksConfig;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    /// Syntax, type or unknown-key errors, and broken rules, in a file.
    #[error("{file} line {line}: {message}")]
    File {
        file: String,
        line: usize,
        message: String,
    },
    #[error("environment variable {variable}: {message}")]
    Environment {
        variable: &'static str,
        message: String,
    },
}

/// The whole configuration of a data plane.
#[derive(Debug, Clone)]
pub struct Config {
    pub node: NodeConfig,
    pub ledger: LedgerConfig,
    pub receipts: ReceiptsConfig,
    pub connections: ConnectionsConfig,
    pub dns: DnsConfig,
    pub webhooks: WebhooksConfig,
    pub telemetry: TelemetryConfig,
    pub tls: TlsConfig,
    pub state: StateDocument,
}

/// The file's layout. The state's keys sit at the top level of the file; they are
/// listed here rather than flattened because serde's flatten loses the positions
/// that name the line of an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    node: NodeConfig,
    #[serde(default)]
    ledger: LedgerConfig,
    #[serde(default)]
    receipts: ReceiptsConfig,
    #[serde(default)]
    connections: ConnectionsConfig,
    #[serde(default)]
    dns: DnsConfig,
    #[serde(default)]
    webhooks: WebhooksConfig,
    #[serde(default)]
    telemetry: TelemetryConfig,
    #[serde(default)]
    tls: TlsConfig,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    assets: Vec<AssetConfig>,
    #[serde(default)]
    peers: Vec<PeerConfig>,
    #[serde(default)]
    wallets: Vec<WalletConfig>,
    #[serde(default)]
    rates: RatesConfig,
}

fn default_connector_port() -> u16 {
    3002
}
fn default_admin_port() -> u16 {
    3003
}
fn default_public_port() -> u16 {
    3004
}
fn default_loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_expiry_window_ms_min() -> u64 {
    1_000
}
fn default_hold_ms_max() -> u64 {
    30_000
}
fn default_http_body_size_max() -> usize {
    64 * 1024
}
fn default_in_flight_max() -> u32 {
    16_384
}
fn default_pending_timeout_s() -> u32 {
    60
}
fn default_ledger_request_timeout_ms() -> u64 {
    5_000
}

/// Settings that need a restart to change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Riptide's own ILP address (env `ILP_ADDRESS`).
    pub ilp_address: String,
    /// ILP-over-HTTP port (env `CONNECTOR_PORT`).
    #[serde(default = "default_connector_port")]
    pub connector_port: u16,
    /// Admin API port (env `ADMIN_PORT`).
    #[serde(default = "default_admin_port")]
    pub admin_port: u16,
    /// SPSP port (env `PUBLIC_PORT`).
    #[serde(default = "default_public_port")]
    pub public_port: u16,
    /// Address the connector and public ports listen on; 0.0.0.0 to serve peers on
    /// other hosts.
    #[serde(default = "default_loopback")]
    pub bind_address: IpAddr,
    /// Address the admin port listens on.
    #[serde(default = "default_loopback")]
    pub admin_bind_address: IpAddr,
    /// Executors, one per core; absent means every core.
    #[serde(default)]
    pub shards: Option<u32>,
    /// CPUs the executors are pinned to, one each, as `taskset -c` lists them
    /// (`"0-3,8"`); absent means the CPUs this process may run on.
    #[serde(default, deserialize_with = "deserialize_cpus")]
    pub cpus: Option<Vec<u32>>,
    /// 32 bytes, base64 (env `STREAM_SECRET`): the STREAM receiver's secret.
    #[serde(deserialize_with = "deserialize_secret")]
    pub stream_secret: [u8; 32],
    /// Bearer token of the admin API (env `ADMIN_TOKEN`).
    pub admin_token: String,
    /// Time kept back from an incoming expiry for the way back.
    #[serde(default = "default_expiry_window_ms_min")]
    pub expiry_window_ms_min: u64,
    /// Longest time a forwarded packet is held downstream.
    #[serde(default = "default_hold_ms_max")]
    pub hold_ms_max: u64,
    /// Largest ILP-over-HTTP request body.
    #[serde(default = "default_http_body_size_max")]
    pub http_body_size_max: usize,
    /// Packets one shard works on at once; past it, T03 at once. With a shard's
    /// throughput, it bounds how long an accepted packet waits.
    #[serde(default = "default_in_flight_max")]
    pub in_flight_max: u32,
}

fn deserialize_secret<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<[u8; 32], D::Error> {
    let text = String::deserialize(deserializer)?;
    decode_secret(&text).map_err(serde::de::Error::custom)
}

fn deserialize_cpus<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<u32>>, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::placement::parse_cpu_list(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn decode_secret(text: &str) -> Result<[u8; 32], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "must be base64".to_owned())?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("must decode to 32 bytes, not {}", b.len()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// The embedded in-process ledger: for a first run without servers.
    #[default]
    Memory,
    /// TigerBeetle, the production ledger.
    TigerBeetle,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    #[serde(default)]
    pub kind: LedgerKind,
    /// Env `TIGERBEETLE_CLUSTER_ID`. An integer, or a string holding a decimal or
    /// `0x` hexadecimal number for ids past what a TOML integer holds (2^63 - 1).
    #[serde(default, deserialize_with = "deserialize_cluster_id")]
    pub cluster_id: u128,
    /// Replica addresses (env `TIGERBEETLE_REPLICA_ADDRESSES`): a string, comma
    /// separated, or an array of strings, one replica each. Kept comma separated.
    #[serde(default, deserialize_with = "deserialize_addresses")]
    pub addresses: String,
    /// How long a pending transfer lives; must outlive the hold time.
    #[serde(default = "default_pending_timeout_s")]
    pub pending_timeout_s: u32,
    /// Longest wait for one ledger request; past it the packet is rejected T00.
    #[serde(default = "default_ledger_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            kind: LedgerKind::Memory,
            cluster_id: 0,
            addresses: String::new(),
            pending_timeout_s: 60,
            request_timeout_ms: default_ledger_request_timeout_ms(),
        }
    }
}

/// A cluster id as an operator writes it: `cluster_id = 0`, `cluster_id = "0"` or
/// `cluster_id = "0x2a"`.
fn deserialize_cluster_id<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<u128, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Integer(i64),
        Text(String),
    }
    match Written::deserialize(deserializer).map_err(|_| {
        serde::de::Error::custom("must be a non-negative integer, or a string holding one")
    })? {
        Written::Integer(value) => {
            u128::try_from(value).map_err(|_| serde::de::Error::custom("must not be negative"))
        }
        Written::Text(text) => parse_cluster_id(&text).map_err(serde::de::Error::custom),
    }
}

/// A u128 in decimal or `0x` hexadecimal.
pub fn parse_cluster_id(text: &str) -> Result<u128, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u128::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a 128-bit unsigned number (decimal or 0x hex)"))
}

/// Replica addresses as a comma-separated string or an array of strings.
fn deserialize_addresses<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        List(Vec<String>),
    }
    match Written::deserialize(deserializer).map_err(|_| {
        serde::de::Error::custom(
            "must be a string (\"3000\" or \"127.0.0.1:3000,...\") or an array of strings",
        )
    })? {
        Written::Text(text) => Ok(text),
        Written::List(list) => {
            if let Some(bad) = list.iter().find(|a| a.trim().is_empty() || a.contains(',')) {
                return Err(serde::de::Error::custom(format!(
                    "each replica address must be one non-empty address, not {bad:?}"
                )));
            }
            Ok(list.join(","))
        }
    }
}

/// Reads the environment; passed in so tests never touch the process's own.
pub type Environment<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    pub fn load(path: &Path, env: Environment<'_>) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Config::parse(&text, &file, env)
    }

    pub fn parse(text: &str, file: &str, env: Environment<'_>) -> Result<Config, ConfigError> {
        let parsed: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::File {
            file: file.to_owned(),
            line: e.span().map(|span| line_of(text, span.start)).unwrap_or(1),
            message: e.message().trim().to_owned(),
        })?;
        let mut config = Config {
            node: parsed.node,
            ledger: parsed.ledger,
            receipts: parsed.receipts,
            connections: parsed.connections,
            dns: parsed.dns,
            webhooks: parsed.webhooks,
            telemetry: parsed.telemetry,
            tls: parsed.tls,
            state: StateDocument {
                version: parsed.version,
                assets: parsed.assets,
                peers: parsed.peers,
                wallets: parsed.wallets,
                rates: parsed.rates,
            },
        };
        config.apply_environment(env)?;
        config.validate().map_err(|error| ConfigError::File {
            file: file.to_owned(),
            line: locate(text, &error.path),
            message: format!("{}: {}", error.path, error.message),
        })?;
        Ok(config)
    }

    fn apply_environment(&mut self, env: Environment<'_>) -> Result<(), ConfigError> {
        let parse_port = |variable: &'static str, value: String| {
            value.parse::<u16>().map_err(|_| ConfigError::Environment {
                variable,
                message: format!("{value:?} is not a port"),
            })
        };
        if let Some(value) = env("CONNECTOR_PORT") {
            self.node.connector_port = parse_port("CONNECTOR_PORT", value)?;
        }
        if let Some(value) = env("ADMIN_PORT") {
            self.node.admin_port = parse_port("ADMIN_PORT", value)?;
        }
        if let Some(value) = env("PUBLIC_PORT") {
            self.node.public_port = parse_port("PUBLIC_PORT", value)?;
        }
        if let Some(value) = env("ILP_ADDRESS") {
            self.node.ilp_address = value;
        }
        if let Some(value) = env("ADMIN_TOKEN") {
            self.node.admin_token = value;
        }
        if let Some(value) = env("STREAM_SECRET") {
            self.node.stream_secret =
                decode_secret(&value).map_err(|message| ConfigError::Environment {
                    variable: "STREAM_SECRET",
                    message,
                })?;
        }
        if let Some(value) = env("TIGERBEETLE_CLUSTER_ID") {
            self.ledger.cluster_id =
                parse_cluster_id(&value).map_err(|message| ConfigError::Environment {
                    variable: "TIGERBEETLE_CLUSTER_ID",
                    message,
                })?;
        }
        if let Some(value) = env("TIGERBEETLE_REPLICA_ADDRESSES") {
            // Naming the replicas asks for TigerBeetle, as Rafiki's setting does.
            self.ledger.addresses = value;
            self.ledger.kind = LedgerKind::TigerBeetle;
        }
        self.receipts.apply_environment(env);
        self.apply_integration_environment(env)?;
        if let Some(value) = env("EXCHANGE_RATES_URL") {
            self.state.rates.url = Some(value);
        }
        Ok(())
    }

    /// Rafiki's variables for the ledger's and the rates' lifetimes, and for what
    /// Riptide tells others: webhooks and telemetry.
    fn apply_integration_environment(&mut self, env: Environment<'_>) -> Result<(), ConfigError> {
        let milliseconds = |variable: &'static str, value: &str| {
            value.parse::<u64>().map_err(|_| ConfigError::Environment {
                variable,
                message: format!("{value:?} is not a whole number"),
            })
        };
        if let Some(value) = env("TIGERBEETLE_TWO_PHASE_TIMEOUT_SECONDS") {
            let seconds = milliseconds("TIGERBEETLE_TWO_PHASE_TIMEOUT_SECONDS", &value)?;
            self.ledger.pending_timeout_s = u32::try_from(seconds).unwrap_or(u32::MAX);
        }
        if let Some(value) = env("EXCHANGE_RATES_LIFETIME") {
            self.state.rates.lifetime_ms = milliseconds("EXCHANGE_RATES_LIFETIME", &value)?;
        }
        if let Some(value) = env("WEBHOOK_URL") {
            self.webhooks.url = Some(value);
        }
        if let Some(value) = env("SIGNATURE_SECRET") {
            self.webhooks.secret = Some(value);
        }
        if let Some(value) = env("WEBHOOK_TIMEOUT") {
            self.webhooks.timeout_ms = value.parse().map_err(|_| ConfigError::Environment {
                variable: "WEBHOOK_TIMEOUT",
                message: format!("{value:?} is not a number of milliseconds"),
            })?;
        }
        if let Some(value) = env("OPEN_TELEMETRY_COLLECTOR_URLS") {
            self.telemetry.otlp_urls = value
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(value) = env("OPEN_TELEMETRY_EXPORT_INTERVAL") {
            self.telemetry.export_interval_ms =
                value.parse().map_err(|_| ConfigError::Environment {
                    variable: "OPEN_TELEMETRY_EXPORT_INTERVAL",
                    message: format!("{value:?} is not a number of milliseconds"),
                })?;
        }
        Ok(())
    }

    /// The ledger's rules, some of them against the node's timings.
    fn validate_ledger(&self) -> Result<(), FieldError> {
        // A pending transfer must outlive everything before its post: the hold's
        // request and its lookup when the answer is lost, the packet's time at
        // the next hop and on the way back, and at least one try of the post.
        let ledger_requests = 2 + POST_TRIES_MIN;
        let needed_ms = self.node.hold_ms_max
            + self.node.expiry_window_ms_min
            + ledger_requests * self.ledger.request_timeout_ms;
        if u64::from(self.ledger.pending_timeout_s) * 1000 <= needed_ms {
            return Err(FieldError::new(
                FieldPath::root("ledger").key("pending_timeout_s"),
                format!(
                    "must outlive node.hold_ms_max + node.expiry_window_ms_min + {ledger_requests} x ledger.request_timeout_ms ({needed_ms} ms), or fulfilled packets could not be posted"
                ),
            ));
        }
        if u64::from(self.ledger.pending_timeout_s) > PENDING_TIMEOUT_S_MAX {
            return Err(FieldError::new(
                FieldPath::root("ledger").key("pending_timeout_s"),
                format!(
                    "must be at most {PENDING_TIMEOUT_S_MAX} s: the receipt journal keeps an unsettled count twice as long"
                ),
            ));
        }
        if self.ledger.kind == LedgerKind::TigerBeetle && self.ledger.addresses.trim().is_empty() {
            return Err(FieldError::new(
                FieldPath::root("ledger").key("addresses"),
                "required when kind = \"tigerbeetle\"",
            ));
        }
        Ok(())
    }

    /// Every rule of the node settings and of the state.
    pub fn validate(&self) -> Result<(), FieldError> {
        let node = FieldPath::root("node");
        if Address::parse_str(&self.node.ilp_address).is_err() {
            return Err(FieldError::new(
                node.key("ilp_address"),
                format!("{:?} is not a valid ILP address", self.node.ilp_address),
            ));
        }
        if self.node.admin_token.len() < 16 {
            return Err(FieldError::new(
                node.key("admin_token"),
                "must be at least 16 characters",
            ));
        }
        let ports = [
            self.node.connector_port,
            self.node.admin_port,
            self.node.public_port,
        ];
        if ports[0] == ports[1] || ports[0] == ports[2] || ports[1] == ports[2] {
            return Err(FieldError::new(
                node.key("connector_port"),
                "connector, admin and public ports must differ",
            ));
        }
        if self.node.in_flight_max == 0 || self.node.in_flight_max > IN_FLIGHT_MAX {
            return Err(FieldError::new(
                node.key("in_flight_max"),
                format!("must be from 1 to {IN_FLIGHT_MAX}"),
            ));
        }
        if self.node.shards == Some(0) {
            return Err(FieldError::new(node.key("shards"), "must be at least 1"));
        }
        if self.node.hold_ms_max <= self.node.expiry_window_ms_min {
            return Err(FieldError::new(
                node.key("hold_ms_max"),
                "must be greater than expiry_window_ms_min",
            ));
        }
        self.validate_ledger()?;
        self.connections.validate()?;
        self.dns.validate()?;
        self.webhooks.validate()?;
        self.telemetry.validate()?;
        self.receipts.validate()?;
        self.tls.validate()?;
        self.state.validate_rules()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[node]
ilp_address = "test.riptide"
stream_secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
admin_token = "admin-token-0123456789"

[[assets]]
code = "USD"
scale = 2
ledger = 1

[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["alice-token-0123456789"]
max_packet_amount = 100
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "riptide.toml", &no_env)
    }

    fn error_of(text: &str) -> String {
        parse(text).expect_err("invalid").to_string()
    }

    #[test]
    fn minimal_config_with_defaults() {
        let config = parse(MINIMAL).expect("valid");
        assert_eq!(config.node.connector_port, 3002);
        assert_eq!(config.node.admin_port, 3003);
        assert_eq!(config.ledger.kind, LedgerKind::Memory);
        assert_eq!(config.state.peers[0].max_packet_amount, Some(100));
        assert_eq!(config.node.stream_secret[31], 31);
    }

    fn with_ledger(ledger: &str) -> String {
        MINIMAL.replace(
            "[[assets]]",
            &format!("[ledger]\nkind = \"tigerbeetle\"\n{ledger}\n\n[[assets]]"),
        )
    }

    #[test]
    fn cluster_id_as_integer_decimal_string_or_hex() {
        for (written, expected) in [
            ("cluster_id = 0", 0u128),
            ("cluster_id = 7", 7),
            (
                "cluster_id = \"340282366920938463463374607431768211455\"",
                u128::MAX,
            ),
            ("cluster_id = \"0x2a\"", 42),
        ] {
            let config = parse(&with_ledger(&format!("{written}\naddresses = \"3000\"")))
                .unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(config.ledger.cluster_id, expected, "{written}");
        }
        let negative = error_of(&with_ledger("cluster_id = -1\naddresses = \"3000\""));
        assert!(
            negative.contains("line 9") && negative.contains("negative"),
            "{negative}"
        );
        let words = error_of(&with_ledger("cluster_id = \"zero\"\naddresses = \"3000\""));
        assert!(
            words.contains("line 9") && words.contains("128-bit"),
            "{words}"
        );
    }

    #[test]
    fn addresses_as_string_or_array() {
        let text = with_ledger("cluster_id = 0\naddresses = \"127.0.0.1:3000,127.0.0.1:3001\"");
        assert_eq!(
            parse(&text).expect("string").ledger.addresses,
            "127.0.0.1:3000,127.0.0.1:3001"
        );
        let text = with_ledger(
            "cluster_id = 0\naddresses = [\"127.0.0.1:3000\", \"127.0.0.1:3001\", \"127.0.0.1:3002\"]",
        );
        assert_eq!(
            parse(&text).expect("array").ledger.addresses,
            "127.0.0.1:3000,127.0.0.1:3001,127.0.0.1:3002"
        );
        let empty = error_of(&with_ledger("addresses = [\"3000\", \"\"]"));
        assert!(
            empty.contains("line 9") && empty.contains("replica address"),
            "{empty}"
        );
        let number = error_of(&with_ledger("addresses = 3000"));
        assert!(
            number.contains("line 9") && number.contains("array of strings"),
            "{number}"
        );
    }

    #[test]
    fn node_cpus_reads_a_taskset_list_and_names_its_line_when_wrong() {
        let with_cpus = |cpus: &str| {
            MINIMAL.replace(
                "admin_token = \"admin-token-0123456789\"\n",
                &format!("admin_token = \"admin-token-0123456789\"\ncpus = {cpus}\n"),
            )
        };
        let config = parse(&with_cpus("\"0-2,5\"")).expect("a CPU list");
        assert_eq!(config.node.cpus, Some(vec![0, 1, 2, 5]));
        assert_eq!(parse(MINIMAL).expect("minimal").node.cpus, None);
        let twice = error_of(&with_cpus("\"2,2\""));
        assert!(
            twice.contains("line 6") && twice.contains("names a CPU more than once"),
            "{twice}"
        );
        let number = error_of(&with_cpus("3"));
        assert!(number.contains("line 6"), "{number}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../riptide.example.toml");
        parse(text).expect("riptide.example.toml must stay valid");
    }

    #[test]
    fn rule_errors_name_field_and_line() {
        let text = MINIMAL.replace("max_packet_amount = 100", "max_packet_amount = 0");
        assert_eq!(
            error_of(&text),
            "riptide.toml line 16: peers[0].max_packet_amount: must be greater than 0 (leave it out for no limit)"
        );
        let text = MINIMAL.replace("asset = \"USD\"\nincoming", "asset = \"EUR\"\nincoming");
        assert_eq!(
            error_of(&text),
            "riptide.toml line 14: peers[0].asset: unknown asset \"EUR\""
        );
        let text = MINIMAL.replace("\"test.riptide\"", "\"nope.riptide\"");
        assert_eq!(
            error_of(&text),
            "riptide.toml line 3: node.ilp_address: \"nope.riptide\" is not a valid ILP address"
        );
    }

    #[test]
    fn syntax_type_and_unknown_key_errors_name_the_line() {
        let unknown = MINIMAL.replace(
            "max_packet_amount = 100",
            "max_packet_amount = 100\nmax_packet = 5",
        );
        let error = error_of(&unknown);
        assert!(
            error.starts_with("riptide.toml line 17: unknown field `max_packet`"),
            "{error}"
        );
        let wrong_type = MINIMAL.replace("scale = 2", "scale = \"two\"");
        let error = error_of(&wrong_type);
        assert!(error.starts_with("riptide.toml line 9:"), "{error}");
        let secret = MINIMAL.replace("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAEC");
        let error = error_of(&secret);
        assert!(
            error.contains("line 4") && error.contains("32 bytes"),
            "{error}"
        );
    }

    #[test]
    fn routes_take_every_form_the_readme_shows() {
        let routes = |list: &str| parse(&format!("{MINIMAL}routes = {list}\n"));
        let config = routes(r#"["g.acme", "g", "test", ""]"#).expect("valid routes");
        assert_eq!(config.state.peers[0].routes, ["g.acme", "g", "test", ""]);
        let error = routes(r#"["g."]"#).expect_err("an empty segment");
        assert!(error.to_string().contains("peers[0].routes[0]"), "{error}");
    }

    #[test]
    fn duplicate_tokens_and_outgoing_rules() {
        let text = format!("{MINIMAL}\n[[peers]]\nid = \"bob\"\nasset = \"USD\"\nincoming_tokens = [\"alice-token-0123456789\"]\n");
        assert!(error_of(&text)
            .contains("peers[1].incoming_tokens[0]: token already names another peer"));
        let text = format!("{MINIMAL}\n[[peers]]\nid = \"bob\"\nasset = \"USD\"\noutgoing_url = \"ftp://x\"\noutgoing_token = \"t\"\n");
        assert!(
            error_of(&text).contains("peers[1].outgoing_url: must start with http:// or https://")
        );
        let text = format!("{MINIMAL}\n[[peers]]\nid = \"bob\"\nasset = \"USD\"\noutgoing_url = \"https://x\"\noutgoing_token = \"t\"\noutgoing_ca_pem = \"not a certificate\"\n");
        assert!(error_of(&text).contains("peers[1].outgoing_ca_pem: must hold a PEM certificate"));
        let text = format!("{MINIMAL}\n[[peers]]\nid = \"bob\"\nasset = \"USD\"\noutgoing_url = \"https://x\"\noutgoing_token = \"t\"\n");
        assert!(parse(&text).is_ok(), "https:// peers are accepted");
        let text = format!(
            "{MINIMAL}\n[[peers]]\nid = \"bob\"\nasset = \"USD\"\noutgoing_url = \"http://x\"\n"
        );
        assert!(error_of(&text).contains("peers[1].outgoing_token: required"));
        let text = format!("{MINIMAL}\n[[peers]]\nid = \"bob\"\nasset = \"USD\"\noutgoing_url = \"http://x\"\noutgoing_token = \"t\\r\\nX-Evil: 1\"\n");
        assert!(error_of(&text).contains("peers[1].outgoing_token: must be visible ASCII"));
        let text = format!("{MINIMAL}\n[[peers]]\nid = \"bob\"\nasset = \"USD\"\noutgoing_url = \"http://x\"\noutgoing_token = \"t\"\noutgoing_pipeline_max = 0\n");
        assert!(error_of(&text).contains("peers[1].outgoing_pipeline_max: must be 1 to 64"));
    }

    #[test]
    fn environment_overrides() {
        let env = |name: &str| match name {
            "CONNECTOR_PORT" => Some("4000".to_owned()),
            "ILP_ADDRESS" => Some("g.elsewhere".to_owned()),
            "TIGERBEETLE_REPLICA_ADDRESSES" => Some("127.0.0.1:3000".to_owned()),
            "REDIS_URL" => Some("redis://127.0.0.1:6379/".to_owned()),
            "TIGERBEETLE_TWO_PHASE_TIMEOUT_SECONDS" => Some("90".to_owned()),
            "EXCHANGE_RATES_LIFETIME" => Some("5000".to_owned()),
            "WEBHOOK_URL" => Some("http://hooks/in".to_owned()),
            "SIGNATURE_SECRET" => Some("s3cret".to_owned()),
            "WEBHOOK_TIMEOUT" => Some("750".to_owned()),
            "OPEN_TELEMETRY_COLLECTOR_URLS" => Some("http://c1:4318, http://c2:4318".to_owned()),
            "OPEN_TELEMETRY_EXPORT_INTERVAL" => Some("1000".to_owned()),
            _ => None,
        };
        let config = Config::parse(MINIMAL, "riptide.toml", &env).expect("valid");
        assert_eq!(config.ledger.pending_timeout_s, 90);
        assert_eq!(config.state.rates.lifetime_ms, 5_000);
        assert_eq!(config.webhooks.url.as_deref(), Some("http://hooks/in"));
        assert_eq!(config.webhooks.secret.as_deref(), Some("s3cret"));
        assert_eq!(config.webhooks.timeout_ms, 750);
        assert_eq!(
            config.telemetry.otlp_urls,
            ["http://c1:4318", "http://c2:4318"]
        );
        assert_eq!(config.telemetry.export_interval_ms, 1_000);
        assert_eq!(config.node.connector_port, 4000);
        assert_eq!(config.node.ilp_address, "g.elsewhere");
        assert_eq!(config.ledger.kind, LedgerKind::TigerBeetle);
        assert_eq!(
            config.receipts.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379/")
        );
        let bad = |name: &str| (name == "CONNECTOR_PORT").then(|| "http".to_owned());
        let error = Config::parse(MINIMAL, "riptide.toml", &bad)
            .expect_err("bad port")
            .to_string();
        assert_eq!(
            error,
            "environment variable CONNECTOR_PORT: \"http\" is not a port"
        );
    }

    #[test]
    fn json_documents_name_paths() {
        let json = br#"{"version": 2, "assets": [{"code": "USD", "scale": 2, "ledger": 1}],
            "peers": [{"id": "a", "asset": "USD"}, {"id": "b", "asset": "EUR"}]}"#;
        let error = StateDocument::from_json(json)
            .expect_err("invalid")
            .to_string();
        assert_eq!(error, "peers[1].asset: unknown asset \"EUR\"");
        let unknown = br#"{"version": 2, "peerz": []}"#;
        assert!(StateDocument::from_json(unknown)
            .expect_err("invalid")
            .to_string()
            .contains("unknown field `peerz`"));
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
            let _ = StateDocument::from_json(text.as_bytes());
        }
    }
}
