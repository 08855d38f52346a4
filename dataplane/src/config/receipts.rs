//! `[receipts]`: where STREAM connection totals are kept: the embedded store, or
//! Redis (env `REDIS_URL`), over TLS with `rediss://` (env
//! `REDIS_TLS_CA_FILE_PATH`, `REDIS_TLS_CERT_FILE_PATH`, `REDIS_TLS_KEY_FILE_PATH`,
//! as Rafiki names them).

use super::{Environment, FieldError, FieldPath};
use serde::Deserialize;
use std::path::PathBuf;

/// More replicas than any sensible deployment runs per primary.
const REDIS_WAIT_REPLICAS_MAX: u32 = 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiptsConfig {
    /// `redis://` or `rediss://` (TLS); absent means the embedded in-process store.
    pub redis_url: Option<String>,
    /// PEM CAs that alone are trusted for the Redis server's certificate; without
    /// it, the web's roots (webpki-roots).
    pub redis_tls_ca_file: Option<PathBuf>,
    /// A client certificate chain (PEM) for Redis servers that ask for one
    /// (`tls-auth-clients yes`), with its key in `redis_tls_key_file`.
    pub redis_tls_cert_file: Option<PathBuf>,
    pub redis_tls_key_file: Option<PathBuf>,
    /// `redis_url` is a node of a Redis Cluster: every operation goes to the node
    /// that holds its keys' slot, and follows its redirects and failovers.
    pub redis_cluster: bool,
    /// More cluster nodes to learn the cluster's layout from, besides
    /// `redis_url` (any one answering is enough).
    pub redis_cluster_urls: Vec<String>,
    /// Replicas that must have a credit before its packet is fulfilled (Redis
    /// `WAIT`): with 1, a failover that promotes an up-to-date replica loses no
    /// credit that was answered. 0 answers once the primary has it.
    pub redis_wait_replicas: u32,
    /// How long a STREAM connection's total outlives its last packet. A connection
    /// idle for longer starts again from zero, and so do its receipts.
    pub connection_ttl_s: u64,
    /// Longest wait for one Redis round trip; past it the packet is rejected T00.
    pub request_timeout_ms: u64,
}

impl Default for ReceiptsConfig {
    fn default() -> Self {
        ReceiptsConfig {
            redis_url: None,
            redis_tls_ca_file: None,
            redis_tls_cert_file: None,
            redis_tls_key_file: None,
            redis_cluster: false,
            redis_cluster_urls: Vec::new(),
            redis_wait_replicas: 0,
            connection_ttl_s: 86_400,
            request_timeout_ms: 2_000,
        }
    }
}

impl ReceiptsConfig {
    /// Rafiki's variables; an empty one counts as unset, as Rafiki reads them.
    pub fn apply_environment(&mut self, env: Environment<'_>) {
        let set = |name: &str| env(name).filter(|value| !value.is_empty());
        if let Some(value) = set("REDIS_URL") {
            self.redis_url = Some(value);
        }
        if let Some(value) = set("REDIS_TLS_CA_FILE_PATH") {
            self.redis_tls_ca_file = Some(value.into());
        }
        if let Some(value) = set("REDIS_TLS_CERT_FILE_PATH") {
            self.redis_tls_cert_file = Some(value.into());
        }
        if let Some(value) = set("REDIS_TLS_KEY_FILE_PATH") {
            self.redis_tls_key_file = Some(value.into());
        }
    }

    /// Whether Redis is reached over TLS: a `rediss://` URL, or TLS files given
    /// with a `redis://` one (Rafiki's client then speaks TLS too).
    pub fn redis_tls(&self) -> bool {
        let url = self.redis_url.as_deref().unwrap_or_default();
        url.starts_with("rediss://")
            || self.redis_tls_ca_file.is_some()
            || self.redis_tls_cert_file.is_some()
    }

    /// The URL to connect to, `rediss://` whenever [`Self::redis_tls`].
    pub fn redis_url_to_connect(&self) -> Option<String> {
        let url = self.redis_url.as_deref()?;
        match url.strip_prefix("redis://") {
            Some(rest) if self.redis_tls() => Some(format!("rediss://{rest}")),
            _ => Some(url.to_owned()),
        }
    }

