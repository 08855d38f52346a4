//! `sink`: a downstream peer that fulfills every Prepare whose data starts with its
//! fulfillment, rejects (F99) those whose 33rd data byte is 1, and can delay.
//! Pipelined requests are answered in order, and the replies to the requests that
//! arrived together leave together, in one send, as HTTP servers commonly do.

use crate::http::read_message;
use crate::limits::PENDING_REPLIES_SIZE_MAX;
use riptide_proto::http1::write_response;
use riptide_proto::packet::{ErrorCode, Fulfill, Prepare, Reject};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

pub struct SinkOptions {
    pub listen: std::net::SocketAddr,
    pub delay: Duration,
}

pub fn run(options: SinkOptions) -> std::io::Result<()> {
    let listener = TcpListener::bind(options.listen)?;
    eprintln!("sink listening on http://{}/", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let delay = options.delay;
        std::thread::spawn(move || serve(stream, delay));
    }
    Ok(())
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

fn serve(mut stream: TcpStream, delay: Duration) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut response = Vec::with_capacity(4096);
    loop {
        let body = match read_message(&mut stream, &mut buffer) {
            Ok(Some(request)) => request.body,
            _ => return,
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        match reply_to(&body) {
            Some(reply) => {
                write_response(&mut response, 200, "application/octet-stream", &reply, None)
            }
            None => write_response(&mut response, 400, "text/plain", b"", None),
        }
        if !buffer.is_empty() && response.len() < PENDING_REPLIES_SIZE_MAX {
            continue;
        }
        if stream.write_all(&response).is_err() {
            return;
        }
        response.clear();
    }
}
