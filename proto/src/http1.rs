//! The subset of HTTP/1.1 that ILP-over-HTTP needs on the packet path, sans-IO: parse a
//! request or response head from bytes already read, frame its body (Content-Length or
//! chunked), and write the messages Riptide sends. The sockets live in `wire.rs`.
//!
//! Why not hyper here: each forwarded packet is one request in and one request out,
//! and hyper's general machinery (header maps, a dispatch task and channel per client
//! connection, boxed bodies) cost more CPU per packet than the ILP work itself. The
//! admin API and SPSP, which are not on the packet path, still use hyper.

use crate::limits::{CHUNK_LINE_SIZE_MAX, HEADERS_MAX, HEAD_SIZE_MAX, TRAILER_LINES_MAX};
use thiserror::Error;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    #[error("malformed HTTP head")]
    Malformed,
    #[error("HTTP head larger than {HEAD_SIZE_MAX} bytes")]
    TooLarge,
    #[error("invalid or conflicting Content-Length")]
    BadContentLength,
    #[error("unsupported Transfer-Encoding")]
    UnsupportedTransferEncoding,
    #[error("both Transfer-Encoding and Content-Length")]
    AmbiguousFraming,
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
    /// A response with neither header: the body runs to the end of the connection.
    UntilClose,
}

/// What the ingress needs from a request head; byte ranges point into the buffer the
/// head was parsed from, so nothing is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub is_post: bool,
    pub is_head: bool,
    pub is_http10: bool,
    pub authorization: Option<std::ops::Range<usize>>,
    pub content_type: Option<std::ops::Range<usize>>,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// Bytes of the head, up to and including the blank line.
    pub head_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    pub keep_alive: bool,
    pub head_len: usize,
}

/// Headers that decide framing and connection reuse, common to both directions.
struct CommonHeaders {
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

fn range_in(buf: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    debug_assert!(start + part.len() <= buf.len());
    start..start + part.len()
}

fn parse_length(value: &[u8]) -> Result<usize, HeadError> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::BadContentLength);
    }
    Ok(digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn lists_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

fn common_headers(headers: &[httparse::Header<'_>]) -> Result<CommonHeaders, HeadError> {
    let mut common = CommonHeaders {
        content_length: None,
        chunked: false,
        close: false,
        keep_alive: false,
    };
    for header in headers {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_length(header.value)?;
            // Repeated lengths must agree (RFC 9112 section 6.3).
            if common.content_length.is_some_and(|l| l != length) {
                return Err(HeadError::BadContentLength);
            }
            common.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only plain chunked: anything else cannot be framed safely.
            if !header.value.trim_ascii().eq_ignore_ascii_case(b"chunked") || common.chunked {
                return Err(HeadError::UnsupportedTransferEncoding);
            }
            common.chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            common.close |= lists_token(header.value, b"close");
            common.keep_alive |= lists_token(header.value, b"keep-alive");
        }
    }
    if common.chunked && common.content_length.is_some() {
        // A request smuggling vector; a connector refuses rather than guesses.
        return Err(HeadError::AmbiguousFraming);
    }
    Ok(common)
}

fn keep_alive(version: Option<u8>, common: &CommonHeaders) -> bool {
    match version {
        Some(1) => !common.close,
        // HTTP/1.0 has no chunked coding: a message that uses it has faulty framing,
        // and the connection closes after it (RFC 9112 section 6.1).
        _ => common.keep_alive && !common.close && !common.chunked,
    }
}

/// The length of a complete head from httparse's answer; `None` while partial.
fn head_length(
    parsed: Result<httparse::Status<usize>, httparse::Error>,
    buf: &[u8],
) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(len)) if len > HEAD_SIZE_MAX => Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if buf.len() >= HEAD_SIZE_MAX => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// Parses a request head at the start of `buf`; `None` when more bytes are needed.
pub fn parse_request(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let Some(head_len) = head_length(request.parse(buf), buf)? else {
        return Ok(None);
    };
    let common = common_headers(request.headers)?;
    let mut head = RequestHead {
        is_post: request.method == Some("POST"),
        is_head: request.method == Some("HEAD"),
        is_http10: request.version == Some(0),
        authorization: None,
        content_type: None,
        // A request with neither header has no body (RFC 9112 section 6.3).
        framing: if common.chunked {
            Framing::Chunked
        } else {
            Framing::Length(common.content_length.unwrap_or(0))
        },
        keep_alive: keep_alive(request.version, &common),
        expect_continue: false,
        head_len,
    };
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"authorization") {
            // Two tokens in one request: which one was meant is a guess, and a
            // proxy in front may have checked the other.
            if head.authorization.is_some() {
                return Err(HeadError::Malformed);
            }
            head.authorization = Some(range_in(buf, header.value.trim_ascii()));
        } else if name.eq_ignore_ascii_case(b"content-type") {
            head.content_type = Some(range_in(buf, header.value.trim_ascii()));
        } else if name.eq_ignore_ascii_case(b"expect") {
            head.expect_continue = header
                .value
                .trim_ascii()
                .eq_ignore_ascii_case(b"100-continue");
        }
    }
    Ok(Some(head))
}

