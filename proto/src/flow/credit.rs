//! Crediting a local STREAM packet, sans-IO: hold the legs in the ledger, count
//! the amount in the store (Redis), post the hold, and accept. The order never lets
//! the store count money the ledger refused (holding first catches a peer out of
//! balance), and a count is taken back only when the ledger certainly did not
//! post: after a void, or a post the ledger answered as expired.
//!
//! The store records each count with its hold's ids in a journal, and the count
//! is marked settled once the post is confirmed. A count left in the journal (the
//! process died between the count and the post, or every take-back failed) is
//! settled later by [`sweep_decision`]: by then the pending transfer has expired,
//! so a post that is not in the ledger never will be.

use super::hold::{
    wake_by, Finish, HoldPoll, HoldStep, LedgerAnswer, LedgerRequest, NotHeld, Settled,
};
use crate::connector::reject::RejectReason;
use crate::limits::{TAKE_BACK_ATTEMPTS_MAX, TAKE_BACK_BACKOFF_MS};

/// What goes back to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalReply {
    /// Fulfill: the receiver accepts the money.
    Accept,
    /// The store declined the count (past an incoming payment's amount, completed,
    /// expired): the receiver's own STREAM reject.
    Decline,
    Reject(RejectReason),
}

/// How the store answered a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountAnswer {
    Counted,
    Declined,
    /// No answer, or an error: the count may have happened.
    Failed,
}

/// The driver's next task.
#[derive(Debug, Clone, PartialEq, Eq)]
// The transfers of a request ride on the stack, as the chain does: boxing them
// would allocate for every ledger request of every packet.
#[allow(clippy::large_enum_variant)]
pub enum CreditCommand {
    Ledger(LedgerRequest),
    /// Count the amount in the store, with the hold's ids in its journal.
    Count,
    /// Take the count back if, and only if, it was counted.
    TakeBack,
    /// Mark the count settled: its post is confirmed. Needs no answer.
    MarkSettled,
    Reply(LocalReply),
    Wait {
        until_ms: u64,
    },
    Done(CreditReport),
}

/// How a local credit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreditReport {
    pub not_held: Option<NotHeld>,
    pub finished: Option<(Finish, Settled)>,
    /// Whether the count stayed (money received) or was taken back.
    pub counted: bool,
    /// A take-back that never got through, left to the journal's sweep.
    pub take_back_left: bool,
}

impl CreditReport {
    pub fn ledger_failure(&self) -> Option<&'static str> {
        super::hold::ledger_failure(self.not_held, self.finished)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Holding,
    Counting,
    /// Posting (after a count) or voiding; `take_back` once the void is certain.
    Finishing {
        finish: Finish,
        take_back: bool,
    },
    TakingBack {
        attempt: u32,
        until_ms: u64,
    },
    MarkingSettled,
    Done,
}

/// One local credit.
#[derive(Debug, Clone)]
pub struct CreditFlow {
    hold: HoldStep,
    stage: Stage,
    /// The incoming expiry: past it the sender has given the packet up.
    expires_at_ms: u64,
    /// The latest the reply may go.
    reply_by_ms: u64,
    /// The reply decided, sent once the ledger settles or at `reply_by_ms`.
    reply: Option<LocalReply>,
    replied: bool,
    report: CreditReport,
}

impl CreditFlow {
    pub fn new(hold: HoldStep, expires_at_ms: u64, reply_by_ms: u64) -> CreditFlow {
        assert!(reply_by_ms <= expires_at_ms);
        CreditFlow {
            hold,
            stage: Stage::Holding,
            expires_at_ms,
            reply_by_ms,
            reply: None,
            replied: false,
            report: CreditReport::default(),
        }
    }

    pub fn replied(&self) -> bool {
        self.replied
    }

    pub fn hold(&self) -> &HoldStep {
        &self.hold
    }

    /// When the flow must be polled again without an answer.
    pub fn wake_at_ms(&self) -> Option<u64> {
        (!self.replied).then_some(self.reply_by_ms)
    }

