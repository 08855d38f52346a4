//! ILP-over-HTTP ingress (synchronous mode, as Rafiki and interledger-rs speak it):
//! `POST` on any path with `Authorization: Bearer <token>` and an OER Prepare as the
//! body; the answer is HTTP 200 with the Fulfill or Reject. HTTP errors are only for
//! transport problems: 401 unknown token, 400 wrong content type, not a Prepare or a
//! malformed request, 413 body too large, 405 not a POST, 431 head too large, 501 a
//! transfer coding other than chunked, 503 shutting down or the peer holding all
//! the connections it may.
//!
//! Before a client shows a good token it may make Riptide hold one connection
//! (counted per port and per source by the [gate](super::gate)) with a buffer of
//! `preauth_buffer_size_max` bytes, for the deadlines of its head
//! ([`deadline`](super::deadline)). A request refused from its head is answered
//! and its connection closed without reading its body; a 401 waits first once its
//! source has failed too often.
//!
//! Each connection is one task that reads a request, runs its packet to the end and
//! writes the reply, then reads the next: HTTP/1.1 answers in order anyway, and a
//! packet that has started (a ledger hold, a count in the store) always finishes and
//! settles its books, whatever the peer does meanwhile. Pipelined requests that
//! arrive together (a peer's burst) run side by side, and their answers leave in
//! order, each as soon as those before it have left, those ready together in one
//! send.

use super::deadline::{ConnectionClock, Timeouts};
use super::gate::{Permit, Port, Refusal};
use super::wire::{Connection, WireError};
use crate::limits::{PIPELINED_RUN_MAX, REQUESTS_PER_CONNECTION_MAX};
use crate::shard::Shard;
use futures::FutureExt;
use riptide_proto::connector::snapshot::{PeerIndex, Snapshot};
use riptide_proto::http1::{self, Framing, HeadError, RequestHead};
use riptide_proto::packet::Prepare;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// Content types that carry an OER packet: Rafiki's and `ilp-plugin-http`'s.
const PACKET_CONTENT_TYPES: [&[u8]; 2] =
    [b"application/octet-stream", b"application/ilp+octet-stream"];

/// Serves ILP-over-HTTP on `listener` until shutdown.
pub async fn serve(shard: Rc<Shard>, listener: glommio::net::TcpListener) {
    let stopping = || shard.shutting_down();
    let gate = (&shard.shared.gate, Port::Packets);
    super::io::accept_until(&listener, gate, stopping, |stream, permit| {
        spawn_connection(Rc::clone(&shard), stream, permit)
    })
    .await;
}

fn spawn_connection(shard: Rc<Shard>, stream: glommio::net::TcpStream, permit: Permit) {
    glommio::spawn_local(async move {
        let limits = permit.gate().limits();
        let timeouts = Timeouts::of(limits);
        let tls = shard.shared.tls_ports.connector.as_ref();
        let Some(stream) = super::tls_server::accept(stream, tls, timeouts.head).await else {
            return;
        };
        let clock = ConnectionClock::new(timeouts);
        let connection = Connection::unauthenticated(stream, limits.preauth_buffer_size_max);
        let mut client = Client {
            connection,
            permit,
            authenticated: false,
        };
        futures_lite::future::or(serve_connection(&shard, &mut client, &clock), async {
            clock.expired().await;
        })
        .await;
    })
    .detach();
}

/// A connection and what its client has shown so far.
struct Client {
    connection: Connection,
    /// Its place at the gate, given back when the connection closes.
    permit: Permit,
    authenticated: bool,
}

