//! A minimal blocking HTTP/1.1 client and server for ILP-over-HTTP load: one thread
//! per connection, keep-alive, Content-Length bodies only. Small on purpose, so the
//! load generator costs little next to what it measures.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const HEADER_LINES_MAX: usize = 64;
const BODY_SIZE_MAX: usize = 1 << 20;

pub struct Head {
    pub first_line: String,
    pub headers: HashMap<String, String>,
}

pub fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut first_line = String::new();
    if reader.read_line(&mut first_line)? == 0 {
        return Ok(None);
    }
    let mut headers = HashMap::new();
    for _ in 0..HEADER_LINES_MAX {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("connection closed in the headers"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(Some(Head {
                first_line: first_line.trim_end().to_owned(),
                headers,
            }));
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    Err(std::io::Error::other("too many header lines"))
}

pub fn read_body(
    reader: &mut impl Read,
    headers: &HashMap<String, String>,
) -> std::io::Result<Vec<u8>> {
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > BODY_SIZE_MAX {
        return Err(std::io::Error::other("body too large"));
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// `http://host:port/path` split for the client.
pub fn split_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("the URL must start with http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let address = authority
        .parse()
        .map_err(|_| format!("{authority:?} is not an IP address and port"))?;
    Ok((
        address,
        if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        },
    ))
}

/// One keep-alive connection that POSTs ILP packets.
pub struct PacketClient {
    address: SocketAddr,
    head: Vec<u8>,
    reader: Option<BufReader<TcpStream>>,
}

impl PacketClient {
    pub fn new(address: SocketAddr, path: &str, token: &str) -> PacketClient {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: "
        );
        PacketClient {
            address,
            head: head.into_bytes(),
            reader: None,
        }
    }

    /// Sends one packet; answers the HTTP status and body.
    pub fn send(&mut self, packet: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        if self.reader.is_none() {
            let stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(5))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(60)))?;
            self.reader = Some(BufReader::new(stream));
        }
        let result = self.exchange(packet);
        if result.is_err() {
            self.reader = None;
        }
        result
    }

    fn exchange(&mut self, packet: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let reader = self
            .reader
            .as_mut()
            .ok_or_else(|| std::io::Error::other("not connected"))?;
        let mut request = Vec::with_capacity(self.head.len() + 16 + packet.len());
        request.extend_from_slice(&self.head);
        request.extend_from_slice(format!("{}\r\n\r\n", packet.len()).as_bytes());
        request.extend_from_slice(packet);
        reader.get_mut().write_all(&request)?;
        let head = read_head(reader)?.ok_or_else(|| std::io::Error::other("connection closed"))?;
        let status = head
            .first_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = read_body(reader, &head.headers)?;
        Ok((status, body))
    }
}

/// One GET on a fresh connection; answers the status and body.
pub fn get(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, Vec<u8>)> {
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(request.as_bytes())?;
    let head = read_head(&mut reader)?.ok_or_else(|| std::io::Error::other("connection closed"))?;
    let status = head
        .first_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = read_body(&mut reader, &head.headers)?;
    Ok((status, body))
}
