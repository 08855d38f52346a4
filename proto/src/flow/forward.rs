//! Forwarding a packet to a peer, sans-IO: hold the legs, call the peer, then post
//! the hold on a valid Fulfill and void it on anything else.
//!
//! The reply never depends on how the hold is finished: a Fulfill always goes
//! upstream, since the next hop has been paid by then, and a Reject is relayed or
//! made whatever the void does. So when the reply leaves is a choice of latency
//! ([`ReplyTiming`]): once the ledger has settled the hold (an in-process ledger
//! answers at once), or as soon as the finish starts (a ledger a round trip away).
//! Either way it leaves by `reply_by_ms` (just before the incoming expiry) at the
//! latest, and the post or void goes on behind it until it is confirmed or the
//! pending transfer has certainly expired. A post that ends unconfirmed is reported
//! for the operator to reconcile.

use super::hold::{
    wake_by, Finish, HoldPoll, HoldStep, LedgerAnswer, LedgerRequest, NotHeld, Settled,
};
use crate::connector::reject::RejectReason;

/// When the reply goes upstream, once the peer has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTiming {
    /// Once the ledger has settled the hold (or at `reply_by_ms`): for a ledger that
    /// answers in process, where waiting costs nothing.
    AfterSettle,
    /// As soon as the post or void starts: for a ledger a round trip away, whose
    /// answer would otherwise lengthen every packet's latency by that trip.
    AtFinish,
}

/// What goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The next hop's own reply bytes, relayed unchanged.
    Relay,
    /// A Reject made here.
    Reject(RejectReason),
}

/// What the next hop did with the Prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerReply {
    /// A Fulfill whose fulfillment matches the condition.
    Fulfilled,
    /// A Reject, relayed as it came.
    Rejected,
    /// No usable answer: unreachable, timed out, wrong fulfillment, not ILP.
    Failed(RejectReason),
}

/// The driver's next task.
#[derive(Debug, Clone, PartialEq, Eq)]
// The transfers of a request ride on the stack, as the chain does: boxing them
// would allocate for every ledger request of every packet.
#[allow(clippy::large_enum_variant)]
pub enum ForwardCommand {
    Ledger(LedgerRequest),
    /// Send the Prepare to the next hop; answer with [`ForwardFlow::on_peer`].
    CallPeer,
    /// Send this upstream now, then [`ForwardFlow::on_replied`]; the flow may go on.
    Reply(Upstream),
    /// Nothing to do until then (a retry's backoff).
    Wait {
        until_ms: u64,
    },
    Done(ForwardReport),
}

/// How a forwarded packet ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardReport {
    pub not_held: Option<NotHeld>,
    /// How the hold was finished, and how that ended.
    pub finished: Option<(Finish, Settled)>,
}

impl ForwardReport {
    /// The ledger operation that failed, if one did: a finish that did not end as
    /// asked, or a hold the ledger did not answer.
    pub fn ledger_failure(&self) -> Option<&'static str> {
        super::hold::ledger_failure(self.not_held, self.finished)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Holding,
    CallingPeer,
    Finishing { finish: Finish, reply: Upstream },
    Done,
}

/// One forwarded packet.
#[derive(Debug, Clone)]
pub struct ForwardFlow {
    hold: HoldStep,
    stage: Stage,
    /// The latest the reply may go upstream.
    reply_by_ms: u64,
    /// The latest the hold may still be confirmed (the outgoing expiry).
    hold_by_ms: u64,
    replied: bool,
    timing: ReplyTiming,
    report: ForwardReport,
}

impl ForwardFlow {
    pub fn new(
        hold: HoldStep,
        hold_by_ms: u64,
        reply_by_ms: u64,
        timing: ReplyTiming,
    ) -> ForwardFlow {
        assert!(
            hold_by_ms <= reply_by_ms,
            "the hold is confirmed before the reply"
        );
        ForwardFlow {
            hold,
            stage: Stage::Holding,
            reply_by_ms,
            hold_by_ms,
            replied: false,
            timing,
            report: ForwardReport {
                not_held: None,
                finished: None,
            },
        }
    }

    pub fn replied(&self) -> bool {
        self.replied
    }

    /// When the flow must be polled again even without an answer: the reply's
    /// deadline while no reply has gone.
    pub fn wake_at_ms(&self) -> Option<u64> {
        match self.stage {
            _ if self.replied => None,
            Stage::Holding => Some(self.hold_by_ms),
            Stage::CallingPeer => None,
            Stage::Finishing { .. } => Some(self.reply_by_ms),
            Stage::Done => None,
        }
    }

