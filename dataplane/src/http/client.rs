//! One request over HTTP/1.1, plain or TLS (hyper on a glommio socket), for what the data
//! plane asks of others off the packet path: SPSP servers (quotes), the rates feed
//! and the OpenTelemetry collector. The host is found by the
//! [resolver](crate::resolver), never on the shard's thread; callers bound the
//! whole call in time.

use super::io::HyperStream;
use super::transport::{TlsClients, Transport};
use crate::shared::Shared;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use riptide_proto::http1::split_url;
use std::rc::Rc;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GetError {
    #[error("URL must be http[s]://host[:port]/path: {0}")]
    Url(String),
    #[error("{0}: {1}")]
    Transport(String, String),
}

/// `GET url` with `Accept: accept`; the status and at most `size_max` bytes of body.
pub async fn get(
    shared: &Shared,
    url: &str,
    accept: &str,
    size_max: usize,
) -> Result<(u16, Vec<u8>), GetError> {
    let request = Request::get("/").header(hyper::header::ACCEPT, accept);
    send(shared, url, request, Bytes::new(), size_max).await
}

/// `POST url` with a JSON body; the status and at most `size_max` bytes of answer.
pub async fn post_json(
    shared: &Shared,
    url: &str,
    body: Vec<u8>,
    size_max: usize,
) -> Result<(u16, Vec<u8>), GetError> {
    let request = Request::post("/").header(hyper::header::CONTENT_TYPE, "application/json");
    send(shared, url, request, Bytes::from(body), size_max).await
}

/// Sends `request` (its method and headers; the URI and `Host` come from `url`).
async fn send(
    shared: &Shared,
    url: &str,
    request: hyper::http::request::Builder,
    body: Bytes,
    size_max: usize,
) -> Result<(u16, Vec<u8>), GetError> {
    let url_parts = split_url(url).ok_or_else(|| GetError::Url(url.to_owned()))?;
    let (authority, path) = (url_parts.written_authority, url_parts.path.clone());
    let transport = |e: String| GetError::Transport(authority.to_owned(), e);
    let address = shared
        .resolver
        .resolve(&url_parts.authority)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let tcp = glommio::net::TcpStream::connect(address)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let stream = if url_parts.tls {
        // Made per call: these requests are few (quotes, the rates feed, metrics).
        let clients = Rc::new(TlsClients::new(&shared.tls_extra_roots));
        clients
            .connect(tcp, url_parts.host, None)
            .await
            .map_err(transport)?
    } else {
        Transport::Plain(tcp)
    };
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
