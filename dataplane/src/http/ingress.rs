//! ILP-over-HTTP ingress (synchronous mode, as Rafiki and interledger-rs speak it):
//! `POST` on any path with `Authorization: Bearer <token>` and an OER Prepare as the
//! body; the answer is HTTP 200 with the Fulfill or Reject. HTTP errors are only for
//! transport problems: 401 unknown token, 400 wrong content type, not a Prepare or a
//! malformed request, 413 body too large, 405 not a POST, 431 head too large, 501 a
//! transfer coding other than chunked, 503 shutting down.
//!
//! Each connection is one task that reads a request, runs its packet to the end and
//! writes the reply, then reads the next: HTTP/1.1 answers in order anyway, and a
//! packet that has started (a ledger hold, a count in the store) always finishes and
//! settles its books, whatever the peer does meanwhile.

use super::h1::{self, Framing, HeadError, RequestHead};
use super::io::IDLE_TIMEOUT;
use super::wire::{Connection, WireError};
use crate::connector::snapshot::{PeerIndex, Snapshot};
use crate::packet::Prepare;
use crate::shard::Shard;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Content types that carry an OER packet: Rafiki's and `ilp-plugin-http`'s.
const PACKET_CONTENT_TYPES: [&[u8]; 2] =
    [b"application/octet-stream", b"application/ilp+octet-stream"];
/// Requests served on one connection before it is closed; peers reconnect at once.
/// Bounds the life of a task, as every loop here is bounded.
const REQUESTS_PER_CONNECTION_MAX: u64 = 1 << 40;

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
    glommio::spawn_local(async move {
        let connection = Connection::new(stream);
        let clock = RequestClock {
            waiting_since: Cell::new(Instant::now()),
            busy: Cell::new(false),
        };
        futures_lite::future::or(serve_connection(&shard, connection, &clock), async {
            request_watchdog(&clock).await;
        })
        .await;
    })
    .detach();
}

/// When a connection started waiting for its next request, and whether a packet is
/// running on it.
struct RequestClock {
    waiting_since: Cell<Instant>,
    busy: Cell<bool>,
}

/// Returns once the connection has had [`IDLE_TIMEOUT`] since its last answer (or
/// since it opened) without sending a whole request: idle, silent half way, or
/// trickling bytes. Never while a packet runs, so a hold is always settled.
async fn request_watchdog(clock: &RequestClock) {
    loop {
        let waited = clock.waiting_since.get().elapsed();
        if waited >= IDLE_TIMEOUT && !clock.busy.get() {
            return;
        }
        let next_check = IDLE_TIMEOUT
            .saturating_sub(waited)
            .max(Duration::from_secs(1));
        glommio::timer::sleep(next_check).await;
    }
}