    pub fn poll(&mut self, now_ms: u64) -> CreditCommand {
        loop {
            if let Some(reply) = self.reply_due(now_ms) {
                return CreditCommand::Reply(reply);
            }
            match self.stage {
                Stage::Done => return CreditCommand::Done(self.report),
                Stage::Counting => return CreditCommand::Count,
                Stage::MarkingSettled => return CreditCommand::MarkSettled,
                Stage::TakingBack { until_ms, .. } if now_ms < until_ms => {
                    return CreditCommand::Wait { until_ms }
                }
                Stage::TakingBack { .. } => return CreditCommand::TakeBack,
                Stage::Holding => match self.hold.poll(now_ms) {
                    HoldPoll::Held if self.replied || now_ms >= self.reply_by_ms => {
                        let reply = LocalReply::Reject(RejectReason::Internal("ledger".into()));
                        self.finish(Finish::Void, false, reply);
                    }
                    HoldPoll::Held => self.stage = Stage::Counting,
                    HoldPoll::NotHeld(reason) => {
                        self.report.not_held = Some(reason);
                        self.set_reply(LocalReply::Reject(super::forward::not_held_reason(reason)));
                        self.stage = Stage::Done;
                    }
                    HoldPoll::Request(request) => return CreditCommand::Ledger(request),
                    HoldPoll::Wait { until_ms } => return CreditCommand::Wait { until_ms },
                    HoldPoll::Settled(_) => unreachable!("a hold settles only after a finish"),
                },
                Stage::Finishing { finish, take_back } => match self.hold.poll(now_ms) {
                    HoldPoll::Settled(settled) => self.on_settled(finish, settled, take_back),
                    HoldPoll::Request(request) => return CreditCommand::Ledger(request),
                    HoldPoll::Wait { until_ms } => {
                        let until_ms = wake_by(until_ms, self.replied, self.reply_by_ms);
                        return CreditCommand::Wait { until_ms };
                    }
                    other => unreachable!("finishing, the hold answered {other:?}"),
                },
            }
        }
    }

    /// The reply, when it is decided and its time has come: the ledger step is
    /// over, or the reply's deadline is here.
    fn reply_due(&self, now_ms: u64) -> Option<LocalReply> {
        if self.replied {
            return None;
        }
        let reply = self.reply.clone();
        let ledger_done = matches!(
            self.stage,
            Stage::TakingBack { .. } | Stage::MarkingSettled | Stage::Done
        ) || (self.stage == Stage::Holding && self.hold.abandoned());
        if ledger_done || now_ms >= self.reply_by_ms {
            // At the deadline with nothing decided the ledger has not answered.
            return Some(reply.unwrap_or(LocalReply::Reject(RejectReason::Internal(
                "ledger did not answer in time".into(),
            ))));
        }
        None
    }

    fn set_reply(&mut self, reply: LocalReply) {
        if self.reply.is_none() {
            self.reply = Some(reply);
        }
    }

    /// Posts or voids the hold, `take_back` the count once a void is certain, and
    /// answers `reply` unless an answer is already chosen.
    fn finish(&mut self, finish: Finish, take_back: bool, reply: LocalReply) {
        self.hold.finish(finish);
        self.stage = Stage::Finishing { finish, take_back };
        self.set_reply(reply);
    }

