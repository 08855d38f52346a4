//! An outgoing payment's life, sans-IO: fund, send, settle. The payment has its own
//! ledger account; every step is safe to run again by whichever data plane owns
//! the payment (after a crash, a lost answer or a lapsed lease), so that the wallet
//! pays the quote's amount once, the payment never spends past it, and what it
//! did not spend goes back once:
//!
//! 1. **Fund**: open the account and move the quote's source amount into it from
//!    the wallet, by a transfer whose id derives from the payment.
//! 2. **Send**: once nothing is pending on the account (a former owner's packets
//!    are posted or expired), what it holds is what is left to send. The driver
//!    runs the STREAM sender from it; its packets spend from the account alone, so
//!    the ledger keeps the payment within its quote whoever sends.
//! 3. **Save** the outcome before settling, so that a data plane taking over from
//!    here settles without sending again.
//! 4. **Settle**: once nothing is pending again, what the account holds goes back
//!    to the wallet. A refund refused for the balance (a packet held since the read)
//!    burns its id in TigerBeetle, so each try takes the next id of a bounded
//!    series, and the refund made (at most one: after it the account is empty) is
//!    found by looking all of them up.
//! 5. **Close** the record with what it sent, the ledger's own figure.
//!
//! The flow takes every answer as an input, including "unknown" (a request that
//! timed out may still apply): an unknown step is tried again with the same ids,
//! never taken as failed. [`PaymentFlow::poll`] says what to do next.

use crate::ledger::Account;
use serde::{Deserialize, Serialize};

/// How sending ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Completed,
    Failed(String),
}

/// Bounds on the flow's retries and waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLimits {
    /// Tries of one step whose answers are unknown, before the flow gives up
    /// (leaving the payment open for a later owner).
    pub tries_max: u32,
    /// Reads of an account with something pending, before the flow gives up:
    /// enough to outlast the pending timeout.
    pub quiet_reads_max: u32,
    /// Refund ids in the series.
    pub refund_ids: u32,
    /// Wait between tries of an unknown step.
    pub retry_ms: u64,
    /// Wait between reads of an account with something pending.
    pub quiet_ms: u64,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Open the payment's account (existing is fine) and fund it, once.
    Fund,
    /// Read the payment's account.
    ReadAccount,
    /// Send from the account, which paid `spent` so far and holds `available`.
    Send { spent: u128, available: u128 },
    /// Save the record with its outcome.
    SaveOutcome,
    /// Move `amount` back to the wallet with refund id number `attempt`.
    Refund { amount: u128, attempt: u32 },
    /// Look up every refund id: what was refunded.
    LookupRefunds,
    /// Close the record: the payment sent `sent`, its state follows the outcome.
    Close { sent: u128 },
    /// Wait this long, then poll again.
    Wait { ms: u64 },
    /// Leave the payment open for a later try, for this reason.
    GiveUp(String),
    /// The payment is closed.
    Done,
}

/// The answer to [`Step::Fund`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FundAnswer {
    Funded,
    /// The wallet holds less, now or when the same funding was tried before.
    Insufficient,
    Unknown,
}

/// The answer to [`Step::ReadAccount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAnswer {
    Found(Account),
    Missing,
    Unknown,
}

/// The answer to [`Step::Refund`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundAnswer {
    Done,
    /// Refused for the balance, now or before: this id is spent.
    Refused,
    /// A transfer with this id and another amount exists.
    Different,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Fund,
    QuietForSend,
    Sending { spent: u128, available: u128 },
    Saving,
    QuietForSettle,
    Refunding { amount: u128, debits_before: u128 },
    Looking { debits: u128 },
    Closing { sent: u128 },
    Done,
    GaveUp(String),
}

/// One payment's flow, from its saved outcome (none before sending ended).
#[derive(Debug, Clone)]
pub struct PaymentFlow {
    limits: FlowLimits,
    source_amount: u64,
    phase: Phase,
    outcome: Option<Outcome>,
    /// Unknown answers in a row in the current phase.
    tries: u32,
    /// Reads of an account with something pending, in the current phase.
    pending_reads: u32,
    /// Refunds with an unknown answer in a row (each read again in between, so
    /// counted apart from the phases).
    refund_unknowns: u32,
    /// A wait to go through before the next step.
    wait_ms: Option<u64>,
    refund_attempt: u32,
}

