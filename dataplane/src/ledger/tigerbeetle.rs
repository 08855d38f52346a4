//! TigerBeetle, the production ledger, through its client (`tigerbeetle-unofficial`,
//! server 0.16.78). The client runs its own IO thread and wakes our futures from it,
//! so it needs no tokio runtime and never blocks a shard's executor. It retries
//! forever when the cluster is away: every call here has a deadline, and a missed
//! deadline is an error the pipeline turns into T00.

use super::{
    Account, AccountFlags, CreateAccountResult, CreateTransferResult, Ledger, LedgerError,
    Transfer, TransferFlags,
};
use std::future::Future;
use std::time::Duration;
use tigerbeetle_unofficial as tb;
use tigerbeetle_unofficial::error::{
    CreateAccountErrorKind, CreateAccountsError, CreateTransferErrorKind, CreateTransfersError,
};

/// A client of one TigerBeetle cluster, shared by every shard (the client merges
/// concurrent requests by itself; each shard also batches its own).
pub struct TigerBeetleLedger {
    client: tb::Client,
    request_timeout: Duration,
}

impl TigerBeetleLedger {
    /// `addresses`: the replicas, comma separated (`3000` or `127.0.0.1:3000,...`).
    pub fn connect(
        cluster_id: u128,
        addresses: &str,
        request_timeout: Duration,
    ) -> Result<TigerBeetleLedger, LedgerError> {
        let client = tb::Client::new(cluster_id, addresses)
            .map_err(|e| LedgerError::Unavailable(format!("TigerBeetle client: {e}")))?;
        Ok(TigerBeetleLedger {
            client,
            request_timeout,
        })
    }

    async fn within<T>(&self, future: impl Future<Output = T>) -> Result<T, LedgerError> {
        crate::clock::within_anywhere(self.request_timeout, future)
            .await
            .ok_or(LedgerError::Timeout)
    }
}

fn to_tb_account(account: &Account) -> tb::Account {
    let mut flags = tb::account::Flags::empty();
    flags.set(tb::account::Flags::LINKED, account.flags.linked);
    flags.set(
        tb::account::Flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        account.flags.debits_must_not_exceed_credits,
    );
    flags.set(
        tb::account::Flags::CREDITS_MUST_NOT_EXCEED_DEBITS,
        account.flags.credits_must_not_exceed_debits,
    );
    tb::Account::new(account.id, account.ledger, account.code)
        .with_flags(flags)
        .with_user_data_128(account.user_data_128)
}

fn from_tb_account(account: &tb::Account) -> Account {
    let flags = account.flags();
    Account {
        id: account.id(),
        ledger: account.ledger(),
        code: account.code(),
        flags: AccountFlags {
            linked: flags.contains(tb::account::Flags::LINKED),
            debits_must_not_exceed_credits: flags
                .contains(tb::account::Flags::DEBITS_MUST_NOT_EXCEED_CREDITS),
            credits_must_not_exceed_debits: flags
                .contains(tb::account::Flags::CREDITS_MUST_NOT_EXCEED_DEBITS),
        },
        user_data_128: account.user_data_128(),
        debits_pending: account.debits_pending(),
        debits_posted: account.debits_posted(),
        credits_pending: account.credits_pending(),
        credits_posted: account.credits_posted(),
    }
}

fn to_tb_transfer(transfer: &Transfer) -> tb::Transfer {
    let mut flags = tb::transfer::Flags::empty();
    flags.set(tb::transfer::Flags::LINKED, transfer.flags.linked);
    flags.set(tb::transfer::Flags::PENDING, transfer.flags.pending);
    flags.set(
        tb::transfer::Flags::POST_PENDING_TRANSFER,
        transfer.flags.post_pending_transfer,
    );
    flags.set(
        tb::transfer::Flags::VOID_PENDING_TRANSFER,
        transfer.flags.void_pending_transfer,
    );
    tb::Transfer::new(transfer.id)
        .with_debit_account_id(transfer.debit_account_id)
        .with_credit_account_id(transfer.credit_account_id)
        .with_amount(transfer.amount)
        .with_pending_id(transfer.pending_id)
        .with_user_data_128(transfer.user_data_128)
        .with_timeout(transfer.timeout_s)
        .with_ledger(transfer.ledger)
        .with_code(transfer.code)
        .with_flags(flags)
}