    fn on_settled(&mut self, finish: Finish, settled: Settled, take_back: bool) {
        self.report.finished = Some((finish, settled));
        match (finish, settled) {
            (Finish::Post, Settled::Posted) => {
                self.report.counted = true;
                self.stage = Stage::MarkingSettled;
            }
            // The ledger certainly did not post: the count goes.
            // Before the reply has left, the sender is told the truth: a Reject.
            (Finish::Post, Settled::Released) => {
                if !self.replied {
                    self.reply = Some(LocalReply::Reject(RejectReason::Internal("ledger".into())));
                }
                self.start_take_back();
            }
            // Unknown for good: the journal's sweep settles the count once the
            // pending transfer has certainly expired.
            (Finish::Post, Settled::Unresolved) => {
                self.report.counted = true;
                self.stage = Stage::Done;
            }
            (Finish::Void, Settled::Released) if take_back => self.start_take_back(),
            (Finish::Void, Settled::Released) => self.stage = Stage::Done,
            // Never posted by this flow; a void that ends posted means another
            // process posted it (a sweep cannot): keep the count.
            (Finish::Void, Settled::Posted) => {
                self.report.counted = take_back;
                self.stage = Stage::MarkingSettled;
            }
            (Finish::Void, Settled::Unresolved) => {
                self.report.take_back_left = take_back;
                self.stage = Stage::Done;
            }
        }
    }

    fn start_take_back(&mut self) {
        self.stage = Stage::TakingBack {
            attempt: 0,
            until_ms: 0,
        };
    }

    pub fn on_ledger(&mut self, answer: &LedgerAnswer, now_ms: u64) {
        assert!(matches!(
            self.stage,
            Stage::Holding | Stage::Finishing { .. }
        ));
        self.hold.on_answer(answer, now_ms);
    }

    pub fn on_count(&mut self, answer: CountAnswer, now_ms: u64) {
        assert_eq!(self.stage, Stage::Counting);
        match answer {
            // Past its expiry the sender has given the packet up: fulfilling now
            // would charge the peer for a payment it counts as failed.
            // Answered already (the count came after the reply's deadline): the
            // packet was rejected, so its money must not move.
            CountAnswer::Counted if now_ms >= self.expires_at_ms || self.replied => {
                let reply = LocalReply::Reject(RejectReason::TimedOut);
                self.finish(Finish::Void, true, reply);
            }
            CountAnswer::Counted => self.finish(Finish::Post, false, LocalReply::Accept),
            CountAnswer::Declined => self.finish(Finish::Void, false, LocalReply::Decline),
            // The store may have counted: void, then take back what it counted.
            CountAnswer::Failed => {
                let reply = LocalReply::Reject(RejectReason::Internal("receipt store".into()));
                self.finish(Finish::Void, true, reply);
            }
        }
    }

    /// `taken`: the store answered (whether or not there was a count to take).
    pub fn on_take_back(&mut self, taken: bool, now_ms: u64) {
        let Stage::TakingBack { attempt, .. } = self.stage else {
            panic!("no take-back was asked for");
        };
        if taken {
            self.stage = Stage::Done;
        } else if attempt + 1 >= TAKE_BACK_ATTEMPTS_MAX {
            self.report.take_back_left = true;
            self.stage = Stage::Done;
        } else {
            self.stage = Stage::TakingBack {
                attempt: attempt + 1,
                until_ms: now_ms + (TAKE_BACK_BACKOFF_MS << attempt),
            };
        }
    }

    pub fn on_marked_settled(&mut self) {
        assert_eq!(self.stage, Stage::MarkingSettled);
        self.stage = Stage::Done;
    }

    pub fn on_replied(&mut self) {
        assert!(!self.replied, "one reply per packet");
        self.replied = true;
    }
}

/// A count found in the store's journal, not marked settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEntry {
    /// When the pending transfers have certainly expired (Unix ms).
    pub settle_after_ms: u64,
}

/// What the sweep does with a journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepDecision {
    /// Not yet: a live flow may still post it.
    Wait,
    /// The post is in the ledger: the count stays.
    MarkSettled,
    /// No post, and none can come: the count goes.
    TakeBack,
}

/// Decides a journal entry from a lookup of its post ids (`posted`: found).
pub fn sweep_decision(entry: JournalEntry, posted: bool, now_ms: u64) -> SweepDecision {
    if posted {
        SweepDecision::MarkSettled
    } else if now_ms >= entry.settle_after_ms {
        SweepDecision::TakeBack
    } else {
        SweepDecision::Wait
    }
}
