//! Quotes and outgoing payments in Redis. A quote and the payment made from it
//! share an id, and so a hash tag: one script takes the quote and makes the
//! payment atomically, on a cluster as on a single server. A payment is a hash of
//! its record (the data plane's JSON), its owner, the owner's lease and whether it
//! is open; scripts compare the owner before writing, so a data plane that lost
//! its lease never overwrites the one that took the payment over. Leases are
//! stamped and compared by Redis's own clock (`TIME`), so that the data planes'
//! clocks need not agree: a data plane gives only a lease's length.

use super::redis_link::Routed;
use super::{
    outgoing_key, quote_key, Claim, Opened, StoreAnswer, StoreError, StoreOp, OPEN_OUTGOING_KEY,
};
use crate::limits::PAYMENT_RETENTION_MS;
use redis::{Cmd, Value};

/// Makes the payment of a quote once. KEYS: quote, payment. ARGV: record, owner,
/// lease length (ms). Returns {1, ''} when this call took the quote, {0, record}
/// when the payment exists already, {2, ''} when there is no quote.
pub const OPEN_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, redis.call('HGET', KEYS[2], 'record')}
end
if redis.call('DEL', KEYS[1]) == 0 then return {2, ''} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2], 'record', ARGV[1], 'owner', ARGV[2], 'lease_until_ms', now + tonumber(ARGV[3]), 'open', '1')
return {1, ''}
";

/// The owner's heartbeat. KEYS: payment. ARGV: owner, lease length (ms), record
/// ('' to keep it), '1' to close, retention in ms. Returns 1 while ARGV[1] owns
/// it, else 0.
pub const RENEW_SCRIPT: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'record', ARGV[3]) end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'open', '0', 'lease_until_ms', '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[1], 'lease_until_ms', now + tonumber(ARGV[2]))
end
return 1
";

/// Takes an open payment whose lease lapsed. KEYS: payment. ARGV: owner, lease
/// length (ms). Returns {1, record} when taken, {2, ''} when its lease runs,
/// {0, ''} when it is closed, {3, ''} when there is no such payment.
pub const CLAIM_SCRIPT: &str = r"
local h = redis.call('HMGET', KEYS[1], 'open', 'lease_until_ms', 'record')
if not h[1] then return {3, ''} end
if h[1] ~= '1' then return {0, ''} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(h[2]) > now then return {2, ''} end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'lease_until_ms', now + tonumber(ARGV[2]))
return {1, h[3]}
";

