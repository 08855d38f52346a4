//! The receipt store: what every data plane must see the same way about money
//! received locally. It keeps
//!
//! * the total received per STREAM connection (`stream_received:<connection id>`,
//!   Rafiki's key), which STREAM receipts and `StreamMaxMoney` report, and which
//!   expires `connection_ttl_s` after the connection's last packet;
//! * incoming payments: the wallet they pay, the most they take, their expiry and
//!   what they have received, updated atomically with the connection total so that
//!   concurrent connections, on any data plane, never pay one past its amount.
//!
//! Redis is the production store ([`redis`]), a single server or a Redis Cluster:
//! one connection and one worker thread per shard, every operation of one
//! executor pass sent as one pipeline. The
//! embedded store ([`memory`]) keeps the same rules in process for a first run.

pub mod batcher;
pub mod memory;
pub mod redis;
pub mod redis_link;
pub mod redis_outgoing;

pub use crate::limits::JOURNAL_WALLETS_PER_OP_MAX;
use crate::limits::{CREDIT_MARKER_TTL_S, PAYMENT_ID_SIZE_MAX};
use riptide_proto::admin_api::IncomingPaymentState;
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("receipt store unavailable: {0}")]
    Unavailable(String),
    #[error("receipt store busy")]
    Busy,
    #[error("receipt store answered something unexpected: {0}")]
    Protocol(String),
}

/// An incoming payment, as kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingPayment {
    pub id: String,
    pub wallet: String,
    /// The most it takes; `None` takes any amount until it expires.
    pub incoming_amount: Option<u64>,
    pub expires_at_ms: u64,
    pub received: u64,
}

impl IncomingPayment {
    pub fn state(&self, now_ms: u64) -> IncomingPaymentState {
        if self
            .incoming_amount
            .is_some_and(|amount| self.received >= amount)
        {
            IncomingPaymentState::Completed
        } else if now_ms >= self.expires_at_ms {
            IncomingPaymentState::Expired
        } else {
            IncomingPaymentState::Pending
        }
    }
}

/// One operation on the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Count `amount` on the connection and, when given, on the incoming payment,
    /// unless that would take the payment past its amount. The store remembers
    /// `credit_id` for [`CREDIT_MARKER_TTL_S`], so that the credit can be taken back
    /// exactly once even when its own answer was lost.
    Credit {
        connection: String,
        /// The wallet the connection pays (directly or through its payment): its
        /// total received, which never expires, is what the audit compares with
        /// the wallet's credits in the ledger.
        wallet: String,
        amount: u64,
        payment: Option<String>,
        now_ms: u64,
        credit_id: u64,
        /// The hold's post ids and when its pending transfers have certainly
        /// expired: recorded in the journal with the count, so that a count whose
        /// post was never confirmed is settled by a sweep.
        post_ids: Vec<u128>,
        settle_after_ms: u64,
    },
    /// The count's post is confirmed: it leaves the journal, and can no longer be
    /// taken back.
    Settle {
        connection: String,
        wallet: String,
        credit_id: u64,
    },
    /// Counts in the journals of `wallets` (at most
    /// [`JOURNAL_WALLETS_PER_OP_MAX`]) whose pending transfers have expired by
    /// `before_ms`, at most `limit` in all.
    Unsettled {
        wallets: Vec<String>,
        before_ms: u64,
        limit: usize,
    },
    /// What each wallet has received in all.
    WalletTotals {
        wallets: Vec<String>,
    },
    /// Take back credit `credit_id` if, and only if, the store counted it and it
    /// was not taken back yet: safe after a lost answer, safe to repeat.
    Undo {
        connection: String,
        wallet: String,
        amount: u64,
        payment: Option<String>,
        credit_id: u64,
    },
    GetPayment {
        id: String,
    },
    /// A new incoming payment; with `watch` (webhooks on), also put on the watch
    /// list of payments whose completed or expired event is still to go out.
    CreatePayment {
        payment: IncomingPayment,
        watch: bool,
    },
    /// Up to `limit` ids from the watch list.
    WatchedPayments {
        limit: usize,
    },
    /// Takes `id` off the watch list; answers whether this call took it off, so
    /// that of several data planes watching, one alone raises its event.
    Unwatch {
        id: String,
    },
    /// Takes up to `tokens` from the shared bucket `key` (capacity and refill
    /// `limit_per_second`, made full when missing): a peer's limit that every
    /// data plane shares. The store's own clock refills it.
    Lease {
        key: String,
        limit_per_second: u64,
        tokens: u64,
    },
    /// A quote, kept until it expires (its record is the data plane's JSON).
    PutQuote {
        id: String,
        record: String,
        expires_at_ms: u64,
    },
    GetQuote {
        id: String,
    },
    /// Pays quote `id` once: takes the quote and keeps the payment `record` (same
    /// id), driven by `owner` until `lease_until_ms`. The caller has put it on the
    /// list of open payments first ([`StoreOp::ListOutgoing`]). A payment already
    /// made from the quote is answered instead.
    OpenOutgoing {
        id: String,
        record: String,
        owner: String,
        lease_until_ms: u64,
        now_ms: u64,
    },
    GetOutgoing {
        id: String,
    },
    /// The owner's heartbeat: while `owner` still drives the payment, extends its
    /// lease and keeps `record` (when given); with `close`, the payment is over and
    /// is kept for [`crate::limits::PAYMENT_RETENTION_MS`].
    RenewOutgoing {
        id: String,
        owner: String,
        lease_until_ms: u64,
        /// The caller's clock, which `lease_until_ms` is on: Redis keeps the
        /// lease's length on its own clock.
        now_ms: u64,
        record: Option<String>,
        close: bool,
    },
    /// Takes an open payment whose lease lapsed by `now_ms` for `owner` (Redis
    /// judges the lapse, and stamps the new lease, by its own clock).
    ClaimOutgoing {
        id: String,
        owner: String,
        now_ms: u64,
        lease_until_ms: u64,
    },
    /// Up to `limit` open payments whose listed lease lapsed by `before_ms`
    /// (`u64::MAX`: every open payment).
    LapsedOutgoing {
        before_ms: u64,
        limit: usize,
    },
    /// Lists the payment as open until `until_ms`, or takes it off the list.
    ListOutgoing {
        id: String,
        until_ms: Option<u64>,
    },
}

