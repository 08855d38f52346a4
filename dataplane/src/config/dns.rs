//! `[dns]`: how peers' and SPSP servers' host names are resolved, off the shards'
//! threads (see `crate::resolver`).

use super::{FieldError, FieldPath};

/// Longest `timeout_ms`: a packet waits at most twice this for a name, and
/// packets live 30 s.
const DNS_TIMEOUT_MS_MAX: u64 = 10_000;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Servers to ask, `ip` or `ip:port`; empty means those of /etc/resolv.conf.
    pub servers: Vec<String>,
    /// Longest wait for one name's addresses, over all servers.
    pub timeout_ms: u64,
    /// Shortest time an answer is kept (and a failure remembered).
    pub ttl_s_min: u32,
    /// Longest time an answer is kept, whatever its TTL.
    pub ttl_s_max: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout_ms: 2_000,
            ttl_s_min: 5,
            ttl_s_max: 300,
        }
    }
}

impl DnsConfig {
    /// The configured servers, each with its port (53 unless given).
    pub fn server_addresses(&self) -> Result<Vec<SocketAddr>, FieldError> {
        self.servers
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let text = text.trim();
                text.parse::<SocketAddr>()
                    .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| {
                        FieldError::new(
                            FieldPath::root("dns").key("servers").index(index),
                            format!("{text:?} is not an IP address, with or without a port"),
                        )
                    })
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        let path = FieldPath::root("dns");
        self.server_addresses()?;
        if !(1..=DNS_TIMEOUT_MS_MAX).contains(&self.timeout_ms) {
            return Err(FieldError::new(
                path.key("timeout_ms"),
                format!("must be from 1 to {DNS_TIMEOUT_MS_MAX}"),
            ));
        }
        if self.ttl_s_min == 0 || self.ttl_s_min > self.ttl_s_max {
            return Err(FieldError::new(
                path.key("ttl_s_min"),
                "must be at least 1 and at most ttl_s_max",
            ));
        }
        Ok(())
    }
}
