//! A seeded, deterministic simulation of outgoing payments taken over after
//! crashes, in the manner of [`crate::flow_sim`]: real [`PaymentFlow`]s, each the
//! owner of the payment for a while, run against the embedded ledger (with
//! TigerBeetle's rule that an id refused for a balance is never taken again) and a
//! simulated store of the payment's record with its lease. Ledger requests apply
//! and answer, apply and lose their answer, or do not apply; owners crash at any
//! step, some go on as zombies that no longer hold the lease (their ledger steps
//! still run, their store writes fail), packets in flight are left pending to
//! expire; an owner whose lease lapsed is replaced by a new one that starts from
//! the saved record. After every run it checks, with the ledger's balances, that
//! the wallet paid exactly what the closed record says was sent, once; that the
//! payment never spent past its quote; that its account ends empty with nothing
//! pending; and that at most one refund was made.
//!
//! `cargo test -p riptide-dataplane payments_are_exact` runs [`SEEDS_DEFAULT`]
//! seeds; `RIPTIDE_SIM_SEEDS=N` runs more, `RIPTIDE_SIM_SEED=N` replays one.

use crate::flow_sim::Rng;
use crate::ledger::chart::{payment_account_id, refund_id};
use crate::ledger::memory::MemoryLedger;
use crate::ledger::{
    account_id, Account, AccountFlags, AccountKind, CreateTransferResult, Transfer, TransferFlags,
    TRANSFER_CODE_DEPOSIT, TRANSFER_CODE_PACKET, TRANSFER_CODE_PAYMENT_FUNDING,
    TRANSFER_CODE_PAYMENT_REFUND,
};
use riptide_proto::flow::payment::{
    AccountAnswer, FlowLimits, FundAnswer, Outcome, PaymentFlow, RefundAnswer, Step,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const SEEDS_DEFAULT: u64 = 2_000;
const LEDGER: u32 = 1;
const WALLET: u128 = 40;
const PEER: u128 = 41;
const SETTLEMENT: u128 = 42;
const PAYMENT_ID: &str = "simulated-payment";
const LEASE_MS: u64 = 5_000;
const PENDING_TIMEOUT_S: u32 = 8;
const STEPS_MAX: usize = 20_000;
/// Give-ups one run may see: a flow gives up only after `tries_max` unknown
/// answers in a row (or on running out of refund ids), which faults of at most 30%
/// make rare.
const GIVE_UPS_MAX: usize = 2;
const LIMITS: FlowLimits = FlowLimits {
    tries_max: 6,
    quiet_reads_max: 60,
    refund_ids: 16,
    retry_ms: 1_000,
    quiet_ms: 500,
};

/// The payment's record in the store.
#[derive(Debug, Default)]
struct Record {
    owner: usize,
    lease_until_ms: u64,
    outcome: Option<Outcome>,
    closed_sent: Option<u128>,
}

/// An owner of the payment: live while it holds the lease, a zombie after.
struct Owner {
    flow: PaymentFlow,
    /// Crashed: it renews nothing, though as a zombie it may still take steps.
    crashed: bool,
    /// Steps a crashed owner still takes (a zombie), or `None` once it stopped.
    steps_left: Option<u32>,
    next_at_ms: u64,
}

struct World {
    rng: Rng,
    now: Arc<AtomicU64>,
    ledger: MemoryLedger,
    source_amount: u64,
    wallet_start: u128,
    record: Record,
    owners: Vec<Owner>,
    /// Per mille: a ledger request that does not apply, one whose answer is
    /// lost, an owner that crashes at a step, a crashed owner that goes on.
    faults: [u64; 4],
    next_packet_id: u128,
    /// Why owners gave up: a flow that gives up where it should wait or retry
    /// shows here.
    give_ups: Vec<String>,
    log: Vec<String>,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = Rng(seed);
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock = Arc::clone(&now);
        let ledger = MemoryLedger::with_clock(Box::new(move || clock.load(Ordering::Relaxed)));
        let source_amount = 1 + rng.below(2_000);
        // Sometimes the wallet cannot fund the payment.
        let wallet_start = u128::from(rng.below(source_amount * 2) + 1);
        let faults = [
            rng.below(300),
            rng.below(300),
            rng.below(150),
            rng.below(500),
        ];
        let mut world = World {
            rng,
            now,
            ledger,
            source_amount,
            wallet_start,
            record: Record::default(),
            owners: Vec::new(),
            faults,
            next_packet_id: 1_000,
            give_ups: Vec::new(),
            log: Vec::new(),
        };
        world.open_accounts();
        world
    }

    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    fn open_accounts(&mut self) {
        let account = |id, debits_limited| Account {
            id,
            ledger: LEDGER,
            code: 1,
            flags: AccountFlags {
                debits_must_not_exceed_credits: debits_limited,
                ..AccountFlags::default()
            },
            ..Account::default()
        };
        let accounts = [
            account(WALLET, true),
            account(PEER, false),
            account(SETTLEMENT, false),
        ];
        self.ledger
            .create_accounts_now(&accounts)
            .expect("accounts");
        let deposit = Transfer {
            id: 1,
            debit_account_id: SETTLEMENT,
            credit_account_id: WALLET,
            amount: self.wallet_start,
            ledger: LEDGER,
            code: TRANSFER_CODE_DEPOSIT,
            ..Transfer::default()
        };
        let results = self
            .ledger
            .create_transfers_now(&[deposit])
            .expect("deposit");
        assert_eq!(results, vec![CreateTransferResult::Ok]);
    }

    /// Sends `transfers` to the ledger: applied or not, answered or not.
    fn ledger_request(&mut self, transfers: &[Transfer]) -> Option<Vec<CreateTransferResult>> {
        if self.rng.chance(self.faults[0]) {
            return None;
        }
        let results = self.ledger.create_transfers_now(transfers).expect("ledger");
        if self.rng.chance(self.faults[1]) {
            return None;
        }
        Some(results)
    }

    fn account(&mut self) -> AccountAnswer {
        if self.rng.chance(self.faults[1]) {
            return AccountAnswer::Unknown;
        }
        let found = self
            .ledger
            .lookup_accounts_now(&[payment_account_id(PAYMENT_ID)])
            .expect("lookup");
        found
            .first()
            .map_or(AccountAnswer::Missing, |a| AccountAnswer::Found(*a))
    }

    fn fund(&mut self) -> FundAnswer {
        let account = Account {
            id: payment_account_id(PAYMENT_ID),
            ledger: LEDGER,
            code: 5,
            flags: AccountFlags {
                debits_must_not_exceed_credits: true,
                ..AccountFlags::default()
            },
            ..Account::default()
        };
        if self.rng.chance(self.faults[0]) {
            return FundAnswer::Unknown;
        }
        self.ledger
            .create_accounts_now(&[account])
            .expect("account");
        let funding = Transfer {
            id: account_id(AccountKind::Deposit, "sim-funding"),
            debit_account_id: WALLET,
            credit_account_id: account.id,
            amount: u128::from(self.source_amount),
            ledger: LEDGER,
            code: TRANSFER_CODE_PAYMENT_FUNDING,
            ..Transfer::default()
        };
        match self.ledger_request(&[funding]).as_deref() {
            Some([CreateTransferResult::Ok | CreateTransferResult::Exists]) => FundAnswer::Funded,
            Some(
                [CreateTransferResult::ExceedsCredits | CreateTransferResult::IdAlreadyFailed],
            ) => FundAnswer::Insufficient,
            Some(other) => panic!("funding answered {other:?}"),
            None => FundAnswer::Unknown,
        }
    }

    /// The sender: packets held from the payment's account and posted or voided;
    /// a crash (`crashing`) leaves the last ones pending, to expire.
    fn send(&mut self, available: u128, crashing: bool) -> Outcome {
        let mut left = available;
        let packets = 1 + self.rng.below(8);
        for _ in 0..packets {
            if left == 0 {
                break;
            }
            let amount = 1 + u128::from(self.rng.below(u64::try_from(left).unwrap_or(u64::MAX)));
            let hold_id = self.next_packet_id;
            self.next_packet_id += 2;
            let hold = Transfer {
                id: hold_id,
                debit_account_id: payment_account_id(PAYMENT_ID),
                credit_account_id: PEER,
                amount,
                ledger: LEDGER,
                code: TRANSFER_CODE_PACKET,
                timeout_s: PENDING_TIMEOUT_S,
                flags: TransferFlags {
                    pending: true,
                    ..TransferFlags::default()
                },
                ..Transfer::default()
            };
            let held = self.ledger.create_transfers_now(&[hold]).expect("hold");
            if held != vec![CreateTransferResult::Ok] {
                // Another owner spent it meanwhile: the ledger keeps the quote.
                return Outcome::Failed(format!("hold refused: {held:?}"));
            }
            if crashing && self.rng.chance(500) {
                continue;
            }
            let post = !self.rng.chance(200);
            let resolve = Transfer {
                id: hold_id + 1,
                pending_id: hold_id,
                amount: if post { amount } else { 0 },
                ledger: LEDGER,
                code: TRANSFER_CODE_PACKET,
                flags: TransferFlags {
                    post_pending_transfer: post,
                    void_pending_transfer: !post,
                    ..TransferFlags::default()
                },
                ..Transfer::default()
            };
            let done = self
                .ledger
                .create_transfers_now(&[resolve])
                .expect("resolve");
            assert_eq!(
                done,
                vec![CreateTransferResult::Ok],
                "{}",
                self.log.join("\n")
            );
            if post {
                left -= amount;
            }
        }
        if left == 0 {
            Outcome::Completed
        } else {
            Outcome::Failed(format!("{left} left unsent"))
        }
    }

    fn refund(&mut self, amount: u128, attempt: u32) -> RefundAnswer {
        let refund = Transfer {
            id: refund_id(PAYMENT_ID, attempt),
            debit_account_id: payment_account_id(PAYMENT_ID),
            credit_account_id: WALLET,
            amount,
            ledger: LEDGER,
            code: TRANSFER_CODE_PAYMENT_REFUND,
            ..Transfer::default()
        };
        match self.ledger_request(&[refund]).as_deref() {
            Some([CreateTransferResult::Ok | CreateTransferResult::Exists]) => RefundAnswer::Done,
            Some(
                [CreateTransferResult::ExceedsCredits | CreateTransferResult::IdAlreadyFailed],
            ) => RefundAnswer::Refused,
            Some([CreateTransferResult::ExistsWithDifferentFields]) => RefundAnswer::Different,
            Some(other) => panic!("refund answered {other:?}"),
            None => RefundAnswer::Unknown,
        }
    }

    fn refunded(&mut self) -> Option<u128> {
        if self.rng.chance(self.faults[1]) {
            return None;
        }
        let ids: Vec<u128> = (0..LIMITS.refund_ids)
            .map(|attempt| refund_id(PAYMENT_ID, attempt))
            .collect();
        let found = self.ledger.lookup_transfers_now(&ids).expect("lookup");
        Some(found.iter().map(|t| t.amount).sum())
    }

    /// A store write by `owner`: taken only while it holds the lease, and the
    /// answer may be lost. A write lands with a fresh lease.
    fn store_write(&mut self, owner: usize, write: impl FnOnce(&mut Record)) -> bool {
        if self.record.owner != owner || self.record.closed_sent.is_some() {
            return false;
        }
        write(&mut self.record);
        self.record.lease_until_ms = self.now_ms() + LEASE_MS;
        !self.rng.chance(self.faults[1])
    }

    /// A new owner once the lease lapsed, from the saved record.
    fn claim(&mut self) {
        let owner = self.owners.len();
        self.log
            .push(format!("{} owner {owner} claims", self.now_ms()));
        self.record.owner = owner;
        self.record.lease_until_ms = self.now_ms() + LEASE_MS;
        let flow = PaymentFlow::new(self.source_amount, self.record.outcome.clone(), LIMITS);
        self.owners.push(Owner {
            flow,
            crashed: false,
            steps_left: Some(u32::MAX),
            next_at_ms: self.now_ms(),
        });
    }

    fn run(&mut self) {
        self.claim();
        for _ in 0..STEPS_MAX {
            if self.record.closed_sent.is_some() {
                return;
            }
            let next = self
                .owners
                .iter()
                .enumerate()
                .filter(|(_, o)| o.steps_left.is_some())
                .min_by_key(|(_, o)| o.next_at_ms)
                .map(|(i, o)| (i, o.next_at_ms));
            // A live owner renews its lease as it goes; with none, the lease lapses
            // and the next look claims the payment.
            let owner_live = self
                .owners
                .get(self.record.owner)
                .is_some_and(|o| o.steps_left.is_some() && !o.crashed);
            let claim_at = (!owner_live).then_some(self.record.lease_until_ms + 1);
            match (next, claim_at) {
                (Some((owner, at)), Some(claim)) if at <= claim => self.step_at(owner, at),
                (Some((owner, at)), None) => self.step_at(owner, at),
                (_, Some(claim)) => {
                    self.now.fetch_max(claim, Ordering::Relaxed);
                    self.claim();
                }
                (None, None) => unreachable!("a live owner always steps"),
            }
        }
        panic!(
            "not closed after {STEPS_MAX} steps:\n{}",
            self.log.join("\n")
        );
    }

    fn step_at(&mut self, owner: usize, at_ms: u64) {
        self.now.fetch_max(at_ms, Ordering::Relaxed);
        self.step(owner);
    }

    fn step(&mut self, owner: usize) {
        let crashing = self.rng.chance(self.faults[2]);
        let step = self.owners[owner].flow.poll();
        self.log
            .push(format!("{} owner {owner}: {step:?}", self.now_ms()));
        // Steps take their time, so that a zombie's steps fall between another
        // owner's.
        let mut wait_ms = 1 + self.rng.below(50);
        match step {
            Step::Fund => {
                let answer = self.fund();
                self.owners[owner].flow.on_fund(answer);
            }
            Step::ReadAccount => {
                let answer = self.account();
                self.owners[owner].flow.on_account(answer);
            }
            Step::Send { available, .. } => {
                let outcome = self.send(available, crashing);
                self.owners[owner].flow.on_sent(outcome);
            }
            Step::SaveOutcome => {
                let outcome = self.owners[owner].flow.outcome().cloned();
                let saved = self.store_write(owner, |r| r.outcome = outcome);
                if self.record.owner != owner {
                    return self.stop(owner);
                }
                self.owners[owner].flow.on_saved(saved);
            }
            Step::Refund { amount, attempt } => {
                let answer = self.refund(amount, attempt);
                self.owners[owner].flow.on_refund(answer);
            }
            Step::LookupRefunds => {
                let refunded = self.refunded();
                self.owners[owner].flow.on_refunds(refunded);
            }
            Step::Close { sent } => {
                let closed = self.store_write(owner, |r| r.closed_sent = Some(sent));
                if self.record.owner != owner {
                    return self.stop(owner);
                }
                self.owners[owner].flow.on_closed(closed);
            }
            Step::Wait { ms } => wait_ms = ms,
            Step::GiveUp(reason) => {
                self.give_ups.push(reason);
                return self.stop(owner);
            }
            Step::Done => return self.stop(owner),
        }
        // A live owner renews its lease as it goes (every step here).
        if self.record.owner == owner && self.record.closed_sent.is_none() {
            self.record.lease_until_ms = self.now_ms() + LEASE_MS;
        }
        self.owners[owner].next_at_ms = self.now_ms() + wait_ms;
        if crashing {
            self.crash(owner);
        } else if let Some(left) = self.owners[owner].steps_left.as_mut() {
            if self.record.owner != owner {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.stop(owner);
                }
            }
        }
    }

    /// The owner stops renewing: dead, or a zombie for a few more steps.
    fn crash(&mut self, owner: usize) {
        self.log
            .push(format!("{} owner {owner} crashes", self.now_ms()));
        let zombie = self.rng.chance(self.faults[3]);
        self.owners[owner].crashed = true;
        self.owners[owner].steps_left = zombie.then(|| 1 + self.rng.below(20) as u32);
        if zombie {
            // A pause (a stalled process, a partition) that outlasts its lease:
            // it wakes while another owner may be driving the payment, or, if none
            // claimed it yet, goes on as its owner.
            self.owners[owner].next_at_ms += LEASE_MS + self.rng.below(2_000);
        }
    }

    fn stop(&mut self, owner: usize) {
        self.owners[owner].steps_left = None;
        if self.record.owner == owner && self.record.closed_sent.is_none() {
            // Left open (gave up): the lease lapses for the next owner.
            self.record.owner = usize::MAX;
        }
    }

    fn check(&mut self) {
        // Every hold has expired or resolved by now.
        self.now
            .fetch_add(u64::from(PENDING_TIMEOUT_S) * 1_000 + 1, Ordering::Relaxed);
        let context = self.log.join("\n");
        let sent = self.record.closed_sent.expect("closed");
        assert!(
            self.give_ups.len() <= GIVE_UPS_MAX,
            "gave up {} times: {:?}\n{context}",
            self.give_ups.len(),
            self.give_ups
        );
        let accounts = self
            .ledger
            .lookup_accounts_now(&[WALLET, PEER, payment_account_id(PAYMENT_ID)])
            .expect("accounts");
        let find = |id| {
            accounts
                .iter()
                .find(|a| a.id == id)
                .copied()
                .unwrap_or_default()
        };
        let (wallet, peer, payment) = (
            find(WALLET),
            find(PEER),
            find(payment_account_id(PAYMENT_ID)),
        );
        assert_eq!(
            wallet.credits_posted - wallet.debits_posted,
            self.wallet_start - sent,
            "the wallet paid what the record says was sent\n{context}"
        );
        assert_eq!(
            peer.credits_posted, sent,
            "the packets posted are what was sent\n{context}"
        );
        assert!(
            sent <= u128::from(self.source_amount),
            "within the quote\n{context}"
        );
        assert_eq!(payment.debits_pending, 0, "{context}");
        assert_eq!(
            payment.credits_posted, payment.debits_posted,
            "the payment's account ends empty\n{context}"
        );
        let refunds = (0..LIMITS.refund_ids)
            .map(|attempt| refund_id(PAYMENT_ID, attempt))
            .collect::<Vec<_>>();
        let made = self.ledger.lookup_transfers_now(&refunds).expect("lookup");
        assert!(made.len() <= 1, "one refund at most: {made:?}\n{context}");
        if payment.credits_posted > 0 {
            assert_eq!(
                payment.credits_posted,
                u128::from(self.source_amount),
                "funded once\n{context}"
            );
        }
    }
}

#[test]
fn payments_are_exact_under_simulated_faults() {
    if let Some(seed) = std::env::var("RIPTIDE_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let mut world = World::new(seed);
        world.run();
        world.check();
        return;
    }
    let seeds = std::env::var("RIPTIDE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS_DEFAULT);
    for seed in 0..seeds {
        let result = std::panic::catch_unwind(|| {
            let mut world = World::new(seed);
            world.run();
            world.check();
        });
        assert!(
            result.is_ok(),
            "seed {seed} failed: replay with RIPTIDE_SIM_SEED={seed}"
        );
    }
}
