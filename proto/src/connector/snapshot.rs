//! The dynamic state compiled for the packet path: peers indexed, tokens hashed, routes
//! in a longest-prefix table, rates ready. Built once per state push and shared by
//! every shard as an immutable `Arc`; packets in flight finish on the snapshot they
//! started with.

use crate::http1::split_url;
use crate::ledger::{account_id, AccountKind};
use crate::packet::Address;
use crate::rates::{AssetRef, RateTable};
use crate::routing::RoutingTable;
use crate::state::{LimitScope, PeerConfig, StateDocument};
use std::collections::HashMap;
use thiserror::Error;

/// Index of a peer in [`Snapshot::peers`].
pub type PeerIndex = u32;
/// Index of an asset in [`Snapshot::assets`].
pub type AssetIndex = u32;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnapshotError {
    #[error("{0}")]
    Invalid(String),
}

/// An asset and the ledger accounts that belong to it.
#[derive(Debug, Clone)]
pub struct Asset {
    pub code: String,
    pub scale: u8,
    pub ledger: u32,
    pub liquidity_account_id: u128,
    pub settlement_account_id: u128,
}

/// Where a peer's packets go when Riptide forwards to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEndpoint {
    /// `host:port` to connect to.
    pub authority: String,
    /// Whether the connection is TLS (`https://`), and the name its certificate
    /// must carry (the host, without the port).
    pub tls: bool,
    pub server_name: String,
    /// A CA (PEM) that alone is trusted for this endpoint, when pinned.
    pub pinned_ca_pem: Option<String>,
    /// What keep-alive pools and bursts are kept by: the scheme and authority.
    pub key: String,
    /// Path and query sent in the request line.
    pub path: String,
    /// The complete `Authorization` header value: `Bearer <token>`.
    pub authorization: String,
    /// Prepares that may share one send and connection (HTTP/1.1 pipelining); 1
    /// sends each on a connection of its own.
    pub pipeline_max: usize,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub id: String,
    pub asset: AssetIndex,
    pub account_id: u128,
    /// What ILDCP answers this peer: its static address or `<own address>.<id>`.
    pub ildcp_address: String,
    pub outgoing: Option<PeerEndpoint>,
    pub max_packet_amount: Option<u64>,
    pub rate_limit_packets_per_second: Option<u64>,
    pub throughput_limit_per_second: Option<u64>,
    /// The limits are counted by every data plane together.
    pub limits_shared: bool,
}

/// Where a route leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTarget {
    Peer(PeerIndex),
    /// Riptide's own address space: the STREAM receiver.
    Local,
}

#[derive(Debug)]
pub struct Snapshot {
    pub version: u64,
    pub own_address: String,
    pub assets: Vec<Asset>,
    pub peers: Vec<Peer>,
    pub peer_by_id: HashMap<String, PeerIndex>,
    /// SHA-256 of each incoming token, so tokens never sit in memory in clear and a
    /// lookup compares fixed-size digests.
    pub peer_by_token_hash: HashMap<[u8; 32], PeerIndex>,
    pub routes: RoutingTable<RouteTarget>,
    pub rates: RateTable,
    /// Whether rates are awaited from a feed (`rates.url`) that has brought none yet
    /// (a data plane started before `riptidectl serve` pushed the feed's rates): a
    /// missing rate is then temporary. Once the feed has answered, a code it left
    /// out is missing for good, as in Rafiki.
    pub rates_awaited: bool,
    /// Local wallet addresses and their receiving accounts.
    pub wallets: Vec<Wallet>,
    pub wallet_by_id: HashMap<String, usize>,
}

/// A local wallet address: STREAM payments to it credit its receiving account.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub id: String,
    pub asset: AssetIndex,
    pub account_id: u128,
}

