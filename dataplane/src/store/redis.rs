//! The Redis receipt store, on a single server or a Redis Cluster. Each shard
//! owns one [`RedisWorker`]: a thread with one blocking connection (to the server,
//! or to each cluster node it needs) that runs each batch of operations as one
//! pipeline (one round trip per node), so the executor never blocks on Redis.
//! Every credit and take-back runs as one script, atomic in Redis, over keys that
//! share their wallet's hash tag (one cluster slot), so that no interleaving of
//! connections or data planes takes a payment past its amount; each script is
//! idempotent by its credit's marker, so that a request repeated after a lost
//! answer (by this code or by the cluster client's redirects) counts once.

use super::redis_link::{Link, ReplicaWait, Routed};
use super::redis_outgoing as outgoing;
use super::{
    connection_key, credit_marker_key, credit_marker_prefix, journal_key, payment_index_key,
    payment_key, wallet_key, CreditResult, IncomingPayment, JournalRecord, StoreAnswer, StoreError,
    StoreOp, CREDIT_MARKER_TTL_S, JOURNAL_WALLETS_PER_OP_MAX, WATCHED_PAYMENTS_KEY,
};
use crate::limits::{PAYMENT_RETENTION_MS, PIPELINE_OPS_MAX, WORKER_QUEUE_BATCHES_MAX};
use futures::channel::oneshot;
use redis::{Cmd, ErrorKind, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Credits a connection and an incoming payment together, refusing what would go
/// past the payment's amount, and records the credit in its marker and its
/// wallet's journal, and adds it to the wallet's total. A credit whose marker
/// exists was counted already: it answers as counted and counts nothing again.
/// KEYS: payment, connection, credit marker, journal, wallet total. ARGV: amount,
/// connection ttl in seconds, now in ms, marker ttl, marker value, settle-after
/// score, journal member. Returns {code, a, b}: 0 unknown, 1 expired, 2 completed,
/// 3 exceeds (a = remaining, b = connection total), 4 credited (a = remaining or -1
/// without a cap, b = connection total). Totals come back as Redis's own decimal
/// strings, exact past 2^53 where a Lua number is not.
const CREDIT_PAYMENT_SCRIPT: &str = r"
local p = redis.call('HMGET', KEYS[1], 'incoming_amount', 'received', 'expires_at_ms')
if not p[3] then return {0, 0, '0'} end
local capped = p[1] and p[1] ~= ''
if redis.call('EXISTS', KEYS[3]) == 1 then
  local left = -1
  if capped then left = math.max(0, tonumber(p[1]) - tonumber(p[2])) end
  return {4, left, redis.call('GET', KEYS[2]) or '0'}
end
if tonumber(ARGV[3]) >= tonumber(p[3]) then return {1, 0, '0'} end
local amount = tonumber(ARGV[1])
local remaining = -1
if capped then
  local left = tonumber(p[1]) - tonumber(p[2])
  if left <= 0 then return {2, 0, '0'} end
  if amount > left then
    return {3, left, redis.call('GET', KEYS[2]) or '0'}
  end
  remaining = left - amount
end
redis.call('HINCRBY', KEYS[1], 'received', ARGV[1])
redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[7])
redis.call('INCRBY', KEYS[5], ARGV[1])
return {4, remaining, redis.call('GET', KEYS[2])}
";

/// Credits a connection to a wallet (no incoming payment): the same records as
/// [`CREDIT_PAYMENT_SCRIPT`], no cap, and once per marker. KEYS: connection, credit
/// marker, journal, wallet total. ARGV: amount, connection ttl in seconds, marker
/// ttl, marker value, settle-after score, journal member. Returns the connection
/// total as a decimal string.
const CREDIT_WALLET_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.call('GET', KEYS[1]) or '0' end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
redis.call('INCRBY', KEYS[4], ARGV[1])
return redis.call('GET', KEYS[1])
";

