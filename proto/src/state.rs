//! The state document: what the control plane pushes to every data plane (assets,
//! peers with their routes and limits, wallets, rates), its rules, and the paths and
//! lines that name a broken rule. Shared by `riptide` (which applies it) and
//! `riptidectl` (which edits and validates it before a push).

use crate::limits::{INCOMING_TOKEN_SIZE_MIN, OUTGOING_PIPELINE_MAX};
use crate::packet::address::is_route_prefix;
use crate::packet::Address;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use thiserror::Error;

/// One step in the path of a field: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Where a field is: `peers[1].max_packet_amount`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<PathSegment>);

impl FieldPath {
    pub fn key(&self, key: &str) -> FieldPath {
        let mut path = self.clone();
        path.0.push(PathSegment::Key(key.to_owned()));
        path
    }

    pub fn index(&self, index: usize) -> FieldPath {
        let mut path = self.clone();
        path.0.push(PathSegment::Index(index));
        path
    }

    pub fn root(key: &str) -> FieldPath {
        FieldPath::default().key(key)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if position == 0 => write!(f, "{key}")?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A JSON state document that cannot be read or breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct DocumentError(pub String);

/// A rule a field breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: FieldPath,
    pub message: String,
}

impl FieldError {
    pub fn new(path: FieldPath, message: impl Into<String>) -> FieldError {
        FieldError {
            path,
            message: message.into(),
        }
    }
}

fn default_outgoing_pipeline_max() -> u16 {
    1
}

fn default_rates_lifetime_ms() -> u64 {
    15_000
}

fn default_rates_stale_ms_max() -> u64 {
    300_000
}

/// What the admin API replaces at once: assets, peers (with their routes and
/// limits), wallets and rates, with a version.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateDocument {
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub assets: Vec<AssetConfig>,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    #[serde(default)]
    pub wallets: Vec<WalletConfig>,
    #[serde(default)]
    pub rates: RatesConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    pub code: String,
    pub scale: u8,
    /// TigerBeetle ledger number of this asset; nonzero and unique.
    pub ledger: u32,
    /// Deposited once into the asset's liquidity account.
    #[serde(default)]
    pub initial_liquidity: u64,
    /// An `asset.liquidity_low` webhook goes out when the asset's liquidity falls
    /// to this or below (Rafiki's `liquidityThreshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquidity_threshold: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: String,
    pub asset: String,
    /// Tokens this peer sends as `Authorization: Bearer`; each names one peer.
    #[serde(default)]
    pub incoming_tokens: Vec<String>,
    /// Where packets to this peer go: `http://` or `https://` (TLS, checked
    /// against the web's roots, `[tls] ca_files`, or `outgoing_ca_pem` alone).
    #[serde(default)]
    pub outgoing_url: Option<String>,
    /// A CA (PEM) that alone is trusted for this peer's `https://` endpoint: a
    /// pinned private CA, instead of the usual roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing_ca_pem: Option<String>,
    #[serde(default)]
    pub outgoing_token: Option<String>,
    /// Prepares to this peer that are ready in the same executor turn may leave
    /// together, pipelined in one send on one connection, up to this many. 1 (the
    /// default) sends each on a connection of its own. For peers that answer
    /// pipelined requests promptly: replies come back in order, so each waits for
    /// those ahead of it in its burst.
    #[serde(default = "default_outgoing_pipeline_max")]
    pub outgoing_pipeline_max: u16,
    /// What ILDCP answers; by default the child address `<ilp_address>.<id>`.
    #[serde(default)]
    pub static_ilp_address: Option<String>,
    /// Address prefixes routed to this peer.
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub max_packet_amount: Option<u64>,
    /// Deposited once into the peer's account: what it may send in.
    #[serde(default)]
    pub initial_liquidity: u64,
    #[serde(default)]
    pub rate_limit_packets_per_second: Option<u64>,
    #[serde(default)]
    pub throughput_limit_per_second: Option<u64>,
    /// Where the two limits above are counted: `dataplane` (each data plane
    /// allows the whole limit) or `shared` (every data plane together, through a
    /// bucket in the receipt store, leased a few milliseconds' worth at a time).
    #[serde(default, skip_serializing_if = "LimitScope::is_dataplane")]
    pub limit_scope: LimitScope,
    /// A `peer.liquidity_low` webhook goes out when the peer's liquidity falls to
    /// this or below (Rafiki's `liquidityThreshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquidity_threshold: Option<u64>,
}

/// Where a peer's rate and throughput limits are counted.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// Each data plane allows the whole limit.
    #[default]
    Dataplane,
    /// All data planes together allow the limit.
    Shared,
}

impl LimitScope {
    pub fn is_dataplane(&self) -> bool {
        *self == LimitScope::Dataplane
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    pub id: String,
    pub asset: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RatesConfig {
    /// The code the rates are relative to; by default the first asset's.
    #[serde(default)]
    pub base: Option<String>,
    /// Units of CODE per unit of base.
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
    /// Rafiki-format rates feed (env `EXCHANGE_RATES_URL`), polled by the data plane
    /// every `lifetime_ms` (and by `riptidectl serve`, which pushes what it read).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_rates_lifetime_ms")]
    pub lifetime_ms: u64,
    /// While the feed fails, its last good rates stay this long after they came
    /// (and never less than `lifetime_ms`); older, they are dropped (the file's own
    /// rates apply again, and without them cross-currency packets get T00) rather
    /// than converting at stale rates.
    #[serde(default = "default_rates_stale_ms_max")]
    pub stale_ms_max: u64,
}

fn is_segment_safe(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'-'))
}