/// What the head of a request decided, before its body is read.
enum Admission {
    Packet(Arc<Snapshot>, PeerIndex),
    Refuse(u16, &'static str),
}

/// One request read to its end, waiting for its packet to run or its refusal.
struct Request {
    admission: Admission,
    body: Vec<u8>,
    keep_alive: bool,
    connection_header: Option<&'static str>,
}

async fn serve_connection(shard: &Rc<Shard>, client: &mut Client, clock: &ConnectionClock) {
    let body_size_max = shard.shared.http_body_size_max;
    let mut out = Vec::with_capacity(512);
    let mut batch = Vec::with_capacity(PIPELINED_RUN_MAX);
    for _ in 0..REQUESTS_PER_CONNECTION_MAX {
        clock.await_request();
        let connection = &mut client.connection;
        match connection.wait_for_bytes().await {
            Ok(true) => clock.bytes_arrived(),
            Ok(false) | Err(_) => return,
        }
        let head = match connection.read_head(http1::parse_request).await {
            Ok(Some(head)) => head,
            Ok(None) | Err(WireError::Io(_)) | Err(WireError::ClosedEarly) => return,
            Err(error) => return refuse_and_close(shard, connection, &error).await,
        };
        clock.head_complete();
        let admission = admit(shard, client, &head);
        let connection = &mut client.connection;
        connection.consume_head(head.head_len);
        // Nothing of a refused request's body is read: the connection closes.
        if let Admission::Refuse(status, message) = admission {
            return refuse_at_head(shard, client, clock, status, message).await;
        }
        if let Framing::Length(length) = head.framing {
            if length > body_size_max {
                let error = WireError::BodyTooLarge(body_size_max);
                return refuse_and_close(shard, connection, &error).await;
            }
        }
        if head.expect_continue && connection.write_all(http1::CONTINUE).await.is_err() {
            return;
        }
        let body = match connection.read_body(head.framing, body_size_max).await {
            Ok(body) => body,
            Err(WireError::Io(_)) | Err(WireError::ClosedEarly) => return,
            Err(error) => return refuse_and_close(shard, connection, &error).await,
        };
        batch.clear();
        batch.push(request(shard, &head, admission, body));
        take_buffered_requests(shard, client, &mut batch);
        let keep_alive = batch.last().is_some_and(|last| last.keep_alive);
        let connection = &mut client.connection;
        if !answer_batch(shard, &mut batch, connection, &mut out, clock).await {
            return;
        }
        if !keep_alive {
            return connection.close_lingering().await;
        }
    }
}

/// The refusal of a request whose peer holds all the connections it may.
const PEER_FULL: &str = "too many connections for this peer\n";

/// Answers a request refused from its head alone and closes the connection. A
/// failed token waits first once its source has failed too often, so that
/// guessing is slow; the connection closes after every failure, so that
/// pipelining does not multiply the guesses.
async fn refuse_at_head(
    shard: &Shard,
    client: &mut Client,
    clock: &ConnectionClock,
    status: u16,
    message: &str,
) {
    if message == PEER_FULL {
        shard.shared.gate.record(Refusal::PeerFull);
    }
    if status == 401 {
        let source = client.permit.source();
        let wait = shard.shared.gate.auth_failed(source, Instant::now());
        if !wait.is_zero() {
            clock.answering();
            glommio::timer::sleep(wait).await;
            clock.answer_ready();
        }
    }
    respond_and_close(shard, &mut client.connection, status, message).await;
}

fn request(shard: &Shard, head: &RequestHead, mut admission: Admission, body: Vec<u8>) -> Request {
    // Asked again: the shard may have begun to drain while the body arrived, and a
    // packet started now could outlive the drain with its hold open.
    let draining = shard.shutting_down();
    if draining {
        admission = Admission::Refuse(503, "shutting down\n");
    }
    // A HEAD's answer has no body for its client to read: close after it.
    let keep_alive = head.keep_alive && !head.is_head && !draining;
    let connection_header = match (keep_alive, head.is_http10) {
        (false, _) => Some("close"),
        (true, true) => Some("keep-alive"),
        (true, false) => None,
    };
    Request {
        admission,
        body,
        keep_alive,
        connection_header,
    }
}

/// Adds to `batch` the pipelined requests that are wholly in the buffer already (a
/// peer's burst arrives in one read), so that their packets run side by side rather
/// than each waiting for the one before to reach its next hop and back. Anything
/// unusual (a body still on its way, 100-continue, chunked, too large, unparseable)
/// stops the scan and is left for the sequential path, which answers it.
fn take_buffered_requests(shard: &Shard, client: &mut Client, batch: &mut Vec<Request>) {
    let body_size_max = shard.shared.http_body_size_max;
    while batch.len() < PIPELINED_RUN_MAX && batch.last().is_some_and(|last| last.keep_alive) {
        // The usual case, a request alone: nothing to parse.
        let unread = client.connection.unread();
        if unread.is_empty() {
            return;
        }
        let Ok(Some(head)) = http1::parse_request(unread) else {
            return;
        };
        let Framing::Length(length) = head.framing else {
            return;
        };
        let buffered = unread.len() - head.head_len;
        if head.expect_continue || length > body_size_max || buffered < length {
            return;
        }
        let admission = admit(shard, client, &head);
        if matches!(admission, Admission::Refuse(..)) {
            // Refusals close the connection: the sequential path answers it.
            return;
        }
        let connection = &mut client.connection;
        connection.consume_head(head.head_len);
        let body = connection.take_buffered(length);
        batch.push(request(shard, &head, admission, body));
    }
}

/// Runs the batch's packets and writes their answers in order: each answer as soon
/// as those before it are written, those ready together in one send. Packets of a
/// batch run as tasks of their own, so that every one finishes (and settles its
/// books) whatever happens to the connection. No deadline runs while packets run;
/// a client that stops reading its answers is closed by the watchdog. Returns
/// false when the client is gone.
async fn answer_batch(
    shard: &Rc<Shard>,
    batch: &mut Vec<Request>,
    connection: &mut Connection,
    out: &mut Vec<u8>,
    clock: &ConnectionClock,
) -> bool {
    if batch.len() == 1 {
        // The usual case: no task of its own.
        if let Some(request) = batch.pop() {
            let header = request.connection_header;
            clock.answering();
            let answer = answer(shard, request.admission, request.body).await;
            clock.answer_ready();
            out.clear();
            write_answer(shard, out, answer, header);
        }
        return connection.write_all(out).await.is_ok();
    }
    let mut running: VecDeque<_> = batch
        .drain(..)
        .map(|request| {
            let shard = Rc::clone(shard);
            let task = glommio::spawn_local(async move {
                answer(&shard, request.admission, request.body).await
            });
            (task.detach(), request.connection_header)
        })
        .collect();
    // Bounded by the batch's size: each turn writes at least one answer.
    while let Some((task, header)) = running.pop_front() {
        out.clear();
        clock.answering();
        let answer = task.await.unwrap_or(Err(INTERNAL));
        clock.answer_ready();
        write_answer(shard, out, answer, header);
        while let Some((next, header)) = running.front_mut() {
            let Some(answer) = next.now_or_never() else {
                break;
            };
            write_answer(shard, out, answer.unwrap_or(Err(INTERNAL)), *header);
            running.pop_front();
        }
        if connection.write_all(out).await.is_err() {
            return false;
        }
    }
    true
}

/// The answer of a packet task that did not finish: glommio cancels tasks only when
/// the executor stops.
const INTERNAL: (u16, &str) = (500, "internal error\n");

/// The reply to a packet, or the status and message of a refusal.
type Answer = Result<Vec<u8>, (u16, &'static str)>;

async fn answer(shard: &Shard, admission: Admission, body: Vec<u8>) -> Answer {
    // A batch's task may start after the shard began to drain: no packet starts then.
    if shard.shutting_down() {
        return Err((503, "shutting down\n"));
    }
    match admission {
        Admission::Packet(snapshot, from) if Prepare::parse(&body).is_ok() => {
            Ok(shard.handle(snapshot, from, body).await)
        }
        Admission::Packet(..) => Err((400, "body is not an ILP Prepare\n")),
        Admission::Refuse(status, message) => Err((status, message)),
    }
}

fn write_answer(shard: &Shard, out: &mut Vec<u8>, answer: Answer, header: Option<&str>) {
    match answer {
        Ok(reply) => http1::write_response(out, 200, "application/octet-stream", &reply, header),
        Err((status, message)) => refusal(shard, out, status, message, header),
    }
}

/// Decides from the head alone: everything but the body's content. The first good
/// token of a connection counts it against its peer and lets its buffer grow.
fn admit(shard: &Shard, client: &mut Client, head: &RequestHead) -> Admission {
    let head_bytes = client.connection.unread();
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
    if !shard
        .shared
        .gate
        .attach_peer(&mut client.permit, &snapshot.peer(from).id)
    {
        return Admission::Refuse(503, PEER_FULL);
    }
    if !client.authenticated {
        client.authenticated = true;
        client.connection.authenticated();
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
    http1::write_response(
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
