//! The Redis receipt store. Each shard owns one [`RedisWorker`]: a thread with one
//! blocking connection that runs each batch of operations as one pipeline (one
//! round trip), so the executor never blocks on Redis. Credits to an incoming
//! payment run as one script, atomic in Redis, so that no interleaving of
//! connections or data planes takes a payment past its amount.

use super::{
    connection_key, credit_marker_key, payment_key, wallet_key, CreditResult, IncomingPayment,
    JournalRecord, StoreAnswer, StoreError, StoreOp, CREDIT_MARKER_TTL_S, JOURNAL_KEY,
    WATCHED_PAYMENTS_KEY,
};
use crate::limits::{PAYMENT_RETENTION_MS, WORKER_QUEUE_BATCHES_MAX};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use futures::channel::oneshot;
use redis::{ErrorKind, Value};
use std::time::Duration;

/// Credits a connection and an incoming payment together, refusing what would go
/// past the payment's amount, and records the credit in its marker and the
/// journal, and adds it to the wallet's total. KEYS: payment, connection, credit
/// marker, journal, wallet total. ARGV: amount,
/// connection ttl in seconds, now in ms, marker ttl, marker value, settle-after
/// score, journal member. Returns {code, a, b}: 0 unknown, 1 expired, 2 completed,
/// 3 exceeds (a = remaining, b = connection total), 4 credited (a = remaining or -1
/// without a cap, b = connection total).
const CREDIT_PAYMENT_SCRIPT: &str = r"
local p = redis.call('HMGET', KEYS[1], 'incoming_amount', 'received', 'expires_at_ms')
if not p[3] then return {0, 0, 0} end
if tonumber(ARGV[3]) >= tonumber(p[3]) then return {1, 0, 0} end
local amount = tonumber(ARGV[1])
local remaining = -1
if p[1] and p[1] ~= '' then
  local left = tonumber(p[1]) - tonumber(p[2])
  if left <= 0 then return {2, 0, 0} end
  if amount > left then
    return {3, left, tonumber(redis.call('GET', KEYS[2]) or '0')}
  end
  remaining = left - amount
end
redis.call('HINCRBY', KEYS[1], 'received', ARGV[1])
local total = redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[7])
redis.call('INCRBY', KEYS[5], ARGV[1])
return {4, remaining, total}
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

