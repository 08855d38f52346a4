//! The ledger side of one packet, sans-IO: hold its legs as one linked chain of
//! pending transfers, then post or void the chain, and settle every answer that
//! did not come (a timeout, a lost reply) by looking the transfers up before
//! deciding anything. Both money flows ([`super::forward`], [`super::credit`]) drive
//! one of these.
//!
//! Ids are chosen once, when the hold is made: leg `i` holds with `first_id + 3i`,
//! posts with `+1` and voids with `+2`. A repeated post or void therefore carries
//! the very same transfer, which the ledger answers `Exists` when an earlier try
//! went through: a retry can never move money twice, and a lookup of those ids
//! tells what happened.

use crate::connector::pipeline::Leg;
use crate::ledger::TRANSFER_CODE_PACKET;
use crate::ledger::{CreateTransferResult as R, Transfer, TransferFlags, AMOUNT_MAX};
use crate::limits::{
    ATTEMPTS_MAX, HOLD_LOOKUPS_MAX, LEGS_MAX, PENDING_EXPIRY_MARGIN_MS, REPLY_MARGIN_MS_MAX,
    RETRY_BACKOFF_MS_MAX, RETRY_BACKOFF_MS_MIN,
};

/// Transfer ids a leg reserves: its pending transfer, its post, its void.
pub const IDS_PER_LEG: u128 = 3;

/// How a finished hold ends: its chain posted or voided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Post,
    Void,
}

impl Finish {
    pub fn label(self) -> &'static str {
        match self {
            Finish::Post => "post",
            Finish::Void => "void",
        }
    }
}

/// A packet's chain and the ids reserved for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    legs: [Leg; LEGS_MAX],
    count: usize,
    first_id: u128,
    timeout_s: u32,
}

impl Chain {
    /// `first_id` reserves `legs.len() * IDS_PER_LEG` consecutive ids.
    pub fn new(legs: &[Leg], first_id: u128, timeout_s: u32) -> Chain {
        assert!(
            legs.len() <= LEGS_MAX,
            "a packet has at most {LEGS_MAX} legs"
        );
        assert!(timeout_s > 0, "a hold must time out in the ledger");
        let mut chain = Chain {
            legs: [Leg::default(); LEGS_MAX],
            count: legs.len(),
            first_id,
            timeout_s,
        };
        chain.legs[..legs.len()].copy_from_slice(legs);
        chain
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn legs(&self) -> &[Leg] {
        &self.legs[..self.count]
    }

    pub fn pending_id(&self, leg: usize) -> u128 {
        self.first_id + IDS_PER_LEG * leg as u128
    }

    pub fn finish_id(&self, leg: usize, finish: Finish) -> u128 {
        self.pending_id(leg)
            + match finish {
                Finish::Post => 1,
                Finish::Void => 2,
            }
    }

    /// The ids to look up after an unknown answer: the pending transfers, or the
    /// posts or voids.
    pub fn ids(&self, finish: Option<Finish>) -> Ids {
        let mut ids = Ids::default();
        for leg in 0..self.count {
            ids.push(match finish {
                None => self.pending_id(leg),
                Some(finish) => self.finish_id(leg, finish),
            });
        }
        ids
    }

    /// The pending chain.
    pub fn hold_transfers(&self) -> Transfers {
        let mut transfers = Transfers::default();
        for (index, leg) in self.legs().iter().enumerate() {
            transfers.push(Transfer {
                id: self.pending_id(index),
                debit_account_id: leg.debit_account_id,
                credit_account_id: leg.credit_account_id,
                amount: u128::from(leg.amount),
                ledger: leg.ledger,
                code: TRANSFER_CODE_PACKET,
                flags: TransferFlags {
                    pending: true,
                    linked: index + 1 < self.count,
                    ..TransferFlags::default()
                },
                timeout_s: self.timeout_s,
                ..Transfer::default()
            });
        }
        transfers
    }

    /// The chain that posts or voids every pending transfer.
    pub fn finish_transfers(&self, finish: Finish) -> Transfers {
        let mut transfers = Transfers::default();
        for (index, leg) in self.legs().iter().enumerate() {
            transfers.push(Transfer {
                id: self.finish_id(index, finish),
                pending_id: self.pending_id(index),
                amount: match finish {
                    Finish::Post => AMOUNT_MAX,
                    Finish::Void => 0,
                },
                ledger: leg.ledger,
                code: TRANSFER_CODE_PACKET,
                flags: TransferFlags {
                    post_pending_transfer: finish == Finish::Post,
                    void_pending_transfer: finish == Finish::Void,
                    linked: index + 1 < self.count,
                    ..TransferFlags::default()
                },
                ..Transfer::default()
            });
        }
        transfers
    }
}

/// Up to [`LEGS_MAX`] transfers, on the stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfers {
    items: [Transfer; LEGS_MAX],
    count: usize,
}