/// Parses a response head at the start of `buf`; `None` when more bytes are needed.
/// Interim (1xx) responses are reported like any other; the caller skips them.
pub fn parse_response(buf: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let Some(head_len) = head_length(response.parse(buf), buf)? else {
        return Ok(None);
    };
    let status = response.code.ok_or(HeadError::Malformed)?;
    let common = common_headers(response.headers)?;
    // 1xx, 204 and 304 never have a body (RFC 9112 section 6.3).
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let framing = match (bodiless, common.chunked, common.content_length) {
        (true, _, _) => Framing::Length(0),
        (false, true, _) => Framing::Chunked,
        (false, false, Some(length)) => Framing::Length(length),
        (false, false, None) => Framing::UntilClose,
    };
    Ok(Some(ResponseHead {
        status,
        framing,
        keep_alive: keep_alive(response.version, &common) && framing != Framing::UntilClose,
        head_len,
    }))
}

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    #[error("malformed chunked body")]
    Malformed,
    #[error("body larger than allowed")]
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// Inside chunk data, with this many bytes left.
    Data(usize),
    /// The CRLF after chunk data.
    DataEnd,
    /// Trailer lines after the last chunk, until an empty line.
    Trailer,
    Done,
}

/// Decodes a chunked body incrementally, appending data to `out`.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    body_size_max: usize,
    trailer_lines: usize,
}

impl ChunkedDecoder {
    pub fn new(body_size_max: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size,
            body_size_max,
            trailer_lines: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes what it can of `input`; returns the bytes consumed. Call again with
    /// more input until [`is_done`](Self::is_done).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let mut at = 0;
        // Each pass consumes at least one line or some data, or returns.
        while at < input.len() && self.state != ChunkState::Done {
            let rest = &input[at..];
            match self.state {
                ChunkState::Size => {
                    let Some(line) = line_of(rest)? else { break };
                    let size = parse_chunk_size(&rest[..line - 2])?;
                    if out.len().saturating_add(size) > self.body_size_max {
                        return Err(ChunkError::TooLarge);
                    }
                    at += line;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let take = left.min(rest.len());
                    out.extend_from_slice(&rest[..take]);
                    at += take;
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        break;
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ChunkError::Malformed);
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = line_of(rest)? else { break };
                    at += line;
                    if line == 2 {
                        self.state = ChunkState::Done;
                    } else {
                        // Trailers carry nothing an ILP peer needs: a few, well formed.
                        self.trailer_lines += 1;
                        if self.trailer_lines > TRAILER_LINES_MAX
                            || !is_field_line(&rest[..line - 2])
                        {
                            return Err(ChunkError::Malformed);
                        }
                    }
                }
                ChunkState::Done => unreachable!("the loop stops when done"),
            }
        }
        Ok(at)
    }
}

/// The length of the CRLF-terminated line at the start of `input`, CRLF included.
/// A bare CR or LF before it is malformed (RFC 9112 section 2.2: a recipient of a
/// chunked body must not take one for a line end, and guessing is how smuggling
/// starts).
fn line_of(input: &[u8]) -> Result<Option<usize>, ChunkError> {
    let window = &input[..input.len().min(CHUNK_LINE_SIZE_MAX)];
    match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(end) if window.get(end..end + 2) == Some(b"\r\n") => Ok(Some(end + 2)),
        Some(end)
            if end + 1 == window.len()
                && window[end] == b'\r'
                && window.len() < CHUNK_LINE_SIZE_MAX =>
        {
            Ok(None)
        }
        Some(_) => Err(ChunkError::Malformed),
        None if window.len() == CHUNK_LINE_SIZE_MAX => Err(ChunkError::Malformed),
        None => Ok(None),
    }
}

