//! hyper's IO traits over glommio's TCP stream, and the accept loop every port uses.

use super::deadline::ConnectionClock;
use super::gate::{ConnectionGate, Permit, Port};
use super::transport::Transport;
use crate::limits::{ACCEPT_RETRY_PAUSE, READ_BUFFER_SIZE, SHUTDOWN_CHECK_INTERVAL};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Accepts connections on `listener` and hands each, with its place at the gate, to
/// `serve`, until `stopping` says so (asked at least every
/// [`SHUTDOWN_CHECK_INTERVAL`]). A connection the gate refuses (its port or its
/// source holds all it may) is closed at once, before a byte of it is read. An
/// accept under way is never dropped for the shutdown check: glommio's accept is
/// an io_uring operation, and one dropped just as the kernel completed it would
/// leave the accepted connection open with nobody to serve it.
pub async fn accept_until(
    listener: &glommio::net::TcpListener,
    (gate, port): (&Arc<ConnectionGate>, Port),
    stopping: impl Fn() -> bool,
    mut serve: impl FnMut(TcpStream, Permit),
) {
    let mut accept = std::pin::pin!(listener.accept());
    loop {
        let accepted = futures_lite::future::or(async { Some(accept.as_mut().await) }, async {
            glommio::timer::sleep(SHUTDOWN_CHECK_INTERVAL).await;
            None
        })
        .await;
        if stopping() {
            return;
        }
        let Some(accepted) = accepted else { continue };
        accept.set(listener.accept());
        match accepted {
            Ok(stream) => {
                let Ok(source) = stream.peer_addr() else {
                    continue;
                };
                match gate.admit(port, source.ip()) {
                    Ok(permit) => serve(stream, permit),
                    Err(refusal) => {
                        tracing::debug!(%source, port = port.name(), reason = refusal.name(), "connection refused");
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                glommio::timer::sleep(ACCEPT_RETRY_PAUSE).await;
            }
        }
    }
}

/// A glommio stream as hyper IO. Reads go through an initialised buffer owned by the
/// connection, so no uninitialised memory is ever handed out and nothing is zeroed
/// per read; the price is one copy of the bytes read.
pub struct HyperStream {
    stream: Transport,
    read_buffer: Box<[u8]>,
    /// A served connection's clock, told when bytes arrive: the first of a request
    /// starts its head's deadline. None for a client connection.
    clock: Option<Rc<ConnectionClock>>,
}

impl HyperStream {
    /// A client's connection (plain or TLS), bounded in time by its caller.
    pub fn new(stream: Transport) -> Self {
        HyperStream {
            stream,
            read_buffer: vec![0u8; READ_BUFFER_SIZE].into_boxed_slice(),
            clock: None,
        }
    }

    fn served(stream: Transport, clock: Rc<ConnectionClock>) -> Self {
        HyperStream {
            clock: Some(clock),
            ..HyperStream::new(stream)
        }
    }
}

impl hyper::rt::Read for HyperStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut cursor: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let wanted = cursor.remaining().min(this.read_buffer.len());
        let scratch = &mut this.read_buffer[..wanted];
        match Pin::new(&mut this.stream).poll_read(cx, scratch) {
            Poll::Ready(Ok(count)) => {
                if let (Some(clock), true) = (&this.clock, count > 0) {
                    clock.bytes_arrived();
                }
                cursor.put_slice(&this.read_buffer[..count]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for HyperStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_close(cx)
    }
}

/// Serves one connection of a hyper port (SPSP, admin) with the deadlines of
/// [`ConnectionClock`], holding its place at the gate until it closes; over TLS
/// when `tls` is given. The service is made with the clock, to mark when a request
/// is being answered, and the client's address.
pub fn spawn_hyper_connection<S, F>(
    stream: TcpStream,
    permit: Permit,
    tls: Option<Arc<rustls::ServerConfig>>,
    make_service: F,
) where
    F: FnOnce(Rc<ConnectionClock>, std::net::IpAddr) -> S + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<http_body_util::Full<bytes::Bytes>>,
            Error = std::convert::Infallible,
        > + 'static,
{
    glommio::spawn_local(async move {
        let timeouts = super::deadline::Timeouts::of(permit.gate().limits());
        let handshake_timeout = timeouts.head;
        let Some(stream) = super::tls_server::accept(stream, tls.as_ref(), handshake_timeout).await
        else {
            return;
        };
        let clock = Rc::new(ConnectionClock::new(timeouts));
        let service = make_service(Rc::clone(&clock), permit.source());
        let io = HyperStream::served(stream, Rc::clone(&clock));
        let connection = hyper::server::conn::http1::Builder::new()
            // hyper's smallest; a head that does not fit is refused with 431.
            .max_buf_size(HYPER_BUFFER_SIZE_MIN)
            .serve_connection(io, service);
        let _ = futures_lite::future::or(async { connection.await.ok() }, async {
            clock.expired().await;
            None
        })
        .await;
        drop(permit);
    })
    .detach();
}

/// The smallest read buffer hyper accepts (it asserts on less).
const HYPER_BUFFER_SIZE_MIN: usize = 8 * 1024;