pub fn token_hash(token: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl Snapshot {
    /// Compiles a validated state document for the node at `own_address`. Errors
    /// here are programming or validation gaps, reported rather than trusted.
    pub fn build(own_address: &str, state: &StateDocument) -> Result<Snapshot, SnapshotError> {
        Address::parse_str(own_address)
            .map_err(|e| SnapshotError::Invalid(format!("node.ilp_address: {e}")))?;
        let assets = build_assets(state);
        let asset_index: HashMap<String, AssetIndex> = assets
            .iter()
            .enumerate()
            .map(|(i, a)| (a.code.clone(), i as AssetIndex))
            .collect();
        let mut snapshot = Snapshot {
            version: state.version,
            own_address: own_address.to_owned(),
            assets,
            peers: Vec::with_capacity(state.peers.len()),
            peer_by_id: HashMap::new(),
            peer_by_token_hash: HashMap::new(),
            routes: RoutingTable::new(),
            rates: build_rates(state)?,
            rates_awaited: state.rates.url.is_some() && state.rates.rates.is_empty(),
            wallets: Vec::with_capacity(state.wallets.len()),
            wallet_by_id: HashMap::new(),
        };
        snapshot.routes.insert(own_address, RouteTarget::Local);
        for peer_config in &state.peers {
            snapshot.add_peer(own_address, peer_config, &asset_index)?;
        }
        for wallet in &state.wallets {
            let asset = *asset_index.get(&wallet.asset).ok_or_else(|| {
                SnapshotError::Invalid(format!(
                    "wallets.{}: unknown asset {}",
                    wallet.id, wallet.asset
                ))
            })?;
            let account_id = account_id(AccountKind::Receiving, &wallet.id);
            snapshot
                .wallet_by_id
                .insert(wallet.id.clone(), snapshot.wallets.len());
            snapshot.wallets.push(Wallet {
                id: wallet.id.clone(),
                asset,
                account_id,
            });
        }
        Ok(snapshot)
    }

    fn add_peer(
        &mut self,
        own_address: &str,
        config: &PeerConfig,
        asset_index: &HashMap<String, AssetIndex>,
    ) -> Result<(), SnapshotError> {
        let index = self.peers.len() as PeerIndex;
        let asset = *asset_index.get(&config.asset).ok_or_else(|| {
            SnapshotError::Invalid(format!(
                "peers.{}: unknown asset {}",
                config.id, config.asset
            ))
        })?;
        let ildcp_address = config
            .static_ilp_address
            .clone()
            .unwrap_or_else(|| format!("{}.{}", own_address, config.id));
        let outgoing = match (&config.outgoing_url, &config.outgoing_token) {
            (Some(url), Some(token)) => {
                let endpoint = parse_endpoint(url, token).map_err(|e| {
                    SnapshotError::Invalid(format!("peers.{}.outgoing_url: {e}", config.id))
                })?;
                // Validated with the document (config.rs); a burst clamps it anyway.
                Some(PeerEndpoint {
                    pipeline_max: usize::from(config.outgoing_pipeline_max),
                    ..endpoint.pinned_to(config.outgoing_ca_pem.clone())
                })
            }
            _ => None,
        };
        for token in &config.incoming_tokens {
            if self
                .peer_by_token_hash
                .insert(token_hash(token.as_bytes()), index)
                .is_some()
            {
                return Err(SnapshotError::Invalid(format!(
                    "peers.{}.incoming_tokens: token already names another peer",
                    config.id
                )));
            }
        }
        // The child address routes back to the peer, as ILDCP promised it.
        self.routes.insert(&ildcp_address, RouteTarget::Peer(index));
        for prefix in &config.routes {
            self.routes.insert(prefix, RouteTarget::Peer(index));
        }
        self.peer_by_id.insert(config.id.clone(), index);
        self.peers.push(Peer {
            id: config.id.clone(),
            asset,
            account_id: account_id(AccountKind::Peer, &config.id),
            ildcp_address,
            outgoing,
            max_packet_amount: config.max_packet_amount,
            rate_limit_packets_per_second: config.rate_limit_packets_per_second,
            throughput_limit_per_second: config.throughput_limit_per_second,
            limits_shared: config.limit_scope == LimitScope::Shared,
        });
        Ok(())
    }

    pub fn wallet(&self, id: &str) -> Option<&Wallet> {
        self.wallet_by_id.get(id).map(|&index| &self.wallets[index])
    }

    pub fn peer(&self, index: PeerIndex) -> &Peer {
        &self.peers[index as usize]
    }

    pub fn asset(&self, index: AssetIndex) -> &Asset {
        &self.assets[index as usize]
    }

    pub fn asset_ref(&self, index: AssetIndex) -> AssetRef<'_> {
        let asset = self.asset(index);
        AssetRef {
            code: &asset.code,
            scale: asset.scale,
        }
    }

    /// The peer an incoming bearer token names, if any.
    pub fn authenticate(&self, token: &[u8]) -> Option<PeerIndex> {
        let hash = token_hash(token);
        let (stored, index) = self.peer_by_token_hash.get_key_value(&hash)?;
        // The map found the entry by hash; compare the full digest again in constant
        // time so that the comparison itself does not depend on where bytes differ.
        let equal = stored
            .iter()
            .zip(hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        equal.then_some(*index)
    }
}

fn build_assets(state: &StateDocument) -> Vec<Asset> {
    state
        .assets
        .iter()
        .map(|asset| Asset {
            code: asset.code.clone(),
            scale: asset.scale,
            ledger: asset.ledger,
            liquidity_account_id: account_id(AccountKind::Liquidity, &asset.code),
            settlement_account_id: account_id(AccountKind::Settlement, &asset.code),
        })
        .collect()
}

fn build_rates(state: &StateDocument) -> Result<RateTable, SnapshotError> {
    let base = state.rates.base.clone().unwrap_or_else(|| {
        state
            .assets
            .first()
            .map(|a| a.code.clone())
            .unwrap_or_else(|| "USD".to_owned())
    });
    RateTable::from_f64_map(&base, &state.rates.rates)
        .map_err(|e| SnapshotError::Invalid(format!("rates: {e}")))
}

impl PeerEndpoint {
    /// The endpoint with `pinned_ca_pem` alone trusted for it. Its connections
    /// are kept apart from those made under other trust: a connection to the same
    /// host checked against another CA must never carry this peer's packets.
    pub fn pinned_to(self, pinned_ca_pem: Option<String>) -> PeerEndpoint {
        let Some(pem) = pinned_ca_pem else {
            return self;
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, pem.as_bytes());
        let fingerprint: String = digest.as_ref()[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        PeerEndpoint {
            key: format!("{} pinned:{fingerprint}", self.key),
            pinned_ca_pem: Some(pem),
            ..self
        }
    }
}

/// Splits `http[s]://host[:port]/path` into what the HTTP client needs.
pub fn parse_endpoint(url: &str, token: &str) -> Result<PeerEndpoint, String> {
    // Both go into HTTP request heads as they are: a CR or LF would add headers.
    if !url
        .bytes()
        .chain(token.bytes())
        .all(|b| b.is_ascii_graphic())
    {
        return Err("URL and token must be visible ASCII, without spaces".to_owned());
    }
    let parts = split_url(url)
        .ok_or_else(|| "must be an http:// or https:// URL with a host".to_owned())?;
    Ok(PeerEndpoint {
        key: format!(
            "{}://{}",
            if parts.tls { "https" } else { "http" },
            parts.authority
        ),
        tls: parts.tls,
        server_name: parts.host.to_owned(),
        pinned_ca_pem: None,
        authority: parts.authority,
        path: parts.path,
        authorization: format!("Bearer {token}"),
        pipeline_max: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_that_would_inject_headers_are_refused() {
        assert!(parse_endpoint("http://127.0.0.1:8080/ilp", "tok\r\nX-Evil: 1").is_err());
        assert!(parse_endpoint("http://127.0.0.1:8080/ilp HTTP/1.1\r\n", "tok").is_err());
        assert!(parse_endpoint("http://127.0.0.1:8080/ilp", "two words").is_err());
    }

    #[test]
    fn endpoints_parse() {
        let endpoint = parse_endpoint("http://127.0.0.1:8080/ilp", "tok").expect("valid");
        assert_eq!(endpoint.authority, "127.0.0.1:8080");
        assert_eq!(endpoint.path, "/ilp");
        assert_eq!(endpoint.authorization, "Bearer tok");
        assert_eq!(
            parse_endpoint("http://host", "t").expect("valid").authority,
            "host:80"
        );
        let secure = parse_endpoint("https://peer.example/ilp", "t").expect("valid");
        assert_eq!(
            (
                secure.tls,
                secure.authority.as_str(),
                secure.server_name.as_str()
            ),
            (true, "peer.example:443", "peer.example")
        );
        assert_eq!(secure.key, "https://peer.example:443");
        let plain = parse_endpoint("http://peer.example:8443/ilp", "t").expect("valid");
        assert_ne!(
            plain.key,
            parse_endpoint("https://peer.example:8443/ilp", "t")
                .expect("valid")
                .key
        );
        assert!(parse_endpoint("ftp://host", "t").is_err());
        let pinned = secure
            .clone()
            .pinned_to(Some("-----BEGIN CERTIFICATE-----".into()));
        assert_ne!(
            pinned.key, secure.key,
            "pinned connections are pooled apart"
        );
        assert_eq!(secure.clone().pinned_to(None), secure);
        assert!(parse_endpoint("http:///x", "t").is_err());
    }
}
