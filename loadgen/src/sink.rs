//! `sink`: a downstream peer that fulfills every Prepare whose data starts with its
//! fulfillment, rejects (F99) those whose 33rd data byte is 1, and can delay.
//! Pipelined requests are answered in order, and the replies to the requests that
//! arrived together leave together, in one send, as HTTP servers commonly do.
//!
//! Event-driven, so that it measures what it serves and not itself: a tokio
//! runtime with a worker thread per core runs each connection as a task (thousands
//! of connections cost no thread each), and a request with a `Content-Length`
//! body, the usual case, is answered from the read buffer without a copy.

use crate::limits::{BODY_SIZE_MAX, PENDING_REPLIES_SIZE_MAX, READ_SIZE};
use riptide_proto::http1::{parse_request, take_message, write_response, Framing};
use riptide_proto::packet::{ErrorCode, Fulfill, Prepare, Reject};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A pause after a failed accept (too many open files): no spinning on it.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

pub struct SinkOptions {
    pub listen: std::net::SocketAddr,
    pub delay: Duration,
    /// Worker threads; 0 is one per core.
    pub threads: usize,
}

pub fn run(options: SinkOptions) -> std::io::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if options.threads > 0 {
        builder.worker_threads(options.threads);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        eprintln!("sink listening on http://{}/", listener.local_addr()?);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, options.delay));
                }
                Err(_) => tokio::time::sleep(ACCEPT_RETRY).await,
            }
        }
    })
}

/// The reply to one Prepare body.
pub fn reply_to(body: &[u8]) -> Option<Vec<u8>> {
    let prepare = Prepare::parse(body).ok()?;
    let fulfillment: &[u8; 32] = prepare.data.get(..32)?.try_into().ok()?;
    if prepare.data.get(32) == Some(&1) {
        let reject = Reject {
            code: ErrorCode::F99,
            triggered_by: "test.sink",
            message: b"",
            data: b"",
        };
        return Some(reject.to_bytes());
    }
    Some(
        Fulfill {
            fulfillment,
            data: b"",
        }
        .to_bytes(),
    )
}

/// Appends the HTTP answer to one request body.
fn answer(body: &[u8], response: &mut Vec<u8>) {
    match reply_to(body) {
        Some(reply) => write_response(response, 200, "application/octet-stream", &reply, None),
        None => write_response(response, 400, "text/plain", b"", None),
    }
}

/// Answers the request at the front of `buffer` into `response` and takes it off;
/// `Ok(false)` until a whole one is there, `Err` for a request that cannot be read.
fn answer_next(buffer: &mut Vec<u8>, response: &mut Vec<u8>) -> Result<bool, ()> {
    let Some(head) = parse_request(buffer).map_err(|_| ())? else {
        return Ok(false);
    };
    if let Framing::Length(length) = head.framing {
        if length > BODY_SIZE_MAX {
            return Err(());
        }
        let end = head.head_len + length;
        if buffer.len() < end {
            return Ok(false);
        }
        answer(&buffer[head.head_len..end], response);
        buffer.drain(..end);
        return Ok(true);
    }
    match take_message(buffer, BODY_SIZE_MAX, false) {
        Ok(Some(message)) => {
            answer(&message.body, response);
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(_) => Err(()),
    }
}

async fn serve(mut stream: TcpStream, delay: Duration) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(READ_SIZE);
    let mut response = Vec::with_capacity(4096);
    loop {
        loop {
            match answer_next(&mut buffer, &mut response) {
                Ok(true) => {}
                Ok(false) => break,
                Err(()) => {
                    write_response(&mut response, 400, "text/plain", b"", None);
                    let _ = stream.write_all(&response).await;
                    return;
                }
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if response.len() >= PENDING_REPLIES_SIZE_MAX {
                break;
            }
        }
        if !response.is_empty() {
            if stream.write_all(&response).await.is_err() {
                return;
            }
            response.clear();
        }
        // A request larger than any Prepare, or a peer that never completes one.
        if buffer.len() > BODY_SIZE_MAX + READ_SIZE {
            return;
        }
        buffer.reserve(READ_SIZE);
        match stream.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