/// What the head of a request decided, before its body is read.
enum Admission {
    Packet(Arc<Snapshot>, PeerIndex),
    Refuse(u16, &'static str),
}

async fn serve_connection(shard: &Rc<Shard>, mut connection: Connection, clock: &RequestClock) {
    let body_size_max = shard.shared.http_body_size_max;
    let mut out = Vec::with_capacity(512);
    for _ in 0..REQUESTS_PER_CONNECTION_MAX {
        clock.waiting_since.set(Instant::now());
        let head = match connection.read_head(h1::parse_request).await {
            Ok(Some(head)) => head,
            Ok(None) | Err(WireError::Io(_)) | Err(WireError::ClosedEarly) => return,
            Err(error) => return refuse_and_close(shard, &mut connection, &error).await,
        };
        let mut admission = admit(shard, connection.unread(), &head);
        connection.consume_head(head.head_len);
        if let Framing::Length(length) = head.framing {
            if length > body_size_max {
                let error = WireError::BodyTooLarge(body_size_max);
                return refuse_and_close(shard, &mut connection, &error).await;
            }
        }
        if head.expect_continue {
            // Refused requests get their answer instead, and the connection closes,
            // since the client may or may not send the body then.
            if let Admission::Refuse(status, message) = admission {
                return respond_and_close(shard, &mut connection, status, message).await;
            }
            if connection.write_all(h1::CONTINUE).await.is_err() {
                return;
            }
        }
        let body = match connection.read_body(head.framing, body_size_max).await {
            Ok(body) => body,
            Err(WireError::Io(_)) | Err(WireError::ClosedEarly) => return,
            Err(error) => return refuse_and_close(shard, &mut connection, &error).await,
        };
        // Asked again: the shard may have begun to drain while the body arrived, and a
        // packet started now could outlive the drain with its hold open.
        if shard.shutting_down() {
            admission = Admission::Refuse(503, "shutting down\n");
        }
        // A HEAD's answer has no body for its client to read: close after it.
        let keep_alive = head.keep_alive && !head.is_head && !shard.shutting_down();
        let connection_header = match (keep_alive, head.is_http10) {
            (false, _) => Some("close"),
            (true, true) => Some("keep-alive"),
            (true, false) => None,
        };
        out.clear();
        match admission {
            Admission::Packet(snapshot, from) => {
                if Prepare::parse(&body).is_err() {
                    let message = "body is not an ILP Prepare\n";
                    refusal(shard, &mut out, 400, message, connection_header);
                } else {
                    clock.busy.set(true);
                    let reply = shard.handle(snapshot, from, body).await;
                    clock.busy.set(false);
                    let content_type = "application/octet-stream";
                    h1::write_response(&mut out, 200, content_type, &reply, connection_header);
                }
            }
            Admission::Refuse(status, message) => {
                refusal(shard, &mut out, status, message, connection_header);
            }
        }
        if connection.write_all(&out).await.is_err() {
            return;
        }
        if !keep_alive {
            return connection.close_lingering().await;
        }
    }
}

/// Decides from the head alone: everything but the body's content.
fn admit(shard: &Shard, head_bytes: &[u8], head: &RequestHead) -> Admission {
    if shard.shutting_down() {
        return Admission::Refuse(503, "shutting down\n");
    }
    if !head.is_post {
        return Admission::Refuse(405, "ILP-over-HTTP takes POST\n");
    }
    let snapshot = shard.shared.snapshot.load_full();
    let Some(token) = head
        .authorization
        .clone()
        .and_then(|range| bearer_token(&head_bytes[range]))
    else {
        return Admission::Refuse(401, "Bearer token required\n");
    };
    let Some(from) = snapshot.authenticate(token) else {
        return Admission::Refuse(401, "Access denied: invalid token\n");
    };
    let content_type = head.content_type.clone().map(|range| &head_bytes[range]);
    if !content_type.is_some_and(is_packet_content_type) {
        return Admission::Refuse(400, "Content-Type must be application/octet-stream\n");
    }
    Admission::Packet(snapshot, from)
}

fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let prefix = b"Bearer ";
    if value.len() > prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&value[prefix.len()..])
    } else {
        None
    }
}

fn is_packet_content_type(value: &[u8]) -> bool {
    let media_type = value.split(|&b| b == b';').next().unwrap_or(b"");
    let media_type = media_type.trim_ascii();
    PACKET_CONTENT_TYPES
        .iter()
        .any(|t| media_type.eq_ignore_ascii_case(t))
}

fn refusal(
    shard: &Shard,
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
    connection_header: Option<&str>,
) {
    shard.record_http_refusal(status);
    h1::write_response(
        out,
        status,
        "text/plain",
        message.as_bytes(),
        connection_header,
    );
}

async fn respond_and_close(shard: &Shard, connection: &mut Connection, status: u16, message: &str) {
    let mut out = Vec::with_capacity(256);
    refusal(shard, &mut out, status, message, Some("close"));
    if connection.write_all(&out).await.is_ok() {
        connection.close_lingering().await;
    }
}

/// Answers a request that cannot be read to its end, then closes: what follows on
/// the connection cannot be framed.
async fn refuse_and_close(shard: &Shard, connection: &mut Connection, error: &WireError) {
    let (status, message) = match error {
        WireError::BodyTooLarge(_) => (413, "body too large\n"),
        WireError::Head(HeadError::TooLarge) => (431, "request head too large\n"),
        WireError::Head(HeadError::UnsupportedTransferEncoding) => {
            (501, "only chunked Transfer-Encoding is supported\n")
        }
        _ => (400, "malformed HTTP request\n"),
    };
    tracing::debug!(%error, status, "request refused");
    respond_and_close(shard, connection, status, message).await;
}