fn from_tb_transfer(transfer: &tb::Transfer) -> Transfer {
    let flags = transfer.flags();
    Transfer {
        id: transfer.id(),
        debit_account_id: transfer.debit_account_id(),
        credit_account_id: transfer.credit_account_id(),
        amount: transfer.amount(),
        pending_id: transfer.pending_id(),
        user_data_128: transfer.user_data_128(),
        timeout_s: transfer.timeout(),
        ledger: transfer.ledger(),
        code: transfer.code(),
        flags: TransferFlags {
            linked: flags.contains(tb::transfer::Flags::LINKED),
            pending: flags.contains(tb::transfer::Flags::PENDING),
            post_pending_transfer: flags.contains(tb::transfer::Flags::POST_PENDING_TRANSFER),
            void_pending_transfer: flags.contains(tb::transfer::Flags::VOID_PENDING_TRANSFER),
        },
    }
}

fn account_result(kind: CreateAccountErrorKind, code: u32) -> CreateAccountResult {
    use CreateAccountErrorKind as K;
    use CreateAccountResult as R;
    match kind {
        K::Exists => R::Exists,
        K::ExistsWithDifferentFlags
        | K::ExistsWithDifferentUserData128
        | K::ExistsWithDifferentUserData64
        | K::ExistsWithDifferentUserData32
        | K::ExistsWithDifferentLedger
        | K::ExistsWithDifferentCode => R::ExistsWithDifferentFields,
        K::IdMustNotBeZero => R::IdMustNotBeZero,
        K::IdMustNotBeIntMax => R::IdMustNotBeIntMax,
        K::LedgerMustNotBeZero => R::LedgerMustNotBeZero,
        K::CodeMustNotBeZero => R::CodeMustNotBeZero,
        K::FlagsAreMutuallyExclusive => R::FlagsAreMutuallyExclusive,
        _ => R::Other(code),
    }
}

/// `TB_CREATE_TRANSFER_ID_ALREADY_FAILED` in TigerBeetle 0.16's `tb_client.h`.
const ID_ALREADY_FAILED: u32 = 68;

fn transfer_result(kind: CreateTransferErrorKind, code: u32) -> CreateTransferResult {
    use CreateTransferErrorKind as K;
    use CreateTransferResult as R;
    match kind {
        K::Exists => R::Exists,
        K::ExistsWithDifferentFlags
        | K::ExistsWithDifferentDebitAccountId
        | K::ExistsWithDifferentCreditAccountId
        | K::ExistsWithDifferentAmount
        | K::ExistsWithDifferentPendingId
        | K::ExistsWithDifferentUserData128
        | K::ExistsWithDifferentUserData64
        | K::ExistsWithDifferentUserData32
        | K::ExistsWithDifferentTimeout
        | K::ExistsWithDifferentCode
        | K::ExistsWithDifferentLedger => R::ExistsWithDifferentFields,
        K::LinkedEventFailed => R::LinkedEventFailed,
        K::LinkedEventChainOpen => R::LinkedEventChainOpen,
        K::IdMustNotBeZero => R::IdMustNotBeZero,
        K::IdMustNotBeIntMax => R::IdMustNotBeIntMax,
        K::FlagsAreMutuallyExclusive => R::FlagsAreMutuallyExclusive,
        K::DebitAccountNotFound => R::DebitAccountNotFound,
        K::CreditAccountNotFound => R::CreditAccountNotFound,
        K::AccountsMustBeDifferent => R::AccountsMustBeDifferent,
        K::LedgerMustNotBeZero => R::LedgerMustNotBeZero,
        K::CodeMustNotBeZero => R::CodeMustNotBeZero,
        K::AccountsMustHaveTheSameLedger | K::TransferMustHaveTheSameLedgerAsAccounts => {
            R::TransferMustHaveTheSameLedgerAsAccounts
        }
        K::TimeoutReservedForPendingTransfer => R::TimeoutReservedForPendingTransfer,
        K::PendingIdMustNotBeZero => R::PendingIdMustNotBeZero,
        K::PendingTransferNotFound => R::PendingTransferNotFound,
        K::PendingTransferNotPending => R::PendingTransferNotPending,
        K::PendingTransferAlreadyPosted => R::PendingTransferAlreadyPosted,
        K::PendingTransferAlreadyVoided => R::PendingTransferAlreadyVoided,
        K::PendingTransferExpired => R::PendingTransferExpired,
        K::ExceedsPendingTransferAmount => R::ExceedsPendingTransferAmount,
        K::ExceedsCredits => R::ExceedsCredits,
        K::ExceedsDebits => R::ExceedsDebits,
        _ if code == ID_ALREADY_FAILED => R::IdAlreadyFailed,
        _ => R::Other(code),
    }
}