impl StateDocument {
    /// Parses and validates a JSON state document (the admin API's body).
    pub fn from_json(bytes: &[u8]) -> Result<StateDocument, DocumentError> {
        let document: StateDocument = serde_json::from_slice(bytes)
            .map_err(|e| DocumentError(format!("state document: {e}")))?;
        document
            .validate_rules()
            .map_err(|e| DocumentError(format!("{}: {}", e.path, e.message)))?;
        Ok(document)
    }

    /// The rules of the state, each error with the path of its field.
    pub fn validate_rules(&self) -> Result<(), FieldError> {
        let codes = self.validate_assets()?;
        self.validate_peers(&codes)?;
        self.validate_wallets(&codes)?;
        self.validate_rates(&codes)
    }

    fn validate_assets(&self) -> Result<HashSet<&str>, FieldError> {
        let mut codes = HashSet::new();
        let mut ledgers = HashSet::new();
        for (index, asset) in self.assets.iter().enumerate() {
            let path = FieldPath::root("assets").index(index);
            if asset.code.is_empty() || asset.code.len() > 16 {
                return Err(FieldError::new(
                    path.key("code"),
                    "must be 1 to 16 characters",
                ));
            }
            if !codes.insert(asset.code.as_str()) {
                return Err(FieldError::new(
                    path.key("code"),
                    format!("asset {:?} is defined twice", asset.code),
                ));
            }
            if asset.ledger == 0 {
                return Err(FieldError::new(
                    path.key("ledger"),
                    "must be greater than 0",
                ));
            }
            if !ledgers.insert(asset.ledger) {
                return Err(FieldError::new(
                    path.key("ledger"),
                    format!("ledger {} belongs to another asset", asset.ledger),
                ));
            }
        }
        Ok(codes)
    }