impl Transfers {
    fn push(&mut self, transfer: Transfer) {
        assert!(self.count < LEGS_MAX);
        self.items[self.count] = transfer;
        self.count += 1;
    }

    pub fn as_slice(&self) -> &[Transfer] {
        &self.items[..self.count]
    }
}

/// Up to [`LEGS_MAX`] transfer ids, on the stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ids {
    items: [u128; LEGS_MAX],
    count: usize,
}

impl Ids {
    fn push(&mut self, id: u128) {
        assert!(self.count < LEGS_MAX);
        self.items[self.count] = id;
        self.count += 1;
    }

    pub fn as_slice(&self) -> &[u128] {
        &self.items[..self.count]
    }
}

/// What the driver must ask the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerRequest {
    Create(Transfers),
    Lookup(Ids),
}

/// What came back from one [`LedgerRequest`], as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerAnswer {
    /// The ledger's result for each transfer, in order.
    Created(Vec<R>),
    /// For a lookup: which of the ids exist, in order.
    Found(Vec<bool>),
    /// The request never left this process (queue full, or it waited past its
    /// deadline): certainly not applied.
    NotSent,
    /// Sent, and no answer in time: it may still apply, later.
    Unknown,
}

/// Why a hold was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHeld {
    /// A balance did not cover the amount; `leg` is the leg that failed.
    Shortfall { leg: usize },
    /// The ledger refused for another reason.
    Refused(R),
    /// The ledger did not take it (busy or away): certainly not held.
    Unavailable,
    /// The answer never came in time; the hold may still apply. It is voided.
    Abandoned,
}

/// How the money of a finished hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Posted: the money moved.
    Posted,
    /// Voided or expired: nothing moved.
    Released,
    /// Still unknown after every try: for the operator to reconcile.
    Unresolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hold,
    HoldLookup,
    Held,
    NotHeld(NotHeld),
    /// Voiding a hold whose answer never came.
    VoidAbandoned,
    Finish(Finish),
    FinishLookup(Finish),
    Backoff {
        finish: Finish,
        until_ms: u64,
    },
    Settled(Settled),
}

/// One packet's ledger step.
#[derive(Debug, Clone)]
pub struct HoldStep {
    chain: Chain,
    phase: Phase,
    attempts: u32,
    hold_lookups: u32,
    /// Past this a hold whose answer is unknown is abandoned (the packet's reply
    /// cannot wait longer).
    hold_give_up_at_ms: u64,
    /// How long a pending transfer lives in the ledger.
    pending_timeout_ms: u64,
    /// Past this the pending transfers have expired in the ledger for certain, so a
    /// finish still unknown is given up. Set when the hold is known to be made: it
    /// was applied before that, so it expires before this.
    finish_give_up_at_ms: u64,
}

/// What a [`HoldStep`] wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The transfers of a request ride on the stack, as the chain does: boxing them
// would allocate for every ledger request of every packet.
#[allow(clippy::large_enum_variant)]
pub enum HoldPoll {
    Request(LedgerRequest),
    Wait { until_ms: u64 },
    Held,
    NotHeld(NotHeld),
    Settled(Settled),
}