/// Takes a credit back once, only if it was counted and not settled (its marker
/// exists), and never recreates an expired total; it leaves the journal either
/// way. KEYS: connection, credit marker, journal, wallet total, and the payment
/// when there is one. ARGV: amount, its negation, journal member. Returns 1 when
/// it took something back.
const UNDO_SCRIPT: &str = r"
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('DEL', KEYS[2]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECRBY', KEYS[1], ARGV[1]) end
redis.call('DECRBY', KEYS[4], ARGV[1])
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HINCRBY', KEYS[5], 'received', ARGV[2])
end
return 1
";

/// Lists a wallet's journal members due by ARGV[1] (at most ARGV[2]) with their
/// markers, whose keys are ARGV[3] followed by the member (the journal's slot).
/// KEYS: journal. Returns member, marker value ('' when gone), member, ...
const UNSETTLED_SCRIPT: &str = r"
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, member in ipairs(members) do
  out[#out + 1] = member
  out[#out + 1] = redis.call('GET', ARGV[3] .. member) or ''
end
return out
";

/// Takes up to ARGV[3] tokens from a token bucket of capacity ARGV[1] refilled
/// at ARGV[2] per second by Redis's clock, kept in thousandths so that no refill
/// is lost between two leases; a missing bucket is full. KEYS: the bucket (a
/// hash, gone after a minute unused). Returns the tokens granted.
const LEASE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local capacity = tonumber(ARGV[1]) * 1000
local b = redis.call('HMGET', KEYS[1], 'milli', 'at_ms')
local milli = tonumber(b[1]) or capacity
local at = tonumber(b[2]) or now
if now > at then
  milli = math.min(capacity, milli + (now - at) * tonumber(ARGV[2]))
  at = now
end
local grant = math.min(tonumber(ARGV[3]), math.floor(milli / 1000))
milli = milli - grant * 1000
redis.call('HSET', KEYS[1], 'milli', milli, 'at_ms', at)
redis.call('PEXPIRE', KEYS[1], 60000)
return grant
";

/// Every script, loaded on each server or node when first connected.
const SCRIPTS: [&str; 8] = [
    CREDIT_PAYMENT_SCRIPT,
    CREDIT_WALLET_SCRIPT,
    UNDO_SCRIPT,
    UNSETTLED_SCRIPT,
    LEASE_SCRIPT,
    outgoing::OPEN_SCRIPT,
    outgoing::RENEW_SCRIPT,
    outgoing::CLAIM_SCRIPT,
];

type Answer = Result<StoreAnswer, StoreError>;

/// Operations of one shard pass and where their answers go.
/// An operation without a reply channel runs whatever happens (a settle, which
/// nobody waits for); one with a channel is skipped once its packet stopped
/// waiting.
pub type Batch = Vec<(StoreOp, Option<oneshot::Sender<Answer>>)>;

/// The handle a shard keeps on its worker thread.
#[derive(Debug)]
pub struct RedisWorker {
    /// std's channel, not crossbeam's: crossbeam's receiver spins and then calls
    /// `sched_yield` up to four times before it sleeps, and on cores the worker
    /// shares with the shards, Redis and TigerBeetle each yield is a context switch.
    sender: SyncSender<Batch>,
    counts: Arc<PipelineCounts>,
}

/// Pipelines a worker sent and the operations they carried: their ratio is the
/// mean pipeline, for the metrics.
#[derive(Debug, Default)]
pub struct PipelineCounts {
    pub pipelines: AtomicU64,
    pub ops: AtomicU64,
}

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://` or `rediss://`: the server, or with `cluster` the nodes first
    /// asked for the cluster's layout (any one of them answering is enough).
    pub urls: Vec<String>,
    /// A Redis Cluster: commands go to the node that holds their slot, following
    /// its redirects and failovers.
    pub cluster: bool,
    pub tls: RedisTls,
    pub connection_ttl_s: u64,
    pub request_timeout: Duration,
    /// Replicas that must hold a batch's credits and take-backs before they are
    /// answered (Redis `WAIT`); 0 answers once the primary has them.
    pub wait_replicas: u32,
}

impl RedisWorker {
    /// Starts the worker thread. The URLs are checked here; the connection is made
    /// by the worker, and made again after any failure.
    pub fn spawn(options: RedisOptions, name: String) -> Result<RedisWorker, StoreError> {
        for url in &options.urls {
            open_client(url, &options.tls).map_err(|e| {
                StoreError::Unavailable(format!("invalid Redis URL or TLS files: {e}"))
            })?;
        }
        let (sender, receiver) = sync_channel(WORKER_QUEUE_BATCHES_MAX);
        let counts = Arc::new(PipelineCounts::default());
        let worker = Worker::new(options, Arc::clone(&counts));
        std::thread::Builder::new()
            .name(name)
            .spawn(move || worker.run(receiver))
            .map_err(|e| StoreError::Unavailable(format!("cannot start worker: {e}")))?;
        Ok(RedisWorker { sender, counts })
    }

    /// (pipelines sent, operations they carried) so far.
    pub fn pipeline_counts(&self) -> (u64, u64) {
        (
            self.counts.pipelines.load(Ordering::Relaxed),
            self.counts.ops.load(Ordering::Relaxed),
        )
    }

    /// Hands a batch to the worker; gives it back when the worker is too far behind.
    pub fn send(&self, batch: Batch) -> Result<(), Batch> {
        self.sender.try_send(batch).map_err(|e| match e {
            TrySendError::Full(batch) | TrySendError::Disconnected(batch) => batch,
        })
    }
}

/// What a `rediss://` connection trusts and shows, read from the files at start.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// PEM CAs that alone are trusted; None trusts the web's roots (webpki-roots).
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate chain and its key, both PEM.
    pub client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("client_identity", &self.client_identity_pem.is_some())
            .finish()
    }
}

impl RedisTls {
    pub(super) fn certificates(&self) -> redis::TlsCertificates {
        let client_tls =
            self.client_identity_pem
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                });
        redis::TlsCertificates {
            client_tls,
            root_cert: self.ca_pem.clone(),
        }
    }
}

/// A client for `url`; a `rediss://` one speaks TLS (rustls) with `tls`, and checks
/// the server's certificate and name.
pub fn open_client(url: &str, tls: &RedisTls) -> redis::RedisResult<redis::Client> {
    if !url.starts_with("rediss://") {
        return redis::Client::open(url);
    }
    redis::Client::build_with_tls(url, tls.certificates())
}
/// Connects once and PINGs (a cluster: reads its slots too), so that a wrong URL
/// or TLS setting stops the start rather than every local packet.
pub fn check_reachable(options: &RedisOptions) -> redis::RedisResult<()> {
    let mut link = Link::connect(
        &options.urls,
        options.cluster,
        &options.tls,
        options.request_timeout,
        &[],
    )?;
    let replies = link.pipeline(vec![Routed::new(redis::cmd("PING"), "")], None)?;
    match replies.values.first() {
        Some(Some(Value::SimpleString(pong))) if pong == "PONG" => Ok(()),
        other => Err((ErrorKind::Client, "PING answered", format!("{other:?}")).into()),
    }
}

