//! hyper's IO traits over glommio's TCP stream, and the accept loop every port uses.

use crate::limits::{ACCEPT_RETRY_PAUSE, IDLE_TIMEOUT, READ_BUFFER_SIZE, SHUTDOWN_CHECK_INTERVAL};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Accepts connections on `listener` and hands each to `serve`, until `stopping`
/// says so (asked at least every [`SHUTDOWN_CHECK_INTERVAL`]). An accept under way
/// is never dropped for that check: glommio's accept is an io_uring operation, and
/// one dropped just as the kernel completed it would leave the accepted connection
/// open with nobody to serve it, its client waiting until its own timeout.
pub async fn accept_until(
    listener: &glommio::net::TcpListener,
    stopping: impl Fn() -> bool,
    mut serve: impl FnMut(TcpStream),
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
            Ok(stream) => serve(stream),
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
    stream: TcpStream,
    read_buffer: Box<[u8]>,
    /// When bytes last arrived, for the idle timeout of the connection's owner.
    last_read_at: Rc<Cell<Instant>>,
}

impl HyperStream {
    pub fn new(stream: TcpStream) -> Self {
        HyperStream {
            stream,
            read_buffer: vec![0u8; READ_BUFFER_SIZE].into_boxed_slice(),
            last_read_at: Rc::new(Cell::new(Instant::now())),
        }
    }

    /// A handle that tells when this stream last read bytes.
    pub fn last_read_at(&self) -> Rc<Cell<Instant>> {
        Rc::clone(&self.last_read_at)
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
                this.last_read_at.set(Instant::now());
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

/// Returns once the connection has read nothing for [`IDLE_TIMEOUT`]. The timeout is
/// far longer than a packet's hold time, so a request in flight is never cut off.
pub(crate) async fn idle_watchdog(last_read_at: &Cell<Instant>) {
    loop {
        let idle_for = last_read_at.get().elapsed();
        if idle_for >= IDLE_TIMEOUT {
            return;
        }
        glommio::timer::sleep(IDLE_TIMEOUT - idle_for).await;
    }
}
