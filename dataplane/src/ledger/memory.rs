//! The embedded ledger: TigerBeetle's rules in process memory, for a first run
//! without servers. It is shared by every shard behind one `Mutex`, which is fine for
//! a default that is not the production path (TigerBeetle is); the rules match so
//! that a test suite can run against both and compare balances.

use super::{
    Account, CreateAccountResult, CreateTransferResult, Ledger, LedgerError, Transfer, AMOUNT_MAX,
    TRANSFER_CODE_PACKET,
};
use crate::limits::TRANSFERS_RETAINED_MAX;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

type Clock = Box<dyn Fn() -> u64 + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingState {
    Pending,
    Posted,
    Voided,
    Expired,
}

/// Where a pending transfer stands, and when it expires (`None`: never).
#[derive(Debug, Clone, Copy)]
struct Pending {
    state: PendingState,
    expires_at_ms: Option<u64>,
}

/// A transfer the ledger holds, with its pending state when it was made pending.
/// One map entry per transfer (not one map for transfers and one for pending
/// ones): the map outgrows the CPU's caches, so each probe is a miss, and a
/// transfer's life (made, posted, forgotten) now probes one map, not two.
#[derive(Debug, Clone, Copy)]
struct Entry {
    transfer: Transfer,
    pending: Option<Pending>,
}

struct State {
    accounts: HashMap<u128, Account>,
    transfers: HashMap<u128, Entry>,
    /// Transfers still pending, by expiry, to release them in order. A transfer
    /// leaves when it is posted, voided or expired, or its chain is undone, so the
    /// set holds only what is in flight.
    expiries: BTreeSet<(u64, u128)>,
    /// Transfer ids in the order they were created, to forget the oldest.
    order: VecDeque<u128>,
    /// Ids refused for a balance, which TigerBeetle never takes again
    /// (`id_already_failed`).
    burned: Box<Burned>,
}

/// Ids refused for a balance, oldest first, at most [`TRANSFERS_RETAINED_MAX`].
#[derive(Default)]
struct Burned {
    ids: HashSet<u128>,
    order: VecDeque<u128>,
}

impl Default for State {
    fn default() -> Self {
        State {
            accounts: HashMap::default(),
            transfers: HashMap::with_capacity_and_hasher(
                TRANSFERS_RETAINED_MAX + 1,
                Default::default(),
            ),
            expiries: BTreeSet::new(),
            order: VecDeque::with_capacity(TRANSFERS_RETAINED_MAX + 1),
            burned: Box::default(),
        }
    }
}

/// What a failed chain must undo.
enum Undo {
    Account(Account),
    /// A transfer it made (and the expiry it scheduled, if pending).
    Transfer(u128),
    /// The state a post or void changed, of the pending transfer `id`.
    Pending(u128, Pending),
}

pub struct MemoryLedger {
    state: Mutex<State>,
    clock: Clock,
}

impl Default for MemoryLedger {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLedger {
    pub fn new() -> MemoryLedger {
        let clock = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        };
        Self::with_clock(Box::new(clock))
    }

