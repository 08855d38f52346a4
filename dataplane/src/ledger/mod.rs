//! The ledger behind one interface, [`Ledger`]: TigerBeetle ([`tigerbeetle`]) or the
//! embedded default for a first run without servers ([`memory`]). The data model is
//! the protocol crate's (`riptide_proto::ledger`). [`backend`] dispatches to the one
//! in use; [`holds`] is the port packets' holds go through (ids, timeouts,
//! lookups); [`batcher`] gathers each shard's transfers into requests; [`chart`]
//! keeps Riptide's accounts, their deposits and balances.

pub mod backend;
pub mod batcher;
pub mod chart;
pub mod holds;
pub mod memory;
#[cfg(feature = "tigerbeetle")]
pub mod tigerbeetle;

use crate::limits::{BATCH_EVENTS_MAX, QUERY_TRANSFERS_MAX};
pub use riptide_proto::ledger::{
    account_id, Account, AccountFlags, AccountKind, BalanceRow, CreateAccountResult,
    CreateTransferResult, Transfer, TransferFlags, AMOUNT_MAX, TRANSFER_CODE_DEPOSIT,
    TRANSFER_CODE_PACKET, TRANSFER_CODE_PAYMENT_FUNDING, TRANSFER_CODE_PAYMENT_REFUND,
    TRANSFER_CODE_WITHDRAWAL,
};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    #[error("ledger request timed out")]
    Timeout,
}

/// A ledger with TigerBeetle's semantics. Futures need not be `Send`: each shard
/// drives its own on its executor.
#[allow(async_fn_in_trait)]
pub trait Ledger {
    async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError>;
    async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError>;
    async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, LedgerError>;
    /// The transfers among `ids` that exist: how an unknown outcome is settled.
    async fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError>;
    /// Every transfer with `code` on `ledger`, oldest first, at most
    /// [`QUERY_TRANSFERS_MAX`]: the deposits and withdrawals an audit needs.
    async fn transfers_with_code(
        &self,
        ledger: u32,
        code: u16,
    ) -> Result<Vec<Transfer>, LedgerError>;
}
