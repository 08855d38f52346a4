//! The load generator's blocking HTTP/1.1 IO: one thread per connection,
//! keep-alive, plain or TLS (rustls, for a connector that serves TLS itself).
//! Messages are parsed and framed by the data plane's own codec
//! (`riptide_proto::http1`); this file only moves bytes.

use crate::limits::{BODY_SIZE_MAX, CONNECT_TIMEOUT, READ_SIZE, REPLY_TIMEOUT, SPSP_TIMEOUT};
use riptide_proto::http1::{self, write_packet_request, Message};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// The next whole message on `stream` (`riptide_proto::http1::read_message`).
pub fn read_message(
    stream: &mut impl Read,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Message>> {
    http1::read_message(stream, buffer, BODY_SIZE_MAX)
}

/// Where a URL points: an address, a path, and whether it speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: SocketAddr,
    pub path: String,
    pub tls: bool,
}

/// `http://ip:port/path` or `https://ip:port/path` split for the client.
pub fn split_url(url: &str) -> Result<Endpoint, String> {
    let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        (None, None) => return Err("the URL must start with http:// or https://".to_owned()),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let address = authority
        .parse()
        .map_err(|_| format!("{authority:?} is not an IP address and port"))?;
    let path = if path.is_empty() { "/" } else { path };
    Ok(Endpoint {
        address,
        path: path.to_owned(),
        tls,
    })
}

/// A TLS configuration that trusts the CAs of a PEM file only (a test or bench
/// CA); the server's certificate must name the target's IP address.
pub fn tls_config(ca_file: &std::path::Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|e| format!("{}: {e}", ca_file.display()))?;
        roots
            .add(certificate)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: holds no certificate", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connection's byte stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read(buf),
            Stream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write(buf),
            Stream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.flush(),
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

/// One keep-alive connection that POSTs ILP packets.
pub struct PacketClient {
    address: SocketAddr,
    path: String,
    host: String,
    authorization: String,
    /// TLS towards the target, when its URL is `https://`.
    tls: Option<Arc<ClientConfig>>,
    connection: Option<(Stream, Vec<u8>)>,
}

impl PacketClient {
    pub fn new(
        address: SocketAddr,
        path: &str,
        token: &str,
        tls: Option<Arc<ClientConfig>>,
    ) -> PacketClient {
        PacketClient {
            address,
            path: path.to_owned(),
            host: address.to_string(),
            authorization: format!("Bearer {token}"),
            tls,
            connection: None,
        }
    }

    fn connect(&self) -> std::io::Result<Stream> {
        let tcp = TcpStream::connect_timeout(&self.address, CONNECT_TIMEOUT)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let Some(config) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let name = ServerName::IpAddress(self.address.ip().into());
        let connection =
            ClientConnection::new(Arc::clone(config), name).map_err(std::io::Error::other)?;
        Ok(Stream::Tls(Box::new(StreamOwned::new(connection, tcp))))
    }

    /// Sends one packet; answers the HTTP status and body.
    pub fn send(&mut self, packet: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        if self.connection.is_none() {
            let stream = self.connect()?;
            self.connection = Some((stream, Vec::with_capacity(READ_SIZE)));
        }
        let result = self.exchange(packet);
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    fn exchange(&mut self, packet: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let (stream, buffer) = self
            .connection
            .as_mut()
            .ok_or_else(|| std::io::Error::other("not connected"))?;
        let mut request = Vec::with_capacity(256 + packet.len());
        write_packet_request(
            &mut request,
            &self.path,
            &self.host,
            &self.authorization,
            packet,
        );
        stream.write_all(&request)?;
        let reply = read_message(stream, buffer)?
            .ok_or_else(|| std::io::Error::other("connection closed"))?;
        Ok((reply.status().unwrap_or(0), reply.body))
    }
}

/// One GET on a fresh connection; answers the status and body.
pub fn get(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(SPSP_TIMEOUT))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let answer = read_message(&mut stream, &mut Vec::new())?
        .ok_or_else(|| std::io::Error::other("connection closed"))?;
    Ok((answer.status().unwrap_or(0), answer.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_path_and_scheme() {
        let plain = split_url("http://127.0.0.1:3002/ilp").expect("plain");
        assert_eq!(plain.address, "127.0.0.1:3002".parse().expect("address"));
        assert_eq!((plain.path.as_str(), plain.tls), ("/ilp", false));
        let tls = split_url("https://[::1]:443").expect("tls");
        assert_eq!((tls.path.as_str(), tls.tls), ("/", true));
        assert!(split_url("ftp://127.0.0.1:21/").is_err());
        assert!(
            split_url("https://localhost:443/").is_err(),
            "names are not resolved"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let path = std::env::temp_dir().join(format!("loadgen-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "no certificate here\n").expect("write");
        let error = tls_config(&path).expect_err("empty");
        assert!(error.contains("holds no certificate"), "{error}");
        let _ = std::fs::remove_file(&path);
    }
}