    /// A ledger whose pending timeouts follow `clock` (milliseconds), for tests.
    pub fn with_clock(clock: Clock) -> MemoryLedger {
        MemoryLedger {
            state: Mutex::new(State::default()),
            clock,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, LedgerError> {
        self.state
            .lock()
            .map_err(|_| LedgerError::Unavailable("memory ledger lock poisoned".into()))
    }

    pub fn create_accounts_now(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        let mut state = self.lock()?;
        Ok(accounts
            .iter()
            .map(|account| state.create_account(account))
            .collect())
    }

    pub fn create_transfers_now(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        let now_ms = (self.clock)();
        let mut state = self.lock()?;
        state.expire(now_ms);
        Ok(state.create_transfers(transfers, now_ms))
    }

    /// The transfers among `ids` that exist (within the retention window for
    /// packets; deposits and withdrawals are kept for good).
    pub fn lookup_transfers_now(&self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        let state = self.lock()?;
        Ok(ids
            .iter()
            .filter_map(|id| state.transfers.get(id).map(|entry| entry.transfer))
            .collect())
    }

    /// Every retained transfer with `code` on `ledger` (deposits and withdrawals
    /// are all retained), in no order.
    pub fn transfers_with_code_now(
        &self,
        ledger: u32,
        code: u16,
    ) -> Result<Vec<Transfer>, LedgerError> {
        let state = self.lock()?;
        Ok(state
            .transfers
            .values()
            .map(|entry| entry.transfer)
            .filter(|t| t.ledger == ledger && t.code == code)
            .take(super::QUERY_TRANSFERS_MAX)
            .collect())
    }

    /// Every account, for an audit.
    pub fn accounts_now(&self) -> Result<Vec<Account>, LedgerError> {
        let now_ms = (self.clock)();
        let mut state = self.lock()?;
        state.expire(now_ms);
        let mut accounts: Vec<Account> = state.accounts.values().copied().collect();
        accounts.sort_by_key(|a| a.id);
        Ok(accounts)
    }

    pub fn lookup_accounts_now(&self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        let now_ms = (self.clock)();
        let mut state = self.lock()?;
        state.expire(now_ms);
        Ok(ids
            .iter()
            .filter_map(|id| state.accounts.get(id).copied())
            .collect())
    }
}

impl Ledger for MemoryLedger {
    async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        self.create_accounts_now(accounts)
    }

    async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        self.create_transfers_now(transfers)
    }

    async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        self.lookup_accounts_now(ids)
    }

    async fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        self.lookup_transfers_now(ids)
    }

    async fn transfers_with_code(
        &self,
        ledger: u32,
        code: u16,
    ) -> Result<Vec<Transfer>, LedgerError> {
        self.transfers_with_code_now(ledger, code)
    }
}

impl State {
    fn create_account(&mut self, account: &Account) -> CreateAccountResult {
        use CreateAccountResult as R;
        if account.id == 0 {
            return R::IdMustNotBeZero;
        }
        if account.id == u128::MAX {
            return R::IdMustNotBeIntMax;
        }
        if account.flags.debits_must_not_exceed_credits
            && account.flags.credits_must_not_exceed_debits
        {
            return R::FlagsAreMutuallyExclusive;
        }
        if account.ledger == 0 {
            return R::LedgerMustNotBeZero;
        }
        if account.code == 0 {
            return R::CodeMustNotBeZero;
        }
        if let Some(existing) = self.accounts.get(&account.id) {
            let same = existing.ledger == account.ledger
                && existing.code == account.code
                && existing.flags == account.flags;
            return if same {
                R::Exists
            } else {
                R::ExistsWithDifferentFields
            };
        }
        let fresh = Account {
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            ..*account
        };
        self.accounts.insert(account.id, fresh);
        R::Ok
    }

    /// Releases pending transfers whose timeout has passed, as TigerBeetle does.
    fn expire(&mut self, now_ms: u64) {
        while let Some(&(expires_at_ms, id)) = self.expiries.iter().next() {
            if expires_at_ms > now_ms {
                break;
            }
            self.expiries.remove(&(expires_at_ms, id));
            let Some(entry) = self.transfers.get_mut(&id) else {
                continue;
            };
            let Some(pending) = entry.pending.as_mut() else {
                continue;
            };
            if pending.state != PendingState::Pending {
                continue;
            }
            pending.state = PendingState::Expired;
            let transfer = entry.transfer;
            if let Some(debit) = self.accounts.get_mut(&transfer.debit_account_id) {
                debit.debits_pending -= transfer.amount;
            }
            if let Some(credit) = self.accounts.get_mut(&transfer.credit_account_id) {
                credit.credits_pending -= transfer.amount;
            }
        }
    }

