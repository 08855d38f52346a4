//! The ledger audit, sans-IO: given the balances of every account of the chart
//! (and how many counts wait in the store's journal), report each broken
//! invariant. `riptidectl audit` shows the report and exits 1 when it lists any.
//!
//! Checked: every account of the chart exists; on each ledger the chart's debits
//! equal its credits, posted and pending (true of TigerBeetle as a whole; true of
//! the chart when nothing else writes to its ledgers); no account is past the
//! limit its flags set; each wallet's credits from packets (its credits less its
//! deposits) equal what the receipt store counted for it; and, when the node is
//! idle (no traffic, every pending timeout passed), nothing is pending and no
//! count waits in the journal.

use super::{Account, BalanceRow};
use crate::admin_api::decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Totals of one ledger over the chart's accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    pub ledger: u32,
    #[serde(with = "decimal")]
    pub debits_posted: u128,
    #[serde(with = "decimal")]
    pub credits_posted: u128,
    #[serde(with = "decimal")]
    pub debits_pending: u128,
    #[serde(with = "decimal")]
    pub credits_pending: u128,
}

/// One wallet, as the receipt store and the ledger's deposits see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletReceipts {
    pub wallet: String,
    /// What the store counted for the wallet, over every connection.
    pub store_total: u64,
    /// What was deposited into its account (not from packets).
    pub deposits: u128,
}

/// What the audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    pub ledgers: Vec<LedgerTotals>,
    pub accounts_checked: usize,
    /// Counts in the store's journal whose post is not confirmed yet.
    pub journal_unsettled: usize,
    /// Whether the caller said the node is idle, which makes pending amounts and
    /// journal entries problems rather than notes.
    pub idle: bool,
    /// Broken invariants: the audit fails when there is any.
    pub problems: Vec<String>,
    /// Facts worth knowing that break nothing.
    pub notes: Vec<String>,
}

/// Audits the chart's balances.
pub fn audit(
    rows: &[BalanceRow],
    wallets: &[WalletReceipts],
    journal_unsettled: usize,
    idle: bool,
) -> AuditReport {
    let mut report = AuditReport {
        accounts_checked: rows.len(),
        journal_unsettled,
        idle,
        ..AuditReport::default()
    };
    let mut ledgers: BTreeMap<u32, LedgerTotals> = BTreeMap::new();
    for row in rows {
        let Some(account) = row.account else {
            report.problems.push(format!(
                "{} {} ({}): account {:032x} is missing",
                row.kind, row.name, row.asset, row.account_id
            ));
            continue;
        };
        let totals = ledgers.entry(account.ledger).or_insert(LedgerTotals {
            ledger: account.ledger,
            ..LedgerTotals::default()
        });
        totals.debits_posted += account.debits_posted;
        totals.credits_posted += account.credits_posted;
        totals.debits_pending += account.debits_pending;
        totals.credits_pending += account.credits_pending;
        check_account(&mut report, row, &account);
    }
    for receipts in wallets {
        check_wallet(&mut report, rows, receipts);
    }
    for totals in ledgers.values() {
        check_ledger(&mut report, totals);
    }
    if journal_unsettled > 0 {
        let text = format!("{journal_unsettled} local credits wait in the journal for their post");
        report.note_or_problem(text);
    }
    report.ledgers = ledgers.into_values().collect();
    report
}

impl AuditReport {
    /// Pending amounts and journal entries are facts while packets flow, and
    /// problems on an idle node.
    fn note_or_problem(&mut self, text: String) {
        if self.idle {
            self.problems.push(format!("{text} on an idle node"));
        } else {
            self.notes.push(text);
        }
    }
}

/// One account: within the limits its flags set, and pending amounts.
fn check_account(report: &mut AuditReport, row: &BalanceRow, account: &Account) {
    let name = format!("{} {} ({})", row.kind, row.name, row.asset);
    let debits = account.debits_posted + account.debits_pending;
    if account.flags.debits_must_not_exceed_credits && debits > account.credits_posted {
        report.problems.push(format!(
            "{name}: debits {debits} exceed credits {}",
            account.credits_posted
        ));
    }
    let credits = account.credits_posted + account.credits_pending;
    if account.flags.credits_must_not_exceed_debits && credits > account.debits_posted {
        report.problems.push(format!(
            "{name}: credits {credits} exceed debits {}",
            account.debits_posted
        ));
    }
    if account.debits_pending + account.credits_pending > 0 {
        report.note_or_problem(format!(
            "{name}: {} pending debits, {} pending credits",
            account.debits_pending, account.credits_pending
        ));
    }
}