    fn validate_peers(&self, codes: &HashSet<&str>) -> Result<(), FieldError> {
        let mut ids = HashSet::new();
        let mut tokens = HashSet::new();
        for (index, peer) in self.peers.iter().enumerate() {
            let path = FieldPath::root("peers").index(index);
            if !is_segment_safe(&peer.id) {
                return Err(FieldError::new(
                    path.key("id"),
                    "must be letters, digits, _ ~ or - (it becomes an address segment)",
                ));
            }
            if !ids.insert(peer.id.as_str()) {
                return Err(FieldError::new(
                    path.key("id"),
                    format!("peer {:?} is defined twice", peer.id),
                ));
            }
            if !codes.contains(peer.asset.as_str()) {
                return Err(FieldError::new(
                    path.key("asset"),
                    format!("unknown asset {:?}", peer.asset),
                ));
            }
            for (token_index, token) in peer.incoming_tokens.iter().enumerate() {
                let token_path = path.key("incoming_tokens").index(token_index);
                if token.bytes().any(|b| !b.is_ascii_graphic()) {
                    return Err(FieldError::new(
                        token_path,
                        "must be printable ASCII without spaces",
                    ));
                }
                // Guessing is slowed per source, not stopped: the token itself
                // must be long enough that guessing cannot pay.
                if token.len() < INCOMING_TOKEN_SIZE_MIN {
                    return Err(FieldError::new(
                        token_path,
                        format!("must be at least {INCOMING_TOKEN_SIZE_MIN} characters"),
                    ));
                }
                if !tokens.insert(token.as_str()) {
                    return Err(FieldError::new(
                        token_path,
                        "token already names another peer",
                    ));
                }
            }
            validate_outgoing(peer, &path)?;
            validate_limits(peer, &path)?;
            if let Some(address) = &peer.static_ilp_address {
                if Address::parse_str(address).is_err() {
                    return Err(FieldError::new(
                        path.key("static_ilp_address"),
                        format!("{address:?} is not a valid ILP address"),
                    ));
                }
            }
            for (route_index, prefix) in peer.routes.iter().enumerate() {
                if !is_route_prefix(prefix) {
                    let message = format!("{prefix:?} is not a valid address prefix (empty, a scheme such as \"g\", or an address)");
                    return Err(FieldError::new(
                        path.key("routes").index(route_index),
                        message,
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_wallets(&self, codes: &HashSet<&str>) -> Result<(), FieldError> {
        let mut ids = HashSet::new();
        for (index, wallet) in self.wallets.iter().enumerate() {
            let path = FieldPath::root("wallets").index(index);
            if !is_segment_safe(&wallet.id) {
                return Err(FieldError::new(
                    path.key("id"),
                    "must be letters, digits, _ ~ or -",
                ));
            }
            if !ids.insert(wallet.id.as_str()) {
                return Err(FieldError::new(
                    path.key("id"),
                    format!("wallet {:?} is defined twice", wallet.id),
                ));
            }
            if !codes.contains(wallet.asset.as_str()) {
                return Err(FieldError::new(
                    path.key("asset"),
                    format!("unknown asset {:?}", wallet.asset),
                ));
            }
        }
        Ok(())
    }

    fn validate_rates(&self, codes: &HashSet<&str>) -> Result<(), FieldError> {
        let path = FieldPath::root("rates");
        for (code, rate) in &self.rates.rates {
            if !rate.is_finite() || *rate <= 0.0 {
                return Err(FieldError::new(
                    path.key("rates").key(code),
                    "must be a positive number",
                ));
            }
        }
        if let Some(base) = &self.rates.base {
            // The base is 1 by definition; listing it among the rates is optional.
            if base.is_empty() {
                return Err(FieldError::new(path.key("base"), "must not be empty"));
            }
        }
        if let Some(url) = &self.rates.url {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(FieldError::new(
                    path.key("url"),
                    "must be an http:// or https:// URL",
                ));
            }
        }

        let base = self
            .rates
            .base
            .as_deref()
            .or_else(|| self.assets.first().map(|a| a.code.as_str()));
        if self.rates.url.is_none() && codes.len() > 1 {
            for code in codes {
                if Some(*code) != base && !self.rates.rates.contains_key(*code) {
                    return Err(FieldError::new(
                        path.key("rates"),
                        format!("no rate for asset {code:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn validate_outgoing(peer: &PeerConfig, path: &FieldPath) -> Result<(), FieldError> {
    if !(1..=OUTGOING_PIPELINE_MAX).contains(&peer.outgoing_pipeline_max) {
        return Err(FieldError::new(
            path.key("outgoing_pipeline_max"),
            format!("must be 1 to {OUTGOING_PIPELINE_MAX}"),
        ));
    }
    match (&peer.outgoing_url, &peer.outgoing_token) {
        (Some(url), token) => {
            let Some(rest) = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
            else {
                return Err(FieldError::new(
                    path.key("outgoing_url"),
                    "must start with http:// or https://",
                ));
            };
            if rest.is_empty() || rest.starts_with('/') {
                return Err(FieldError::new(path.key("outgoing_url"), "has no host"));
            }
            let pinned = peer.outgoing_ca_pem.as_deref();
            if pinned.is_some_and(|pem| !pem.contains("-----BEGIN CERTIFICATE-----")) {
                return Err(FieldError::new(
                    path.key("outgoing_ca_pem"),
                    "must hold a PEM certificate",
                ));
            }
            if token.as_deref().is_none_or(str::is_empty) {
                return Err(FieldError::new(
                    path.key("outgoing_token"),
                    "required when outgoing_url is set",
                ));
            }
            // Both go into HTTP request heads as they are.
            if !url.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(FieldError::new(
                    path.key("outgoing_url"),
                    "must be visible ASCII, without spaces or control characters",
                ));
            }
            if !token
                .as_deref()
                .is_some_and(|t| t.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(FieldError::new(
                    path.key("outgoing_token"),
                    "must be visible ASCII, without spaces or control characters",
                ));
            }
            Ok(())
        }
        (None, Some(_)) => Err(FieldError::new(
            path.key("outgoing_token"),
            "set without outgoing_url",
        )),
        (None, None) => Ok(()),
    }
}

fn validate_limits(peer: &PeerConfig, path: &FieldPath) -> Result<(), FieldError> {
    let checks = [
        ("max_packet_amount", peer.max_packet_amount),
        (
            "rate_limit_packets_per_second",
            peer.rate_limit_packets_per_second,
        ),
        (
            "throughput_limit_per_second",
            peer.throughput_limit_per_second,
        ),
    ];
    for (key, value) in checks {
        if value == Some(0) {
            return Err(FieldError::new(
                path.key(key),
                "must be greater than 0 (leave it out for no limit)",
            ));
        }
    }
    Ok(())
}

/// The line (from 1) of a byte offset in `text`: for TOML errors that carry a span.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map(|before| before.matches('\n').count() + 1)
        .unwrap_or(1)
}

/// The line of the field at `path` in the TOML text, or of its nearest ancestor.
/// Public so that `riptidectl` names lines in its state file the same way.
pub fn locate(text: &str, path: &FieldPath) -> usize {
    let Ok(document) = toml_edit::ImDocument::parse(text) else {
        return 1;
    };
    let mut item = document.as_item();
    let mut best = 1;
    for segment in &path.0 {
        let (next, key_span) = match segment {
            PathSegment::Key(key) => {
                let key_span = item
                    .as_table_like()
                    .and_then(|t| t.get_key_value(key))
                    .and_then(|(k, _)| k.span());
                let key_span = key_span.or_else(|| {
                    item.as_table()
                        .and_then(|t| t.key(key))
                        .and_then(|k| k.span())
                });
                (item.get(key.as_str()), key_span)
            }
            PathSegment::Index(index) => (item.get(*index), None),
        };
        let Some(next) = next else { break };
        if let Some(span) = key_span.or_else(|| next.span()) {
            best = line_of(text, span.start);
        }
        item = next;
    }
    best
}