impl Ledger for TigerBeetleLedger {
    async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        let mut results = vec![CreateAccountResult::Ok; accounts.len()];
        let batch: Vec<tb::Account> = accounts.iter().map(to_tb_account).collect();
        match self.within(self.client.create_accounts(batch)).await? {
            Ok(()) => {}
            Err(CreateAccountsError::Api(errors)) => {
                for error in errors.as_slice() {
                    if let Some(slot) = results.get_mut(error.index() as usize) {
                        *slot = account_result(error.kind(), error.inner().code().get());
                    }
                }
            }
            Err(other) => return Err(LedgerError::Unavailable(other.to_string())),
        }
        Ok(results)
    }

    async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let mut results = vec![CreateTransferResult::Ok; transfers.len()];
        let batch: Vec<tb::Transfer> = transfers.iter().map(to_tb_transfer).collect();
        match self.within(self.client.create_transfers(batch)).await? {
            Ok(()) => {}
            Err(CreateTransfersError::Api(errors)) => {
                for error in errors.as_slice() {
                    if let Some(slot) = results.get_mut(error.index() as usize) {
                        *slot = transfer_result(error.kind(), error.inner().code().get());
                    }
                }
            }
            Err(other) => return Err(LedgerError::Unavailable(other.to_string())),
        }
        Ok(results)
    }

    async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        let found = self
            .within(self.client.lookup_accounts(ids.to_vec()))
            .await?
            .map_err(|e| LedgerError::Unavailable(e.to_string()))?;
        Ok(found.iter().map(from_tb_account).collect())
    }

    async fn transfers_with_code(
        &self,
        ledger: u32,
        code: u16,
    ) -> Result<Vec<Transfer>, LedgerError> {
        let page = u32::try_from(super::BATCH_EVENTS_MAX).unwrap_or(u32::MAX);
        let mut found: Vec<Transfer> = Vec::new();
        let mut after = std::time::UNIX_EPOCH;
        // Pages by timestamp, oldest first, until a short page or the bound.
        while found.len() < super::QUERY_TRANSFERS_MAX {
            let filter = tb::QueryFilter::new(page)
                .with_ledger(ledger)
                .with_code(code)
                .with_timestamp_min(after);
            let batch = self
                .within(self.client.query_transfers(Box::new(filter)))
                .await?
                .map_err(|e| LedgerError::Unavailable(e.to_string()))?;
            let Some(last) = batch.last() else { break };
            after = last.timestamp() + std::time::Duration::from_nanos(1);
            let short = batch.len() < page as usize;
            found.extend(batch.iter().map(from_tb_transfer));
            if short {
                break;
            }
        }
        Ok(found)
    }

    async fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        let found = self
            .within(self.client.lookup_transfers(ids.to_vec()))
            .await?
            .map_err(|e| LedgerError::Unavailable(e.to_string()))?;
        Ok(found.iter().map(from_tb_transfer).collect())
    }
}
