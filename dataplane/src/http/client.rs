//! One request over plain HTTP/1.1 (hyper on a glommio socket), for what the data
//! plane asks of others off the packet path: SPSP servers (quotes), the rates feed
//! and the OpenTelemetry collector. The host is found by the
//! [resolver](crate::resolver), never on the shard's thread; callers bound the
//! whole call in time.

use super::io::HyperStream;
use crate::resolver::Resolver;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GetError {
    #[error("URL must be http://host[:port]/path: {0}")]
    Url(String),
    #[error("{0}: {1}")]
    Transport(String, String),
}

/// `GET url` with `Accept: accept`; the status and at most `size_max` bytes of body.
pub async fn get(
    resolver: &Resolver,
    url: &str,
    accept: &str,
    size_max: usize,
) -> Result<(u16, Vec<u8>), GetError> {
    let request = Request::get("/").header(hyper::header::ACCEPT, accept);
    send(resolver, url, request, Bytes::new(), size_max).await
}

/// `POST url` with a JSON body; the status and at most `size_max` bytes of answer.
pub async fn post_json(
    resolver: &Resolver,
    url: &str,
    body: Vec<u8>,
    size_max: usize,
) -> Result<(u16, Vec<u8>), GetError> {
    let request = Request::post("/").header(hyper::header::CONTENT_TYPE, "application/json");
    send(resolver, url, request, Bytes::from(body), size_max).await
}

/// Sends `request` (its method and headers; the URI and `Host` come from `url`).
async fn send(
    resolver: &Resolver,
    url: &str,
    request: hyper::http::request::Builder,
    body: Bytes,
    size_max: usize,
) -> Result<(u16, Vec<u8>), GetError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| GetError::Url(url.to_owned()))?;
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let path = match path {
        "" => "/".to_owned(),
        query if query.starts_with('?') => format!("/{query}"),
        path => path.to_owned(),
    };
    let transport = |e: String| GetError::Transport(authority.to_owned(), e);
    // A URL without a port means 80; the resolver wants host:port.
    let with_port = match authority.rsplit_once(':') {
        Some((_, port)) if !port.contains(']') => authority.to_owned(),
        _ => format!("{authority}:80"),
    };
    let address = resolver
        .resolve(&with_port)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let stream = glommio::net::TcpStream::connect(address)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(HyperStream::new(stream))
        .await
        .map_err(|e| transport(e.to_string()))?;
    glommio::spawn_local(async move {
        let _ = connection.await;
    })
    .detach();
    let request = request
        .uri(path)
        .header(hyper::header::HOST, authority)
        .body(Full::new(body))
        .map_err(|e| GetError::Url(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let status = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), size_max)
        .collect()
        .await
        .map_err(|e| transport(e.to_string()))?
        .to_bytes();
    Ok((status, body.to_vec()))
}