/// `batch` with the batches that queued behind it while the last pipeline was
/// out, in order, as long as they fit in [`PIPELINE_OPS_MAX`] operations; the
/// first that does not is handed back, to start the next pipeline. One round trip
/// then carries what would have been several, which is what lets Redis keep up
/// when the executors' passes are short. Order within a shard is kept, and each
/// operation still gets its own answer.
fn merge_queued(mut batch: Batch, receiver: &Receiver<Batch>) -> (Batch, Option<Batch>) {
    debug_assert!(batch.len() <= PIPELINE_OPS_MAX);
    while let Ok(queued) = receiver.try_recv() {
        if batch.len() + queued.len() > PIPELINE_OPS_MAX {
            return (batch, Some(queued));
        }
        batch.extend(queued);
    }
    (batch, None)
}

/// How a script is called: by its hash (the server has it loaded), or with its
/// source (which loads it), after the server answered NOSCRIPT.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Hash,
    Source,
}

struct Scripts {
    credit_payment: redis::Script,
    credit_wallet: redis::Script,
    undo: redis::Script,
    unsettled: redis::Script,
    lease: redis::Script,
    open: redis::Script,
    renew: redis::Script,
    claim: redis::Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            credit_payment: redis::Script::new(CREDIT_PAYMENT_SCRIPT),
            credit_wallet: redis::Script::new(CREDIT_WALLET_SCRIPT),
            undo: redis::Script::new(UNDO_SCRIPT),
            unsettled: redis::Script::new(UNSETTLED_SCRIPT),
            lease: redis::Script::new(LEASE_SCRIPT),
            open: redis::Script::new(outgoing::OPEN_SCRIPT),
            renew: redis::Script::new(outgoing::RENEW_SCRIPT),
            claim: redis::Script::new(outgoing::CLAIM_SCRIPT),
        }
    }

    /// The loaded script of the outgoing payments' `source`.
    fn outgoing(&self, source: &str) -> &redis::Script {
        match source {
            outgoing::OPEN_SCRIPT => &self.open,
            outgoing::RENEW_SCRIPT => &self.renew,
            _ => &self.claim,
        }
    }
}

/// `EVALSHA` or `EVAL` of `script` with `keys`; the caller adds its arguments.
fn eval(script: &redis::Script, source: &str, call: Call, keys: &[String]) -> Cmd {
    let mut command = match call {
        Call::Hash => {
            let mut command = redis::cmd("EVALSHA");
            command.arg(script.get_hash());
            command
        }
        Call::Source => {
            let mut command = redis::cmd("EVAL");
            command.arg(source);
            command
        }
    };
    command.arg(keys.len()).arg(keys);
    command
}

struct Worker {
    options: RedisOptions,
    link: Option<Link>,
    scripts: Scripts,
    counts: Arc<PipelineCounts>,
}

impl Worker {
    fn new(options: RedisOptions, counts: Arc<PipelineCounts>) -> Worker {
        Worker {
            options,
            link: None,
            scripts: Scripts::new(),
            counts,
        }
    }