/// The commands of an operation on quotes or outgoing payments, in the order of
/// their replies; `eval` makes a script's call. `None` for any other operation.
pub fn commands(
    op: &StoreOp,
    eval: impl Fn(&'static str, &[String]) -> Cmd,
) -> Option<Vec<Routed>> {
    let routed = match op {
        StoreOp::PutQuote {
            id,
            record,
            expires_at_ms,
        } => {
            let key = quote_key(id);
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(record).arg("PXAT").arg(*expires_at_ms);
            vec![Routed::new(set, &key).durable()]
        }
        StoreOp::GetQuote { id } => {
            let key = quote_key(id);
            let mut get = redis::cmd("GET");
            get.arg(&key);
            vec![Routed::new(get, &key)]
        }
        StoreOp::GetOutgoing { id } => {
            let key = outgoing_key(id);
            let mut get = redis::cmd("HGET");
            get.arg(&key).arg("record");
            vec![Routed::new(get, &key)]
        }
        StoreOp::LapsedOutgoing { before_ms, limit } => vec![lapsed(*before_ms, *limit)],
        StoreOp::ListOutgoing { id, until_ms } => vec![list(id, *until_ms)],
        _ => return scripted(op, eval),
    };
    Some(routed)
}

/// The operations that run a script.
fn scripted(op: &StoreOp, eval: impl Fn(&'static str, &[String]) -> Cmd) -> Option<Vec<Routed>> {
    let routed = match op {
        StoreOp::OpenOutgoing {
            id,
            record,
            owner,
            lease_until_ms,
            now_ms,
        } => {
            // The caller lists the payment first, in a round trip of its own: a
            // payment is never made without being on the list (an entry without a
            // payment is dropped by the next look).
            let keys = [quote_key(id), outgoing_key(id)];
            let mut open = eval(OPEN_SCRIPT, &keys);
            open.arg(record)
                .arg(owner)
                .arg(lease_until_ms.saturating_sub(*now_ms));
            vec![Routed::new(open, &keys[1]).durable()]
        }
        StoreOp::RenewOutgoing {
            id,
            owner,
            lease_until_ms,
            now_ms,
            record,
            close,
        } => {
            let key = outgoing_key(id);
            let mut renew = eval(RENEW_SCRIPT, std::slice::from_ref(&key));
            renew
                .arg(owner)
                .arg(lease_until_ms.saturating_sub(*now_ms))
                .arg(record.as_deref().unwrap_or(""))
                .arg(if *close { "1" } else { "0" })
                .arg(PAYMENT_RETENTION_MS);
            vec![Routed::new(renew, &key).durable()]
        }
        StoreOp::ClaimOutgoing {
            id,
            owner,
            now_ms,
            lease_until_ms,
        } => {
            let key = outgoing_key(id);
            let mut claim = eval(CLAIM_SCRIPT, std::slice::from_ref(&key));
            claim.arg(owner).arg(lease_until_ms.saturating_sub(*now_ms));
            vec![Routed::new(claim, &key).durable()]
        }
        _ => return None,
    };
    Some(routed)
}

/// Open payments whose listed lease lapsed by `before_ms` (`u64::MAX`: all).
fn lapsed(before_ms: u64, limit: usize) -> Routed {
    let before = if before_ms == u64::MAX {
        "+inf".to_owned()
    } else {
        before_ms.to_string()
    };
    let mut range = redis::cmd("ZRANGEBYSCORE");
    range
        .arg(OPEN_OUTGOING_KEY)
        .arg("-inf")
        .arg(before)
        .arg("LIMIT")
        .arg(0)
        .arg(limit);
    Routed::new(range, OPEN_OUTGOING_KEY)
}

/// Lists a payment as open until `until_ms`, or takes it off the list.
fn list(id: &str, until_ms: Option<u64>) -> Routed {
    let command = match until_ms {
        Some(until) => {
            let mut add = redis::cmd("ZADD");
            add.arg(OPEN_OUTGOING_KEY).arg(until).arg(id);
            add
        }
        None => {
            let mut remove = redis::cmd("ZREM");
            remove.arg(OPEN_OUTGOING_KEY).arg(id);
            remove
        }
    };
    Routed::new(command, OPEN_OUTGOING_KEY)
}

/// The answer to an operation of [`commands`]; `None` for any other operation.
pub fn interpret(op: &StoreOp, values: &[Value]) -> Option<Result<StoreAnswer, StoreError>> {
    let answer = match op {
        StoreOp::PutQuote { .. } => Ok(StoreAnswer::Created),
        StoreOp::GetQuote { .. } => optional_text(values.first()).map(StoreAnswer::Quote),
        StoreOp::OpenOutgoing { .. } => {
            coded(values.first()).and_then(|(code, record)| match code {
                1 => Ok(StoreAnswer::Opened(Opened::Fresh)),
                0 => Ok(StoreAnswer::Opened(Opened::Existing(record))),
                2 => Ok(StoreAnswer::Opened(Opened::QuoteGone)),
                other => Err(protocol(format!("open script code {other}"))),
            })
        }
        StoreOp::GetOutgoing { .. } => optional_text(values.first()).map(StoreAnswer::Outgoing),
        StoreOp::RenewOutgoing { .. } => match values.first() {
            Some(Value::Int(owned)) => Ok(StoreAnswer::Renewed(*owned == 1)),
            other => Err(protocol(format!("renew answered {other:?}"))),
        },
        StoreOp::ClaimOutgoing { .. } => {
            coded(values.first()).and_then(|(code, record)| match code {
                1 => Ok(StoreAnswer::Claimed(Claim::Claimed(record))),
                2 => Ok(StoreAnswer::Claimed(Claim::Held)),
                0 => Ok(StoreAnswer::Claimed(Claim::Closed)),
                3 => Ok(StoreAnswer::Claimed(Claim::Gone)),
                other => Err(protocol(format!("claim script code {other}"))),
            })
        }
        StoreOp::LapsedOutgoing { .. } => match values.first() {
            Some(Value::Array(members)) => members
                .iter()
                .map(|member| optional_text(Some(member))?.ok_or_else(|| protocol("nil id".into())))
                .collect::<Result<Vec<_>, _>>()
                .map(StoreAnswer::Lapsed),
            other => Err(protocol(format!("ZRANGEBYSCORE answered {other:?}"))),
        },
        StoreOp::ListOutgoing { .. } => Ok(StoreAnswer::Listed),
        _ => return None,
    };
    Some(answer)
}

fn protocol(message: String) -> StoreError {
    StoreError::Protocol(message)
}

/// A bulk string as text; `None` for nil.
fn optional_text(value: Option<&Value>) -> Result<Option<String>, StoreError> {
    match value {
        Some(Value::Nil) => Ok(None),
        Some(Value::BulkString(bytes)) => String::from_utf8(bytes.clone())
            .map(Some)
            .map_err(|_| protocol("a record is not UTF-8".into())),
        Some(Value::SimpleString(text)) => Ok(Some(text.clone())),
        other => Err(protocol(format!("expected text, got {other:?}"))),
    }
}

/// A script's `{code, text}` answer.
fn coded(value: Option<&Value>) -> Result<(i64, String), StoreError> {
    let Some(Value::Array(fields)) = value else {
        return Err(protocol(format!("expected {{code, text}}, got {value:?}")));
    };
    let code = match fields.first() {
        Some(Value::Int(code)) => *code,
        other => return Err(protocol(format!("script code {other:?}"))),
    };
    let text = optional_text(fields.get(1))?.unwrap_or_default();
    Ok((code, text))
}