    fn create_transfers(
        &mut self,
        transfers: &[Transfer],
        now_ms: u64,
    ) -> Vec<CreateTransferResult> {
        let mut results = vec![CreateTransferResult::Ok; transfers.len()];
        let mut chain_start = 0;
        while chain_start < transfers.len() {
            let chain_end = transfers[chain_start..]
                .iter()
                .position(|t| !t.flags.linked)
                .map(|offset| chain_start + offset + 1);
            let Some(chain_end) = chain_end else {
                // The last event is linked: the chain never closes.
                for result in &mut results[chain_start..] {
                    *result = CreateTransferResult::LinkedEventChainOpen;
                }
                break;
            };
            self.apply_chain(
                &transfers[chain_start..chain_end],
                &mut results[chain_start..chain_end],
                now_ms,
            );
            chain_start = chain_end;
        }
        self.forget_oldest();
        results
    }

    /// Remembers an id refused for a balance, as TigerBeetle does: the same id
    /// is then refused whatever the balance (a retry after a lost answer must not
    /// pass where the first try did not).
    fn burn(&mut self, id: u128) {
        let burned = &mut self.burned;
        if burned.ids.insert(id) {
            burned.order.push_back(id);
        }
        while burned.order.len() > TRANSFERS_RETAINED_MAX {
            if let Some(oldest) = burned.order.pop_front() {
                burned.ids.remove(&oldest);
            }
        }
    }

    /// Keeps at most [`TRANSFERS_RETAINED_MAX`] transfers, forgetting the oldest
    /// that are not pending any more.
    fn forget_oldest(&mut self) {
        // Each id is looked at once per call at most: transfers still pending go to
        // the back, and there are at most as many as the order holds.
        let mut budget = self.order.len();
        while self.order.len() > TRANSFERS_RETAINED_MAX && budget > 0 {
            budget -= 1;
            let Some(id) = self.order.pop_front() else {
                break;
            };
            let still_pending = self
                .transfers
                .get(&id)
                .and_then(|entry| entry.pending)
                .is_some_and(|p| p.state == PendingState::Pending);
            if still_pending {
                self.order.push_back(id);
                continue;
            }
            self.transfers.remove(&id);
        }
    }

    /// Applies a chain all or nothing: on the first failure everything the chain
    /// did is undone, the failing event keeps its result and the others are
    /// `LinkedEventFailed`.
    fn apply_chain(
        &mut self,
        chain: &[Transfer],
        results: &mut [CreateTransferResult],
        now_ms: u64,
    ) {
        let mut undo = Vec::new();
        for (index, transfer) in chain.iter().enumerate() {
            let result = self.apply_transfer(transfer, now_ms, &mut undo);
            if result != CreateTransferResult::Ok {
                self.roll_back(undo);
                for slot in results.iter_mut() {
                    *slot = CreateTransferResult::LinkedEventFailed;
                }
                results[index] = result;
                return;
            }
        }
    }

    fn roll_back(&mut self, undo: Vec<Undo>) {
        for step in undo.into_iter().rev() {
            match step {
                Undo::Account(account) => {
                    self.accounts.insert(account.id, account);
                }
                Undo::Transfer(id) => {
                    let removed = self.transfers.remove(&id);
                    if let Some(at) = removed.and_then(|e| e.pending?.expires_at_ms) {
                        self.expiries.remove(&(at, id));
                    }
                    // Undone last made first, so its id (a packet's) is last in
                    // the order: left there, it would count against the retention.
                    if self.order.back() == Some(&id) {
                        self.order.pop_back();
                    }
                }
                Undo::Pending(id, previous) => {
                    if let (PendingState::Pending, Some(at)) =
                        (previous.state, previous.expires_at_ms)
                    {
                        self.expiries.insert((at, id));
                    }
                    if let Some(entry) = self.transfers.get_mut(&id) {
                        entry.pending = Some(previous);
                    }
                }
            }
        }
    }

