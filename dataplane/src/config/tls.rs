//! `[tls]`: which CAs `https://` peers and services are trusted by, and the
//! certificate Riptide serves when its packet or public port speaks TLS itself
//! (for deployments without a TLS-terminating proxy in front).

use super::{FieldError, FieldPath};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM files of CAs trusted besides the web's roots (a private PKI).
    pub ca_files: Vec<PathBuf>,
    /// The certificate chain (PEM, leaf first) served on the TLS ports.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// ILP-over-HTTP on `connector_port` over TLS only.
    pub connector_port: bool,
    /// SPSP on `public_port` over TLS only.
    pub public_port: bool,
}

impl TlsConfig {
    /// Whether any port serves TLS.
    pub fn serves(&self) -> bool {
        self.connector_port || self.public_port
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        let path = FieldPath::root("tls");
        let files = (self.cert_file.is_some(), self.key_file.is_some());
        if files.0 != files.1 {
            return Err(FieldError::new(
                path.key("cert_file"),
                "cert_file and key_file go together",
            ));
        }
        if self.serves() && !files.0 {
            let port = if self.connector_port {
                "connector_port"
            } else {
                "public_port"
            };
            return Err(FieldError::new(
                path.key(port),
                "TLS on a port needs cert_file and key_file",
            ));
        }
        if files.0 && !self.serves() {
            return Err(FieldError::new(
                path.key("cert_file"),
                "no port serves it: set connector_port or public_port to true",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_port_needs_both_files_and_files_need_a_port() {
        let served = TlsConfig {
            cert_file: Some("/etc/riptide/chain.pem".into()),
            key_file: Some("/etc/riptide/key.pem".into()),
            connector_port: true,
            ..TlsConfig::default()
        };
        assert!(served.validate().is_ok());
        let no_key = TlsConfig {
            key_file: None,
            ..served.clone()
        };
        let error = no_key.validate().expect_err("no key");
        assert_eq!(error.path.to_string(), "tls.cert_file");
        let no_files = TlsConfig {
            public_port: true,
            ..TlsConfig::default()
        };
        let error = no_files.validate().expect_err("no files");
        assert_eq!(error.path.to_string(), "tls.public_port");
        let unused = TlsConfig {
            connector_port: false,
            ..served
        };
        let error = unused.validate().expect_err("no port");
        assert!(error.message.contains("no port serves it"), "{error:?}");
    }
}
