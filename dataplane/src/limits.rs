//! Every bound of the data plane in one place, each with why it has its value, and
//! the relations between them checked by the compiler (as TigerBeetle keeps its
//! constants). The protocol core's bounds (packet sizes, HTTP heads, the money
//! flows' retries) are in `riptide_proto::limits`. Sizes are in bytes.

use riptide_proto::limits::{
    DATA_SIZE_MAX, HEAD_SIZE_MAX, OUTGOING_PIPELINE_MAX, PACKET_EXPIRY_MS,
};
use std::time::Duration;

// ---- Connections and HTTP.

/// How often an accept loop or the sweep looks whether the shard is shutting down.
pub const SHUTDOWN_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Pause after a failed accept (out of file descriptors, say), so that the loop
/// does not spin while the cause lasts.
pub const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// How often the deadline watchdog of a connection looks at it, at the most: the
/// deadlines are configured in milliseconds but need not be kept to the millisecond.
pub const DEADLINE_CHECK_MIN: Duration = Duration::from_millis(50);
/// Initial read buffer of a connection: most ILP messages fit, head and body, in
/// one read; a full packet with 32 KiB of data in a few.
pub const READ_BUFFER_SIZE: usize = 16 * 1024;
/// Reads per message at most: a peer trickling bytes cannot hold a task forever,
/// and the largest message allowed takes far fewer.
pub const READS_PER_MESSAGE_MAX: usize = 4_096;
/// After a refusal, how long what the client still sends is read and dropped before
/// the socket closes. Closing with unread bytes would send a reset, which can
/// destroy the refusal before the client reads it.
pub const LINGER: Duration = Duration::from_secs(1);
/// Reads of that lingering, at most.
pub const LINGER_READS_MAX: usize = 256;
/// Requests served on one connection before it is closed; peers reconnect at once.
/// Bounds the life of a task, as every loop here is bounded.
pub const REQUESTS_PER_CONNECTION_MAX: u64 = 1 << 40;
/// Pipelined requests of one connection whose packets run side by side, at most: as
/// many as a burst of Riptide's own peer client. Requests are counted by batch
/// against [`REQUESTS_PER_CONNECTION_MAX`].
pub const PIPELINED_RUN_MAX: usize = OUTGOING_PIPELINE_MAX as usize;

// ---- Peers (the outgoing side).

/// Idle connections kept per peer endpoint; more are closed after use.
pub const IDLE_CONNECTIONS_MAX: usize = 256;
/// Largest reply body accepted from a peer: an ILP reply is at most about 41 KB.
pub const REPLY_SIZE_MAX: usize = 64 * 1024;
/// Interim (1xx) responses skipped before the real one.
pub const INTERIM_RESPONSES_MAX: usize = 8;
/// Pooled connections idle for more sweeps than this (one a second) are closed, so
/// that a peer's own idle timeout rarely closes a connection just as a Prepare (or a
/// burst of them) is written to it: Node's HTTP server, which Rafiki and
/// ilp-plugin-http use, closes after 5 s by default. It also keeps a load spike from
/// leaving hundreds of sockets open. Counting sweeps spares a clock read per packet.
pub const IDLE_IN_POOL_SWEEPS_MAX: u64 = 3;
/// The most Prepares one burst may carry, whatever a peer's configuration says.
pub const PIPELINE_MAX: usize = OUTGOING_PIPELINE_MAX as usize;
/// Largest SPSP answer read from a receiver (a few hundred bytes in practice).
pub const ANSWER_SIZE_MAX: usize = 16 * 1024;

// ---- The rates feed.