impl PaymentFlow {
    pub fn new(source_amount: u64, outcome: Option<Outcome>, limits: FlowLimits) -> PaymentFlow {
        let phase = if outcome.is_some() {
            Phase::QuietForSettle
        } else {
            Phase::Fund
        };
        PaymentFlow {
            limits,
            source_amount,
            phase,
            outcome,
            tries: 0,
            pending_reads: 0,
            refund_unknowns: 0,
            wait_ms: None,
            refund_attempt: 0,
        }
    }

    /// What the payment's account is funded with: the quote's source amount.
    pub fn source_amount(&self) -> u64 {
        self.source_amount
    }

    /// The outcome, once sending ended.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    pub fn poll(&mut self) -> Step {
        if let Some(ms) = self.wait_ms.take() {
            return Step::Wait { ms };
        }
        match &self.phase {
            Phase::Fund => Step::Fund,
            Phase::QuietForSend | Phase::QuietForSettle => Step::ReadAccount,
            Phase::Sending { spent, available } => Step::Send {
                spent: *spent,
                available: *available,
            },
            Phase::Saving => Step::SaveOutcome,
            Phase::Refunding { amount, .. } => Step::Refund {
                amount: *amount,
                attempt: self.refund_attempt,
            },
            Phase::Looking { .. } => Step::LookupRefunds,
            Phase::Closing { sent } => Step::Close { sent: *sent },
            Phase::Done => Step::Done,
            Phase::GaveUp(reason) => Step::GiveUp(reason.clone()),
        }
    }

    pub fn on_fund(&mut self, answer: FundAnswer) {
        debug_assert_eq!(self.phase, Phase::Fund);
        match answer {
            FundAnswer::Funded => self.enter(Phase::QuietForSend),
            FundAnswer::Insufficient => {
                self.outcome = Some(Outcome::Failed(format!(
                    "insufficient balance: the wallet holds less than the payment's {}",
                    self.source_amount
                )));
                self.enter(Phase::Saving);
            }
            FundAnswer::Unknown => self.retry("fund", self.limits.retry_ms),
        }
    }

    pub fn on_account(&mut self, answer: AccountAnswer) {
        let settling = match self.phase {
            Phase::QuietForSend => false,
            Phase::QuietForSettle => true,
            _ => return,
        };
        let account = match answer {
            AccountAnswer::Found(account) => account,
            AccountAnswer::Missing => {
                return self.enter(Phase::GaveUp("the payment's account is missing".into()))
            }
            AccountAnswer::Unknown => return self.retry("read the account", self.limits.retry_ms),
        };
        if account.debits_pending > 0 {
            return self.wait_quiet();
        }
        let left = account.credits_posted.saturating_sub(account.debits_posted);
        let next = match (settling, left) {
            (false, _) => Phase::Sending {
                spent: account.debits_posted,
                available: left,
            },
            (true, 0) => Phase::Looking {
                debits: account.debits_posted,
            },
            (true, amount) => Phase::Refunding {
                amount,
                debits_before: account.debits_posted,
            },
        };
        self.enter(next);
    }

    /// Sending ended with `outcome`.
    pub fn on_sent(&mut self, outcome: Outcome) {
        if matches!(self.phase, Phase::Sending { .. }) {
            self.outcome = Some(outcome);
            self.enter(Phase::Saving);
        }
    }

    /// Whether the store took the record with its outcome.
    pub fn on_saved(&mut self, saved: bool) {
        if self.phase != Phase::Saving {
            return;
        }
        if saved {
            self.enter(Phase::QuietForSettle);
        } else {
            self.retry("save the outcome", self.limits.retry_ms);
        }
    }

    pub fn on_refund(&mut self, answer: RefundAnswer) {
        let Phase::Refunding { debits_before, .. } = self.phase else {
            return;
        };
        match answer {
            RefundAnswer::Done => self.enter(Phase::Closing {
                sent: debits_before,
            }),
            RefundAnswer::Refused => {
                self.refund_unknowns = 0;
                self.refund_attempt += 1;
                if self.refund_attempt >= self.limits.refund_ids {
                    self.enter(Phase::GaveUp("every refund id was refused".into()));
                } else {
                    self.enter(Phase::QuietForSettle);
                }
            }
            // Read again: a refund made before shows as an empty account; an
            // unknown one is tried again with the same id.
            RefundAnswer::Different | RefundAnswer::Unknown => {
                self.refund_unknowns += 1;
                if !self.gave_up_after(self.refund_unknowns, "refund") {
                    self.enter(Phase::QuietForSettle);
                    self.wait_ms = Some(self.limits.retry_ms);
                }
            }
        }
    }

    /// What the refund ids moved, in all (`None`: unknown).
    pub fn on_refunds(&mut self, refunded: Option<u128>) {
        let Phase::Looking { debits } = self.phase else {
            return;
        };
        match refunded {
            Some(refunded) => self.enter(Phase::Closing {
                sent: debits.saturating_sub(refunded),
            }),
            None => self.retry("look up the refund", self.limits.retry_ms),
        }
    }

    /// Whether the store took the closed record.
    pub fn on_closed(&mut self, closed: bool) {
        if !matches!(self.phase, Phase::Closing { .. }) {
            return;
        }
        if closed {
            self.enter(Phase::Done);
        } else {
            self.retry("close the record", self.limits.retry_ms);
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.tries = 0;
        self.pending_reads = 0;
    }

    fn retry(&mut self, what: &str, wait_ms: u64) {
        self.tries += 1;
        if !self.gave_up_after(self.tries, what) {
            self.wait_ms = Some(wait_ms);
        }
    }

    /// Gives the payment up once `unanswered` tries of `what` reach the limit;
    /// whether it did.
    fn gave_up_after(&mut self, unanswered: u32, what: &str) -> bool {
        if unanswered < self.limits.tries_max {
            return false;
        }
        self.enter(Phase::GaveUp(format!(
            "{what}: no answer in {unanswered} tries"
        )));
        true
    }

    fn wait_quiet(&mut self) {
        self.pending_reads += 1;
        if self.pending_reads >= self.limits.quiet_reads_max {
            self.enter(Phase::GaveUp("the payment's account stayed pending".into()));
        } else {
            self.wait_ms = Some(self.limits.quiet_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FlowLimits = FlowLimits {
        tries_max: 3,
        quiet_reads_max: 4,
        refund_ids: 2,
        retry_ms: 10,
        quiet_ms: 20,
    };

    fn account(credits: u128, debits: u128, pending: u128) -> AccountAnswer {
        AccountAnswer::Found(Account {
            credits_posted: credits,
            debits_posted: debits,
            debits_pending: pending,
            ..Account::default()
        })
    }

    #[test]
    fn a_payment_funds_sends_saves_refunds_and_closes() {
        let mut flow = PaymentFlow::new(100, None, LIMITS);
        assert_eq!(flow.poll(), Step::Fund);
        flow.on_fund(FundAnswer::Unknown);
        assert_eq!(flow.poll(), Step::Wait { ms: 10 });
        assert_eq!(flow.poll(), Step::Fund, "an unknown funding is tried again");
        flow.on_fund(FundAnswer::Funded);
        assert_eq!(flow.poll(), Step::ReadAccount);
        flow.on_account(account(100, 30, 5));
        assert_eq!(flow.poll(), Step::Wait { ms: 20 }, "a former owner's hold");
        assert_eq!(flow.poll(), Step::ReadAccount);
        flow.on_account(account(100, 35, 0));
        assert_eq!(
            flow.poll(),
            Step::Send {
                spent: 35,
                available: 65
            }
        );
        flow.on_sent(Outcome::Failed("closed".into()));
        assert_eq!(flow.poll(), Step::SaveOutcome);
        flow.on_saved(true);
        assert_eq!(flow.poll(), Step::ReadAccount);
        flow.on_account(account(100, 60, 0));
        assert_eq!(
            flow.poll(),
            Step::Refund {
                amount: 40,
                attempt: 0
            }
        );
        flow.on_refund(RefundAnswer::Refused);
        assert_eq!(flow.poll(), Step::ReadAccount, "read again after a refusal");
        flow.on_account(account(100, 70, 0));
        assert_eq!(
            flow.poll(),
            Step::Refund {
                amount: 30,
                attempt: 1
            },
            "the next refund id"
        );
        flow.on_refund(RefundAnswer::Done);
        assert_eq!(flow.poll(), Step::Close { sent: 70 });
        flow.on_closed(true);
        assert_eq!(flow.poll(), Step::Done);
        assert_eq!(flow.outcome(), Some(&Outcome::Failed("closed".into())));
    }

    #[test]
    fn a_payment_taken_over_after_its_refund_closes_with_what_it_sent() {
        let mut flow = PaymentFlow::new(100, Some(Outcome::Completed), LIMITS);
        assert_eq!(flow.poll(), Step::ReadAccount, "no sending again");
        flow.on_account(account(100, 100, 0));
        assert_eq!(flow.poll(), Step::LookupRefunds);
        flow.on_refunds(None);
        assert_eq!(flow.poll(), Step::Wait { ms: 10 });
        assert_eq!(flow.poll(), Step::LookupRefunds);
        flow.on_refunds(Some(25));
        assert_eq!(flow.poll(), Step::Close { sent: 75 });
    }

    #[test]
    fn an_unfunded_payment_fails_and_settles_nothing() {
        let mut flow = PaymentFlow::new(100, None, LIMITS);
        flow.on_fund(FundAnswer::Insufficient);
        assert_eq!(flow.poll(), Step::SaveOutcome);
        flow.on_saved(true);
        flow.on_account(account(0, 0, 0));
        assert_eq!(flow.poll(), Step::LookupRefunds);
        flow.on_refunds(Some(0));
        assert_eq!(flow.poll(), Step::Close { sent: 0 });
        assert!(
            matches!(flow.outcome(), Some(Outcome::Failed(why)) if why.contains("insufficient"))
        );
    }

    #[test]
    fn unknown_answers_and_pending_reads_are_bounded() {
        let mut flow = PaymentFlow::new(100, None, LIMITS);
        for _ in 0..LIMITS.tries_max {
            assert_eq!(flow.poll(), Step::Fund);
            flow.on_fund(FundAnswer::Unknown);
            let _ = flow.poll();
        }
        assert!(matches!(flow.poll(), Step::GiveUp(_)));
        let mut flow = PaymentFlow::new(100, Some(Outcome::Completed), LIMITS);
        for _ in 0..LIMITS.quiet_reads_max {
            flow.on_account(account(100, 0, 1));
            let _ = flow.poll();
        }
        assert!(matches!(flow.poll(), Step::GiveUp(_)));
        let mut flow = PaymentFlow::new(100, Some(Outcome::Completed), LIMITS);
        for _ in 0..LIMITS.tries_max {
            flow.on_account(account(100, 0, 0));
            assert!(matches!(flow.poll(), Step::Refund { attempt: 0, .. }));
            flow.on_refund(RefundAnswer::Unknown);
            let _ = flow.poll();
        }
        assert!(
            matches!(flow.poll(), Step::GiveUp(_)),
            "unknown refunds are bounded although each is read again"
        );
        let mut flow = PaymentFlow::new(100, Some(Outcome::Completed), LIMITS);
        for _ in 0..LIMITS.quiet_reads_max - 1 {
            flow.on_account(account(100, 0, 1));
            let _ = flow.poll();
        }
        flow.on_account(AccountAnswer::Unknown);
        assert_eq!(
            flow.poll(),
            Step::Wait { ms: 10 },
            "pending reads and unknown answers count apart"
        );
        let mut flow = PaymentFlow::new(100, Some(Outcome::Completed), LIMITS);
        for _ in 0..LIMITS.refund_ids {
            flow.on_account(account(100, 0, 0));
            let _ = flow.poll();
            flow.on_refund(RefundAnswer::Refused);
        }
        assert!(matches!(flow.poll(), Step::GiveUp(_)));
    }
}