    fn run(mut self, receiver: Receiver<Batch>) {
        let mut carried: Option<Batch> = None;
        loop {
            let first = match carried.take() {
                Some(batch) => batch,
                None => match receiver.recv() {
                    Ok(batch) => batch,
                    Err(_) => return,
                },
            };
            let (batch, next) = merge_queued(first, &receiver);
            carried = next;
            // A packet that stopped waiting has voided its hold: its count must not
            // happen late.
            let (ops, replies): (Vec<StoreOp>, Vec<_>) = batch
                .into_iter()
                .filter(|(_, reply)| reply.as_ref().is_none_or(|r| !r.is_canceled()))
                .unzip();
            if ops.is_empty() {
                continue;
            }
            self.counts.pipelines.fetch_add(1, Ordering::Relaxed);
            self.counts
                .ops
                .fetch_add(ops.len() as u64, Ordering::Relaxed);
            let answers = self.execute(&ops);
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The packet may have given up waiting; nothing to do then.
                if let Some(reply) = reply {
                    let _ = reply.send(answer);
                }
            }
        }
    }

    /// One answer per op, in order. A connection failure fails the whole batch and
    /// drops the connection, which the next batch makes again.
    fn execute(&mut self, ops: &[StoreOp]) -> Vec<Answer> {
        match self.execute_pipeline(ops) {
            Ok(answers) => answers,
            Err(error) => {
                self.link = None;
                tracing::warn!(%error, "Redis pipeline failed");
                ops.iter()
                    .map(|_| Err(StoreError::Unavailable(error.to_string())))
                    .collect()
            }
        }
    }

    fn link(&mut self) -> redis::RedisResult<&mut Link> {
        if self.link.is_none() {
            let options = &self.options;
            self.link = Some(Link::connect(
                &options.urls,
                options.cluster,
                &options.tls,
                options.request_timeout,
                &SCRIPTS,
            )?);
        }
        self.link
            .as_mut()
            .ok_or_else(|| (ErrorKind::Io, "no connection").into())
    }

    fn execute_pipeline(&mut self, ops: &[StoreOp]) -> redis::RedisResult<Vec<Answer>> {
        let mut answers = self.run_ops(ops, Call::Hash)?;
        self.run_again_without_scripts(ops, &mut answers)?;
        self.read_payments_received(ops, &mut answers)?;
        Ok(answers)
    }

    /// Runs `ops` as one pipeline (one per node on a cluster) and interprets
    /// their replies. With `wait_replicas`, credits and take-backs wait for the
    /// replicas; a credit they did not reach in time is answered as unavailable,
    /// so that its packet is rejected and its count taken back, rather than
    /// fulfilled on a write a failover could lose.
    fn run_ops(&mut self, ops: &[StoreOp], call: Call) -> redis::RedisResult<Vec<Answer>> {
        let mut commands = Vec::with_capacity(ops.len());
        let mut shapes = Vec::with_capacity(ops.len());
        let mut settles = SettleGroups::of(ops);
        for (index, op) in ops.iter().enumerate() {
            let op_commands = match settles.role(index) {
                SettleRole::Leads(wallet, credits) => settle(wallet, &credits),
                SettleRole::Follows => Vec::new(),
                SettleRole::None => self.commands(op, call),
            };
            shapes.push(op_commands.len());
            commands.extend(op_commands);
        }
        let wait = (self.options.wait_replicas > 0).then(|| ReplicaWait {
            replicas: self.options.wait_replicas,
            timeout: self.options.request_timeout / 2,
        });
        let replies = self.link()?.pipeline(commands, wait)?;
        if replies.replicated.iter().any(|replicated| !replicated) {
            tracing::warn!(
                replicas = self.options.wait_replicas,
                "Redis replicas did not acknowledge credits in time"
            );
        }
        let mut values = replies.values.into_iter();
        let mut replicated = replies.replicated.into_iter();
        let mut answers = Vec::with_capacity(ops.len());
        for (op, shape) in ops.iter().zip(shapes) {
            // Exactly `shape` replies each, whatever they are: a reply never goes
            // to another op.
            let taken: Vec<Option<Value>> = values.by_ref().take(shape).collect();
            let kept = replicated.by_ref().take(shape).all(|replicated| replicated);
            if taken.len() != shape {
                return Err((ErrorKind::Client, "pipeline answered too few replies").into());
            }
            let answer = match taken.into_iter().collect::<Option<Vec<Value>>>() {
                Some(taken) => interpret(op, &taken),
                None => Err(StoreError::Unavailable("Redis node unreachable".into())),
            };
            let unreplicated = !kept && matches!(op, StoreOp::Credit { .. });
            answers.push(if unreplicated && answer.is_ok() {
                Err(StoreError::Unavailable(format!(
                    "fewer than {} Redis replicas acknowledged the credit",
                    self.options.wait_replicas
                )))
            } else {
                answer
            });
        }
        settles.share_answers(&mut answers);
        Ok(answers)
    }

    /// Runs again, with their scripts' source, the ops whose scripts the server
    /// did not have (a restart, SCRIPT FLUSH, a replica promoted, a node first
    /// used): they did not run, and each is idempotent anyway.
    fn run_again_without_scripts(
        &mut self,
        ops: &[StoreOp],
        answers: &mut [Answer],
    ) -> redis::RedisResult<()> {
        let missing: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, answer)| matches!(answer, Err(StoreError::Protocol(m)) if m.starts_with("NOSCRIPT")))
            .map(|(index, _)| index)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let again: Vec<StoreOp> = missing.iter().map(|&index| ops[index].clone()).collect();
        let again_answers = self.run_ops(&again, Call::Source)?;
        for (index, answer) in missing.into_iter().zip(again_answers) {
            answers[index] = answer;
        }
        Ok(())
    }

    /// Completes the payments read by id with what they received, which is kept
    /// in their wallet's slot: one more round trip, for lookups only.
    fn read_payments_received(
        &mut self,
        ops: &[StoreOp],
        answers: &mut [Answer],
    ) -> redis::RedisResult<()> {
        let mut found = Vec::new();
        let mut commands = Vec::new();
        for (index, (op, answer)) in ops.iter().zip(answers.iter()).enumerate() {
            if let (StoreOp::GetPayment { .. }, Ok(StoreAnswer::Payment(Some(payment)))) =
                (op, answer)
            {
                let key = payment_key(&payment.wallet, &payment.id);
                let mut command = redis::cmd("HGET");
                command.arg(&key).arg("received");
                commands.push(Routed::new(command, &key));
                found.push(index);
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        let replies = self.link()?.pipeline(commands, None)?;
        for (index, value) in found.into_iter().zip(replies.values) {
            let received = match value {
                Some(value) => decimal(Some(&value)),
                None => Err(StoreError::Unavailable("Redis node unreachable".into())),
            };
            match (&mut answers[index], received) {
                (Ok(StoreAnswer::Payment(Some(payment))), Ok(received)) => {
                    payment.received = received;
                }
                (answer, Err(error)) => *answer = Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    /// The commands of `op`, in the order of their replies, each with its key.
    fn commands(&self, op: &StoreOp, call: Call) -> Vec<Routed> {
        let keyed = |command: Cmd, key: String| Routed::new(command, &key);
        match op {
            StoreOp::Credit { .. } => vec![self.credit(op, call).durable()],
            StoreOp::Undo { .. } => vec![self.undo(op, call).durable()],
            StoreOp::CreatePayment { payment, watch } => create_payment(payment, *watch),
            StoreOp::Settle {
                connection,
                wallet,
                credit_id,
            } => settle(wallet, &[(connection.as_str(), *credit_id)]),
            StoreOp::WalletTotals { wallets } => wallets
                .iter()
                .map(|wallet| {
                    let key = wallet_key(wallet);
                    let mut get = redis::cmd("GET");
                    get.arg(&key);
                    keyed(get, key)
                })
                .collect(),
            StoreOp::Unsettled {
                wallets,
                before_ms,
                limit,
            } => self.unsettled(wallets, *before_ms, *limit, call),
            StoreOp::WatchedPayments { limit } => {
                let mut command = redis::cmd("SRANDMEMBER");
                command.arg(WATCHED_PAYMENTS_KEY).arg(*limit);
                vec![keyed(command, WATCHED_PAYMENTS_KEY.to_owned())]
            }
            StoreOp::Unwatch { id } => {
                let mut command = redis::cmd("SREM");
                command.arg(WATCHED_PAYMENTS_KEY).arg(id);
                vec![keyed(command, WATCHED_PAYMENTS_KEY.to_owned())]
            }
            StoreOp::Lease {
                key,
                limit_per_second,
                tokens,
            } => {
                let script = &self.scripts.lease;
                let mut command = eval(script, LEASE_SCRIPT, call, std::slice::from_ref(key));
                command
                    .arg(*limit_per_second)
                    .arg(*limit_per_second)
                    .arg(*tokens);
                vec![Routed::new(command, key)]
            }
            StoreOp::GetPayment { id } => {
                let key = payment_index_key(id);
                let mut command = redis::cmd("HMGET");
                command
                    .arg(&key)
                    .arg("wallet")
                    .arg("incoming_amount")
                    .arg("expires_at_ms");
                vec![keyed(command, key)]
            }
            other => outgoing::commands(other, |source, keys| {
                eval(self.scripts.outgoing(source), source, call, keys)
            })
            .unwrap_or_default(),
        }
    }

    /// One listing script per wallet's journal.
    fn unsettled(
        &self,
        wallets: &[String],
        before_ms: u64,
        limit: usize,
        call: Call,
    ) -> Vec<Routed> {
        wallets
            .iter()
            .take(JOURNAL_WALLETS_PER_OP_MAX)
            .map(|wallet| {
                let journal = journal_key(wallet);
                let script = &self.scripts.unsettled;
                let mut command = eval(
                    script,
                    UNSETTLED_SCRIPT,
                    call,
                    std::slice::from_ref(&journal),
                );
                command
                    .arg(before_ms)
                    .arg(limit)
                    .arg(credit_marker_prefix(wallet));
                Routed::new(command, &journal)
            })
            .collect()
    }

    /// A credit's script: on the payment when there is one, else on the wallet;
    /// routed by the wallet, the hash tag of every key it touches.
    fn credit(&self, op: &StoreOp, call: Call) -> Routed {
        let StoreOp::Credit {
            connection,
            wallet,
            amount,
            payment,
            now_ms,
            credit_id,
            post_ids,
            settle_after_ms,
        } = op
        else {
            unreachable!("credit() is called with credits only");
        };
        let marker = JournalRecord::marker_value(
            *amount,
            wallet,
            payment.as_deref(),
            post_ids,
            *settle_after_ms,
        );
        let member = JournalRecord::member(connection, *credit_id);
        let records = [
            connection_key(wallet, connection),
            credit_marker_key(wallet, connection, *credit_id),
            journal_key(wallet),
            wallet_key(wallet),
        ];
        let ttl_s = self.options.connection_ttl_s;
        match payment {
            Some(id) => {
                let mut keys = vec![payment_key(wallet, id)];
                keys.extend(records);
                let script = &self.scripts.credit_payment;
                let mut command = eval(script, CREDIT_PAYMENT_SCRIPT, call, &keys);
                command
                    .arg(*amount)
                    .arg(ttl_s)
                    .arg(*now_ms)
                    .arg(CREDIT_MARKER_TTL_S)
                    .arg(marker)
                    .arg(*settle_after_ms)
                    .arg(member);
                Routed::new(command, &keys[0])
            }
            None => {
                let script = &self.scripts.credit_wallet;
                let mut command = eval(script, CREDIT_WALLET_SCRIPT, call, &records);
                command
                    .arg(*amount)
                    .arg(ttl_s)
                    .arg(CREDIT_MARKER_TTL_S)
                    .arg(marker)
                    .arg(*settle_after_ms)
                    .arg(member);
                Routed::new(command, &records[0])
            }
        }
    }

    /// A take-back of a credit.
    fn undo(&self, op: &StoreOp, call: Call) -> Routed {
        let StoreOp::Undo {
            connection,
            wallet,
            amount,
            payment,
            credit_id,
        } = op
        else {
            unreachable!("undo() is called with take-backs only");
        };
        let mut keys = vec![
            connection_key(wallet, connection),
            credit_marker_key(wallet, connection, *credit_id),
            journal_key(wallet),
            wallet_key(wallet),
        ];
        if let Some(id) = payment {
            keys.push(payment_key(wallet, id));
        }
        let negative = -i128::from(*amount);
        let mut command = eval(&self.scripts.undo, UNDO_SCRIPT, call, &keys);
        command
            .arg(*amount)
            .arg(negative.to_string())
            .arg(JournalRecord::member(connection, *credit_id));
        Routed::new(command, &keys[0])
    }
}

/// Confirmed counts leave their markers and their wallet's journal: `credits`
/// (connection, credit id) of `wallet` as one `DEL` of the markers and one `ZREM`
/// of the journal members, all in the wallet's slot.
fn settle(wallet: &str, credits: &[(&str, u64)]) -> Vec<Routed> {
    let journal = journal_key(wallet);
    let mut delete = redis::cmd("DEL");
    let mut remove = redis::cmd("ZREM");
    remove.arg(&journal);
    for &(connection, credit_id) in credits {
        delete.arg(credit_marker_key(wallet, connection, credit_id));
        remove.arg(JournalRecord::member(connection, credit_id));
    }
    vec![Routed::new(delete, &journal), Routed::new(remove, &journal)]
}

/// What a Settle of a pipeline does there: the Settles of a wallet go out with the
/// first of them, as one `DEL` and one `ZREM`, rather than two commands each; the
/// others take its answer. A group ends at the next op that writes or reads the
/// wallet's counts (a Credit, an Undo, a journal read), and a later Settle starts
/// another: a Settle never moves ahead of one of those, so the pipeline keeps the
/// order of everything that could see it.
enum SettleRole<'a> {
    Leads(&'a str, Vec<(&'a str, u64)>),
    Follows,
    None,
}

/// The wallets whose counts or journal `op` writes or reads (Settles aside).
fn wallets_counted_by(op: &StoreOp) -> &[String] {
    match op {
        StoreOp::Credit { wallet, .. } | StoreOp::Undo { wallet, .. } => {
            std::slice::from_ref(wallet)
        }
        StoreOp::Unsettled { wallets, .. } | StoreOp::WalletTotals { wallets } => wallets,
        _ => &[],
    }
}

/// A wallet and the credits (connection, credit id) its Settles settle.
type WalletSettles<'a> = (&'a str, Vec<(&'a str, u64)>);

/// The Settles of one pipeline, grouped by wallet.
struct SettleGroups<'a> {
    /// For each op: the index of the first Settle of its wallet, if it is a Settle.
    leaders: Vec<Option<usize>>,
    /// By the index of each group's first: its wallet and every credit it settles.
    groups: rustc_hash::FxHashMap<usize, WalletSettles<'a>>,
}

impl<'a> SettleGroups<'a> {
    fn of(ops: &'a [StoreOp]) -> SettleGroups<'a> {
        let mut first_by_wallet: rustc_hash::FxHashMap<&str, usize> = Default::default();
        let mut groups: rustc_hash::FxHashMap<usize, WalletSettles> = Default::default();
        let mut leaders = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let StoreOp::Settle {
                connection,
                wallet,
                credit_id,
            } = op
            else {
                for wallet in wallets_counted_by(op) {
                    first_by_wallet.remove(wallet.as_str());
                }
                leaders.push(None);
                continue;
            };
            let leader = *first_by_wallet.entry(wallet.as_str()).or_insert(index);
            let (_, credits) = groups.entry(leader).or_insert((wallet, Vec::new()));
            credits.push((connection.as_str(), *credit_id));
            leaders.push(Some(leader));
        }
        SettleGroups { leaders, groups }
    }

    /// Op `index`'s part: once asked for a group's first, the group is handed over.
    fn role(&mut self, index: usize) -> SettleRole<'a> {
        match self.leaders[index] {
            Some(leader) if leader == index => match self.groups.remove(&leader) {
                Some((wallet, credits)) => SettleRole::Leads(wallet, credits),
                None => SettleRole::Follows,
            },
            Some(_) => SettleRole::Follows,
            None => SettleRole::None,
        }
    }

    /// Each Settle that went out with another takes that one's answer.
    fn share_answers(&self, answers: &mut [Answer]) {
        assert_eq!(answers.len(), self.leaders.len());
        for (index, leader) in self.leaders.iter().enumerate() {
            if let Some(leader) = *leader {
                if leader != index {
                    answers[index] = answers[leader].clone();
                }
            }
        }
    }
}

/// A new incoming payment, kept past its expiry for [`PAYMENT_RETENTION_MS`]: its
/// terms and what it received in its wallet's slot (first, so that a payment
/// found by id always has them), then its index by id. Made again, it keeps what
/// it received.
fn create_payment(payment: &IncomingPayment, watch: bool) -> Vec<Routed> {
    let key = payment_key(&payment.wallet, &payment.id);
    let index = payment_index_key(&payment.id);
    let incoming_amount = payment
        .incoming_amount
        .map(|a| a.to_string())
        .unwrap_or_default();
    let keep_until_ms = payment.expires_at_ms.saturating_add(PAYMENT_RETENTION_MS);
    let mut terms = redis::cmd("HSET");
    terms
        .arg(&key)
        .arg("incoming_amount")
        .arg(&incoming_amount)
        .arg("expires_at_ms")
        .arg(payment.expires_at_ms);
    let mut received = redis::cmd("HSETNX");
    received.arg(&key).arg("received").arg(payment.received);
    let mut expire = redis::cmd("PEXPIREAT");
    expire.arg(&key).arg(keep_until_ms);
    let mut by_id = redis::cmd("HSET");
    by_id
        .arg(&index)
        .arg("wallet")
        .arg(&payment.wallet)
        .arg("incoming_amount")
        .arg(&incoming_amount)
        .arg("expires_at_ms")
        .arg(payment.expires_at_ms);
    let mut expire_index = redis::cmd("PEXPIREAT");
    expire_index.arg(&index).arg(keep_until_ms);
    let mut commands = vec![
        Routed::new(terms, &key),
        Routed::new(received, &key),
        Routed::new(expire, &key),
        Routed::new(by_id, &index),
        Routed::new(expire_index, &index),
    ];
    if watch {
        let mut add = redis::cmd("SADD");
        add.arg(WATCHED_PAYMENTS_KEY).arg(&payment.id);
        commands.push(Routed::new(add, WATCHED_PAYMENTS_KEY));
    }
    commands
}

/// Turns the replies of one op into its answer.
fn interpret(op: &StoreOp, values: &[Value]) -> Answer {
    if let Some(error) = values.iter().find_map(server_error) {
        return Err(StoreError::Protocol(error));
    }
    match op {
        StoreOp::Credit {
            payment: Some(_), ..
        } => credit_script_result(values),
        StoreOp::Credit { payment: None, .. } => Ok(StoreAnswer::Credit(CreditResult::Credited {
            connection_total: decimal(values.first())?,
            remaining: None,
        })),
        StoreOp::Undo { .. } => match values.first() {
            Some(Value::Int(taken_back)) => Ok(StoreAnswer::Undone(*taken_back == 1)),
            other => Err(StoreError::Protocol(format!("undo answered {other:?}"))),
        },
        StoreOp::GetPayment { id } => payment_from_fields(id, values.first()),
        StoreOp::CreatePayment { .. } => Ok(StoreAnswer::Created),
        StoreOp::Settle { .. } => Ok(StoreAnswer::Settled),
        StoreOp::Unsettled { wallets, limit, .. } => unsettled_from(wallets, values, *limit),
        StoreOp::WalletTotals { .. } => wallet_totals_from(values),
        StoreOp::WatchedPayments { .. } => watched_from(values.first()),
        StoreOp::Unwatch { .. } => match values.first() {
            Some(Value::Int(removed)) => Ok(StoreAnswer::Unwatched(*removed == 1)),
            other => Err(StoreError::Protocol(format!("SREM answered {other:?}"))),
        },
        StoreOp::Lease { .. } => match values.first() {
            Some(Value::Int(granted)) => u64::try_from(*granted)
                .map(StoreAnswer::Leased)
                .map_err(|_| StoreError::Protocol(format!("lease granted {granted}"))),
            other => Err(StoreError::Protocol(format!("lease answered {other:?}"))),
        },
        other => outgoing::interpret(other, values)
            .unwrap_or_else(|| Err(StoreError::Protocol(format!("no reading of {other:?}")))),
    }
}

fn watched_from(value: Option<&Value>) -> Answer {
    let Some(Value::Array(members)) = value else {
        return Err(StoreError::Protocol(format!(
            "SRANDMEMBER answered {value:?}"
        )));
    };
    members
        .iter()
        .map(|member| match member {
            Value::BulkString(bytes) => String::from_utf8(bytes.clone())
                .map_err(|_| StoreError::Protocol("a watched id is not UTF-8".into())),
            other => Err(StoreError::Protocol(format!("watched id {other:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(StoreAnswer::Watched)
}

fn server_error(value: &Value) -> Option<String> {
    match value {
        Value::ServerError(error) => Some(
            [error.code(), error.details().unwrap_or_default()]
                .join(" ")
                .trim()
                .to_owned(),
        ),
        _ => None,
    }
}

/// A total, as Redis's decimal string (or an integer).
fn decimal(value: Option<&Value>) -> Result<u64, StoreError> {
    match value {
        Some(Value::Int(number)) => u64::try_from(*number)
            .map_err(|_| StoreError::Protocol(format!("negative total {number}"))),
        Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| StoreError::Protocol(format!("total {bytes:?}"))),
        Some(Value::Nil) => Ok(0),
        other => Err(StoreError::Protocol(format!(
            "expected a total, got {other:?}"
        ))),
    }
}

fn as_i64(value: Option<&Value>) -> Result<i64, StoreError> {
    match value {
        Some(Value::Int(number)) => Ok(*number),
        other => Err(StoreError::Protocol(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

fn credit_script_result(values: &[Value]) -> Answer {
    let Some(Value::Array(fields)) = values.first() else {
        return Err(StoreError::Protocol("credit script gave no array".into()));
    };
    let code = as_i64(fields.first())?;
    let a = as_i64(fields.get(1))?;
    let total = decimal(fields.get(2))?;
    let non_negative =
        |n: i64| u64::try_from(n).map_err(|_| StoreError::Protocol(format!("negative amount {n}")));
    let result = match code {
        0 => CreditResult::UnknownPayment,
        1 => CreditResult::Expired,
        2 => CreditResult::Completed,
        3 => CreditResult::Exceeds {
            remaining: non_negative(a)?,
            connection_total: total,
        },
        4 => CreditResult::Credited {
            remaining: (a >= 0).then_some(a.unsigned_abs()),
            connection_total: total,
        },
        other => return Err(StoreError::Protocol(format!("credit script code {other}"))),
    };
    Ok(StoreAnswer::Credit(result))
}

/// Each wallet's total, 0 for one that never received.
fn wallet_totals_from(values: &[Value]) -> Answer {
    values
        .iter()
        .map(|value| decimal(Some(value)))
        .collect::<Result<Vec<u64>, _>>()
        .map(StoreAnswer::WalletTotals)
}

/// Journal members with their markers, wallet by wallet, at most `limit` in all.
/// A member whose marker is gone (it outlived the marker's time to live) comes
/// back with no post ids, to be removed.
fn unsettled_from(wallets: &[String], values: &[Value], limit: usize) -> Answer {
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        _ => None,
    };
    let mut records = Vec::new();
    for (wallet, value) in wallets.iter().zip(values) {
        let Value::Array(items) = value else {
            return Err(StoreError::Protocol("journal listing gave no array".into()));
        };
        for pair in items.chunks(2) {
            let [member, marker] = pair else {
                return Err(StoreError::Protocol(
                    "journal listing is not in pairs".into(),
                ));
            };
            if records.len() >= limit {
                return Ok(StoreAnswer::Unsettled(records));
            }
            let member = text(member).unwrap_or_default();
            let marker = text(marker).unwrap_or_default();
            records.push(
                JournalRecord::parse(&member, &marker)
                    .unwrap_or_else(|| JournalRecord::orphan(wallet, &member)),
            );
        }
    }
    Ok(StoreAnswer::Unsettled(records))
}

fn payment_from_fields(id: &str, value: Option<&Value>) -> Answer {
    let Some(Value::Array(fields)) = value else {
        return Err(StoreError::Protocol("HMGET gave no array".into()));
    };
    let text = |index: usize| -> Option<String> {
        match fields.get(index) {
            Some(Value::BulkString(bytes)) => String::from_utf8(bytes.clone()).ok(),
            _ => None,
        }
    };
    let Some(wallet) = text(0) else {
        return Ok(StoreAnswer::Payment(None));
    };
    let number = |index: usize, name: &str| -> Result<Option<u64>, StoreError> {
        match text(index).as_deref() {
            None | Some("") => Ok(None),
            Some(digits) => digits
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Protocol(format!("incoming payment {name}: {digits:?}"))),
        }
    };
    // What it received is read next, from its wallet's slot.
    Ok(StoreAnswer::Payment(Some(IncomingPayment {
        id: id.to_owned(),
        wallet,
        incoming_amount: number(1, "incoming_amount")?,
        expires_at_ms: number(2, "expires_at_ms")?.unwrap_or(0),
        received: 0,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ids: std::ops::Range<usize>) -> Batch {
        ids.map(|id| (StoreOp::Unwatch { id: id.to_string() }, None))
            .collect()
    }

    fn ids(batch: &Batch) -> Vec<String> {
        batch
            .iter()
            .map(|(op, _)| match op {
                StoreOp::Unwatch { id } => id.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn batches_queued_behind_one_join_its_pipeline_in_order() {
        let (sender, receiver) = sync_channel(WORKER_QUEUE_BATCHES_MAX);
        sender.try_send(batch(3..5)).expect("room");
        sender.try_send(batch(5..6)).expect("room");
        let (merged, next) = merge_queued(batch(0..3), &receiver);
        let expected: Vec<String> = (0..6).map(|id| id.to_string()).collect();
        assert_eq!(ids(&merged), expected);
        assert!(next.is_none());
        assert!(receiver.try_recv().is_err(), "nothing is left in the queue");
    }

    #[test]
    fn a_batch_that_would_not_fit_starts_the_next_pipeline() {
        let (sender, receiver) = sync_channel(WORKER_QUEUE_BATCHES_MAX);
        sender.try_send(batch(10..12)).expect("room");
        sender.try_send(batch(12..13)).expect("room");
        let (full, next) = merge_queued(batch(0..PIPELINE_OPS_MAX - 1), &receiver);
        assert_eq!(full.len(), PIPELINE_OPS_MAX - 1, "two more would not fit");
        let next = next.expect("the batch that did not fit comes back");
        assert_eq!(ids(&next), ["10", "11"]);

        // The rest waited in the queue, in order.
        let (merged, rest) = merge_queued(next, &receiver);
        assert_eq!(ids(&merged), ["10", "11", "12"]);
        assert!(rest.is_none());
        assert!(receiver.try_recv().is_err(), "nothing is left in the queue");
    }

    fn settle_op(wallet: &str, credit_id: u64) -> StoreOp {
        StoreOp::Settle {
            connection: "c".into(),
            wallet: wallet.into(),
            credit_id,
        }
    }

    #[test]
    fn the_settles_of_a_wallet_go_out_with_its_first() {
        let ops = [
            settle_op("w1", 1),
            StoreOp::Unwatch { id: "x".into() },
            settle_op("w2", 2),
            settle_op("w1", 3),
        ];
        let mut groups = SettleGroups::of(&ops);
        assert!(
            matches!(groups.role(0), SettleRole::Leads("w1", credits) if credits == [("c", 1), ("c", 3)])
        );
        assert!(matches!(groups.role(1), SettleRole::None));
        assert!(
            matches!(groups.role(2), SettleRole::Leads("w2", credits) if credits == [("c", 2)])
        );
        assert!(matches!(groups.role(3), SettleRole::Follows));
        let gone = Err(StoreError::Unavailable("down".into()));
        let mut answers = vec![
            gone.clone(),
            Ok(StoreAnswer::Unwatched(true)),
            Ok(StoreAnswer::Settled),
            Ok(StoreAnswer::Settled),
        ];
        groups.share_answers(&mut answers);
        assert_eq!(answers[3], gone);
        assert_eq!(answers[2], Ok(StoreAnswer::Settled));
        let undo = StoreOp::Undo {
            connection: "c".into(),
            wallet: "w1".into(),
            amount: 1,
            payment: None,
            credit_id: 5,
        };
        let ops = [settle_op("w1", 1), undo, settle_op("w1", 3)];
        let mut closed = SettleGroups::of(&ops);
        assert!(
            matches!(closed.role(0), SettleRole::Leads("w1", credits) if credits == [("c", 1)])
        );
        assert!(matches!(closed.role(1), SettleRole::None));
        assert!(
            matches!(closed.role(2), SettleRole::Leads("w1", credits) if credits == [("c", 3)]),
            "a Settle does not move ahead of another op on its wallet"
        );
    }

    #[test]
    fn a_wallet_settle_is_one_del_and_one_zrem() {
        let commands = settle("w", &[("c", 1), ("d", 2)]);
        assert_eq!(commands.len(), 2);
        let packed: Vec<String> = commands
            .iter()
            .map(|routed| {
                String::from_utf8_lossy(&routed.command.get_packed_command()).into_owned()
            })
            .collect();
        for credit in ["c:0000000000000001", "d:0000000000000002"] {
            assert!(packed[0].contains("DEL"), "{}", packed[0]);
            assert!(
                packed[0].contains(&format!("riptide:{{w}}:credit:{credit}")),
                "{}",
                packed[0]
            );
            assert!(
                packed[1].contains(&format!("\r\n{credit}\r\n")),
                "{}",
                packed[1]
            );
        }
        assert!(packed[1].contains("ZREM"), "{}", packed[1]);
        assert_eq!(commands[0].slot, commands[1].slot);
    }
}
