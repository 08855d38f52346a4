//! Every bound of the protocol core in one place, each with why it has its value,
//! and the relations between them checked by the compiler (as TigerBeetle keeps its
//! constants). Sizes are in bytes, times in milliseconds, unless the name says.
//! The data plane's own bounds (sockets, queues, batches) are in its `limits`.

// ---- Wire formats: bounds the RFCs set.

/// Longest valid ILP address (RFC 0015).
pub const ADDRESS_SIZE_MAX: usize = 1023;
/// Largest `data` field of any ILP packet (RFC 0027).
pub const DATA_SIZE_MAX: usize = 32_767;
/// Largest Reject `message` (RFC 0027).
pub const MESSAGE_SIZE_MAX: usize = 8_191;
/// Largest length an OER determinant may carry here. ILP and STREAM never need more
/// than [`DATA_SIZE_MAX`], so anything that does not fit a `u32` can only be an
/// attack; smaller lengths are bounded by the buffer they claim to fill.
pub const LENGTH_MAX: u64 = u32::MAX as u64;
/// Most segments an address can have: one byte and a dot each, at least.
pub const SEGMENTS_MAX: usize = ADDRESS_SIZE_MAX.div_ceil(2);

// ---- Rates.

/// Most significant digits a rate may have: f64's shortest form has at most 17, and
/// 18 keeps `amount x mantissa` inside u128 for any u64 amount.
pub const RATE_DIGITS_MAX: usize = 18;

// ---- STREAM.

/// Longest token segment Riptide issues: an address needs at least one character
/// and a dot before it.
pub const SEGMENT_SIZE_MAX: usize = ADDRESS_SIZE_MAX - 2;
/// Room for the bytes of any segment that fits in an address: 1023 base64
/// characters are at most 767 bytes, and the decoder asks for one more.
pub const TOKEN_SIZE_MAX: usize = 768;
/// Paying streams of one packet that get their own `StreamMaxMoney` and receipt.
/// Senders use one or two; more are answered as a group through the first ones.
pub const MONEY_STREAMS_MAX: usize = 8;
/// Frames in one reply: asset details and its stream id limit, then per paying
/// stream a `StreamMaxMoney` and a receipt, or a close.
pub const REPLY_FRAMES_MAX: usize = 2 + 2 * MONEY_STREAMS_MAX;
/// How long a Prepare the sender makes may be held on the path: as long as the
/// JavaScript STREAM sender allows, so that paths built for it carry ours.
pub const PACKET_EXPIRY_MS: u64 = 30_000;
/// First wait of the sender after a temporary reject; it doubles.
pub const BACKOFF_MS_MIN: u64 = 10;
/// Longest wait of the sender after temporary rejects: a payment keeps probing a
/// congested path at least every two seconds.
pub const BACKOFF_MS_MAX: u64 = 2_000;

// ---- The money flows.

/// Legs of one packet: one for a same-asset packet, two across assets.
pub const LEGS_MAX: usize = 2;
/// First wait before a ledger request that never left this process is tried again.
pub const RETRY_BACKOFF_MS_MIN: u64 = 20;
/// Longest wait between two tries: short beside any pending timeout.
pub const RETRY_BACKOFF_MS_MAX: u64 = 1_000;
/// Most requests one ledger step makes before it gives up; with the backoff above
/// and a request timeout this spans far more than any pending timeout, so it is a
/// bound on a loop rather than a policy.
pub const ATTEMPTS_MAX: u32 = 512;
/// Lookups of a hold whose answer was lost before it is abandoned: the packet's
/// sender is waiting, and one more silent round trip says the ledger is away.
pub const HOLD_LOOKUPS_MAX: u32 = 1;
/// Most time kept back from a packet's expiry for its reply to travel.
pub const REPLY_MARGIN_MS_MAX: u64 = 250;
/// Time past a pending transfer's timeout before it is certain to have expired in
/// the ledger: the ledger's clock and ours may differ a little.
pub const PENDING_EXPIRY_MARGIN_MS: u64 = 5_000;
/// Tries to take a local count back before it is left to the journal's sweep.
pub const TAKE_BACK_ATTEMPTS_MAX: u32 = 5;
/// First wait between two take-backs; it doubles.
pub const TAKE_BACK_BACKOFF_MS: u64 = 200;

