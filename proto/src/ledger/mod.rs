//! The ledger's data model, as TigerBeetle defines it: accounts, transfers, pending
//! transfers, linked chains, balance flags and the results of creating them; the
//! stable ids of Riptide's chart of accounts; and the audit's sans-IO checks
//! ([`audit`]). The backends that hold these (TigerBeetle, the embedded ledger) live
//! in the data plane.

pub mod audit;

/// `post_pending_transfer` with this amount posts the whole pending amount.
pub const AMOUNT_MAX: u128 = u128::MAX;
/// Transfer codes, as in Rafiki's chart.
pub const TRANSFER_CODE_PACKET: u16 = 1;
pub const TRANSFER_CODE_DEPOSIT: u16 = 2;
pub const TRANSFER_CODE_WITHDRAWAL: u16 = 3;
/// An outgoing payment's budget, moved from its wallet into the payment's account.
pub const TRANSFER_CODE_PAYMENT_FUNDING: u16 = 4;
/// What an outgoing payment did not spend, moved back to its wallet.
pub const TRANSFER_CODE_PAYMENT_REFUND: u16 = 5;

/// What an account id is derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Peer,
    Liquidity,
    Settlement,
    Receiving,
    /// One outgoing payment's budget: packets of the payment spend from it, so the
    /// ledger itself keeps the payment within its quote.
    Payment,
    /// Not an account: ids of idempotent deposits.
    Deposit,
}

impl AccountKind {
    fn label(self) -> &'static str {
        match self {
            AccountKind::Peer => "peer",
            AccountKind::Liquidity => "liquidity",
            AccountKind::Settlement => "settlement",
            AccountKind::Receiving => "receiving",
            AccountKind::Payment => "payment",
            AccountKind::Deposit => "deposit",
        }
    }
}

/// A stable 128-bit id from a kind and a name, so that a restarted data plane finds
/// its accounts: the first 16 bytes of SHA-256 over a domain-separated string.
pub fn account_id(kind: AccountKind, name: &str) -> u128 {
    let input = format!("riptide/{}/{}", kind.label(), name);
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    let id = u128::from_be_bytes(bytes);
    // TigerBeetle reserves 0 and u128::MAX.
    id.clamp(1, u128::MAX - 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountFlags {
    pub linked: bool,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    pub id: u128,
    pub ledger: u32,
    pub code: u16,
    pub flags: AccountFlags,
    pub user_data_128: u128,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
}

impl Account {
    /// Credits minus debits, posted only.
    pub fn balance_posted(&self) -> i128 {
        self.credits_posted as i128 - self.debits_posted as i128
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransferFlags {
    pub linked: bool,
    pub pending: bool,
    pub post_pending_transfer: bool,
    pub void_pending_transfer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transfer {
    pub id: u128,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub timeout_s: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: TransferFlags,
}

/// Result of one account in `create_accounts`, as TigerBeetle names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateAccountResult {
    Ok,
    Exists,
    ExistsWithDifferentFields,
    IdMustNotBeZero,
    IdMustNotBeIntMax,
    LedgerMustNotBeZero,
    CodeMustNotBeZero,
    FlagsAreMutuallyExclusive,
    /// Any other refusal, with TigerBeetle's result code.
    Other(u32),
}

/// Result of one transfer in `create_transfers`, as TigerBeetle names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateTransferResult {
    Ok,
    Exists,
    ExistsWithDifferentFields,
    LinkedEventFailed,
    LinkedEventChainOpen,
    IdMustNotBeZero,
    IdMustNotBeIntMax,
    FlagsAreMutuallyExclusive,
    DebitAccountNotFound,
    CreditAccountNotFound,
    AccountsMustBeDifferent,
    LedgerMustNotBeZero,
    CodeMustNotBeZero,
    TransferMustHaveTheSameLedgerAsAccounts,
    TimeoutReservedForPendingTransfer,
    PendingIdMustNotBeZero,
    PendingTransferNotFound,
    PendingTransferNotPending,
    PendingTransferAlreadyPosted,
    PendingTransferAlreadyVoided,
    PendingTransferExpired,
    ExceedsPendingTransferAmount,
    ExceedsCredits,
    ExceedsDebits,
    /// The id was refused before for a reason that could pass later (e.g.
    /// `ExceedsCredits`): TigerBeetle never takes that id again.
    IdAlreadyFailed,
    Other(u32),
}

/// One account's balances, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub kind: &'static str,
    pub name: String,
    pub asset: String,
    pub account_id: u128,
    pub account: Option<Account>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_stable_and_distinct() {
        assert_eq!(
            account_id(AccountKind::Peer, "alice"),
            account_id(AccountKind::Peer, "alice")
        );
        assert_ne!(
            account_id(AccountKind::Peer, "alice"),
            account_id(AccountKind::Liquidity, "alice")
        );
        assert_ne!(
            account_id(AccountKind::Peer, "alice"),
            account_id(AccountKind::Peer, "bob")
        );
        assert_ne!(account_id(AccountKind::Peer, "x"), 0);
    }
}
