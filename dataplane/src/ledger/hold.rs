//! The connector's use of the ledger: a packet's legs become one linked chain of
//! pending transfers (the hold), posted on Fulfill and voided on anything else; the
//! chart of accounts is created idempotently on start and on every state push.

use super::batcher::TransferBatcher;
use super::memory::MemoryLedger;
use super::{
    account_id, Account, AccountFlags, AccountKind, CreateAccountResult, CreateTransferResult,
    Ledger, LedgerError, Transfer, TransferFlags, AMOUNT_MAX, TRANSFER_CODE_DEPOSIT,
    TRANSFER_CODE_PACKET, TRANSFER_CODE_WITHDRAWAL,
};
use crate::config::StateDocument;
use crate::connector::pipeline::Leg;
use crate::connector::reject::RejectReason;
use crate::connector::snapshot::Snapshot;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// Account codes, as in Rafiki's chart.
const ACCOUNT_CODE_LIQUIDITY: u16 = 2;
const ACCOUNT_CODE_PEER: u16 = 3;
const ACCOUNT_CODE_RECEIVING: u16 = 4;
const ACCOUNT_CODE_SETTLEMENT: u16 = 101;

/// Legs of one packet: one for a same-asset packet, two across assets.
pub const LEGS_MAX: usize = 2;
/// Tries to post or void a hold while the ledger's answers are lost.
pub const FINISH_ATTEMPTS: u32 = 3;

#[derive(Debug, Error)]
pub enum LedgerFailure {
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    #[error("{operation} refused: {result}")]
    Refused {
        operation: &'static str,
        result: String,
    },
}

/// Whether a hold is posted or voided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOutcome {
    Post,
    Void,
}

impl HoldOutcome {
    pub fn label(self) -> &'static str {
        match self {
            HoldOutcome::Post => "post",
            HoldOutcome::Void => "void",
        }
    }
}

/// The pending transfers of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    transfer_ids: [u128; LEGS_MAX],
    ledgers: [u32; LEGS_MAX],
    count: usize,
}

/// The ledger behind the data plane: the embedded one or TigerBeetle.
pub enum LedgerBackend {
    Memory(MemoryLedger),
    #[cfg(feature = "tigerbeetle")]
    TigerBeetle(super::tigerbeetle::TigerBeetleLedger),
}

impl LedgerBackend {
    /// The embedded ledger, which answers at once in process; `None` for a server.
    pub fn in_process(&self) -> Option<&MemoryLedger> {
        match self {
            LedgerBackend::Memory(ledger) => Some(ledger),
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(_) => None,
        }
    }

    pub async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        match self {
            LedgerBackend::Memory(ledger) => ledger.create_transfers(transfers).await,
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(ledger) => ledger.create_transfers(transfers).await,
        }
    }

    pub async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        match self {
            LedgerBackend::Memory(ledger) => ledger.create_accounts(accounts).await,
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(ledger) => ledger.create_accounts(accounts).await,
        }
    }

    pub async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        match self {
            LedgerBackend::Memory(ledger) => ledger.lookup_accounts(ids).await,
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(ledger) => ledger.lookup_accounts(ids).await,
        }
    }
}

/// The ledger as the data plane uses it, shared by every shard.
pub struct LedgerPort {
    backend: Arc<LedgerBackend>,
    pending_timeout_s: u32,
    /// Transfer ids: a random high half per process and a counter, so ids never
    /// repeat across shards or restarts.
    id_prefix: u64,
    id_counter: AtomicU64,
}

impl LedgerPort {
    pub fn memory(pending_timeout_s: u32) -> LedgerPort {
        LedgerPort::new(
            LedgerBackend::Memory(MemoryLedger::new()),
            pending_timeout_s,
        )
    }