/// Largest answer read from the rates feed (Rafiki's lists a few hundred codes).
pub const FEED_SIZE_MAX: usize = 1024 * 1024;
/// Longest wait for one fetch of the feed.
pub const FEED_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed fetch, the next try comes this soon (or at the rates' lifetime,
/// if shorter); the last good rates stay meanwhile.
pub const FEED_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

// ---- OpenTelemetry.

/// Longest wait for a collector to take one export.
pub const OTLP_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from a collector (only its status matters).
pub const OTLP_ANSWER_SIZE_MAX: usize = 64 * 1024;

// ---- Webhooks.

/// Largest answer read from a webhook receiver (only its status matters).
pub const WEBHOOK_ANSWER_SIZE_MAX: usize = 64 * 1024;
/// How long the delivery thread sleeps with nothing queued before it looks again.
pub const WEBHOOK_IDLE_WAIT: Duration = Duration::from_secs(1);
/// Incoming payments watched for their completed and expired events at most.
pub const WATCHED_PAYMENTS_MAX: usize = 10_000;

// ---- Name resolution.

/// Names the resolver caches at most; past it, expired ones go first, and a name
/// that still finds no room is looked up each time.
pub const DNS_CACHE_NAMES_MAX: usize = 4_096;
/// Lookups queued for the resolver's thread; past it a lookup fails at once.
pub const DNS_JOBS_MAX: usize = 1_024;
/// Threads that query DNS servers; each lookup blocks one for at most the timeout.
pub const DNS_THREADS: usize = 4;
/// How often the resolver looks for peers' names whose TTL has ended.
pub const DNS_REFRESH_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Packets waiting for one name's lookup at once; past it they fail at once.
pub const DNS_WAITERS_PER_NAME_MAX: usize = 1_024;

// ---- The shard.

/// Largest `node.in_flight_max`: packets a shard works on at once, its own and
/// those other shards send it. Past the configured value it answers T03 at once
/// rather than queueing without bound.
pub const IN_FLIGHT_MAX: u32 = 1 << 20;
/// Random bytes a STREAM receiver takes from the OS generator at once, for the
/// IVs of its replies: one system call per 341 replies rather than one each.
pub const RANDOM_POOL_SIZE: usize = 4_096;
/// Capacity of each cross-shard channel: a shard sending more at once than this
/// waits for the owner to drain, which is the back pressure wanted.
pub const MESH_CHANNEL_SIZE: usize = 1_024;
/// Memory glommio locks per executor for io_uring buffers. The default (10 MiB)
/// exceeds the 8 MiB `ulimit -l` of common hosts once there are two shards.
pub const IO_MEMORY_BYTES: usize = 2 << 20;
/// Connections a shard's listener queues before it accepts them (what glommio's own
/// bind asks for).
pub const LISTEN_BACKLOG: i32 = 1_024;
/// How long the shards may take to build their executors and listen, together.
/// It takes milliseconds; past this, something is stuck and the start fails.
pub const SHARD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a shard may take to stop beyond its drain, before the process gives up on
/// it and exits with the reason rather than wait forever.
pub const SHARD_STOP_MARGIN: Duration = Duration::from_secs(5);
/// How often the main thread looks at the shards: whether all listen, at the
/// start, and then whether one has ended.
pub const SHARD_WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// Time left to write the last replies after the shard's packets are done.
pub const REPLY_FLUSH_GRACE: Duration = Duration::from_millis(200);
/// How often a draining shard looks whether its packets are done.
pub const DRAIN_CHECK_INTERVAL: Duration = Duration::from_millis(10);
/// Highest latency the histograms track: packets are held at most 30 s.
pub const LATENCY_US_MAX: u64 = 60_000_000;

// ---- The ledger.

/// Most events TigerBeetle takes in one request (with `--limit-request=1MiB`).
pub const BATCH_EVENTS_MAX: usize = 8189;
/// Events a shard queues for the ledger; past this a chain is refused at once.
/// Four requests' worth: enough to ride out a slow answer, few enough that a
/// stalled cluster does not collect a backlog of holds.
pub const QUEUE_EVENTS_MAX: usize = 4 * BATCH_EVENTS_MAX;
/// Requests one shard has at the ledger at once. More let a shard overlap round
/// trips; few keep a stalled cluster from collecting a backlog of holds.
pub const REQUESTS_IN_FLIGHT_MAX: u32 = 4;
/// Most transfers one `Ledger::transfers_with_code` returns: an audit's bound.
pub const QUERY_TRANSFERS_MAX: usize = 64 * BATCH_EVENTS_MAX;
/// Transfers the embedded ledger remembers for idempotency (a retry with the same
/// id finds its first result) and for finished pending transfers; older ones are
/// forgotten, oldest first, except transfers still pending. TigerBeetle keeps every
/// transfer; an embedded ledger that did would grow without bound and stall every
/// shard while its maps rehash. The maps are sized for this up front.
pub const TRANSFERS_RETAINED_MAX: usize = 1 << 18;
/// Longest wait for one request to the embedded ledger of `LedgerPort::memory` (it
/// answers at once; the bound is for a loop's sake).
pub const MEMORY_LEDGER_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries of a post the pending timeout must leave room for, after the hold.
pub const POST_TRIES_MIN: u64 = 1;
/// Shortest wait a driver gives a request, so that a deadline already here still
/// lets an answer that is on its way arrive.
pub const WAIT_MS_MIN: u64 = 1;

// ---- The store (connection totals, incoming payments, the journal).

/// Longest wait for the embedded store, which answers at once in process.
pub const MEMORY_STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// A wait for Redis outlasts twice the worker's own socket timeout by this much, so
/// that a slow Redis answers with an error rather than a packet giving up while its
/// operation may still run.
pub const REDIS_WAIT_MARGIN: Duration = Duration::from_secs(1);
/// Operations in one Redis pipeline; a larger queue goes as several.
pub const PIPELINE_OPS_MAX: usize = 1_024;
/// Batches waiting for a shard's Redis worker; past this it answers busy (T00).
pub const WORKER_QUEUE_BATCHES_MAX: usize = 64;
/// Operations a shard queues for the store in one pass: what the worker can take.
pub const STORE_QUEUE_OPS_MAX: usize = WORKER_QUEUE_BATCHES_MAX * PIPELINE_OPS_MAX;
/// Connection totals the embedded store keeps at most; past this expired ones go
/// first.
pub const CONNECTIONS_MAX: usize = 1 << 20;
/// Incoming payment amounts are compared inside a Redis script, whose numbers are
/// doubles: they count exactly up to 2^53 - 1.
pub const INCOMING_AMOUNT_MAX: u64 = (1 << 53) - 1;
/// Longest incoming payment id (it travels inside the connection token).
pub const PAYMENT_ID_SIZE_MAX: usize = 64;
/// An incoming payment stays readable this long after it expires, so that late
/// packets get "expired" rather than "unknown" and operators can look it up.
pub const PAYMENT_RETENTION_MS: u64 = 7 * 24 * 3_600 * 1_000;
/// How long the store remembers a credit not yet settled: for a take-back after a
/// lost answer, and for the journal's sweep. It must outlast the pending timeout
/// by far (the configuration checks it): a marker gone before its sweep would
/// leave its count for good.
pub const CREDIT_MARKER_TTL_S: u64 = 3_600;
/// Longest pending timeout the configuration accepts: half the marker's life.
pub const PENDING_TIMEOUT_S_MAX: u64 = CREDIT_MARKER_TTL_S / 2;
/// How often a data plane sweeps the journal.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Longest a packet waits for its peer's shared limit to lease tokens before
/// this data plane's own bucket decides.
pub const LEASE_WAIT: Duration = Duration::from_millis(100);
/// Journal entries one sweep settles at most.
pub const SWEEP_BATCH_MAX: usize = 1_024;
/// Wallets whose journals one store operation lists (each journal is its own
/// key, in its wallet's Redis Cluster slot): a sweep goes through the wallets in
/// slices of this many.
pub const JOURNAL_WALLETS_PER_OP_MAX: usize = 256;

// ---- Local delivery and payments.

/// STREAM connections a shard keeps keys for; past this one is forgotten (and
/// derived again if it comes back).
pub const CONNECTIONS_CACHED_MAX: usize = 65_536;
/// How long a quote may be paid.
pub const QUOTE_LIFETIME_MS: u64 = 5 * 60 * 1_000;
/// Longest wait for an SPSP server's answer.
pub const SPSP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the rate probe waits for its replies.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Packets of one payment in flight at once.
pub const PAYMENT_IN_FLIGHT_MAX: usize = 16;
/// Temporary rejects in a row before a payment fails.
pub const PAYMENT_RETRIES_MAX: u32 = 10;
/// Quotes and payments kept; past this the oldest finished ones go.
pub const RECORDS_MAX: usize = 100_000;
/// How long a data plane owns an outgoing payment without renewing its lease;
/// past it another data plane (or this one restarted) takes the payment over.
pub const PAYMENT_LEASE_MS: u64 = 5_000;
/// How often the owner renews the lease and saves the payment's progress: a
/// crash loses at most this much of the progress it reports.
pub const PAYMENT_RENEW_MS: u64 = 1_000;
/// How often a data plane looks for open payments whose lease lapsed.
pub const PAYMENT_RESUME_INTERVAL: Duration = Duration::from_secs(1);
/// Payments whose lapsed lease one look takes over at most.
pub const PAYMENT_RESUME_BATCH_MAX: usize = 64;
/// Outgoing payments one data plane drives at once; past it, new ones wait on
/// the open list for a data plane with room.
pub const PAYMENTS_ACTIVE_MAX: usize = 1_024;
/// Ledger or store attempts (a second apart) one step of a payment makes before
/// its owner leaves it, open, for a later try.
pub const PAYMENT_STEP_ATTEMPTS_MAX: u32 = 60;
/// Refund ids of one payment: each refund TigerBeetle refused for a reason that
/// could pass later (a packet held after the read; the wallet's account missing
/// for a while) spends one, and every new owner walks the spent ones again. All
/// are looked up in one request.
pub const PAYMENT_REFUND_IDS: u32 = 1_024;
/// Steps of one payment's flow one owner takes at most.
pub const PAYMENT_FLOW_STEPS_MAX: usize = 100_000;
/// How long a payment whose step gave up waits before a data plane tries it again.
pub const PAYMENT_GIVE_UP_MS: u64 = 60_000;
/// Open payments an audit reads the accounts of at most.
pub const AUDIT_PAYMENTS_MAX: usize = 10_000;
/// Default life of an incoming payment, as Rafiki's (one day).
pub const EXPIRY_MS_DEFAULT: u64 = 24 * 3_600 * 1_000;
/// Longest life an incoming payment may be given (one year).
pub const EXPIRY_MS_MAX: u64 = 365 * 24 * 3_600 * 1_000;

// ---- The admin API.

/// Largest state document accepted: thousands of peers with their routes.
pub const STATE_BODY_SIZE_MAX: usize = 16 * 1024 * 1024;
/// Journal entries an audit counts at most.
pub const AUDIT_JOURNAL_MAX: usize = 100_000;

// ---- Relations.

const _: () = assert!(QUEUE_EVENTS_MAX >= BATCH_EVENTS_MAX);
const _: () = assert!(PAYMENT_REFUND_IDS as usize <= BATCH_EVENTS_MAX);
const _: () = assert!(QUERY_TRANSFERS_MAX % BATCH_EVENTS_MAX == 0);
const _: () = assert!(REQUESTS_IN_FLIGHT_MAX >= 1);
const _: () = assert!(STORE_QUEUE_OPS_MAX >= PIPELINE_OPS_MAX);
// The journal's sweep must find a marker before it expires.
const _: () = assert!(2 * PENDING_TIMEOUT_S_MAX <= CREDIT_MARKER_TTL_S);
const _: () = assert!(SWEEP_INTERVAL.as_secs() < PENDING_TIMEOUT_S_MAX);
// A whole ILP packet (data plus its envelope) fits the reply a peer may send.
const _: () = assert!(REPLY_SIZE_MAX > DATA_SIZE_MAX + 8 * 1024);
// A head always fits the first buffer, so a head is read without regrowing it.
const _: () = assert!(READ_BUFFER_SIZE >= HEAD_SIZE_MAX);
const _: () = assert!(PIPELINE_MAX >= 1 && PIPELINED_RUN_MAX >= PIPELINE_MAX);
// Connections idle in the pool are swept before a peer's 5 s idle timeout.
const _: () = assert!(IDLE_IN_POOL_SWEEPS_MAX < 5);
const _: () = assert!(LATENCY_US_MAX >= 2 * PACKET_EXPIRY_MS * 1_000);
const _: () = assert!((INCOMING_AMOUNT_MAX as f64) as u64 == INCOMING_AMOUNT_MAX);
const _: () = assert!(EXPIRY_MS_DEFAULT <= EXPIRY_MS_MAX);
const _: () = assert!(PAYMENT_RETENTION_MS >= EXPIRY_MS_DEFAULT);
