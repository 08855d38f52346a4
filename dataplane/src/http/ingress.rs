//! ILP-over-HTTP ingress (synchronous mode, as Rafiki and interledger-rs speak it):
//! `POST` on any path with `Authorization: Bearer <token>` and an OER Prepare as the
//! body; the answer is HTTP 200 with the Fulfill or Reject. HTTP errors are only for
//! transport problems: 401 unknown token, 400 wrong content type or not a Prepare,
//! 413 body too large, 405 not a POST.

use super::io::HyperStream;
use crate::packet::Prepare;
use crate::shard::Shard;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

/// Content types that carry an OER packet: Rafiki's and `ilp-plugin-http`'s.
const PACKET_CONTENT_TYPES: [&str; 2] =
    ["application/octet-stream", "application/ilp+octet-stream"];
/// A connection with no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Serves ILP-over-HTTP on `listener` until shutdown.
pub async fn serve(shard: Rc<Shard>, listener: glommio::net::TcpListener) {
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            None
        })
        .await;
        if shard.shutting_down() {
            return;
        }
        match accepted {
            None => continue,
            Some(Ok(stream)) => spawn_connection(Rc::clone(&shard), stream),
            Some(Err(error)) => {
                tracing::warn!(%error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn spawn_connection(shard: Rc<Shard>, stream: glommio::net::TcpStream) {
    // Ignoring a failure here only costs latency, never correctness.
    let _ = stream.set_nodelay(true);
    glommio::spawn_local(async move {
        let service = hyper::service::service_fn(move |request| {
            let shard = Rc::clone(&shard);
            async move { Ok::<_, Infallible>(handle(&shard, request).await) }
        });
        let io = HyperStream::new(stream);
        let last_read_at = io.last_read_at();
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(io, service);
        let _ = futures_lite::future::or(async { connection.await.ok() }, async {
            idle_watchdog(&last_read_at).await;
            None
        })
        .await;
    })
    .detach();
}

/// Returns once the connection has read nothing for [`IDLE_TIMEOUT`]. The timeout is
/// far longer than a packet's hold time, so a request in flight is never cut off.
pub(crate) async fn idle_watchdog(last_read_at: &std::cell::Cell<std::time::Instant>) {
    loop {
        let idle_for = last_read_at.get().elapsed();
        if idle_for >= IDLE_TIMEOUT {
            return;
        }
        glommio::timer::sleep(IDLE_TIMEOUT - idle_for).await;
    }
}

fn plain(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(message.as_bytes())));
    *response.status_mut() = status;
    response
}

fn bearer_token(request: &Request<Incoming>) -> Option<&[u8]> {
    let value = request
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .as_bytes();
    let prefix = b"Bearer ";
    if value.len() > prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&value[prefix.len()..])
    } else {
        None
    }
}

fn has_packet_content_type(request: &Request<Incoming>) -> bool {
    let Some(value) = request.headers().get(hyper::header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let media_type = text.split(';').next().unwrap_or("").trim();
    PACKET_CONTENT_TYPES
        .iter()
        .any(|t| media_type.eq_ignore_ascii_case(t))
}

async fn handle(shard: &Rc<Shard>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let response = handle_inner(shard, request).await;
    if response.status() != StatusCode::OK {
        shard.record_http_refusal(response.status().as_u16());
    }
    response
}

async fn handle_inner(shard: &Rc<Shard>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if shard.shutting_down() {
        let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return response;
    }
    if request.method() != hyper::Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "ILP-over-HTTP takes POST\n");
    }
    let snapshot = shard.shared.snapshot.load_full();
    let Some(token) = bearer_token(&request) else {
        return plain(StatusCode::UNAUTHORIZED, "Bearer token required\n");
    };
    let Some(from) = snapshot.authenticate(token) else {
        return plain(StatusCode::UNAUTHORIZED, "Access denied: invalid token\n");
    };
    if !has_packet_content_type(&request) {
        return plain(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/octet-stream\n",
        );
    }
    let limit = shard.shared.http_body_size_max;
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
        }
        Err(_) => return plain(StatusCode::BAD_REQUEST, "body could not be read\n"),
    };
    if Prepare::parse(&body).is_err() {
        return plain(StatusCode::BAD_REQUEST, "body is not an ILP Prepare\n");
    }
    // The packet runs in a task of its own: if the peer hangs up, hyper drops this
    // future, but a packet that has started (a ledger hold, a count in the store)
    // still finishes and settles its books.
    let packet_shard = Rc::clone(shard);
    let packet = body.to_vec();
    let reply =
        glommio::spawn_local(async move { packet_shard.handle(snapshot, from, packet).await })
            .detach()
            .await
            .unwrap_or_else(|| {
                crate::connector::reject::RejectReason::Internal("packet task cancelled".into())
                    .to_reject_bytes(&shard.shared.snapshot.load().own_address)
            });
    let mut response = Response::new(Full::new(Bytes::from(reply)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    response
}
