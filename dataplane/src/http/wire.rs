//! One HTTP/1.1 connection on a glommio socket, for the packet path: reads heads and
//! bodies through one buffer owned by the connection and writes whole messages with
//! one send each. The parsing is `riptide_proto::http1`'s; this file only moves bytes.

use super::transport::Transport;
use crate::limits::{LINGER, LINGER_READS_MAX, READS_PER_MESSAGE_MAX, READ_BUFFER_SIZE};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use riptide_proto::http1::{ChunkError, ChunkedDecoder, Framing, HeadError};
use riptide_proto::limits::HEAD_SIZE_MAX;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Head(#[from] HeadError),
    #[error("{0}")]
    Chunk(ChunkError),
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("connection closed in the middle of a message")]
    ClosedEarly,
    #[error("message arrives too slowly")]
    TooManyReads,
}

pub struct Connection {
    stream: Transport,
    /// Unread bytes are `buffer[start..end]`.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// The most a head may take of the buffer: less until the client authenticates.
    head_buffer_max: usize,
    /// A socket to a peer holds one of that peer's socket slots until it closes.
    _slot: Option<glommio::sync::StaticPermit>,
}

/// The most a head takes of the buffer once its client is known.
const HEAD_BUFFER_MAX: usize = if HEAD_SIZE_MAX > READ_BUFFER_SIZE {
    HEAD_SIZE_MAX
} else {
    READ_BUFFER_SIZE
};

impl Connection {
    /// A connection to a peer, whose replies are read without limit of trust.
    pub fn new(stream: Transport) -> Connection {
        Connection::with_buffer(stream, READ_BUFFER_SIZE, HEAD_BUFFER_MAX)
    }

    /// A connection from a client not yet authenticated: it may make Riptide
    /// buffer `preauth_size_max` bytes, until [`authenticated`](Self::authenticated).
    pub fn unauthenticated(stream: Transport, preauth_size_max: usize) -> Connection {
        Connection::with_buffer(stream, preauth_size_max, preauth_size_max)
    }

    fn with_buffer(stream: Transport, size: usize, head_buffer_max: usize) -> Connection {
        Connection {
            stream,
            buffer: vec![0u8; size],
            start: 0,
            end: 0,
            head_buffer_max,
            _slot: None,
        }
    }

    /// Keeps `slot` until this connection closes.
    pub fn hold_slot(&mut self, slot: glommio::sync::StaticPermit) {
        self._slot = Some(slot);
    }

    /// The client showed a good token: its buffer may grow as its messages need.
    pub fn authenticated(&mut self) {
        self.head_buffer_max = HEAD_BUFFER_MAX;
    }

    /// Waits until some bytes are unread; false when the client closed first.
    pub async fn wait_for_bytes(&mut self) -> Result<bool, WireError> {
        if self.end > self.start {
            return Ok(true);
        }
        Ok(self.fill(self.head_buffer_max).await? > 0)
    }

    /// The bytes read and not yet consumed.
    pub fn unread(&self) -> &[u8] {
        &self.buffer[self.start..self.end]
    }

