//! Riptide's chart of accounts in the ledger: created idempotently on start and on
//! every state push, with each `initial_liquidity` deposited once; liquidity moved
//! in and out by operators; balances and wallet deposits for the audit.

use super::holds::{LedgerFailure, LedgerPort};
use super::{
    account_id, Account, AccountFlags, AccountKind, BalanceRow, CreateAccountResult,
    CreateTransferResult, Transfer, TRANSFER_CODE_DEPOSIT, TRANSFER_CODE_PAYMENT_FUNDING,
    TRANSFER_CODE_PAYMENT_REFUND, TRANSFER_CODE_WITHDRAWAL,
};
use crate::config::StateDocument;
use riptide_proto::admin_api::{LiquidityAccount, LiquidityDirection, LiquidityRequest};
use riptide_proto::connector::snapshot::Snapshot;

/// Account codes, as in Rafiki's chart.
const ACCOUNT_CODE_LIQUIDITY: u16 = 2;
const ACCOUNT_CODE_PEER: u16 = 3;
const ACCOUNT_CODE_RECEIVING: u16 = 4;
const ACCOUNT_CODE_SETTLEMENT: u16 = 101;
const ACCOUNT_CODE_OUTGOING_PAYMENT: u16 = 5;

/// How funding an outgoing payment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Funding {
    /// The payment's account holds its budget (now or before).
    Funded,
    /// The wallet holds less than the budget: nothing moved.
    Insufficient,
}

/// An outgoing payment's account: where its budget sits while it sends.
pub fn payment_account_id(payment_id: &str) -> u128 {
    account_id(AccountKind::Payment, payment_id)
}

/// The transfer that returns what an outgoing payment did not spend, at its
/// `attempt`: a refund refused for the balance (a packet held since its amount
/// was read) burns its id in TigerBeetle, so the next try takes the next id.
pub fn refund_id(payment_id: &str, attempt: u32) -> u128 {
    account_id(
        AccountKind::Deposit,
        &format!("payment-refund:{payment_id}:{attempt}"),
    )
}

/// How a refund went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refund {
    /// Made, now or before.
    Done,
    /// Refused for the balance, now or before: read again, try the next id.
    Refused,
    /// Not this amount: one was made before; read again.
    Different,
}

impl LedgerPort {
    /// Creates every account of the state (existing ones are fine) and deposits
    /// each `initial_liquidity` once: its transfer id derives from the account, so
    /// a restart or a second push finds it done. A value changed after its deposit
    /// moves nothing: the answer lists it, with what was deposited, for the operator
    /// to move the difference with a liquidity command. Returns those notices.
    pub async fn ensure_accounts(
        &self,
        snapshot: &Snapshot,
        document: &StateDocument,
    ) -> Result<Vec<String>, LedgerFailure> {
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
    ) -> Result<Vec<String>, LedgerFailure> {
        let mut deposits = Vec::new();
        let mut names = Vec::new();
        for (asset, config) in snapshot.assets.iter().zip(&document.assets) {
            if config.initial_liquidity > 0 {
                deposits.push(deposit(
                    asset.settlement_account_id,
                    asset.liquidity_account_id,
                    config.initial_liquidity,
                    asset.ledger,
                ));
                names.push(format!("asset {}", asset.code));
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
                names.push(format!("peer {}", peer.id));
            }
        }
        if deposits.is_empty() {
            return Ok(Vec::new());
        }
        let results = self.create_transfers(&deposits).await?;
        let mut notices = Vec::new();
        for ((deposit, name), result) in deposits.iter().zip(&names).zip(&results) {
            match result {
                CreateTransferResult::Ok | CreateTransferResult::Exists => {}
                CreateTransferResult::ExistsWithDifferentFields => {
                    let deposited = self
                        .lookup_transfers(&[deposit.id])
                        .await?
                        .first()
                        .map_or(0, |t| t.amount);
                    notices.push(format!(
                        "{name}: initial_liquidity is {} but {deposited} was deposited when it \
                         was first applied; it is deposited once, so move the difference \
                         with `riptidectl liquidity`",
                        deposit.amount
                    ));
                }
                other => {
                    return Err(LedgerFailure::Refused {
                        operation: "initial liquidity",
                        result: format!("{name}: {other:?}"),
                    })
                }
            }
        }
        for notice in &notices {
            tracing::warn!(%notice, "initial liquidity not changed");
        }
        Ok(notices)
    }

    /// Opens outgoing payment `payment_id`'s account and moves `amount` into it
    /// from the wallet's, once: the transfer's id derives from the payment, so a
    /// data plane that funds it again (after an unknown answer, or resuming it)
    /// finds it done. An `Err` is an unknown outcome, to be tried again.
    pub async fn fund_payment(
        &self,
        payment_id: &str,
        (wallet_account, ledger): (u128, u32),
        amount: u64,
    ) -> Result<Funding, LedgerFailure> {
        let account = Account {
            id: payment_account_id(payment_id),
            ledger,
            code: ACCOUNT_CODE_OUTGOING_PAYMENT,
            flags: AccountFlags {
                debits_must_not_exceed_credits: true,
                ..AccountFlags::default()
            },
            ..Account::default()
        };
        match self.create_accounts(&[account]).await?.first() {
            Some(CreateAccountResult::Ok | CreateAccountResult::Exists) => {}
            other => {
                return Err(LedgerFailure::Refused {
                    operation: "payment account",
                    result: format!("{other:?}"),
                })
            }
        }
        let funding = Transfer {
            id: account_id(
                AccountKind::Deposit,
                &format!("payment-funding:{payment_id}"),
            ),
            debit_account_id: wallet_account,
            credit_account_id: account.id,
            amount: u128::from(amount),
            ledger,
            code: TRANSFER_CODE_PAYMENT_FUNDING,
            ..Transfer::default()
        };
        match self.create_transfers(&[funding]).await?.first() {
            Some(CreateTransferResult::Ok | CreateTransferResult::Exists) => Ok(Funding::Funded),
            // Refused for the balance now, or before (TigerBeetle keeps the refusal).
            Some(CreateTransferResult::ExceedsCredits | CreateTransferResult::IdAlreadyFailed) => {
                Ok(Funding::Insufficient)
            }
            other => Err(LedgerFailure::Refused {
                operation: "payment funding",
                result: format!("{other:?}"),
            }),
        }
    }