    pub fn new(backend: LedgerBackend, pending_timeout_s: u32) -> LedgerPort {
        assert!(pending_timeout_s > 0);
        let mut prefix = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut prefix)
            .expect("the system random source works");
        LedgerPort {
            backend: Arc::new(backend),
            pending_timeout_s,
            id_prefix: u64::from_be_bytes(prefix),
            id_counter: AtomicU64::new(1),
        }
    }

    /// The backend, for a shard's [`TransferBatcher`].
    pub fn backend(&self) -> Arc<LedgerBackend> {
        Arc::clone(&self.backend)
    }

    fn next_transfer_id(&self) -> u128 {
        let counter = self.id_counter.fetch_add(1, Ordering::Relaxed);
        (u128::from(self.id_prefix) << 64) | u128::from(counter)
    }

    async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerFailure> {
        self.backend
            .create_transfers(transfers)
            .await
            .map_err(|e| LedgerFailure::Unavailable(e.to_string()))
    }

    async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerFailure> {
        self.backend
            .create_accounts(accounts)
            .await
            .map_err(|e| LedgerFailure::Unavailable(e.to_string()))
    }

    pub async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, LedgerFailure> {
        self.backend
            .lookup_accounts(ids)
            .await
            .map_err(|e| LedgerFailure::Unavailable(e.to_string()))
    }

    /// Reserves the legs as one linked chain of pending transfers.
    pub async fn hold(
        &self,
        legs: &[Leg],
        batcher: &Rc<TransferBatcher>,
    ) -> Result<Hold, RejectReason> {
        assert!(legs.len() <= LEGS_MAX);
        let mut hold = Hold {
            transfer_ids: [0; LEGS_MAX],
            ledgers: [0; LEGS_MAX],
            count: legs.len(),
        };
        if legs.is_empty() {
            return Ok(hold);
        }
        // On the stack: the chain is at most LEGS_MAX transfers.
        let mut transfers = [Transfer::default(); LEGS_MAX];
        for (index, leg) in legs.iter().enumerate() {
            let id = self.next_transfer_id();
            hold.transfer_ids[index] = id;
            hold.ledgers[index] = leg.ledger;
            let linked = index + 1 < legs.len();
            transfers[index] = Transfer {
                id,
                debit_account_id: leg.debit_account_id,
                credit_account_id: leg.credit_account_id,
                amount: u128::from(leg.amount),
                ledger: leg.ledger,
                code: TRANSFER_CODE_PACKET,
                flags: TransferFlags {
                    pending: true,
                    linked,
                    ..TransferFlags::default()
                },
                timeout_s: self.pending_timeout_s,
                ..Transfer::default()
            };
        }
        let results = batcher
            .submit(&transfers[..legs.len()])
            .await
            .map_err(|e| RejectReason::Internal(e.to_string()))?;
        let failed = results.iter().enumerate().find(|(_, r)| {
            !matches!(
                r,
                CreateTransferResult::Ok | CreateTransferResult::LinkedEventFailed
            )
        });
        match failed {
            None if results.iter().all(|r| *r == CreateTransferResult::Ok) => Ok(hold),
            None => Err(RejectReason::Internal(
                "hold refused without a cause".into(),
            )),
            Some((
                index,
                CreateTransferResult::ExceedsCredits | CreateTransferResult::ExceedsDebits,
            )) => Err(shortfall_reason(legs, index)),
            Some((_, other)) => Err(RejectReason::Internal(format!("hold refused: {other:?}"))),
        }
    }

    /// Posts or voids a hold; every result is checked.
    pub async fn finish(
        &self,
        hold: Hold,
        outcome: HoldOutcome,
        batcher: &Rc<TransferBatcher>,
    ) -> Result<(), LedgerFailure> {
        if hold.count == 0 {
            return Ok(());
        }
        let mut transfers = [Transfer::default(); LEGS_MAX];
        for (index, transfer) in transfers[..hold.count].iter_mut().enumerate() {
            *transfer = Transfer {
                id: self.next_transfer_id(),
                pending_id: hold.transfer_ids[index],
                amount: match outcome {
                    HoldOutcome::Post => AMOUNT_MAX,
                    HoldOutcome::Void => 0,
                },
                ledger: hold.ledgers[index],
                code: TRANSFER_CODE_PACKET,
                flags: TransferFlags {
                    post_pending_transfer: outcome == HoldOutcome::Post,
                    void_pending_transfer: outcome == HoldOutcome::Void,
                    linked: index + 1 < hold.count,
                    ..TransferFlags::default()
                },
                ..Transfer::default()
            };
        }
        let results = batcher
            .submit(&transfers[..hold.count])
            .await
            .map_err(|e| LedgerFailure::Unavailable(e.to_string()))?;
        if finished(outcome, &results) {
            return Ok(());
        }
        let result = results
            .iter()
            .find(|r| **r != CreateTransferResult::Ok)
            .unwrap_or(&CreateTransferResult::Ok);
        Err(LedgerFailure::Refused {
            operation: outcome.label(),
            result: format!("{result:?} in {results:?}"),
        })
    }

    /// [`LedgerPort::finish`], tried again while the ledger's answer is lost and
    /// `deadline_ms` (Unix ms) has not passed: a finish that went through before
    /// comes back as already done, which counts as done, so a repeat never posts or
    /// voids twice.
    pub async fn finish_retrying(
        &self,
        hold: Hold,
        outcome: HoldOutcome,
        batcher: &Rc<TransferBatcher>,
        deadline_ms: u64,
    ) -> Result<(), LedgerFailure> {
        let mut attempt = 1;
        loop {
            match self.finish(hold, outcome, batcher).await {
                Err(LedgerFailure::Unavailable(reason))
                    if attempt < FINISH_ATTEMPTS && crate::shard::unix_now_ms() < deadline_ms =>
                {
                    tracing::warn!(%reason, attempt, ?outcome, "ledger answer lost; finishing again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Creates every account of the state (existing ones are fine) and applies each
    /// `initial_liquidity` once: its transfer id derives from the account, so a
    /// restart or a second push finds it done.
    pub async fn ensure_accounts(
        &self,
        snapshot: &Snapshot,
        document: &StateDocument,
    ) -> Result<(), LedgerFailure> {
        let accounts = chart_of_accounts(snapshot);
        let results = self.create_accounts(&accounts).await?;
        for (account, result) in accounts.iter().zip(&results) {
            if !matches!(
                result,
                CreateAccountResult::Ok | CreateAccountResult::Exists
            ) {
                return Err(LedgerFailure::Refused {
                    operation: "create account",
                    result: format!("{:#x}: {result:?}", account.id),
                });
            }
        }
        self.deposit_initial_liquidity(snapshot, document).await
    }

    async fn deposit_initial_liquidity(
        &self,
        snapshot: &Snapshot,
        document: &StateDocument,
    ) -> Result<(), LedgerFailure> {
        let mut deposits = Vec::new();
        for (asset, config) in snapshot.assets.iter().zip(&document.assets) {
            if config.initial_liquidity > 0 {
                deposits.push(deposit(
                    asset.settlement_account_id,
                    asset.liquidity_account_id,
                    config.initial_liquidity,
                    asset.ledger,
                ));
            }
        }
        for (peer, config) in snapshot.peers.iter().zip(&document.peers) {
            if config.initial_liquidity > 0 {
                let asset = snapshot.asset(peer.asset);
                deposits.push(deposit(
                    asset.settlement_account_id,
                    peer.account_id,
                    config.initial_liquidity,
                    asset.ledger,
                ));
            }
        }
        if deposits.is_empty() {
            return Ok(());
        }
        let results = self.create_transfers(&deposits).await?;
        match results
            .iter()
            .find(|r| !matches!(r, CreateTransferResult::Ok | CreateTransferResult::Exists))
        {
            None => Ok(()),
            Some(result) => Err(LedgerFailure::Refused {
                operation: "initial liquidity",
                result: format!("{result:?}"),
            }),
        }
    }
}

/// Whether a post or void chain left the hold finished: every event done now, or the
/// chain found its first pending transfer already finished the same way (an earlier
/// attempt whose answer was lost did it, for the whole linked chain at once).
fn finished(outcome: HoldOutcome, results: &[CreateTransferResult]) -> bool {
    use CreateTransferResult as R;
    let done_before = match outcome {
        HoldOutcome::Post => R::PendingTransferAlreadyPosted,
        HoldOutcome::Void => R::PendingTransferAlreadyVoided,
    };
    let all_ok = results.iter().all(|r| *r == R::Ok);
    let repeated = results.first() == Some(&done_before)
        && results.iter().skip(1).all(|r| *r == R::LinkedEventFailed);
    all_ok || repeated
}

/// Both shortfalls answer T04; they differ for the operator. A peer that ran out of
/// balance is that peer's business; the connector's own asset liquidity running dry
/// needs a deposit, so it is logged as a warning.
fn shortfall_reason(legs: &[Leg], failed_index: usize) -> RejectReason {
    // In a cross-asset chain the second leg debits the destination asset's liquidity.
    let liquidity_leg = legs.len() == LEGS_MAX && failed_index == 1;
    if liquidity_leg {
        if let Some(leg) = legs.get(failed_index) {
            tracing::warn!(
                account = format!("{:032x}", leg.debit_account_id),
                amount = leg.amount,
                "asset liquidity exhausted"
            );
        }
        RejectReason::InsufficientLiquidity
    } else {
        RejectReason::InsufficientBalance
    }
}

/// Which account a liquidity operation moves money in or out of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiquidityAccount {
    Peer(String),
    Asset(String),
    /// A wallet's account: a deposit funds its outgoing payments.
    Wallet(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiquidityDirection {
    Deposit,
    Withdraw,
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

impl LedgerPort {
    /// Moves `amount` between an account and its asset's settlement account. The
    /// transfer id derives from `idempotency_key`, so a retried command finds its
    /// transfer done instead of moving the money twice.
    pub async fn move_liquidity(
        &self,
        snapshot: &Snapshot,
        target: &LiquidityAccount,
        direction: LiquidityDirection,
        amount: u64,
        idempotency_key: &str,
    ) -> Result<bool, LedgerFailure> {
        let refused = |result: String| LedgerFailure::Refused {
            operation: "liquidity",
            result,
        };
        let (account, asset) = match target {
            LiquidityAccount::Peer(id) => {
                let index = snapshot
                    .peer_by_id
                    .get(id)
                    .ok_or_else(|| refused(format!("unknown peer {id:?}")))?;
                let peer = snapshot.peer(*index);
                (peer.account_id, snapshot.asset(peer.asset))
            }
            LiquidityAccount::Asset(code) => {
                let asset = snapshot
                    .assets
                    .iter()
                    .find(|a| &a.code == code)
                    .ok_or_else(|| refused(format!("unknown asset {code:?}")))?;
                (asset.liquidity_account_id, asset)
            }
            LiquidityAccount::Wallet(id) => {
                let wallet = snapshot
                    .wallet(id)
                    .ok_or_else(|| refused(format!("unknown wallet {id:?}")))?;
                (wallet.account_id, snapshot.asset(wallet.asset))
            }
        };
        if amount == 0 || idempotency_key.is_empty() {
            return Err(refused("amount and idempotency key are required".into()));
        }
        let (debit, credit, code) = match direction {
            LiquidityDirection::Deposit => {
                (asset.settlement_account_id, account, TRANSFER_CODE_DEPOSIT)
            }
            LiquidityDirection::Withdraw => (
                account,
                asset.settlement_account_id,
                TRANSFER_CODE_WITHDRAWAL,
            ),
        };
        let transfer = Transfer {
            id: account_id(
                AccountKind::Deposit,
                &format!("liquidity:{idempotency_key}"),
            ),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: u128::from(amount),
            ledger: asset.ledger,
            code,
            ..Transfer::default()
        };
        let results = self.create_transfers(&[transfer]).await?;
        match results.first() {
            Some(CreateTransferResult::Ok) => Ok(true),
            Some(CreateTransferResult::Exists) => Ok(false),
            Some(CreateTransferResult::ExistsWithDifferentFields) => Err(refused(
                "idempotency key already used for a different operation".into(),
            )),
            Some(CreateTransferResult::ExceedsCredits) => {
                Err(refused("insufficient balance to withdraw".into()))
            }
            other => Err(refused(format!("{other:?}"))),
        }
    }

    /// Balances of every account of the state.
    pub async fn balances(&self, snapshot: &Snapshot) -> Result<Vec<BalanceRow>, LedgerFailure> {
        let mut rows = Vec::new();
        for asset in &snapshot.assets {
            for (kind, id) in [
                ("liquidity", asset.liquidity_account_id),
                ("settlement", asset.settlement_account_id),
            ] {
                rows.push(BalanceRow {
                    kind,
                    name: asset.code.clone(),
                    asset: asset.code.clone(),
                    account_id: id,
                    account: None,
                });
            }
        }
        for wallet in &snapshot.wallets {
            let asset = snapshot.asset(wallet.asset).code.clone();
            rows.push(BalanceRow {
                kind: "receiving",
                name: wallet.id.clone(),
                asset,
                account_id: wallet.account_id,
                account: None,
            });
        }
        for peer in &snapshot.peers {
            let asset = snapshot.asset(peer.asset).code.clone();
            rows.push(BalanceRow {
                kind: "peer",
                name: peer.id.clone(),
                asset,
                account_id: peer.account_id,
                account: None,
            });
        }
        let ids: Vec<u128> = rows.iter().map(|row| row.account_id).collect();
        let found = self.lookup_accounts(&ids).await?;
        for row in &mut rows {
            row.account = found.iter().find(|a| a.id == row.account_id).copied();
        }
        Ok(rows)
    }
}

fn deposit(settlement: u128, account: u128, amount: u64, ledger: u32) -> Transfer {
    Transfer {
        id: account_id(
            AccountKind::Deposit,
            &format!("initial-liquidity:{account:x}"),
        ),
        debit_account_id: settlement,
        credit_account_id: account,
        amount: u128::from(amount),
        ledger,
        code: TRANSFER_CODE_DEPOSIT,
        ..Transfer::default()
    }
}

fn chart_of_accounts(snapshot: &Snapshot) -> Vec<Account> {
    let mut accounts = Vec::with_capacity(snapshot.assets.len() * 2 + snapshot.peers.len());
    for asset in &snapshot.assets {
        accounts.push(Account {
            id: asset.liquidity_account_id,
            ledger: asset.ledger,
            code: ACCOUNT_CODE_LIQUIDITY,
            flags: AccountFlags {
                debits_must_not_exceed_credits: true,
                ..AccountFlags::default()
            },
            ..Account::default()
        });
        accounts.push(Account {
            id: asset.settlement_account_id,
            ledger: asset.ledger,
            code: ACCOUNT_CODE_SETTLEMENT,
            flags: AccountFlags {
                credits_must_not_exceed_debits: true,
                ..AccountFlags::default()
            },
            ..Account::default()
        });
    }
    for wallet in &snapshot.wallets {
        // A wallet's account collects STREAM payments and pays outgoing ones; the
        // flag never refuses a credit, and keeps payments within what it holds.
        accounts.push(Account {
            id: wallet.account_id,
            ledger: snapshot.asset(wallet.asset).ledger,
            code: ACCOUNT_CODE_RECEIVING,
            flags: AccountFlags {
                debits_must_not_exceed_credits: true,
                ..AccountFlags::default()
            },
            ..Account::default()
        });
    }
    for peer in &snapshot.peers {
        accounts.push(Account {
            id: peer.account_id,
            ledger: snapshot.asset(peer.asset).ledger,
            code: ACCOUNT_CODE_PEER,
            flags: AccountFlags {
                debits_must_not_exceed_credits: true,
                ..AccountFlags::default()
            },
            ..Account::default()
        });
    }
    accounts
}

#[cfg(test)]
mod tests {
    use super::*;
    use CreateTransferResult as R;

    #[test]
    fn a_repeated_finish_counts_as_done() {
        assert!(finished(HoldOutcome::Post, &[R::Ok, R::Ok]));
        assert!(finished(
            HoldOutcome::Post,
            &[R::PendingTransferAlreadyPosted, R::LinkedEventFailed]
        ));
        assert!(!finished(
            HoldOutcome::Post,
            &[R::PendingTransferAlreadyVoided, R::LinkedEventFailed]
        ));
        assert!(!finished(HoldOutcome::Void, &[R::PendingTransferExpired]));
        assert!(finished(
            HoldOutcome::Void,
            &[R::PendingTransferAlreadyVoided]
        ));
    }
}
