//! ILP-over-HTTP ingress (synchronous mode, as Rafiki and interledger-rs speak it):
//! `POST` on any path with `Authorization: Bearer <token>` and an OER Prepare as the
//! body; the answer is HTTP 200 with the Fulfill or Reject. HTTP errors are only for
//! transport problems: 401 unknown token, 400 wrong content type, not a Prepare or a
//! malformed request, 413 body too large, 405 not a POST, 431 head too large.
//!
//! Each connection is one task that reads a request, runs its packet to the end and
//! writes the reply, then reads the next: HTTP/1.1 answers in order anyway, and a
//! packet that has started (a ledger hold, a count in the store) always finishes and
//! settles its books, whatever the peer does meanwhile.

use super::h1::{self, Framing, HeadError, RequestHead};
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
/// A connection with no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
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
        let last_read_at = connection.last_read_at();
        let busy = Rc::new(Cell::new(false));
        let watched = Rc::clone(&busy);
        futures_lite::future::or(serve_connection(&shard, connection, &busy), async {
            idle_watchdog_unless_busy(&last_read_at, &watched).await;
        })
        .await;
    })
    .detach();
}

/// Returns once the connection has read nothing for [`IDLE_TIMEOUT`]. The timeout is
/// far longer than a packet's hold time, so a request in flight is never cut off.
pub(crate) async fn idle_watchdog(last_read_at: &Cell<Instant>) {
    idle_watchdog_unless_busy(last_read_at, &Cell::new(false)).await
}

async fn idle_watchdog_unless_busy(last_read_at: &Cell<Instant>, busy: &Cell<bool>) {
    loop {
        let idle_for = last_read_at.get().elapsed();
        if idle_for >= IDLE_TIMEOUT && !busy.get() {
            return;
        }
        glommio::timer::sleep(
            IDLE_TIMEOUT
                .saturating_sub(idle_for)
                .max(Duration::from_secs(1)),
        )
        .await;
    }
}

/// What the head of a request decided, before its body is read.
enum Admission {
    Packet(Arc<Snapshot>, PeerIndex),
    Refuse(u16, &'static str),
}

async fn serve_connection(shard: &Rc<Shard>, mut connection: Connection, busy: &Cell<bool>) {
    let body_size_max = shard.shared.http_body_size_max;
    let mut out = Vec::with_capacity(512);
    for _ in 0..REQUESTS_PER_CONNECTION_MAX {
        let head = match connection.read_head(h1::parse_request).await {
            Ok(Some(head)) => head,
            Ok(None) | Err(WireError::Io(_)) | Err(WireError::ClosedEarly) => return,
            Err(error) => return refuse_and_close(shard, &mut connection, &error).await,
        };
        busy.set(true);
        let admission = admit(shard, connection.unread(), &head);
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
        let keep_alive = head.keep_alive && !shard.shutting_down();
        out.clear();
        match admission {
            Admission::Packet(snapshot, from) => {
                if Prepare::parse(&body).is_err() {
                    refusal(
                        shard,
                        &mut out,
                        400,
                        "body is not an ILP Prepare\n",
                        !keep_alive,
                    );
                } else {
                    let reply = shard.handle(snapshot, from, body).await;
                    h1::write_response(
                        &mut out,
                        200,
                        "application/octet-stream",
                        &reply,
                        !keep_alive,
                    );
                }
            }
            Admission::Refuse(status, message) => {
                refusal(shard, &mut out, status, message, !keep_alive);
            }
        }
        busy.set(false);
        if connection.write_all(&out).await.is_err() || !keep_alive {
            return;
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

fn refusal(shard: &Shard, out: &mut Vec<u8>, status: u16, message: &str, close: bool) {
    shard.record_http_refusal(status);
    h1::write_response(out, status, "text/plain", message.as_bytes(), close);
}

async fn respond_and_close(shard: &Shard, connection: &mut Connection, status: u16, message: &str) {
    let mut out = Vec::with_capacity(256);
    refusal(shard, &mut out, status, message, true);
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