impl HoldStep {
    /// A step that holds `chain` now. `hold_give_up_at_ms`: the latest a hold may
    /// still be confirmed; `pending_timeout_ms` (with a margin for clock skew)
    /// bounds how long a post or void is tried.
    pub fn new(chain: Chain, hold_give_up_at_ms: u64, pending_timeout_ms: u64) -> Self {
        let phase = if chain.is_empty() {
            Phase::Held
        } else {
            Phase::Hold
        };
        HoldStep {
            chain,
            phase,
            attempts: 0,
            hold_lookups: 0,
            hold_give_up_at_ms,
            pending_timeout_ms,
            finish_give_up_at_ms: expired_by(hold_give_up_at_ms, pending_timeout_ms),
        }
    }

    /// Whether the hold was given up unconfirmed (and is being voided): its packet
    /// can be answered now.
    pub fn abandoned(&self) -> bool {
        matches!(
            self.phase,
            Phase::VoidAbandoned | Phase::NotHeld(NotHeld::Abandoned)
        )
    }

    /// When a finish that is still unknown stops being tried.
    pub fn finish_give_up_at_ms(&self) -> u64 {
        self.finish_give_up_at_ms
    }

    /// What the step wants now; a backoff whose time has come ends here.
    pub fn poll(&mut self, now_ms: u64) -> HoldPoll {
        if let Phase::Backoff { finish, until_ms } = self.phase {
            if now_ms >= until_ms {
                self.phase = Phase::Finish(finish);
            }
        }
        match self.phase {
            Phase::Hold => HoldPoll::Request(LedgerRequest::Create(self.chain.hold_transfers())),
            Phase::HoldLookup => HoldPoll::Request(LedgerRequest::Lookup(self.chain.ids(None))),
            Phase::Held => HoldPoll::Held,
            Phase::NotHeld(reason) => HoldPoll::NotHeld(reason),
            Phase::VoidAbandoned | Phase::Finish(Finish::Void) => HoldPoll::Request(
                LedgerRequest::Create(self.chain.finish_transfers(Finish::Void)),
            ),
            Phase::Finish(Finish::Post) => HoldPoll::Request(LedgerRequest::Create(
                self.chain.finish_transfers(Finish::Post),
            )),
            Phase::FinishLookup(finish) => {
                HoldPoll::Request(LedgerRequest::Lookup(self.chain.ids(Some(finish))))
            }
            Phase::Backoff { until_ms, .. } => HoldPoll::Wait { until_ms },
            Phase::Settled(settled) => HoldPoll::Settled(settled),
        }
    }

    /// Asks for the hold to be posted or voided. Only once held.
    pub fn finish(&mut self, finish: Finish) {
        assert_eq!(
            self.phase,
            Phase::Held,
            "only a hold that is held can finish"
        );
        self.attempts = 0;
        self.phase = if self.chain.is_empty() {
            Phase::Settled(match finish {
                Finish::Post => Settled::Posted,
                Finish::Void => Settled::Released,
            })
        } else {
            Phase::Finish(finish)
        };
    }

    /// Takes the answer to the request [`HoldStep::poll`] asked for.
    pub fn on_answer(&mut self, answer: &LedgerAnswer, now_ms: u64) {
        self.attempts += 1;
        assert!(self.attempts <= ATTEMPTS_MAX + 1, "ledger step loops");
        let was_held = self.phase == Phase::Held;
        self.phase = self.next_phase(answer, now_ms);
        if self.phase == Phase::HoldLookup {
            self.hold_lookups += 1;
        }
        if self.phase == Phase::Held && !was_held {
            self.finish_give_up_at_ms = expired_by(now_ms, self.pending_timeout_ms);
        }
    }

