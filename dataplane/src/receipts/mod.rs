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
//! Redis is the production store ([`redis`]): one connection and one worker thread
//! per shard, every operation of one executor pass sent as one pipeline. The
//! embedded store ([`memory`]) keeps the same rules in process for a first run.

pub mod batcher;
pub mod memory;
pub mod redis;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Incoming payment amounts are compared inside a Redis script, whose numbers are
/// doubles: they count exactly up to 2^53 - 1.
pub const INCOMING_AMOUNT_MAX: u64 = (1 << 53) - 1;
/// Longest incoming payment id (it travels inside the connection token).
pub const PAYMENT_ID_SIZE_MAX: usize = 64;

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
    pub fn state(&self, now_ms: u64) -> PaymentState {
        if self
            .incoming_amount
            .is_some_and(|amount| self.received >= amount)
        {
            PaymentState::Completed
        } else if now_ms >= self.expires_at_ms {
            PaymentState::Expired
        } else {
            PaymentState::Pending
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentState {
    Pending,
    Completed,
    Expired,
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
        amount: u64,
        payment: Option<String>,
        now_ms: u64,
        credit_id: u64,
    },
    /// Take back credit `credit_id` if, and only if, the store counted it and it
    /// was not taken back yet: safe after a lost answer, safe to repeat.
    Undo {
        connection: String,
        amount: u64,
        payment: Option<String>,
        credit_id: u64,
    },
    GetPayment {
        id: String,
    },
    CreatePayment {
        payment: IncomingPayment,
    },
}

/// The store's answer to one [`StoreOp`], in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAnswer {
    Credit(CreditResult),
    /// Whether there was a counted credit to take back.
    Undone(bool),
    Payment(Option<IncomingPayment>),
    Created,
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

/// How long the store remembers a credit, for a take-back after a lost answer.
pub const CREDIT_MARKER_TTL_S: u64 = 600;

/// The key that records one credit until it is taken back or forgotten.
pub fn credit_marker_key(connection_id_hex: &str, credit_id: u64) -> String {
    format!("riptide:credit:{connection_id_hex}:{credit_id:016x}")
}

/// Rafiki's key for a connection total.
pub fn connection_key(connection_id_hex: &str) -> String {
    format!("stream_received:{connection_id_hex}")
}

pub fn payment_key(id: &str) -> String {
    format!("riptide:incoming_payment:{id}")
}

/// An incoming payment id: what a payment tag may hold, and a Redis key can.
pub fn is_payment_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= PAYMENT_ID_SIZE_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