/// A trailer line: a token, a colon, and visible characters, spaces or tabs.
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, ChunkError> {
    // Extensions after ';' carry nothing an ILP peer needs, but must be visible
    // characters, spaces or tabs: a control byte there is not a chunk line.
    if !line
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(ChunkError::Malformed);
    }
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    if digits.is_empty() || digits.len() > 8 {
        return Err(ChunkError::Malformed);
    }
    digits.iter().try_fold(0usize, |n, &d| {
        let value = (d as char).to_digit(16).ok_or(ChunkError::Malformed)?;
        Ok(n * 16 + value as usize)
    })
}

/// A whole message with every header, for the blocking clients and sinks of the
/// load generator and the end-to-end tests (the packet path reads only what it
/// needs, without copies, through [`parse_request`] and [`parse_response`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `POST /ilp HTTP/1.1`, or `HTTP/1.1 200 OK`.
    pub start_line: String,
    /// Names in lower case, values trimmed, in the order they came.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    /// The status of a response.
    pub fn status(&self) -> Option<u16> {
        let mut parts = self.start_line.split(' ');
        let version = parts.next()?;
        if !version.starts_with("HTTP/") {
            return None;
        }
        parts.next()?.parse().ok()
    }

    /// The method and target of a request.
    pub fn method_and_path(&self) -> Option<(&str, &str)> {
        let mut parts = self.start_line.split(' ');
        let method = parts.next()?;
        let path = parts.next()?;
        (!method.starts_with("HTTP/")).then_some((method, path))
    }

    /// The first value of a header, by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a whole message cannot be read.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Body(#[from] ChunkError),
    #[error("the connection closed inside a message")]
    Truncated,
}

/// Takes one whole request or response off the front of `buf`; `Ok(None)` until
/// it is all there. `closed` says that no more bytes will come, which ends a body
/// framed by the connection's end.
pub fn take_message(
    buf: &mut Vec<u8>,
    body_size_max: usize,
    closed: bool,
) -> Result<Option<Message>, MessageError> {
    let head = if buf.starts_with(b"HTTP/") {
        parse_response(buf)?.map(|h| (h.head_len, h.framing))
    } else {
        parse_request(buf)?.map(|h| (h.head_len, h.framing))
    };
    let Some((head_len, framing)) = head else {
        return if closed && !buf.is_empty() {
            Err(MessageError::Truncated)
        } else {
            Ok(None)
        };
    };
    let Some((body, end)) = take_body(&buf[head_len..], framing, body_size_max, closed)? else {
        return Ok(None);
    };
    let (start_line, headers) = head_fields(&buf[..head_len]);
    buf.drain(..head_len + end);
    Ok(Some(Message {
        start_line,
        headers,
        body,
    }))
}

/// Reads from `source` into `buffer` until a whole message is there; `None` when the
/// source ends between messages. For blocking callers (the load generator, test
/// peers): this crate opens nothing, it only reads what it is handed. Bytes read stay
/// in `buffer` when a read fails (a timeout), so the caller may try again.
pub fn read_message(
    source: &mut impl std::io::Read,
    buffer: &mut Vec<u8>,
    body_size_max: usize,
) -> std::io::Result<Option<Message>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(message) =
            take_message(buffer, body_size_max, false).map_err(std::io::Error::other)?
        {
            return Ok(Some(message));
        }
        let read = source.read(&mut chunk)?;
        if read == 0 {
            return take_message(buffer, body_size_max, true).map_err(std::io::Error::other);
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// The body at the start of `rest` and the bytes it took, once complete.
fn take_body(
    rest: &[u8],
    framing: Framing,
    body_size_max: usize,
    closed: bool,
) -> Result<Option<(Vec<u8>, usize)>, MessageError> {
    let incomplete = if closed {
        Err(MessageError::Truncated)
    } else {
        Ok(None)
    };
    match framing {
        Framing::Length(length) if length > body_size_max => Err(ChunkError::TooLarge.into()),
        Framing::Length(length) if rest.len() < length => incomplete,
        Framing::Length(length) => Ok(Some((rest[..length].to_vec(), length))),
        Framing::UntilClose if rest.len() > body_size_max => Err(ChunkError::TooLarge.into()),
        Framing::UntilClose if closed => Ok(Some((rest.to_vec(), rest.len()))),
        Framing::UntilClose => Ok(None),
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::new(body_size_max);
            let mut body = Vec::new();
            let used = decoder.decode(rest, &mut body)?;
            if decoder.is_done() {
                Ok(Some((body, used)))
            } else {
                incomplete
            }
        }
    }
}