/// A wallet's credits from packets in the ledger against the store's count.
fn check_wallet(report: &mut AuditReport, rows: &[BalanceRow], receipts: &WalletReceipts) {
    let credits = rows
        .iter()
        .find(|r| r.kind == "receiving" && r.name == receipts.wallet)
        .and_then(|r| r.account)
        .map_or(0, |a| a.credits_posted);
    let from_packets = credits.saturating_sub(receipts.deposits);
    let counted = u128::from(receipts.store_total);
    // A count is made before its post, so while packets flow the store may be
    // ahead by the posts still on their way; idle, the two are equal.
    if from_packets != counted && (report.idle || counted < from_packets) {
        report.problems.push(format!(
            "wallet {}: {from_packets} credited from packets in the ledger, {counted} counted in the receipt store",
            receipts.wallet
        ));
    }
}

/// A ledger's debits equal its credits, posted and pending.
fn check_ledger(report: &mut AuditReport, totals: &LedgerTotals) {
    if totals.debits_posted != totals.credits_posted {
        report.problems.push(format!(
            "ledger {}: posted debits {} differ from posted credits {}",
            totals.ledger, totals.debits_posted, totals.credits_posted
        ));
    }
    if totals.debits_pending != totals.credits_pending {
        report.problems.push(format!(
            "ledger {}: pending debits {} differ from pending credits {}",
            totals.ledger, totals.debits_pending, totals.credits_pending
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::AccountFlags;

    fn row(kind: &'static str, account: Option<Account>) -> BalanceRow {
        BalanceRow {
            kind,
            name: kind.to_owned(),
            asset: "USD".into(),
            account_id: account.map_or(9, |a| a.id),
            account,
        }
    }

    fn account(id: u128, debits: u128, credits: u128, limited: bool) -> Account {
        Account {
            id,
            ledger: 1,
            code: 1,
            flags: AccountFlags {
                debits_must_not_exceed_credits: limited,
                credits_must_not_exceed_debits: !limited,
                ..AccountFlags::default()
            },
            debits_posted: debits,
            credits_posted: credits,
            ..Account::default()
        }
    }

    #[test]
    fn a_balanced_chart_passes() {
        let rows = [
            row("settlement", Some(account(1, 100, 0, false))),
            row("peer", Some(account(2, 40, 100, true))),
            row("peer", Some(account(3, 0, 40, true))),
        ];
        let report = audit(&rows, &[], 0, true);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.ledgers[0].debits_posted, 140);
    }

    #[test]
    fn every_broken_invariant_is_named() {
        let mut pending = account(3, 0, 40, true);
        pending.debits_pending = 5;
        let rows = [
            row("settlement", Some(account(1, 100, 0, false))),
            row("peer", Some(account(2, 150, 100, true))),
            row("peer", Some(pending)),
            row("wallet", None),
        ];
        let report = audit(&rows, &[], 2, true);
        let all = report.problems.join("\n");
        assert!(all.contains("missing"), "{all}");
        assert!(all.contains("debits 150 exceed credits 100"), "{all}");
        assert!(
            all.contains("posted debits 250 differ from posted credits 140"),
            "{all}"
        );
        assert!(all.contains("pending debits 5 differ"), "{all}");
        assert!(all.contains("5 pending debits"), "{all}");
        assert!(all.contains("2 local credits wait"), "{all}");
        let busy = audit(&rows[2..3], &[], 2, false);
        assert!(busy.problems.iter().all(|p| !p.contains("idle")));
        assert_eq!(busy.notes.len(), 2);
    }

    #[test]
    fn wallet_credits_from_packets_match_the_store() {
        let mut wallet = account(4, 0, 700, true);
        wallet.code = 4;
        let rows = [
            row("settlement", Some(account(1, 700, 0, false))),
            BalanceRow {
                kind: "receiving",
                name: "shop".into(),
                asset: "USD".into(),
                account_id: 4,
                account: Some(wallet),
            },
        ];
        let receipts = |store_total| WalletReceipts {
            wallet: "shop".into(),
            store_total,
            deposits: 200,
        };
        assert!(audit(&rows, &[receipts(500)], 0, true).problems.is_empty());
        let off = audit(&rows, &[receipts(450)], 0, true);
        assert!(
            off.problems[0].contains("500 credited from packets in the ledger, 450 counted"),
            "{:?}",
            off.problems
        );
        // Busy, a store ahead of the ledger is a post on its way; behind is not.
        assert!(audit(&rows, &[receipts(520)], 0, false).problems.is_empty());
        assert_eq!(audit(&rows, &[receipts(450)], 0, false).problems.len(), 1);
    }
}