    fn consume(&mut self, count: usize) {
        assert!(count <= self.end - self.start);
        self.start += count;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // A large body grew the buffer; an idle connection keeps only the usual.
            if self.buffer.len() > READ_BUFFER_SIZE {
                self.buffer.truncate(READ_BUFFER_SIZE);
                self.buffer.shrink_to_fit();
            }
        }
    }

    /// Reads more bytes; room is made by moving unread bytes to the front, then by
    /// growing the buffer up to `size_max`. Returns 0 at the end of the stream.
    async fn fill(&mut self, size_max: usize) -> Result<usize, WireError> {
        if self.end == self.buffer.len() {
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buffer.len() < size_max {
                let grown = (self.buffer.len() * 2).min(size_max);
                self.buffer.resize(grown, 0);
            } else {
                return Err(WireError::BodyTooLarge(size_max));
            }
        }
        let count = self.stream.read(&mut self.buffer[self.end..]).await?;
        self.end += count;
        Ok(count)
    }

    /// Reads until `parse` finds a whole head in the unread bytes. `Ok(None)` when the
    /// peer closed the connection cleanly between messages.
    pub async fn read_head<H>(
        &mut self,
        parse: impl Fn(&[u8]) -> Result<Option<H>, HeadError>,
    ) -> Result<Option<H>, WireError> {
        for _ in 0..READS_PER_MESSAGE_MAX {
            if self.end > self.start {
                if let Some(head) = parse(self.unread())? {
                    return Ok(Some(head));
                }
            }
            // A head never needs more than HEAD_SIZE_MAX; parse refuses larger ones,
            // and one that outgrows the pre-authentication buffer is too large too.
            let filled = match self.fill(self.head_buffer_max).await {
                Err(WireError::BodyTooLarge(_)) => Err(WireError::Head(HeadError::TooLarge)),
                other => other,
            };
            if filled? == 0 {
                return if self.end == self.start {
                    Ok(None)
                } else {
                    Err(WireError::ClosedEarly)
                };
            }
        }
        Err(WireError::TooManyReads)
    }

    /// Consumes a head of `head_len` bytes returned by [`read_head`](Self::read_head).
    pub fn consume_head(&mut self, head_len: usize) {
        self.consume(head_len);
    }

    /// Takes `length` bytes that are already read, as a body.
    pub fn take_buffered(&mut self, length: usize) -> Vec<u8> {
        assert!(length <= self.end - self.start, "only bytes already read");
        let body = self.unread()[..length].to_vec();
        self.consume(length);
        body
    }

    /// Reads a body framed as `framing`, at most `size_max` bytes.
    pub async fn read_body(
        &mut self,
        framing: Framing,
        size_max: usize,
    ) -> Result<Vec<u8>, WireError> {
        match framing {
            Framing::Length(length) => self.read_exact_body(length, size_max).await,
            Framing::Chunked => self.read_chunked_body(size_max).await,
            Framing::UntilClose => self.read_body_until_close(size_max).await,
        }
    }

    async fn read_exact_body(
        &mut self,
        length: usize,
        size_max: usize,
    ) -> Result<Vec<u8>, WireError> {
        if length > size_max {
            return Err(WireError::BodyTooLarge(size_max));
        }
        for _ in 0..READS_PER_MESSAGE_MAX {
            if self.end - self.start >= length {
                return Ok(self.take_buffered(length));
            }
            // Room for the whole body once the unread bytes move to the front.
            if self.fill(length.max(READ_BUFFER_SIZE)).await? == 0 {
                return Err(WireError::ClosedEarly);
            }
        }
        Err(WireError::TooManyReads)
    }

    async fn read_chunked_body(&mut self, size_max: usize) -> Result<Vec<u8>, WireError> {
        let mut decoder = ChunkedDecoder::new(size_max);
        let mut body = Vec::new();
        for _ in 0..READS_PER_MESSAGE_MAX {
            let used = decoder
                .decode(self.unread(), &mut body)
                .map_err(|error| match error {
                    ChunkError::TooLarge => WireError::BodyTooLarge(size_max),
                    ChunkError::Malformed => WireError::Chunk(error),
                })?;
            self.consume(used);
            if decoder.is_done() {
                return Ok(body);
            }
            if self.fill(READ_BUFFER_SIZE).await? == 0 {
                return Err(WireError::ClosedEarly);
            }
        }
        Err(WireError::TooManyReads)
    }

    async fn read_body_until_close(&mut self, size_max: usize) -> Result<Vec<u8>, WireError> {
        for _ in 0..READS_PER_MESSAGE_MAX {
            if self.end - self.start > size_max {
                return Err(WireError::BodyTooLarge(size_max));
            }
            if self.fill(size_max.saturating_add(1)).await? == 0 {
                return Ok(self.take_buffered(self.end - self.start));
            }
        }
        Err(WireError::TooManyReads)
    }

    /// Writes a whole message; with NODELAY it leaves in one segment when it fits.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Ends our side after a final response and drops what the client still sends,
    /// for at most [`LINGER`], so that it reads the response rather than a reset.
    pub async fn close_lingering(&mut self) {
        self.stream.close_write().await;
        let buffer = &mut self.buffer;
        let stream = &mut self.stream;
        let drain = async {
            for _ in 0..LINGER_READS_MAX {
                if !matches!(stream.read(buffer).await, Ok(count) if count > 0) {
                    return;
                }
            }
        };
        futures_lite::future::or(drain, glommio::timer::sleep(LINGER)).await;
    }

    /// Whether a pooled connection may still carry a request: the peer has not
    /// closed it and sent nothing unasked. Asks the kernel, without waiting.
    pub fn is_reusable(&self) -> bool {
        if self.end > self.start {
            return false;
        }
        use nix::sys::socket::{recv, MsgFlags};
        let mut probe = [0u8; 1];
        let peeked = recv(
            self.stream.raw_fd(),
            &mut probe,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        );
        // Only "nothing to read yet" means open and idle; Ok(0) is the peer's close.
        matches!(peeked, Err(nix::errno::Errno::EAGAIN))
    }
}