/// The start line and every header of a head already parsed.
fn head_fields(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let start_line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (start_line, headers)
}

/// Appends a response with a body of `content_type`, and a `Connection` header when
/// one is given (`close`, or `keep-alive` for an HTTP/1.0 client).
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: &[u8],
    connection_header: Option<&str>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, body.len() as u64);
    if let Some(value) = connection_header {
        out.extend_from_slice(b"\r\nConnection: ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Appends a POST of an ILP packet.
pub fn write_packet_request(
    out: &mut Vec<u8>,
    path: &str,
    host: &str,
    authorization: &str,
    body: &[u8],
) {
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nAuthorization: ");
    out.extend_from_slice(authorization.as_bytes());
    out.extend_from_slice(
        b"\r\nContent-Type: application/octet-stream\r\nAccept: application/octet-stream\r\nContent-Length: ",
    );
    push_decimal(out, body.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PACKET_REQUEST: &[u8] = b"POST /ilp HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer  tok \r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn a_packet_request_parses_with_its_fields() {
        let head = parse_request(PACKET_REQUEST)
            .expect("valid")
            .expect("complete");
        assert!(head.is_post && head.keep_alive && !head.expect_continue);
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(
            &PACKET_REQUEST[head.authorization.expect("present")],
            b"Bearer  tok"
        );
        assert_eq!(
            &PACKET_REQUEST[head.content_type.expect("present")],
            b"application/octet-stream"
        );
        assert_eq!(&PACKET_REQUEST[head.head_len..], b"hello");
    }

    #[test]
    fn a_partial_head_asks_for_more_and_every_prefix_does() {
        let end = PACKET_REQUEST.len() - 5;
        for cut in 0..end {
            assert_eq!(parse_request(&PACKET_REQUEST[..cut]), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let head = |text: &str| {
            parse_request(text.as_bytes())
                .expect("valid")
                .expect("complete")
        };
        assert_eq!(head("GET / HTTP/1.1\r\n\r\n").framing, Framing::Length(0));
        assert_eq!(
            head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").framing,
            Framing::Chunked
        );
        assert_eq!(
            head("POST / HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n").framing,
            Framing::Length(7)
        );
        let error = |text: &str| parse_request(text.as_bytes()).expect_err("refused");
        assert_eq!(
            error("POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n"),
            HeadError::BadContentLength
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            HeadError::BadContentLength
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            HeadError::UnsupportedTransferEncoding
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            HeadError::AmbiguousFraming
        );
        assert_eq!(error("POST\r\n\r\n"), HeadError::Malformed);
    }

    #[test]
    fn keep_alive_depends_on_version_and_connection() {
        let alive = |text: &str| {
            parse_request(text.as_bytes())
                .expect("valid")
                .expect("complete")
                .keep_alive
        };
        assert!(alive("POST / HTTP/1.1\r\n\r\n"));
        assert!(!alive("POST / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!alive("POST / HTTP/1.0\r\n\r\n"));
        assert!(alive("POST / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(
            parse_request(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
                .expect("present")
                .expect("present")
                .expect_continue
        );
    }

    #[test]
    fn an_oversized_head_is_refused_before_it_completes() {
        let mut text = b"POST / HTTP/1.1\r\nX-Padding: ".to_vec();
        text.resize(HEAD_SIZE_MAX, b'a');
        assert_eq!(parse_request(&text), Err(HeadError::TooLarge));
        let mut many = b"POST / HTTP/1.1\r\n".to_vec();
        for i in 0..=HEADERS_MAX {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&many), Err(HeadError::TooLarge));
    }

    #[test]
    fn responses_frame_by_status_and_headers() {
        let head = |text: &str| {
            parse_response(text.as_bytes())
                .expect("valid")
                .expect("complete")
        };
        let ok = head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(
            (ok.status, ok.framing, ok.keep_alive),
            (200, Framing::Length(3), true)
        );
        assert_eq!(ok.head_len, 38);
        assert_eq!(
            head("HTTP/1.1 100 Continue\r\n\r\n").framing,
            Framing::Length(0)
        );
        assert_eq!(
            head("HTTP/1.1 204 No Content\r\n\r\n").framing,
            Framing::Length(0)
        );
        let until_close = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(until_close.framing, Framing::UntilClose);
        assert!(!until_close.keep_alive);
        assert!(
            !head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framing,
            Framing::Chunked
        );
    }

    #[test]
    fn written_messages_parse_back() {
        let mut request = Vec::new();
        write_packet_request(&mut request, "/ilp", "127.0.0.1:9", "Bearer t", b"\x0c\x01");
        let head = parse_request(&request).expect("valid").expect("complete");
        assert_eq!(head.framing, Framing::Length(2));
        assert_eq!(&request[head.authorization.expect("present")], b"Bearer t");
        assert_eq!(&request[head.head_len..], b"\x0c\x01");

        let mut response = Vec::new();
        write_response(&mut response, 401, "text/plain", b"no\n", Some("close"));
        let head = parse_response(&response).expect("valid").expect("complete");
        assert_eq!((head.status, head.keep_alive), (401, false));
        assert_eq!(&response[head.head_len..], b"no\n");
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut decoder = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        let used = decoder.decode(body, &mut out).expect("present");
        assert!(decoder.is_done());
        assert_eq!(out, b"hello world");
        assert_eq!(&body[used..], b"NEXT");
    }

    #[test]
    fn chunked_errors_are_typed() {
        let mut out = Vec::new();
        assert_eq!(
            ChunkedDecoder::new(1024).decode(b"zz\r\n", &mut out),
            Err(ChunkError::Malformed)
        );
        assert_eq!(
            ChunkedDecoder::new(1024).decode(b"2\r\nabX\r\n", &mut out),
            Err(ChunkError::Malformed)
        );
        assert_eq!(
            ChunkedDecoder::new(4).decode(b"5\r\n", &mut out),
            Err(ChunkError::TooLarge)
        );
        assert_eq!(
            ChunkedDecoder::new(4).decode(&[b'1'; 300], &mut out),
            Err(ChunkError::Malformed)
        );
    }

    proptest! {
        /// Fed in any split, a chunked body decodes to the same bytes.
        #[test]
        fn chunked_decoding_does_not_depend_on_splits(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..6),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let mut encoded = Vec::new();
            for chunk in &chunks {
                encoded.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                encoded.extend_from_slice(chunk);
                encoded.extend_from_slice(b"\r\n");
            }
            encoded.extend_from_slice(b"0\r\n\r\n");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (encoded.len() + 1)).collect();
            cuts.push(encoded.len());
            cuts.sort_unstable();
            let mut decoder = ChunkedDecoder::new(1 << 20);
            let mut out = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            let mut fed = 0;
            for cut in cuts {
                pending.extend_from_slice(&encoded[fed..cut]);
                fed = cut;
                let used = decoder.decode(&pending, &mut out).expect("present");
                pending.drain(..used);
            }
            prop_assert!(decoder.is_done());
            prop_assert_eq!(out, chunks.concat());
        }

        /// No input makes the parsers panic.
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_request(&bytes);
            let _ = parse_response(&bytes);
            let _ = ChunkedDecoder::new(64).decode(&bytes, &mut Vec::new());
        }
    }

    #[test]
    fn whole_messages_come_off_the_front_of_a_buffer() {
        let mut buf = b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 2\r\n\r\nhiPOST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-A:  1 \r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec();
        let response = take_message(&mut buf, 100, false)
            .expect("valid")
            .expect("complete");
        assert_eq!(response.status(), Some(200));
        assert_eq!(response.header("content-type"), Some("a/b"));
        assert_eq!(response.body, b"hi");
        let request = take_message(&mut buf, 100, false)
            .expect("valid")
            .expect("complete");
        assert_eq!(request.method_and_path(), Some(("POST", "/x")));
        assert_eq!((request.header("x-a"), request.status()), (Some("1"), None));
        assert_eq!(request.body, b"abc");
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_truncated_and_oversized_messages() {
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
        for cut in 0..whole.len() {
            let mut buf = whole[..cut].to_vec();
            assert_eq!(take_message(&mut buf, 100, false), Ok(None), "{cut}");
            let closed = take_message(&mut buf, 100, true);
            assert!(cut == 0 && closed == Ok(None) || closed == Err(MessageError::Truncated));
        }
        let mut buf = b"HTTP/1.1 200 OK\r\n\r\nto the end".to_vec();
        assert_eq!(take_message(&mut buf, 100, false), Ok(None));
        let until_close = take_message(&mut buf, 100, true).expect("valid");
        assert_eq!(until_close.map(|m| m.body), Some(b"to the end".to_vec()));
        let mut buf = whole.to_vec();
        assert_eq!(
            take_message(&mut buf, 3, false),
            Err(MessageError::Body(ChunkError::TooLarge))
        );
    }

    #[test]
    fn lenient_corners_are_closed() {
        let decode = |body: &[u8]| {
            let mut out = Vec::new();
            let mut decoder = ChunkedDecoder::new(1 << 10);
            decoder
                .decode(body, &mut out)
                .map(|_| (decoder.is_done(), out))
        };
        assert_eq!(
            decode(b"3\r\nabc\r\n0\r\n\r\n"),
            Ok((true, b"abc".to_vec()))
        );
        assert_eq!(
            decode(b"3;ext=1\r\nabc\r\n0\r\nX-T: v\r\n\r\n"),
            Ok((true, b"abc".to_vec()))
        );
        for bad in [
            &b"3\nabc\r\n0\r\n\r\n"[..],
            b"3\r\rabc\r\n0\r\n\r\n",
            b"3;\x00\r\nabc\r\n0\r\n\r\n",
            b"3\r\nabc\r\n0\r\nno colon\r\n\r\n",
            b"3\r\nabc\r\n0\r\nX: \x01\r\n\r\n",
        ] {
            assert_eq!(decode(bad), Err(ChunkError::Malformed), "{bad:?}");
        }
        let mut many = b"0\r\n".to_vec();
        for _ in 0..=TRAILER_LINES_MAX {
            many.extend_from_slice(b"X-T: v\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(decode(&many), Err(ChunkError::Malformed));
        // A CR at the end of what has arrived waits for its LF.
        assert_eq!(decode(b"3\r"), Ok((false, Vec::new())));

        let head = |text: &str| parse_request(text.as_bytes());
        assert_eq!(
            head("POST / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        let chunked_10 =
            head("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n")
                .expect("framed")
                .expect("complete");
        assert!(!chunked_10.keep_alive, "HTTP/1.0 with chunked closes");
    }
}

/// An `http://` or `https://` URL as a client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub tls: bool,
    /// `host:port`, the port filled in (80 or 443) when the URL has none.
    pub authority: String,
    /// As written in the URL, for the `Host` header.
    pub written_authority: &'a str,
    /// The host alone, without brackets: what a TLS certificate must name.
    pub host: &'a str,
    /// Path and query for the request line; `/` when the URL has none.
    pub path: String,
}

/// Splits an `http[s]://host[:port][/path][?query]` URL; `None` for another
/// scheme or no host.
pub fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return None,
    };
    let (written_authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if written_authority.is_empty() {
        return None;
    }
    let path = match path {
        "" => "/".to_owned(),
        query if query.starts_with('?') => format!("/{query}"),
        path => path.to_owned(),
    };
    let (host, authority) = match written_authority.rsplit_once(':') {
        Some((host, _)) if !written_authority.ends_with(']') => {
            (host, written_authority.to_owned())
        }
        _ => {
            let port = if tls { 443 } else { 80 };
            (written_authority, format!("{written_authority}:{port}"))
        }
    };
    Some(UrlParts {
        tls,
        authority,
        written_authority,
        host: host.trim_start_matches('[').trim_end_matches(']'),
        path,
    })
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn urls_split_with_their_default_ports() {
        let parts = split_url("https://peer.example/ilp?x=1").expect("valid");
        assert!(parts.tls);
        assert_eq!(parts.authority, "peer.example:443");
        assert_eq!(
            (parts.host, parts.path.as_str()),
            ("peer.example", "/ilp?x=1")
        );
        let parts = split_url("http://[::1]:8080").expect("valid");
        assert_eq!(
            (parts.authority.as_str(), parts.host, parts.path.as_str()),
            ("[::1]:8080", "::1", "/")
        );
        let parts = split_url("http://feed?base=USD").expect("valid");
        assert_eq!(
            (parts.authority.as_str(), parts.path.as_str()),
            ("feed:80", "/?base=USD")
        );
        assert_eq!(
            split_url("http://[::1]").expect("valid").authority,
            "[::1]:80"
        );
        for bad in ["ftp://x", "http://", "http:///x", "x"] {
            assert!(split_url(bad).is_none(), "{bad}");
        }
    }
}