    fn apply_transfer(
        &mut self,
        transfer: &Transfer,
        now_ms: u64,
        undo: &mut Vec<Undo>,
    ) -> CreateTransferResult {
        use CreateTransferResult as R;
        if transfer.id == 0 {
            return R::IdMustNotBeZero;
        }
        if transfer.id == u128::MAX {
            return R::IdMustNotBeIntMax;
        }
        let flags = transfer.flags;
        let kinds = [
            flags.pending,
            flags.post_pending_transfer,
            flags.void_pending_transfer,
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return R::FlagsAreMutuallyExclusive;
        }
        if let Some(existing) = self.transfers.get(&transfer.id) {
            return if existing.transfer == *transfer {
                R::Exists
            } else {
                R::ExistsWithDifferentFields
            };
        }
        if self.burned.ids.contains(&transfer.id) {
            return R::IdAlreadyFailed;
        }
        let (result, pending) = if flags.post_pending_transfer || flags.void_pending_transfer {
            (self.resolve_pending(transfer, now_ms, undo), None)
        } else {
            self.apply_movement(transfer, now_ms, undo)
        };
        if matches!(result, R::ExceedsCredits | R::ExceedsDebits) && !flags.linked {
            self.burn(transfer.id);
        }
        if result == R::Ok {
            if let Some(at) = pending.and_then(|p| p.expires_at_ms) {
                self.expiries.insert((at, transfer.id));
            }
            let entry = Entry {
                transfer: *transfer,
                pending,
            };
            self.transfers.insert(transfer.id, entry);
            // Only packets are forgotten: a deposit or withdrawal stays, so that its
            // idempotency key works however many packets came after it.
            if transfer.code == TRANSFER_CODE_PACKET {
                self.order.push_back(transfer.id);
            }
            undo.push(Undo::Transfer(transfer.id));
        }
        result
    }

    /// Moves the amount (pending or posted) between the two accounts; answers the
    /// pending state for the transfer's entry when it is pending.
    fn apply_movement(
        &mut self,
        transfer: &Transfer,
        now_ms: u64,
        undo: &mut Vec<Undo>,
    ) -> (CreateTransferResult, Option<Pending>) {
        let (mut debit, mut credit) = match self.check_movement(transfer) {
            Ok(accounts) => accounts,
            Err(refused) => return (refused, None),
        };
        undo.push(Undo::Account(debit));
        undo.push(Undo::Account(credit));
        let (amount, pending) = (transfer.amount, transfer.flags.pending);
        if pending {
            debit.debits_pending += amount;
            credit.credits_pending += amount;
        } else {
            debit.debits_posted += amount;
            credit.credits_posted += amount;
        }
        self.accounts.insert(debit.id, debit);
        self.accounts.insert(credit.id, credit);
        let pending = pending.then(|| Pending {
            state: PendingState::Pending,
            expires_at_ms: (transfer.timeout_s > 0)
                .then(|| now_ms + u64::from(transfer.timeout_s) * 1000),
        });
        (CreateTransferResult::Ok, pending)
    }

