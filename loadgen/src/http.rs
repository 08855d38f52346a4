//! The load generator's blocking HTTP/1.1 IO: one thread per connection,
//! keep-alive. Messages are parsed and framed by the data plane's own codec
//! (`riptide_proto::http1`); this file only moves bytes.

use crate::limits::{BODY_SIZE_MAX, CONNECT_TIMEOUT, READ_SIZE, REPLY_TIMEOUT, SPSP_TIMEOUT};
use riptide_proto::http1::{self, write_packet_request, Message};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The next whole message on `stream` (`riptide_proto::http1::read_message`).
pub fn read_message(
    stream: &mut impl Read,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Message>> {
    http1::read_message(stream, buffer, BODY_SIZE_MAX)
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
    path: String,
    host: String,
    authorization: String,
    connection: Option<(TcpStream, Vec<u8>)>,
}

impl PacketClient {
    pub fn new(address: SocketAddr, path: &str, token: &str) -> PacketClient {
        PacketClient {
            address,
            path: path.to_owned(),
            host: address.to_string(),
            authorization: format!("Bearer {token}"),
            connection: None,
        }
    }

    /// Sends one packet; answers the HTTP status and body.
    pub fn send(&mut self, packet: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        if self.connection.is_none() {
            let stream = TcpStream::connect_timeout(&self.address, CONNECT_TIMEOUT)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
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
