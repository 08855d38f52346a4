//! Every bound of `riptidectl` in one place, each with why it has its value, and the
//! relations between them checked by the compiler. The data plane's bounds are in
//! its own `limits`, the protocol's in `riptide_proto::limits`.

use std::time::Duration;

// ---- Talking to data planes.

/// Largest answer read from a data plane: twice the largest state document it
/// accepts (16 MiB), for the JSON of a document it holds.
pub const ANSWER_SIZE_MAX: u64 = 32 * 1024 * 1024;
/// Shortest wait for the answer to a quote, or to a payment quoted on the way: the
/// data plane resolves SPSP (up to 10 s) and probes the path (up to 10 s) before it
/// answers.
pub const PROBE_ANSWER_TIMEOUT_MIN: Duration = Duration::from_secs(30);
/// Time between two reads of a payment that is sending: a payment of a few packets
/// ends within one or two reads, and a data plane answers each read at once.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// First wait before a failed call to a data plane is tried again; it doubles.
pub const RETRY_BACKOFF_FIRST: Duration = Duration::from_millis(200);
/// Longest wait between two tries: a data plane that restarts is back in seconds.
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// `serve`'s first wait after a failed push to a data plane (then doubling, up to
/// [`RETRY_BACKOFF_MAX`] or the poll interval if longer): shorter than a
/// command's, since a worker keeps trying for as long as it runs.
pub const SERVE_BACKOFF_FIRST: Duration = Duration::from_millis(100);

// ---- The rates feed.

/// Largest feed answer read: a rate per currency in the world is a few KiB.
pub const FEED_SIZE_MAX: u64 = 1024 * 1024;
/// After a failed fetch, the next one waits at least this long (or the lifetime, if
/// shorter), so a feed that is down is not hammered.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// `serve` checks the feed again within this range: a rates lifetime shorter than the
/// first would spin, and one longer than the second would leave stale rates unseen.
pub const FEED_CHECK_MIN: Duration = Duration::from_millis(50);
pub const FEED_CHECK_MAX: Duration = Duration::from_secs(1);
/// A caller waits for a fetch in flight at most its timeout and this much more.
pub const FETCH_WAIT_MARGIN: Duration = Duration::from_secs(1);

// ---- `serve`.

/// Longest single sleep of any thread: how long a stop may take to be noticed.
pub const SLEEP_SLICE: Duration = Duration::from_millis(100);

// ---- Command-line values.

/// Longest expiry the data plane accepts: a year, in seconds.
pub const EXPIRES_IN_S_MAX: u64 = 365 * 24 * 3_600;
/// Longest id of an incoming payment, quote or outgoing payment.
pub const RECORD_ID_SIZE_MAX: usize = 128;

// ---- Relations.

const _: () = assert!(ANSWER_SIZE_MAX >= 16 * 1024 * 1024);
const _: () = assert!(PROBE_ANSWER_TIMEOUT_MIN.as_secs() >= 20);
const _: () = assert!(SLEEP_SLICE.as_millis() <= POLL_INTERVAL.as_millis());
const _: () = assert!(RETRY_AFTER_FAILURE.as_millis() >= SLEEP_SLICE.as_millis());
const _: () = assert!(RETRY_BACKOFF_FIRST.as_millis() < RETRY_BACKOFF_MAX.as_millis());
const _: () = assert!(SERVE_BACKOFF_FIRST.as_millis() <= RETRY_BACKOFF_FIRST.as_millis());
const _: () = assert!(FEED_CHECK_MIN.as_millis() < FEED_CHECK_MAX.as_millis());