/// How [`StoreOp::OpenOutgoing`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The payment is made: this call took the quote.
    Fresh,
    /// The quote was paid before: the payment's record as it is.
    Existing(String),
    /// No such quote: never made, expired, or gone.
    QuoteGone,
}

/// How [`StoreOp::ClaimOutgoing`] went; each with the payment's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller drives the payment now.
    Claimed(String),
    /// Its owner's lease still runs.
    Held,
    /// The payment is over.
    Closed,
    /// No such payment (made and forgotten, or never made).
    Gone,
}

/// The store's answer to one [`StoreOp`], in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAnswer {
    Credit(CreditResult),
    /// Whether there was a counted credit to take back.
    Undone(bool),
    Payment(Option<IncomingPayment>),
    Created,
    Settled,
    Unsettled(Vec<JournalRecord>),
    WalletTotals(Vec<u64>),
    Watched(Vec<String>),
    /// Whether this call took the payment off the watch list.
    Unwatched(bool),
    /// Tokens granted from a shared bucket.
    Leased(u64),
    Quote(Option<String>),
    Opened(Opened),
    Outgoing(Option<String>),
    /// Whether the caller still owned the payment.
    Renewed(bool),
    Claimed(Claim),
    /// Payment ids.
    Lapsed(Vec<String>),
    Listed,
}

/// A count in the journal: what a sweep needs to settle it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    pub connection: String,
    pub wallet: String,
    pub credit_id: u64,
    pub amount: u64,
    pub payment: Option<String>,
    pub post_ids: Vec<u128>,
    pub settle_after_ms: u64,
}

impl JournalRecord {
    /// The journal member, which also names the credit's marker.
    pub fn member(connection_id_hex: &str, credit_id: u64) -> String {
        format!("{connection_id_hex}:{credit_id:016x}")
    }

    /// What the marker holds: `amount|wallet|payment|post ids in hex|settle after`.
    pub fn marker_value(
        amount: u64,
        wallet: &str,
        payment: Option<&str>,
        post_ids: &[u128],
        settle_after_ms: u64,
    ) -> String {
        let ids: Vec<String> = post_ids.iter().map(|id| format!("{id:x}")).collect();
        format!(
            "{amount}|{wallet}|{}|{}|{settle_after_ms}",
            payment.unwrap_or(""),
            ids.join(",")
        )
    }

    /// A member of `wallet`'s journal whose marker is gone: nothing is left to
    /// take back, and it only has to leave the journal.
    pub fn orphan(wallet: &str, member: &str) -> JournalRecord {
        let (connection, credit_id) = member.rsplit_once(':').unwrap_or((member, ""));
        JournalRecord {
            connection: connection.to_owned(),
            wallet: wallet.to_owned(),
            credit_id: u64::from_str_radix(credit_id, 16).unwrap_or(0),
            amount: 0,
            payment: None,
            post_ids: Vec::new(),
            settle_after_ms: 0,
        }
    }

    /// Reads a record back from its member and marker value.
    pub fn parse(member: &str, marker_value: &str) -> Option<JournalRecord> {
        let (connection, credit_id) = member.rsplit_once(':')?;
        let mut fields = marker_value.split('|');
        let amount = fields.next()?.parse().ok()?;
        let wallet = fields.next()?.to_owned();
        let payment = Some(fields.next()?)
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        let post_ids = fields
            .next()?
            .split(',')
            .filter(|id| !id.is_empty())
            .map(|id| u128::from_str_radix(id, 16).ok())
            .collect::<Option<Vec<u128>>>()?;
        let settle_after_ms = fields.next()?.parse().ok()?;
        Some(JournalRecord {
            connection: connection.to_owned(),
            wallet,
            credit_id: u64::from_str_radix(credit_id, 16).ok()?,
            amount,
            payment,
            post_ids,
            settle_after_ms,
        })
    }
}