// ---- HTTP/1.1.

/// Longest host name a DNS query carries (RFC 1035: 255 bytes on the wire).
pub const DNS_NAME_SIZE_MAX: usize = 253;
/// Answer records read from one DNS answer; more are ignored. A UDP answer of 512
/// bytes holds fewer A records than this.
pub const DNS_ANSWERS_MAX: usize = 64;
/// Shortest incoming bearer token a peer may have: 16 characters drawn from the
/// printable ASCII set are more than 10^31 guesses, far past what the per-source
/// slowdown of failed authentications lets anyone try.
pub const INCOMING_TOKEN_SIZE_MIN: usize = 16;
/// Headers read per message; more is an error (a peer is not a browser).
pub const HEADERS_MAX: usize = 32;
/// Largest head accepted, request line and headers together.
pub const HEAD_SIZE_MAX: usize = 8 * 1024;
/// Longest chunk-size line (hex digits, extensions, CRLF); also of a trailer line.
pub const CHUNK_LINE_SIZE_MAX: usize = 256;
/// Trailer lines after a chunked body: ILP peers send none; a few are tolerated.
pub const TRAILER_LINES_MAX: usize = 8;

// ---- The state document and the admin API.

/// The most Prepares one send to a peer may carry (`outgoing_pipeline_max`): past
/// this a burst's last packet waits longer for the replies ahead of it than a
/// connection of its own would take to open.
pub const OUTGOING_PIPELINE_MAX: u16 = 64;
/// Largest request body the admin API reads, other than a state document: a quote,
/// a payment or a liquidity move is a few hundred bytes.
pub const REQUEST_SIZE_MAX: usize = 64 * 1024;

// ---- Relations.

const _: () = assert!(MESSAGE_SIZE_MAX < DATA_SIZE_MAX);
const _: () = assert!(DATA_SIZE_MAX as u64 <= LENGTH_MAX);
const _: () = assert!(2 * SEGMENTS_MAX >= ADDRESS_SIZE_MAX);
// A base64 segment of SEGMENT_SIZE_MAX characters decodes into TOKEN_SIZE_MAX.
const _: () = assert!(SEGMENT_SIZE_MAX * 3 / 4 < TOKEN_SIZE_MAX);
const _: () = assert!(REPLY_FRAMES_MAX >= 2 + 2 * MONEY_STREAMS_MAX);
const _: () = assert!(BACKOFF_MS_MIN <= BACKOFF_MS_MAX);
const _: () = assert!(RETRY_BACKOFF_MS_MIN <= RETRY_BACKOFF_MS_MAX);
const _: () = assert!(RETRY_BACKOFF_MS_MAX < PENDING_EXPIRY_MARGIN_MS);
// 10^RATE_DIGITS_MAX times any u64 amount fits a u128.
const _: () = assert!((u64::MAX as u128)
    .checked_mul(10u128.pow(RATE_DIGITS_MAX as u32))
    .is_some());
const _: () = assert!(LEGS_MAX >= 1 && HOLD_LOOKUPS_MAX >= 1 && ATTEMPTS_MAX > HOLD_LOOKUPS_MAX);
const _: () = assert!(CHUNK_LINE_SIZE_MAX < HEAD_SIZE_MAX);
// Trailers, bounded, take less than a head.
const _: () = assert!(TRAILER_LINES_MAX * CHUNK_LINE_SIZE_MAX <= HEAD_SIZE_MAX);
const _: () = assert!(OUTGOING_PIPELINE_MAX >= 1);
// A reply to a sender's packet leaves within its hold on the path.
const _: () = assert!(REPLY_MARGIN_MS_MAX < PACKET_EXPIRY_MS);