/// Lists journal members due by ARGV[1] (at most ARGV[2]) with their markers.
/// KEYS: journal. Returns member, marker value ('' when gone), member, ...
const UNSETTLED_SCRIPT: &str = r"
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, member in ipairs(members) do
  out[#out + 1] = member
  out[#out + 1] = redis.call('GET', 'riptide:credit:' .. member) or ''
end
return out
";

type Answer = Result<StoreAnswer, StoreError>;

/// Operations of one shard pass and where their answers go.
/// An operation without a reply channel runs whatever happens (a settle, which
/// nobody waits for); one with a channel is skipped once its packet stopped
/// waiting.
pub type Batch = Vec<(StoreOp, Option<oneshot::Sender<Answer>>)>;

/// The handle a shard keeps on its worker thread.
#[derive(Debug)]
pub struct RedisWorker {
    sender: Sender<Batch>,
}

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://` or `rediss://`.
    pub url: String,
    pub tls: RedisTls,
    pub connection_ttl_s: u64,
    pub request_timeout: Duration,
}

impl RedisWorker {
    /// Starts the worker thread. The URL is checked here; the connection is made
    /// by the worker, and made again after any failure.
    pub fn spawn(options: RedisOptions, name: String) -> Result<RedisWorker, StoreError> {
        let client = open_client(&options.url, &options.tls)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL or TLS files: {e}")))?;
        let (sender, receiver) = crossbeam_channel::bounded(WORKER_QUEUE_BATCHES_MAX);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || Worker::new(client, options).run(receiver))
            .map_err(|e| StoreError::Unavailable(format!("cannot start worker: {e}")))?;
        Ok(RedisWorker { sender })
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

/// A client for `url`; a `rediss://` one speaks TLS (rustls) with `tls`, and checks
/// the server's certificate and name.
pub fn open_client(url: &str, tls: &RedisTls) -> redis::RedisResult<redis::Client> {
    if !url.starts_with("rediss://") {
        return redis::Client::open(url);
    }
    let client_tls = tls
        .client_identity_pem
        .as_ref()
        .map(|(cert, key)| redis::ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.clone(),
        });
    let certificates = redis::TlsCertificates {
        client_tls,
        root_cert: tls.ca_pem.clone(),
    };
    redis::Client::build_with_tls(url, certificates)
}

struct Worker {
    client: redis::Client,
    options: RedisOptions,
    connection: Option<redis::Connection>,
    credit_script: redis::Script,
    undo_script: redis::Script,
    unsettled_script: redis::Script,
}

impl Worker {
    fn new(client: redis::Client, options: RedisOptions) -> Worker {
        Worker {
            client,
            options,
            connection: None,
            credit_script: redis::Script::new(CREDIT_PAYMENT_SCRIPT),
            undo_script: redis::Script::new(UNDO_SCRIPT),
            unsettled_script: redis::Script::new(UNSETTLED_SCRIPT),
        }
    }

    fn run(mut self, receiver: Receiver<Batch>) {
        while let Ok(batch) = receiver.recv() {
            // A packet that stopped waiting has voided its hold: its count must not
            // happen late.
            let (ops, replies): (Vec<StoreOp>, Vec<_>) = batch
                .into_iter()
                .filter(|(_, reply)| reply.as_ref().is_none_or(|r| !r.is_canceled()))
                .unzip();
            if ops.is_empty() {
                continue;
            }
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
                self.connection = None;
                tracing::warn!(%error, "Redis pipeline failed");
                ops.iter()
                    .map(|_| Err(StoreError::Unavailable(error.to_string())))
                    .collect()
            }
        }
    }

    fn connection(&mut self) -> redis::RedisResult<&mut redis::Connection> {
        if self.connection.is_none() {
            let timeout = self.options.request_timeout;
            let mut connection = self.client.get_connection_with_timeout(timeout)?;
            connection.set_read_timeout(Some(timeout))?;
            connection.set_write_timeout(Some(timeout))?;
            self.credit_script.load(&mut connection)?;
            self.undo_script.load(&mut connection)?;
            self.unsettled_script.load(&mut connection)?;
            self.connection = Some(connection);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| (ErrorKind::Io, "no connection").into())
    }

    fn execute_pipeline(&mut self, ops: &[StoreOp]) -> redis::RedisResult<Vec<Answer>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut shapes = Vec::with_capacity(ops.len());
        for op in ops {
            shapes.push(self.queue(&mut pipe, op));
        }
        let values: Vec<Value> = pipe.query(self.connection()?)?;
        let mut values = values.into_iter();
        let mut answers = Vec::with_capacity(ops.len());
        let mut script_missing = false;
        for (op, shape) in ops.iter().zip(shapes) {
            let taken: Vec<Value> = values.by_ref().take(shape).collect();
            if taken.len() != shape {
                return Err((ErrorKind::Client, "pipeline answered too few replies").into());
            }
            let answer = interpret(op, &taken);
            script_missing |=
                matches!(&answer, Err(StoreError::Protocol(m)) if m.starts_with("NOSCRIPT"));
            answers.push(answer);
        }
        if script_missing {
            // Redis lost its scripts (restart, SCRIPT FLUSH): those ops did not run,
            // so running them again after a reload counts nothing twice.
            self.connection = None;
            self.retry_missing_scripts(ops, &mut answers)?;
        }
        Ok(answers)
    }

    fn retry_missing_scripts(
        &mut self,
        ops: &[StoreOp],
        answers: &mut [Answer],
    ) -> redis::RedisResult<()> {
        for (op, answer) in ops.iter().zip(answers.iter_mut()) {
            if matches!(answer, Err(StoreError::Protocol(m)) if m.starts_with("NOSCRIPT")) {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                let shape = self.queue(&mut pipe, op);
                let values: Vec<Value> = pipe.query(self.connection()?)?;
                if values.len() != shape {
                    return Err((ErrorKind::Client, "pipeline answered too few replies").into());
                }
                *answer = interpret(op, &values);
            }
        }
        Ok(())
    }

    /// Adds the commands of `op` and returns how many replies they give.
    fn queue(&self, pipe: &mut redis::Pipeline, op: &StoreOp) -> usize {
        match op {
            StoreOp::Credit { .. } => self.queue_credit(pipe, op),
            StoreOp::Undo { .. } => self.queue_undo(pipe, op),
            StoreOp::CreatePayment { payment, watch } => {
                queue_create_payment(pipe, payment, *watch)
            }
            StoreOp::Settle {
                connection,
                credit_id,
            } => {
                pipe.cmd("DEL")
                    .arg(credit_marker_key(connection, *credit_id));
                pipe.cmd("ZREM")
                    .arg(JOURNAL_KEY)
                    .arg(JournalRecord::member(connection, *credit_id));
                2
            }
            StoreOp::WalletTotals { wallets } => {
                pipe.cmd("MGET");
                for wallet in wallets {
                    pipe.arg(wallet_key(wallet));
                }
                1
            }
            StoreOp::Unsettled { before_ms, limit } => {
                pipe.cmd("EVALSHA")
                    .arg(self.unsettled_script.get_hash())
                    .arg(1)
                    .arg(JOURNAL_KEY)
                    .arg(*before_ms)
                    .arg(*limit);
                1
            }
            StoreOp::WatchedPayments { limit } => {
                pipe.cmd("SRANDMEMBER")
                    .arg(WATCHED_PAYMENTS_KEY)
                    .arg(*limit);
                1
            }
            StoreOp::Unwatch { id } => {
                pipe.cmd("SREM").arg(WATCHED_PAYMENTS_KEY).arg(id);
                1
            }
            StoreOp::GetPayment { id } => {
                pipe.cmd("HMGET")
                    .arg(payment_key(id))
                    .arg("wallet")
                    .arg("incoming_amount")
                    .arg("expires_at_ms")
                    .arg("received");
                1
            }
        }
    }

    /// A credit: a script when it counts on an incoming payment too, else a
    /// transaction. Answers 0 replies for any other op.
    fn queue_credit(&self, pipe: &mut redis::Pipeline, op: &StoreOp) -> usize {
        let ttl_s = self.options.connection_ttl_s;
        match op {
            StoreOp::Credit {
                connection,
                wallet,
                amount,
                payment: Some(id),
                now_ms,
                credit_id,
                post_ids,
                settle_after_ms,
            } => {
                pipe.cmd("EVALSHA")
                    .arg(self.credit_script.get_hash())
                    .arg(5)
                    .arg(payment_key(id))
                    .arg(connection_key(connection))
                    .arg(credit_marker_key(connection, *credit_id))
                    .arg(JOURNAL_KEY)
                    .arg(wallet_key(wallet))
                    .arg(*amount)
                    .arg(ttl_s)
                    .arg(*now_ms)
                    .arg(CREDIT_MARKER_TTL_S)
                    .arg(JournalRecord::marker_value(
                        *amount,
                        wallet,
                        Some(id),
                        post_ids,
                        *settle_after_ms,
                    ))
                    .arg(*settle_after_ms)
                    .arg(JournalRecord::member(connection, *credit_id));
                1
            }
            StoreOp::Credit {
                connection,
                wallet,
                amount,
                payment: None,
                credit_id,
                post_ids,
                settle_after_ms,
                ..
            } => {
                // A transaction rather than a script: INCRBY's exact 64-bit answer
                // would pass through a Lua double.
                let key = connection_key(connection);
                pipe.cmd("MULTI");
                pipe.cmd("INCRBY").arg(&key).arg(*amount);
                pipe.cmd("EXPIRE").arg(&key).arg(ttl_s);
                pipe.cmd("SET")
                    .arg(credit_marker_key(connection, *credit_id))
                    .arg(JournalRecord::marker_value(
                        *amount,
                        wallet,
                        None,
                        post_ids,
                        *settle_after_ms,
                    ))
                    .arg("EX")
                    .arg(CREDIT_MARKER_TTL_S);
                pipe.cmd("ZADD")
                    .arg(JOURNAL_KEY)
                    .arg(*settle_after_ms)
                    .arg(JournalRecord::member(connection, *credit_id));
                pipe.cmd("INCRBY").arg(wallet_key(wallet)).arg(*amount);
                pipe.cmd("EXEC");
                7
            }
            _ => 0,
        }
    }

    /// A take-back of a credit. Answers 0 replies for any other op.
    fn queue_undo(&self, pipe: &mut redis::Pipeline, op: &StoreOp) -> usize {
        match op {
            StoreOp::Undo {
                connection,
                wallet,
                amount,
                payment,
                credit_id,
            } => {
                let negative = -i128::from(*amount);
                pipe.cmd("EVALSHA")
                    .arg(self.undo_script.get_hash())
                    .arg(if payment.is_some() { 5 } else { 4 })
                    .arg(connection_key(connection))
                    .arg(credit_marker_key(connection, *credit_id))
                    .arg(JOURNAL_KEY)
                    .arg(wallet_key(wallet));
                if let Some(id) = payment {
                    pipe.arg(payment_key(id));
                }
                pipe.arg(*amount)
                    .arg(negative.to_string())
                    .arg(JournalRecord::member(connection, *credit_id));
                1
            }
            _ => 0,
        }
    }
}