    fn next_phase(&self, answer: &LedgerAnswer, now_ms: u64) -> Phase {
        match (self.phase, answer) {
            (Phase::Hold, LedgerAnswer::Created(results)) => hold_result(results),
            (Phase::Hold, LedgerAnswer::NotSent) => Phase::NotHeld(NotHeld::Unavailable),
            (Phase::Hold | Phase::HoldLookup, LedgerAnswer::Unknown | LedgerAnswer::NotSent) => {
                self.hold_unknown(now_ms)
            }
            (Phase::HoldLookup, LedgerAnswer::Found(found)) => {
                // A linked chain exists whole or not at all. The lookup is queued
                // behind the hold in the ledger client, which sends requests in
                // order, so "not found" means the hold failed.
                if found.first() == Some(&true) {
                    Phase::Held
                } else {
                    Phase::NotHeld(NotHeld::Unavailable)
                }
            }
            (Phase::VoidAbandoned, LedgerAnswer::Created(results)) => {
                match finish_result(Finish::Void, results) {
                    Some(_) => Phase::NotHeld(NotHeld::Abandoned),
                    // The void's answer is lost too; void again (same id).
                    None => self.finish_retry_or_give_up(Phase::VoidAbandoned, now_ms),
                }
            }
            // A void that cannot even be queued is not tried in a loop: the hold
            // expires on its own.
            (Phase::VoidAbandoned, LedgerAnswer::NotSent) => Phase::NotHeld(NotHeld::Abandoned),
            (Phase::VoidAbandoned, _) => self.finish_retry_or_give_up(Phase::VoidAbandoned, now_ms),
            (Phase::Finish(finish), LedgerAnswer::Created(results)) => {
                match finish_result(finish, results) {
                    Some(settled) => Phase::Settled(settled),
                    None => self.backoff(finish, now_ms),
                }
            }
            (Phase::Finish(finish), LedgerAnswer::NotSent) => self.backoff(finish, now_ms),
            (Phase::Finish(finish) | Phase::FinishLookup(finish), LedgerAnswer::Unknown) => {
                self.finish_retry_or_give_up(Phase::FinishLookup(finish), now_ms)
            }
            (Phase::FinishLookup(finish), LedgerAnswer::NotSent) => self.backoff(finish, now_ms),
            (Phase::FinishLookup(finish), LedgerAnswer::Found(found)) => {
                if found.first() == Some(&true) {
                    Phase::Settled(match finish {
                        Finish::Post => Settled::Posted,
                        Finish::Void => Settled::Released,
                    })
                } else {
                    // Not there: send it again. The same id makes that safe, and
                    // the ledger's answer settles it (posted, or expired).
                    self.finish_retry_or_give_up(Phase::Finish(finish), now_ms)
                }
            }
            (phase, answer) => {
                unreachable!("no request was asked for in {phase:?}, yet {answer:?} came")
            }
        }
    }

    fn hold_unknown(&self, now_ms: u64) -> Phase {
        let lookups_spent = self.hold_lookups >= HOLD_LOOKUPS_MAX;
        if now_ms >= self.hold_give_up_at_ms || lookups_spent || self.attempts >= ATTEMPTS_MAX {
            // The packet cannot wait: reject it, and void what may have been held
            // so that it does not lock the balance until it expires.
            Phase::VoidAbandoned
        } else {
            Phase::HoldLookup
        }
    }

    fn finish_retry_or_give_up(&self, next: Phase, now_ms: u64) -> Phase {
        if now_ms >= self.finish_give_up_at_ms || self.attempts >= ATTEMPTS_MAX {
            match next {
                // An abandoned hold that could not be voided expires on its own.
                Phase::VoidAbandoned => Phase::NotHeld(NotHeld::Abandoned),
                _ => Phase::Settled(Settled::Unresolved),
            }
        } else {
            next
        }
    }

    fn backoff(&self, finish: Finish, now_ms: u64) -> Phase {
        // Doubling with each attempt, from the minimum up to the maximum.
        let doublings = self.attempts.min(16);
        let wait_ms = (RETRY_BACKOFF_MS_MIN << doublings).min(RETRY_BACKOFF_MS_MAX);
        let until_ms = now_ms + wait_ms;
        match self.finish_retry_or_give_up(Phase::Finish(finish), now_ms) {
            Phase::Finish(_) => Phase::Backoff { finish, until_ms },
            other => other,
        }
    }
}

/// The ledger operation that failed in a packet's step, if one did: a hold the
/// ledger did not take or answer (a shortfall is the peer's, not a failure), a
/// post that did not end posted, a void that never got an answer.
pub fn ledger_failure(
    not_held: Option<NotHeld>,
    finished: Option<(Finish, Settled)>,
) -> Option<&'static str> {
    match (not_held, finished) {
        (Some(NotHeld::Unavailable | NotHeld::Abandoned | NotHeld::Refused(_)), _) => Some("hold"),
        (_, Some((Finish::Post, Settled::Released | Settled::Unresolved))) => Some("post"),
        (_, Some((Finish::Void, Settled::Unresolved))) => Some("void"),
        _ => None,
    }
}