    /// Every URL to connect to: `first` (from [`Self::redis_url_to_connect`]),
    /// then the other cluster nodes, each `rediss://` whenever [`Self::redis_tls`].
    pub fn redis_urls_to_connect(&self, first: &str) -> Vec<String> {
        let mut urls = vec![first.to_owned()];
        if self.redis_cluster {
            urls.extend(self.redis_cluster_urls.iter().map(
                |url| match url.strip_prefix("redis://") {
                    Some(rest) if self.redis_tls() => format!("rediss://{rest}"),
                    _ => url.clone(),
                },
            ));
        }
        urls
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        let path = FieldPath::root("receipts");
        let valid_url = |url: &str| url.starts_with("redis://") || url.starts_with("rediss://");
        if let Some(url) = &self.redis_url {
            if !valid_url(url) {
                return Err(FieldError::new(
                    path.key("redis_url"),
                    "must be redis://host[:port][/db] or rediss://host[:port][/db]",
                ));
            }
        }
        if let Some(index) = self
            .redis_cluster_urls
            .iter()
            .position(|url| !valid_url(url))
        {
            return Err(FieldError::new(
                path.key("redis_cluster_urls").index(index),
                "must be redis://host:port or rediss://host:port",
            ));
        }
        let cluster_settings = self.redis_cluster || !self.redis_cluster_urls.is_empty();
        if cluster_settings && self.redis_url.is_none() {
            return Err(FieldError::new(
                path.key("redis_cluster"),
                "a Redis Cluster needs redis_url (one of its nodes)",
            ));
        }
        if !self.redis_cluster && !self.redis_cluster_urls.is_empty() {
            return Err(FieldError::new(
                path.key("redis_cluster_urls"),
                "needs redis_cluster = true",
            ));
        }
        if self.redis_wait_replicas > REDIS_WAIT_REPLICAS_MAX {
            return Err(FieldError::new(
                path.key("redis_wait_replicas"),
                format!("at most {REDIS_WAIT_REPLICAS_MAX}"),
            ));
        }
        if self.redis_tls_cert_file.is_some() != self.redis_tls_key_file.is_some() {
            return Err(FieldError::new(
                path.key("redis_tls_cert_file"),
                "redis_tls_cert_file and redis_tls_key_file go together",
            ));
        }
        let tls_files = self.redis_tls_ca_file.is_some() || self.redis_tls_cert_file.is_some();
        if tls_files && self.redis_url.is_none() {
            return Err(FieldError::new(
                path.key("redis_tls_ca_file"),
                "TLS files need a redis_url",
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(FieldError::new(
                path.key("request_timeout_ms"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn rafiki_variables_and_tls_upgrade() {
        let mut config = ReceiptsConfig::default();
        let env = env_of(&[
            ("REDIS_URL", "redis://cache:6380/2"),
            ("REDIS_TLS_CA_FILE_PATH", "/etc/ca.pem"),
            ("REDIS_TLS_CERT_FILE_PATH", ""),
        ]);
        config.apply_environment(&env);
        assert_eq!(config.redis_tls_ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.redis_tls_cert_file, None, "empty means unset");
        assert!(config.redis_tls());
        assert_eq!(
            config.redis_url_to_connect().as_deref(),
            Some("rediss://cache:6380/2")
        );
        assert!(config.validate().is_ok());
    }

    #[test]
    fn plain_url_stays_plain_and_rules_hold() {
        let mut config = ReceiptsConfig {
            redis_url: Some("redis://127.0.0.1:6379/".into()),
            ..ReceiptsConfig::default()
        };
        assert!(!config.redis_tls());
        assert_eq!(
            config.redis_url_to_connect().as_deref(),
            Some("redis://127.0.0.1:6379/")
        );
        config.redis_tls_cert_file = Some("/etc/client.pem".into());
        let error = config.validate().expect_err("cert without key");
        assert_eq!(error.path.to_string(), "receipts.redis_tls_cert_file");
        config.redis_tls_key_file = Some("/etc/client.key".into());
        assert!(config.validate().is_ok());
        config.redis_url = Some("http://127.0.0.1:6379".into());
        let error = config.validate().expect_err("not redis");
        assert_eq!(error.path.to_string(), "receipts.redis_url");
    }

    #[test]
    fn cluster_settings_name_their_field() {
        let mut config = ReceiptsConfig {
            redis_url: Some("redis://10.0.0.1:6379".into()),
            redis_cluster_urls: vec!["redis://10.0.0.2:6379".into()],
            redis_tls_ca_file: Some("/etc/ca.pem".into()),
            ..ReceiptsConfig::default()
        };
        let error = config.validate().expect_err("nodes without cluster");
        assert_eq!(error.path.to_string(), "receipts.redis_cluster_urls");
        config.redis_cluster = true;
        assert!(config.validate().is_ok());
        let first = config.redis_url_to_connect().expect("a URL");
        assert_eq!(
            config.redis_urls_to_connect(&first),
            vec!["rediss://10.0.0.1:6379", "rediss://10.0.0.2:6379"],
            "every node over TLS, as the first"
        );
        config.redis_cluster_urls.push("10.0.0.3:6379".into());
        let error = config.validate().expect_err("not a URL");
        assert_eq!(error.path.to_string(), "receipts.redis_cluster_urls[1]");
        config.redis_cluster_urls.pop();
        config.redis_wait_replicas = 17;
        let error = config.validate().expect_err("too many replicas");
        assert_eq!(error.path.to_string(), "receipts.redis_wait_replicas");
        config.redis_wait_replicas = 1;
        config.redis_url = None;
        config.redis_tls_ca_file = None;
        let error = config.validate().expect_err("cluster without a URL");
        assert_eq!(error.path.to_string(), "receipts.redis_cluster");
    }
}