    /// TigerBeetle's checks of a transfer that moves money, before it moves any:
    /// copies of its (debit, credit) accounts when it may, or why not.
    fn check_movement(
        &self,
        transfer: &Transfer,
    ) -> Result<(Account, Account), CreateTransferResult> {
        use CreateTransferResult as R;
        if transfer.debit_account_id == transfer.credit_account_id {
            return Err(R::AccountsMustBeDifferent);
        }
        if transfer.ledger == 0 {
            return Err(R::LedgerMustNotBeZero);
        }
        if transfer.code == 0 {
            return Err(R::CodeMustNotBeZero);
        }
        if transfer.timeout_s != 0 && !transfer.flags.pending {
            return Err(R::TimeoutReservedForPendingTransfer);
        }
        let Some(debit) = self.accounts.get(&transfer.debit_account_id).copied() else {
            return Err(R::DebitAccountNotFound);
        };
        let Some(credit) = self.accounts.get(&transfer.credit_account_id).copied() else {
            return Err(R::CreditAccountNotFound);
        };
        if debit.ledger != transfer.ledger || credit.ledger != transfer.ledger {
            return Err(R::TransferMustHaveTheSameLedgerAsAccounts);
        }
        let amount = transfer.amount;
        let debits_after = debit
            .debits_pending
            .saturating_add(debit.debits_posted)
            .saturating_add(amount);
        if debit.flags.debits_must_not_exceed_credits && debits_after > debit.credits_posted {
            return Err(R::ExceedsCredits);
        }
        let credits_after = credit
            .credits_pending
            .saturating_add(credit.credits_posted)
            .saturating_add(amount);
        if credit.flags.credits_must_not_exceed_debits && credits_after > credit.debits_posted {
            return Err(R::ExceedsDebits);
        }
        Ok((debit, credit))
    }

    /// Applies `change` to copies of two accounts and stores them back.
    fn update_two(
        &mut self,
        debit_id: u128,
        credit_id: u128,
        change: impl FnOnce(&mut Account, &mut Account),
    ) {
        debug_assert_ne!(debit_id, credit_id);
        let (Some(mut debit), Some(mut credit)) = (
            self.accounts.get(&debit_id).copied(),
            self.accounts.get(&credit_id).copied(),
        ) else {
            debug_assert!(false, "both accounts were looked up before");
            return;
        };
        change(&mut debit, &mut credit);
        self.accounts.insert(debit_id, debit);
        self.accounts.insert(credit_id, credit);
    }

    fn resolve_pending(
        &mut self,
        transfer: &Transfer,
        now_ms: u64,
        undo: &mut Vec<Undo>,
    ) -> CreateTransferResult {
        use CreateTransferResult as R;
        if transfer.pending_id == 0 {
            return R::PendingIdMustNotBeZero;
        }
        let Some(entry) = self.transfers.get(&transfer.pending_id).copied() else {
            return R::PendingTransferNotFound;
        };
        let Some(pending) = entry.pending else {
            return R::PendingTransferNotPending;
        };
        match pending.state {
            PendingState::Posted => return R::PendingTransferAlreadyPosted,
            PendingState::Voided => return R::PendingTransferAlreadyVoided,
            PendingState::Expired => return R::PendingTransferExpired,
            PendingState::Pending => {}
        }
        if pending.expires_at_ms.is_some_and(|at| at <= now_ms) {
            return R::PendingTransferExpired;
        }
        let held = entry.transfer.amount;
        let posted = if transfer.flags.post_pending_transfer {
            match transfer.amount {
                AMOUNT_MAX => held,
                amount if amount > held => return R::ExceedsPendingTransferAmount,
                amount => amount,
            }
        } else {
            0
        };
        let (debit_id, credit_id) = (
            entry.transfer.debit_account_id,
            entry.transfer.credit_account_id,
        );
        for id in [debit_id, credit_id] {
            if let Some(account) = self.accounts.get(&id) {
                undo.push(Undo::Account(*account));
            }
        }
        undo.push(Undo::Pending(transfer.pending_id, pending));
        self.update_two(debit_id, credit_id, |debit, credit| {
            debit.debits_pending -= held;
            credit.credits_pending -= held;
            debit.debits_posted += posted;
            credit.credits_posted += posted;
        });
        let state = if transfer.flags.post_pending_transfer {
            PendingState::Posted
        } else {
            PendingState::Voided
        };
        if let Some(pending) = self
            .transfers
            .get_mut(&transfer.pending_id)
            .and_then(|entry| entry.pending.as_mut())
        {
            pending.state = state;
        }
        if let Some(at) = pending.expires_at_ms {
            self.expiries.remove(&(at, transfer.pending_id));
        }
        R::Ok
    }
}

#[cfg(test)]
mod tests;