/// When a flow waiting out a retry's backoff must look again: at the end of the
/// backoff, or at its reply's deadline if the reply has not left yet.
pub fn wake_by(until_ms: u64, replied: bool, reply_by_ms: u64) -> u64 {
    if replied {
        until_ms
    } else {
        until_ms.min(reply_by_ms)
    }
}

/// The latest a packet's reply may leave: its expiry less a margin for the way
/// back (a quarter of the time left after `earliest_ms`, at most
/// [`REPLY_MARGIN_MS_MAX`]), and never before `earliest_ms`.
pub fn reply_deadline(earliest_ms: u64, expiry_ms: u64) -> u64 {
    let margin = (expiry_ms.saturating_sub(earliest_ms) / 4).min(REPLY_MARGIN_MS_MAX);
    expiry_ms.saturating_sub(margin).max(earliest_ms)
}

/// When a hold made no later than `held_ms` has certainly expired.
pub fn expired_by(held_ms: u64, pending_timeout_ms: u64) -> u64 {
    held_ms
        .saturating_add(pending_timeout_ms)
        .saturating_add(PENDING_EXPIRY_MARGIN_MS)
}

fn hold_result(results: &[R]) -> Phase {
    if results.iter().all(|r| *r == R::Ok) || chain_existed(results) {
        return Phase::Held;
    }
    match results
        .iter()
        .enumerate()
        .find(|(_, r)| !matches!(r, R::Ok | R::LinkedEventFailed))
    {
        Some((leg, R::ExceedsCredits | R::ExceedsDebits)) => {
            Phase::NotHeld(NotHeld::Shortfall { leg })
        }
        Some((_, other)) => Phase::NotHeld(NotHeld::Refused(*other)),
        None => Phase::NotHeld(NotHeld::Refused(R::LinkedEventFailed)),
    }
}

/// A chain sent again whose first event already exists: the whole chain was made
/// by the earlier try (the ledger fails the rest as linked to the failure).
fn chain_existed(results: &[R]) -> bool {
    results.first() == Some(&R::Exists)
        && results[1..]
            .iter()
            .all(|r| matches!(r, R::Exists | R::LinkedEventFailed))
}

