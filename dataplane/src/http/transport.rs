//! The byte stream under a [`Connection`](super::wire::Connection): plain TCP, or
//! TLS (rustls, through futures-rustls) for `https://` peers and for clients of a
//! TLS port. TLS configurations
//! are made once: one with the web's roots (webpki-roots) and `[tls] ca_files`,
//! and one per pinned CA (`outgoing_ca_pem`), which alone is trusted for its peer.

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

pub enum Transport {
    Plain(TcpStream),
    /// Towards an `https://` peer or service.
    Tls(Box<TlsStream<TcpStream>>),
    /// From a client of a TLS port ([`super::tls_server`]).
    Served(Box<futures_rustls::server::TlsStream<TcpStream>>),
}

impl Transport {
    /// The socket's descriptor, for a non-blocking look at whether it closed.
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Transport::Plain(stream) => stream.as_raw_fd(),
            Transport::Tls(stream) => stream.get_ref().0.as_raw_fd(),
            Transport::Served(stream) => stream.get_ref().0.as_raw_fd(),
        }
    }

    /// Ends the sending side: a TCP half-close, or TLS's close_notify.
    pub async fn close_write(&mut self) {
        match self {
            Transport::Plain(stream) => {
                let _ = stream.shutdown(std::net::Shutdown::Write).await;
            }
            Transport::Tls(stream) => {
                let _ = futures_lite::AsyncWriteExt::close(stream.as_mut()).await;
            }
            Transport::Served(stream) => {
                let _ = futures_lite::AsyncWriteExt::close(stream.as_mut()).await;
            }
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
            Transport::Served(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
            Transport::Served(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
            Transport::Served(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_close(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_close(cx),
            Transport::Served(stream) => Pin::new(stream.as_mut()).poll_close(cx),
        }
    }
}

/// The TLS client configurations of one shard.
pub struct TlsClients {
    /// The web's roots and the configured extra CAs.
    default: Arc<ClientConfig>,
    /// One per pinned CA, by its PEM text.
    pinned: RefCell<HashMap<String, Arc<ClientConfig>>>,
}

impl TlsClients {
    /// Trusts the web's roots and `extra_roots` (read by [`read_ca_pem`]).
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> TlsClients {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        roots.add_parsable_certificates(extra_roots.iter().cloned());
        TlsClients {
            default: Arc::new(client_config(roots)),
            pinned: RefCell::default(),
        }
    }

    /// Wraps `tcp` in TLS towards `server_name`, trusting `pinned_ca_pem` alone
    /// when given.
    pub async fn connect(
        self: &Rc<Self>,
        tcp: TcpStream,
        server_name: &str,
        pinned_ca_pem: Option<&str>,
    ) -> Result<Transport, String> {
        let config = match pinned_ca_pem {
            None => Arc::clone(&self.default),
            Some(pem) => self.pinned(pem)?,
        };
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| format!("TLS server name {server_name:?}: {e}"))?;
        let stream = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        Ok(Transport::Tls(Box::new(stream)))
    }

    fn pinned(&self, pem: &str) -> Result<Arc<ClientConfig>, String> {
        if let Some(config) = self.pinned.borrow().get(pem) {
            return Ok(Arc::clone(config));
        }
        let mut roots = RootCertStore::empty();
        add_pem(&mut roots, pem.as_bytes())?;
        let config = Arc::new(client_config(roots));
        self.pinned
            .borrow_mut()
            .insert(pem.to_owned(), Arc::clone(&config));
        Ok(config)
    }
}

/// A configuration that trusts the web's roots and `extra_roots`, for blocking
/// clients (webhook delivery) that wrap a std socket themselves.
pub fn client_config_with(extra_roots: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots.add_parsable_certificates(extra_roots.iter().cloned());
    Arc::new(client_config(roots))
}

fn client_config(roots: RootCertStore) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            // The ring provider supports the default versions; this is unreachable
            // unless rustls changes its defaults, and then an empty trust store
            // fails every handshake rather than trusting anything.
            ClientConfig::builder()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth()
        })
}

/// The certificates of a PEM text; an error names what is wrong with it.
pub fn read_ca_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("CA PEM: {e}"))?;
    if certificates.is_empty() {
        return Err("CA PEM holds no certificate".to_owned());
    }
    let mut roots = RootCertStore::empty();
    for certificate in &certificates {
        roots
            .add(certificate.clone())
            .map_err(|e| format!("CA certificate: {e}"))?;
    }
    Ok(certificates)
}

fn add_pem(roots: &mut RootCertStore, pem: &[u8]) -> Result<(), String> {
    for certificate in read_ca_pem(pem)? {
        roots
            .add(certificate)
            .map_err(|e| format!("CA certificate: {e}"))?;
    }
    Ok(())
}