/// How a credit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditResult {
    Credited {
        connection_total: u64,
        /// What the payment still takes after this credit; `None` without a cap.
        remaining: Option<u64>,
    },
    /// Nothing counted: the packet would go past the payment's amount.
    Exceeds {
        connection_total: u64,
        remaining: u64,
    },
    Completed,
    Expired,
    /// The payment is not in the store (never created, or long expired).
    UnknownPayment,
}

// Keys. Every key one credit touches (the connection total, the payment's
// counter, the credit's marker, the journal and the wallet's total) carries the
// wallet as its Redis Cluster hash tag (`{wallet}`), so that they all live in one
// slot and one script updates them atomically on a cluster as on a single server.
// An incoming payment is also found by its id alone, through its index key, which
// hashes on its own.

/// The key that records one credit until it is settled or taken back.
pub fn credit_marker_key(wallet: &str, connection_id_hex: &str, credit_id: u64) -> String {
    format!(
        "{}{}",
        credit_marker_prefix(wallet),
        JournalRecord::member(connection_id_hex, credit_id)
    )
}

/// What the marker keys of a wallet start with: the journal's member follows.
pub fn credit_marker_prefix(wallet: &str) -> String {
    format!("riptide:{{{wallet}}}:credit:")
}

/// A connection's total (Rafiki's `stream_received:<connection id>`, in the slot
/// of the wallet it pays).
pub fn connection_key(wallet: &str, connection_id_hex: &str) -> String {
    format!("riptide:{{{wallet}}}:stream_received:{connection_id_hex}")
}

/// What a wallet has received in all, over every connection and payment.
pub fn wallet_key(wallet: &str) -> String {
    format!("riptide:{{{wallet}}}:received")
}

/// A wallet's journal: a sorted set of every count whose post is not confirmed
/// yet, scored by when its pending transfers have certainly expired.
pub fn journal_key(wallet: &str) -> String {
    format!("riptide:{{{wallet}}}:unsettled")
}

/// The set of incoming payments whose completed or expired event is still to go
/// out (webhooks): shared, so that it survives a restart and any data plane raises
/// the event.
pub const WATCHED_PAYMENTS_KEY: &str = "riptide:watched_payments";

/// An incoming payment's terms and what it received, in its wallet's slot: what
/// a credit checks and counts on.
pub fn payment_key(wallet: &str, id: &str) -> String {
    format!("riptide:{{{wallet}}}:incoming_payment:{id}")
}

/// A peer's shared limit bucket (`rate` or `throughput`).
pub fn limit_key(peer_id: &str, kind: &str) -> String {
    format!("riptide:limit:{{{peer_id}}}:{kind}")
}

/// An incoming payment found by its id alone: its wallet and terms.
pub fn payment_index_key(id: &str) -> String {
    format!("riptide:incoming_payment:{id}")
}

/// A quote, until it is paid or expires (in the slot of its payment).
pub fn quote_key(id: &str) -> String {
    format!("riptide:quote:{{{id}}}")
}

/// An outgoing payment: its record, owner, lease and whether it is open (a hash).
pub fn outgoing_key(id: &str) -> String {
    format!("riptide:outgoing_payment:{{{id}}}")
}

/// The open outgoing payments, scored by the lease listed for each: where a data
/// plane finds a payment whose owner stopped, to resume it.
pub const OPEN_OUTGOING_KEY: &str = "riptide:outgoing_payments:open";

/// An incoming payment id: what a payment tag may hold, and a Redis key can.
pub fn is_payment_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= PAYMENT_ID_SIZE_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_records_read_back() {
        let ids = [0xab, 0x1_0000_0000_0000_0000];
        let value = JournalRecord::marker_value(42, "shop", Some("pay-1"), &ids, 99);
        let record =
            JournalRecord::parse(&JournalRecord::member("c0ffee", 7), &value).expect("parses");
        assert_eq!(
            record,
            JournalRecord {
                connection: "c0ffee".into(),
                wallet: "shop".into(),
                credit_id: 7,
                amount: 42,
                payment: Some("pay-1".into()),
                post_ids: vec![0xab, 0x1_0000_0000_0000_0000],
                settle_after_ms: 99,
            }
        );
        let value = JournalRecord::marker_value(1, "shop", None, &[5], 3);
        assert_eq!(
            JournalRecord::parse("x:0000000000000001", &value)
                .expect("parses")
                .payment,
            None
        );
        assert!(JournalRecord::parse("x:1", "nonsense").is_none());
    }
}