/// How a post or void chain ended, or `None` when it must be tried again.
fn finish_result(finish: Finish, results: &[R]) -> Option<Settled> {
    let done = match finish {
        Finish::Post => Settled::Posted,
        Finish::Void => Settled::Released,
    };
    if results.iter().all(|r| *r == R::Ok) || chain_existed(results) {
        return Some(done);
    }
    let first_failure = results
        .iter()
        .find(|r| !matches!(r, R::Ok | R::LinkedEventFailed))?;
    match (finish, first_failure) {
        (_, R::PendingTransferAlreadyPosted) => Some(Settled::Posted),
        (
            _,
            R::PendingTransferAlreadyVoided
            | R::PendingTransferExpired
            | R::PendingTransferNotFound,
        ) => Some(Settled::Released),
        // Any other refusal of a post moved nothing, and trying again would not
        // change it; for a void the hold expires on its own.
        _ => Some(Settled::Released),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(amount: u64) -> Leg {
        Leg {
            debit_account_id: 1,
            credit_account_id: 2,
            amount,
            ledger: 1,
        }
    }

    #[test]
    fn ids_are_reserved_per_leg() {
        let chain = Chain::new(&[leg(5), leg(7)], 100, 60);
        assert_eq!(chain.ids(None).as_slice(), &[100, 103]);
        assert_eq!(chain.ids(Some(Finish::Post)).as_slice(), &[101, 104]);
        assert_eq!(chain.ids(Some(Finish::Void)).as_slice(), &[102, 105]);
        let hold = chain.hold_transfers();
        assert!(hold.as_slice()[0].flags.linked && !hold.as_slice()[1].flags.linked);
        let post = chain.finish_transfers(Finish::Post);
        assert_eq!(post.as_slice()[1].pending_id, 103);
    }

    #[test]
    fn an_unknown_post_is_looked_up_then_sent_again() {
        let mut step = HoldStep::new(Chain::new(&[leg(5)], 10, 60), 1_000, 60_000);
        step.on_answer(&LedgerAnswer::Created(vec![R::Ok]), 1);
        assert_eq!(step.poll(1), HoldPoll::Held);
        step.finish(Finish::Post);
        step.on_answer(&LedgerAnswer::Unknown, 2);
        assert!(
            matches!(step.poll(2), HoldPoll::Request(LedgerRequest::Lookup(ids)) if ids.as_slice() == [11])
        );
        step.on_answer(&LedgerAnswer::Found(vec![false]), 3);
        assert!(matches!(
            step.poll(3),
            HoldPoll::Request(LedgerRequest::Create(_))
        ));
        step.on_answer(&LedgerAnswer::Created(vec![R::Exists]), 4);
        assert_eq!(step.poll(4), HoldPoll::Settled(Settled::Posted));
    }

    #[test]
    fn an_expired_pending_transfer_is_released() {
        let mut step = HoldStep::new(Chain::new(&[leg(5), leg(5)], 10, 60), 1_000, 60_000);
        step.on_answer(&LedgerAnswer::Created(vec![R::Ok, R::Ok]), 1);
        step.finish(Finish::Post);
        step.on_answer(
            &LedgerAnswer::Created(vec![R::PendingTransferExpired, R::LinkedEventFailed]),
            2,
        );
        assert_eq!(step.poll(2), HoldPoll::Settled(Settled::Released));
    }

    #[test]
    fn a_hold_unknown_past_its_time_is_voided() {
        let mut step = HoldStep::new(Chain::new(&[leg(5)], 10, 60), 1_000, 60_000);
        step.on_answer(&LedgerAnswer::Unknown, 500);
        assert!(matches!(
            step.poll(500),
            HoldPoll::Request(LedgerRequest::Lookup(_))
        ));
        step.on_answer(&LedgerAnswer::Unknown, 1_000);
        let HoldPoll::Request(LedgerRequest::Create(void)) = step.poll(1_000) else {
            panic!("expected a void");
        };
        assert!(void.as_slice()[0].flags.void_pending_transfer);
        step.on_answer(
            &LedgerAnswer::Created(vec![R::PendingTransferNotFound]),
            1_001,
        );
        assert_eq!(step.poll(1_001), HoldPoll::NotHeld(NotHeld::Abandoned));
    }

    #[test]
    fn a_full_queue_refuses_a_hold_at_once_and_never_spins() {
        let mut step = HoldStep::new(Chain::new(&[leg(5)], 10, 60), 1_000, 60_000);
        step.on_answer(&LedgerAnswer::NotSent, 1);
        assert_eq!(step.poll(1), HoldPoll::NotHeld(NotHeld::Unavailable));
        let mut step = HoldStep::new(Chain::new(&[leg(5)], 10, 60), 1_000, 60_000);
        step.on_answer(&LedgerAnswer::Unknown, 1);
        step.on_answer(&LedgerAnswer::Unknown, 2);
        assert!(step.abandoned());
        step.on_answer(&LedgerAnswer::NotSent, 3);
        assert_eq!(step.poll(3), HoldPoll::NotHeld(NotHeld::Abandoned));
    }

    #[test]
    fn a_finish_that_never_answers_is_given_up_after_the_pending_timeout() {
        let mut step = HoldStep::new(Chain::new(&[leg(5)], 10, 60), 1_000, 60_000);
        step.on_answer(&LedgerAnswer::Created(vec![R::Ok]), 1);
        step.finish(Finish::Post);
        let mut now = 1;
        while let HoldPoll::Request(_) = step.poll(now) {
            now += 5_000;
            step.on_answer(&LedgerAnswer::Unknown, now);
        }
        assert_eq!(step.poll(now), HoldPoll::Settled(Settled::Unresolved));
        assert!(now >= 1 + 60_000 + PENDING_EXPIRY_MARGIN_MS);
    }
}