/// A new incoming payment, kept past its expiry for [`PAYMENT_RETENTION_MS`].
fn queue_create_payment(
    pipe: &mut redis::Pipeline,
    payment: &IncomingPayment,
    watch: bool,
) -> usize {
    let key = payment_key(&payment.id);
    let incoming_amount = payment
        .incoming_amount
        .map(|a| a.to_string())
        .unwrap_or_default();
    pipe.cmd("HSET")
        .arg(&key)
        .arg("wallet")
        .arg(&payment.wallet)
        .arg("incoming_amount")
        .arg(incoming_amount)
        .arg("expires_at_ms")
        .arg(payment.expires_at_ms)
        .arg("received")
        .arg(payment.received);
    pipe.cmd("PEXPIREAT")
        .arg(&key)
        .arg(payment.expires_at_ms.saturating_add(PAYMENT_RETENTION_MS));
    if !watch {
        return 2;
    }
    pipe.cmd("SADD").arg(WATCHED_PAYMENTS_KEY).arg(&payment.id);
    3
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
        StoreOp::Credit { payment: None, .. } => {
            // MULTI, three QUEUED, then EXEC's array: INCRBY's total comes first.
            let total = match values.last() {
                Some(Value::Array(results)) => results.first().map(as_u64).transpose()?,
                other => {
                    return Err(StoreError::Protocol(format!(
                        "transaction answered {other:?}"
                    )))
                }
            };
            Ok(StoreAnswer::Credit(CreditResult::Credited {
                connection_total: total.unwrap_or(0),
                remaining: None,
            }))
        }
        StoreOp::Undo { .. } => match values.first() {
            Some(Value::Int(taken_back)) => Ok(StoreAnswer::Undone(*taken_back == 1)),
            other => Err(StoreError::Protocol(format!("undo answered {other:?}"))),
        },
        StoreOp::GetPayment { id } => payment_from_fields(id, values.first()),
        StoreOp::CreatePayment { .. } => Ok(StoreAnswer::Created),
        StoreOp::Settle { .. } => Ok(StoreAnswer::Settled),
        StoreOp::Unsettled { .. } => unsettled_from(values.first()),
        StoreOp::WalletTotals { .. } => wallet_totals_from(values.first()),
        StoreOp::WatchedPayments { .. } => watched_from(values.first()),
        StoreOp::Unwatch { .. } => match values.first() {
            Some(Value::Int(removed)) => Ok(StoreAnswer::Unwatched(*removed == 1)),
            other => Err(StoreError::Protocol(format!("SREM answered {other:?}"))),
        },
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

fn as_u64(value: &Value) -> Result<u64, StoreError> {
    match value {
        Value::Int(number) => u64::try_from(*number)
            .map_err(|_| StoreError::Protocol(format!("negative total {number}"))),
        other => Err(StoreError::Protocol(format!(
            "expected an integer, got {other:?}"
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
    let b = as_i64(fields.get(2))?;
    let non_negative =
        |n: i64| u64::try_from(n).map_err(|_| StoreError::Protocol(format!("negative amount {n}")));
    let result = match code {
        0 => CreditResult::UnknownPayment,
        1 => CreditResult::Expired,
        2 => CreditResult::Completed,
        3 => CreditResult::Exceeds {
            remaining: non_negative(a)?,
            connection_total: non_negative(b)?,
        },
        4 => CreditResult::Credited {
            remaining: (a >= 0).then_some(a.unsigned_abs()),
            connection_total: non_negative(b)?,
        },
        other => return Err(StoreError::Protocol(format!("credit script code {other}"))),
    };
    Ok(StoreAnswer::Credit(result))
}

/// MGET's answer: each wallet's total, 0 for one that never received.
fn wallet_totals_from(value: Option<&Value>) -> Answer {
    let Some(Value::Array(items)) = value else {
        return Err(StoreError::Protocol("MGET gave no array".into()));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Nil => Ok(0),
            Value::BulkString(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| StoreError::Protocol(format!("wallet total {bytes:?}"))),
            other => Err(StoreError::Protocol(format!("wallet total {other:?}"))),
        })
        .collect::<Result<Vec<u64>, _>>()
        .map(StoreAnswer::WalletTotals)
}

/// Journal members with their markers. A member whose marker is gone (it
/// outlived the marker's time to live) comes back with no post ids, to be removed.
fn unsettled_from(value: Option<&Value>) -> Answer {
    let Some(Value::Array(items)) = value else {
        return Err(StoreError::Protocol("journal listing gave no array".into()));
    };
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        _ => None,
    };
    let mut records = Vec::with_capacity(items.len() / 2);
    for pair in items.chunks(2) {
        let [member, marker] = pair else {
            return Err(StoreError::Protocol(
                "journal listing is not in pairs".into(),
            ));
        };
        let member = text(member).unwrap_or_default();
        let marker = text(marker).unwrap_or_default();
        match JournalRecord::parse(&member, &marker) {
            Some(record) => records.push(record),
            None => records.push(JournalRecord::orphan(&member)),
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
    Ok(StoreAnswer::Payment(Some(IncomingPayment {
        id: id.to_owned(),
        wallet,
        incoming_amount: number(1, "incoming_amount")?,
        expires_at_ms: number(2, "expires_at_ms")?.unwrap_or(0),
        received: number(3, "received")?.unwrap_or(0),
    })))
}