    /// Moves what payment `payment_id` did not spend, `amount`, back to its wallet,
    /// with [`refund_id`] of `attempt`. The caller reads the amount when nothing is
    /// pending on the payment's account; a packet held since makes the ledger
    /// refuse the refund (its flag), and the caller reads again. An `Err` is an
    /// unknown outcome: try the same attempt again.
    pub async fn refund_payment(
        &self,
        payment_id: &str,
        (wallet_account, ledger): (u128, u32),
        amount: u128,
        attempt: u32,
    ) -> Result<Refund, LedgerFailure> {
        let refund = Transfer {
            id: refund_id(payment_id, attempt),
            debit_account_id: payment_account_id(payment_id),
            credit_account_id: wallet_account,
            amount,
            ledger,
            code: TRANSFER_CODE_PAYMENT_REFUND,
            ..Transfer::default()
        };
        match self.create_transfers(&[refund]).await?.first() {
            Some(CreateTransferResult::Ok | CreateTransferResult::Exists) => Ok(Refund::Done),
            Some(CreateTransferResult::ExceedsCredits | CreateTransferResult::IdAlreadyFailed) => {
                Ok(Refund::Refused)
            }
            Some(CreateTransferResult::ExistsWithDifferentFields) => Ok(Refund::Different),
            other => Err(LedgerFailure::Refused {
                operation: "payment refund",
                result: format!("{other:?}"),
            }),
        }
    }

    /// What was deposited into each wallet's account (liquidity `--wallet`), by
    /// account id: the part of its credits that did not come from packets.
    pub async fn wallet_deposits(
        &self,
        snapshot: &Snapshot,
    ) -> Result<std::collections::HashMap<u128, u128>, LedgerFailure> {
        let mut ledgers: Vec<u32> = snapshot
            .wallets
            .iter()
            .map(|w| snapshot.asset(w.asset).ledger)
            .collect();
        ledgers.sort_unstable();
        ledgers.dedup();
        let mut deposits = std::collections::HashMap::new();
        for ledger in ledgers {
            // Refunds of outgoing payments come back to a wallet as deposits do.
            for code in [TRANSFER_CODE_DEPOSIT, TRANSFER_CODE_PAYMENT_REFUND] {
                let transfers = self
                    .backend()
                    .transfers_with_code(ledger, code)
                    .await
                    .map_err(|e| LedgerFailure::Unavailable(e.to_string()))?;
                for transfer in transfers {
                    *deposits.entry(transfer.credit_account_id).or_default() += transfer.amount;
                }
            }
        }
        Ok(deposits)
    }

    /// Moves the request's amount between an account and its asset's settlement
    /// account. The transfer id derives from the idempotency key, so a retried
    /// command finds its transfer done instead of moving the money twice.
    pub async fn move_liquidity(
        &self,
        snapshot: &Snapshot,
        request: &LiquidityRequest,
    ) -> Result<bool, LedgerFailure> {
        let (amount, idempotency_key) = (request.amount, request.idempotency_key.as_str());
        let refused = |result: String| LedgerFailure::Refused {
            operation: "liquidity",
            result,
        };
        let (account, asset) = match &request.account {
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
        let (debit, credit, code) = match request.direction {
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
            Some(CreateTransferResult::ExceedsCredits | CreateTransferResult::IdAlreadyFailed) => {
                Err(refused(
                    "insufficient balance to withdraw (a key once refused stays refused)".into(),
                ))
            }
            other => Err(refused(format!("{other:?}"))),
        }
    }

    /// Balances of every account of the state, and of the outgoing payments
    /// `payments` whose accounts exist: money on its way out of a wallet.
    pub async fn balances_with_payments(
        &self,
        snapshot: &Snapshot,
        payments: &[String],
    ) -> Result<Vec<BalanceRow>, LedgerFailure> {
        let mut rows = self.balances(snapshot).await?;
        let ids: Vec<u128> = payments.iter().map(|id| payment_account_id(id)).collect();
        let mut found = Vec::new();
        for chunk in ids.chunks(crate::limits::BATCH_EVENTS_MAX) {
            found.extend(self.lookup_accounts(chunk).await?);
        }
        for (id, account_id) in payments.iter().zip(&ids) {
            // A payment whose account was never made holds nothing.
            let Some(account) = found.iter().find(|a| a.id == *account_id) else {
                continue;
            };
            let asset = snapshot
                .assets
                .iter()
                .find(|asset| asset.ledger == account.ledger)
                .map_or_else(String::new, |asset| asset.code.clone());
            rows.push(BalanceRow {
                kind: "payment",
                name: id.clone(),
                asset,
                account_id: *account_id,
                account: Some(*account),
            });
        }
        Ok(rows)
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