    pub fn poll(&mut self, now_ms: u64) -> ForwardCommand {
        loop {
            match &self.stage {
                Stage::Done => return ForwardCommand::Done(self.report),
                Stage::CallingPeer => return ForwardCommand::CallPeer,
                Stage::Holding => match self.hold.poll(now_ms) {
                    // Held too late to forward, or after the packet was answered:
                    // release it at once rather than let it lock the balance.
                    HoldPoll::Held if self.replied || now_ms >= self.hold_by_ms => {
                        self.hold.finish(Finish::Void);
                        self.stage = Stage::Finishing {
                            finish: Finish::Void,
                            reply: Upstream::Reject(ledger_unavailable()),
                        };
                    }
                    HoldPoll::Held => self.stage = Stage::CallingPeer,
                    HoldPoll::NotHeld(reason) => {
                        self.report.not_held = Some(reason);
                        self.stage = Stage::Done;
                        if !self.replied {
                            return ForwardCommand::Reply(Upstream::Reject(not_held_reason(
                                reason,
                            )));
                        }
                    }
                    // The packet cannot wait for the ledger any longer.
                    _ if !self.replied && (now_ms >= self.hold_by_ms || self.hold.abandoned()) => {
                        return ForwardCommand::Reply(Upstream::Reject(ledger_unavailable()));
                    }
                    HoldPoll::Request(request) => return ForwardCommand::Ledger(request),
                    HoldPoll::Wait { until_ms } => return ForwardCommand::Wait { until_ms },
                    HoldPoll::Settled(_) => unreachable!("a hold settles only after a finish"),
                },
                Stage::Finishing { finish, reply } => {
                    let (finish, reply) = (*finish, reply.clone());
                    if self.timing == ReplyTiming::AtFinish && !self.replied {
                        return ForwardCommand::Reply(reply);
                    }
                    match self.hold.poll(now_ms) {
                        HoldPoll::Settled(settled) => {
                            self.report.finished = Some((finish, settled));
                            self.stage = Stage::Done;
                            if !self.replied {
                                return ForwardCommand::Reply(reply);
                            }
                        }
                        _ if !self.replied && now_ms >= self.reply_by_ms => {
                            return ForwardCommand::Reply(reply);
                        }
                        HoldPoll::Request(request) => return ForwardCommand::Ledger(request),
                        HoldPoll::Wait { until_ms } => {
                            let until_ms = wake_by(until_ms, self.replied, self.reply_by_ms);
                            return ForwardCommand::Wait { until_ms };
                        }
                        other => unreachable!("finishing, the hold answered {other:?}"),
                    }
                }
            }
        }
    }

    pub fn on_ledger(&mut self, answer: &LedgerAnswer, now_ms: u64) {
        assert!(matches!(
            self.stage,
            Stage::Holding | Stage::Finishing { .. }
        ));
        self.hold.on_answer(answer, now_ms);
    }

    pub fn on_peer(&mut self, reply: PeerReply) {
        assert_eq!(
            self.stage,
            Stage::CallingPeer,
            "the peer is called once, when held"
        );
        let (finish, upstream) = match reply {
            PeerReply::Fulfilled => (Finish::Post, Upstream::Relay),
            PeerReply::Rejected => (Finish::Void, Upstream::Relay),
            PeerReply::Failed(reason) => (Finish::Void, Upstream::Reject(reason)),
        };
        self.hold.finish(finish);
        self.stage = Stage::Finishing {
            finish,
            reply: upstream,
        };
    }

    pub fn on_replied(&mut self) {
        assert!(!self.replied, "one reply per packet");
        self.replied = true;
    }
}

fn ledger_unavailable() -> RejectReason {
    RejectReason::Internal("ledger did not answer in time".into())
}

/// The Reject for a hold that was not made.
pub fn not_held_reason(reason: NotHeld) -> RejectReason {
    match reason {
        // Which shortfall it was (a peer's balance, the asset's liquidity) is told
        // by the caller, which knows the legs; here the first leg is the peer's.
        NotHeld::Shortfall { leg: 0 } => RejectReason::InsufficientBalance,
        NotHeld::Shortfall { .. } => RejectReason::InsufficientLiquidity,
        NotHeld::Refused(result) => RejectReason::Internal(format!("hold refused: {result:?}")),
        NotHeld::Unavailable => RejectReason::Internal("ledger unavailable".into()),
        NotHeld::Abandoned => ledger_unavailable(),
    }
}
