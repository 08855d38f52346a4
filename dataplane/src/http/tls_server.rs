//! TLS served on the packet and public ports (`[tls] connector_port`,
//! `public_port`), for deployments without a terminating proxy in front. The
//! handshake runs on the connection's own task, after the gate admitted it, within
//! the head timeout: a client that opens a connection and never finishes its
//! handshake holds its place no longer than one that never finishes its head.
//!
//! The certificate is read again when its files change (checked at most every
//! [`RELOAD_CHECK_INTERVAL`], on a handshake), so a renewed certificate is served
//! without a restart; a renewal that does not load keeps the last good one, logs
//! why, and is tried again at the next check. The check is a `stat` of two files
//! every 10 s, on the shard that handshakes then: cheap enough for a shard.

use super::transport::Transport;
use futures_rustls::TlsAcceptor;
use glommio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often a handshake may look at the files' modification times.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// The TLS configuration of each port that serves TLS.
#[derive(Default)]
pub struct TlsPorts {
    pub connector: Option<Arc<ServerConfig>>,
    pub public: Option<Arc<ServerConfig>>,
}

impl TlsPorts {
    /// Reads `[tls] cert_file` and `key_file` once for the ports that serve TLS.
    pub fn from_config(config: &crate::config::TlsConfig) -> Result<TlsPorts, String> {
        let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
            return Ok(TlsPorts::default());
        };
        if !config.serves() {
            return Ok(TlsPorts::default());
        }
        let server = server_config(cert_file, key_file)?;
        Ok(TlsPorts {
            connector: config.connector_port.then(|| Arc::clone(&server)),
            public: config.public_port.then_some(server),
        })
    }
}

/// The server configuration of the TLS ports, from a chain and a key in PEM files.
/// An error names the file and what is wrong with it.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, String> {
    let resolver = ReloadingCertificate::load(cert_file, key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The connection's byte stream: plain, or TLS once its handshake finished within
/// `timeout`. None when the handshake failed or took too long (the connection is
/// then dropped: there is nobody to answer).
pub async fn accept(
    tcp: TcpStream,
    tls: Option<&Arc<ServerConfig>>,
    timeout: Duration,
) -> Option<Transport> {
    // Ignoring a failure only costs latency, never correctness.
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else {
        return Some(Transport::Plain(tcp));
    };
    let handshake = TlsAcceptor::from(Arc::clone(config)).accept(tcp);
    let finished = futures_lite::future::or(async { Some(handshake.await) }, async {
        glommio::timer::sleep(timeout).await;
        None
    })
    .await;
    match finished {
        Some(Ok(stream)) => Some(Transport::Served(Box::new(stream))),
        Some(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            None
        }
        None => None,
    }
}

/// The served certificate, read again from its files when they change.
#[derive(Debug)]
struct ReloadingCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    modified: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

impl ReloadingCertificate {
    fn load(cert_file: &Path, key_file: &Path) -> Result<ReloadingCertificate, String> {
        let modified = modification_times(cert_file, key_file);
        let key = certified_key(cert_file, key_file)?;
        Ok(ReloadingCertificate {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: Mutex::new(Loaded {
                key,
                modified,
                checked: Instant::now(),
            }),
        })
    }

    /// The certificate to serve now, reloaded first when its files changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = crate::clock::lock(&self.current);
        if loaded.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            loaded.checked = Instant::now();
            let modified = modification_times(&self.cert_file, &self.key_file);
            if modified != loaded.modified {
                // The times are kept only once the files loaded, so that a renewal
                // caught half-written is read again at the next check.
                match certified_key(&self.cert_file, &self.key_file) {
                    Ok(key) => {
                        tracing::info!(file = %self.cert_file.display(), "TLS certificate reloaded");
                        loaded.key = key;
                        loaded.modified = modified;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "TLS certificate not reloaded; the last good one stays");
                    }
                }
            }
        }
        Arc::clone(&loaded.key)
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn modification_times(
    cert_file: &Path,
    key_file: &Path,
) -> (Option<SystemTime>, Option<SystemTime>) {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (modified(cert_file), modified(key_file))
}

fn certified_key(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, String> {
    let named = |path: &Path, message: String| format!("{}: {message}", path.display());
    let chain = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| named(cert_file, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named(cert_file, e.to_string()))?;
    if chain.is_empty() {
        return Err(named(cert_file, "holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| named(key_file, e.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| named(key_file, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signer);
    // A key that does not match the leaf would fail every handshake; say so now.
    certified
        .keys_match()
        .map_err(|e| named(key_file, format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("rcgen");
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, certified.cert.pem()).expect("write cert");
        std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write key");
        (cert, key)
    }

    #[test]
    fn loads_a_pair_and_names_a_bad_file() {
        let dir = tempfile::tempdir().expect("dir");
        let (cert, key) = write_pair(dir.path(), "riptide.test");
        assert!(server_config(&cert, &key).is_ok());
        let (_, other_key) = write_pair(dir.path(), "other.test");
        let mismatch = server_config(&cert, &other_key).expect_err("mismatch");
        assert!(mismatch.contains("does not match"), "{mismatch}");
        let missing = server_config(&dir.path().join("absent.pem"), &key).expect_err("absent");
        assert!(missing.contains("absent.pem"), "{missing}");
        std::fs::write(&cert, "not a certificate").expect("write");
        let empty = server_config(&cert, &key).expect_err("empty");
        assert!(empty.contains("no certificate"), "{empty}");
    }
}
