use super::*;
use crate::ledger::{AccountFlags, TransferFlags};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const LEDGER: u32 = 1;

fn ledger_with_clock() -> (MemoryLedger, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(1_000_000));
    let clock = Arc::clone(&now);
    (
        MemoryLedger::with_clock(Box::new(move || clock.load(Ordering::Relaxed))),
        now,
    )
}

fn account(id: u128, flags: AccountFlags) -> Account {
    Account {
        id,
        ledger: LEDGER,
        code: 1,
        flags,
        ..Account::default()
    }
}

const LIMITED: AccountFlags = AccountFlags {
    linked: false,
    debits_must_not_exceed_credits: true,
    credits_must_not_exceed_debits: false,
};
const SETTLEMENT: AccountFlags = AccountFlags {
    linked: false,
    debits_must_not_exceed_credits: false,
    credits_must_not_exceed_debits: true,
};

fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: LEDGER,
        code: 1,
        ..Transfer::default()
    }
}

fn pending(id: u128, debit: u128, credit: u128, amount: u128, linked: bool) -> Transfer {
    Transfer {
        timeout_s: 10,
        flags: TransferFlags {
            pending: true,
            linked,
            ..TransferFlags::default()
        },
        ..transfer(id, debit, credit, amount)
    }
}

fn resolve(id: u128, pending_id: u128, post: bool, linked: bool) -> Transfer {
    Transfer {
        id,
        pending_id,
        amount: if post { AMOUNT_MAX } else { 0 },
        ledger: LEDGER,
        code: 1,
        flags: TransferFlags {
            post_pending_transfer: post,
            void_pending_transfer: !post,
            linked,
            ..TransferFlags::default()
        },
        ..Transfer::default()
    }
}

fn setup() -> (MemoryLedger, Arc<AtomicU64>) {
    let (ledger, now) = ledger_with_clock();
    let results = ledger
        .create_accounts_now(&[
            account(1, SETTLEMENT),
            account(2, LIMITED),
            account(3, LIMITED),
            account(4, AccountFlags::default()),
        ])
        .expect("lock");
    assert!(results.iter().all(|r| *r == CreateAccountResult::Ok));
    let deposit = ledger
        .create_transfers_now(&[transfer(100, 1, 2, 1_000)])
        .expect("lock");
    assert_eq!(deposit, [CreateTransferResult::Ok]);
    (ledger, now)
}

/// Creates one transfer; its result.
fn create_one(ledger: &MemoryLedger, transfer: Transfer) -> CreateTransferResult {
    let results = ledger.create_transfers_now(&[transfer]).expect("lock");
    assert_eq!(results.len(), 1, "one result per transfer");
    results[0]
}

fn balances(ledger: &MemoryLedger, id: u128) -> (u128, u128, u128, u128) {
    let found = ledger.lookup_accounts_now(&[id]).expect("lock");
    let a = found[0];
    (
        a.debits_pending,
        a.debits_posted,
        a.credits_pending,
        a.credits_posted,
    )
}

#[test]
fn accounts_are_idempotent_and_checked() {
    let (ledger, _) = setup();
    let again = ledger
        .create_accounts_now(&[
            account(2, LIMITED),
            account(2, SETTLEMENT),
            account(0, LIMITED),
        ])
        .expect("lock");
    assert_eq!(
        again,
        [
            CreateAccountResult::Exists,
            CreateAccountResult::ExistsWithDifferentFields,
            CreateAccountResult::IdMustNotBeZero
        ]
    );
    let both = AccountFlags {
        linked: false,
        debits_must_not_exceed_credits: true,
        credits_must_not_exceed_debits: true,
    };
    assert_eq!(
        ledger
            .create_accounts_now(&[account(9, both)])
            .expect("lock"),
        [CreateAccountResult::FlagsAreMutuallyExclusive]
    );
}

#[test]
fn balance_flags_are_enforced() {
    let (ledger, _) = setup();
    assert_eq!(
        create_one(&ledger, transfer(101, 2, 3, 1_001)),
        CreateTransferResult::ExceedsCredits
    );
    assert_eq!(
        create_one(&ledger, transfer(102, 4, 1, 1_001)),
        CreateTransferResult::ExceedsDebits
    );
    assert_eq!(
        create_one(&ledger, transfer(103, 2, 3, 1_000)),
        CreateTransferResult::Ok
    );
    assert_eq!(balances(&ledger, 2), (0, 1_000, 0, 1_000));
}

#[test]
fn pending_post_and_void() {
    let (ledger, _) = setup();
    assert_eq!(
        create_one(&ledger, pending(200, 2, 3, 600, false)),
        CreateTransferResult::Ok
    );
    assert_eq!(balances(&ledger, 2), (600, 0, 0, 1_000));
    assert_eq!(
        create_one(&ledger, pending(201, 2, 3, 600, false)),
        CreateTransferResult::ExceedsCredits,
        "pending debits count"
    );
    assert_eq!(
        create_one(&ledger, resolve(202, 200, true, false)),
        CreateTransferResult::Ok
    );
    assert_eq!(balances(&ledger, 2), (0, 600, 0, 1_000));
    assert_eq!(balances(&ledger, 3), (0, 0, 0, 600));
    assert_eq!(
        create_one(&ledger, resolve(203, 200, false, false)),
        CreateTransferResult::PendingTransferAlreadyPosted
    );
    assert_eq!(
        create_one(&ledger, pending(204, 2, 3, 400, false)),
        CreateTransferResult::Ok
    );
    assert_eq!(
        create_one(&ledger, resolve(205, 204, false, false)),
        CreateTransferResult::Ok
    );
    assert_eq!(balances(&ledger, 2), (0, 600, 0, 1_000));
    assert_eq!(
        create_one(&ledger, resolve(206, 999, true, false)),
        CreateTransferResult::PendingTransferNotFound
    );
}

#[test]
fn linked_chains_are_all_or_nothing() {
    let (ledger, _) = setup();
    let chain = [
        pending(300, 2, 3, 500, true),
        pending(301, 3, 4, 500, false),
    ];
    let results = ledger.create_transfers_now(&chain).expect("lock");
    assert_eq!(
        results,
        [
            CreateTransferResult::LinkedEventFailed,
            CreateTransferResult::ExceedsCredits
        ]
    );
    assert_eq!(
        balances(&ledger, 2),
        (0, 0, 0, 1_000),
        "the first leg was undone"
    );
    let open = ledger
        .create_transfers_now(&[pending(302, 2, 3, 1, true)])
        .expect("lock");
    assert_eq!(open, [CreateTransferResult::LinkedEventChainOpen]);
    let chain = [
        pending(303, 2, 4, 500, true),
        pending(304, 2, 3, 100, false),
    ];
    assert_eq!(
        ledger.create_transfers_now(&chain).expect("lock"),
        [CreateTransferResult::Ok, CreateTransferResult::Ok]
    );
    let posts = [
        resolve(305, 303, true, true),
        resolve(306, 304, true, false),
    ];
    assert_eq!(
        ledger.create_transfers_now(&posts).expect("lock"),
        [CreateTransferResult::Ok, CreateTransferResult::Ok]
    );
    assert_eq!(balances(&ledger, 2), (0, 600, 0, 1_000));
}

#[test]
fn pending_transfers_expire() {
    let (ledger, now) = setup();
    assert_eq!(
        create_one(&ledger, pending(400, 2, 3, 700, false)),
        CreateTransferResult::Ok
    );
    now.fetch_add(10_000, Ordering::Relaxed);
    assert_eq!(
        balances(&ledger, 2),
        (0, 0, 0, 1_000),
        "released at the timeout"
    );
    assert_eq!(
        create_one(&ledger, resolve(401, 400, true, false)),
        CreateTransferResult::PendingTransferExpired
    );
}

#[test]
fn a_post_undone_by_its_chain_leaves_the_transfer_pending_until_it_expires() {
    let (ledger, now) = setup();
    let held = ledger
        .create_transfers_now(&[pending(500, 2, 3, 300, false)])
        .expect("lock");
    assert_eq!(held, [CreateTransferResult::Ok]);
    // The post goes through, then the chain's second event fails: both undone.
    let chain = [resolve(501, 500, true, true), transfer(502, 3, 4, 5_000)];
    assert_eq!(
        ledger.create_transfers_now(&chain).expect("lock"),
        [
            CreateTransferResult::LinkedEventFailed,
            CreateTransferResult::ExceedsCredits
        ]
    );
    assert_eq!(balances(&ledger, 2), (300, 0, 0, 1_000), "still held");
    assert!(ledger
        .lookup_transfers_now(&[501])
        .expect("lock")
        .is_empty());
    // Its expiry was restored with it: the timeout still releases it.
    now.fetch_add(10_000, Ordering::Relaxed);
    assert_eq!(balances(&ledger, 2), (0, 0, 0, 1_000), "released");
    assert_eq!(
        create_one(&ledger, resolve(503, 500, true, false)),
        CreateTransferResult::PendingTransferExpired
    );
}

#[test]
fn a_hold_undone_by_its_chain_leaves_nothing_to_expire_or_resolve() {
    let (ledger, now) = setup();
    let chain = [pending(510, 2, 3, 300, true), transfer(511, 3, 4, 5_000)];
    assert_eq!(
        ledger.create_transfers_now(&chain).expect("lock"),
        [
            CreateTransferResult::LinkedEventFailed,
            CreateTransferResult::ExceedsCredits
        ]
    );
    assert_eq!(
        create_one(&ledger, resolve(512, 510, true, false)),
        CreateTransferResult::PendingTransferNotFound
    );
    // The same id may be held again later, and only its own timeout applies: an
    // expiry the undone hold left behind would release it 5 s early.
    now.fetch_add(5_000, Ordering::Relaxed);
    assert_eq!(
        create_one(&ledger, pending(510, 2, 3, 300, false)),
        CreateTransferResult::Ok
    );
    now.fetch_add(6_000, Ordering::Relaxed);
    assert_eq!(balances(&ledger, 2), (300, 0, 0, 1_000), "still held");
    now.fetch_add(4_000, Ordering::Relaxed);
    assert_eq!(balances(&ledger, 2), (0, 0, 0, 1_000), "released");
}

#[test]
fn resubmitted_transfers_exist() {
    let (ledger, _) = setup();
    assert_eq!(
        create_one(&ledger, transfer(100, 1, 2, 1_000)),
        CreateTransferResult::Exists
    );
    assert_eq!(
        create_one(&ledger, transfer(100, 1, 2, 999)),
        CreateTransferResult::ExistsWithDifferentFields
    );
    assert_eq!(balances(&ledger, 2), (0, 0, 0, 1_000), "no double deposit");
}

proptest::proptest! {
    #[test]
    fn random_operations_keep_the_books_balanced(operations in proptest::collection::vec((0u8..4, 1u128..5, 1u128..5, 0u128..800, 0u64..4_000), 1..60)) {
        let (ledger, now) = setup();
        let mut next_id = 1_000u128;
        let mut pendings = Vec::new();
        for (kind, debit, credit, amount, advance) in operations {
            now.fetch_add(advance, Ordering::Relaxed);
            next_id += 1;
            let event = match kind {
                0 => transfer(next_id, debit, credit, amount),
                1 => { pendings.push(next_id); pending(next_id, debit, credit, amount, false) }
                2 => resolve(next_id, *pendings.last().unwrap_or(&1), true, false),
                _ => resolve(next_id, *pendings.first().unwrap_or(&1), false, false),
            };
            let _ = ledger.create_transfers_now(&[event]).expect("lock");
            let accounts = ledger.lookup_accounts_now(&[1, 2, 3, 4]).expect("lock");
            let debits: u128 = accounts.iter().map(|a| a.debits_posted + a.debits_pending).sum();
            let credits: u128 = accounts.iter().map(|a| a.credits_posted + a.credits_pending).sum();
            proptest::prop_assert_eq!(debits, credits);
            for account in &accounts {
                if account.flags.debits_must_not_exceed_credits {
                    proptest::prop_assert!(account.debits_posted + account.debits_pending <= account.credits_posted);
                }
                if account.flags.credits_must_not_exceed_debits {
                    proptest::prop_assert!(account.credits_posted + account.credits_pending <= account.debits_posted);
                }
            }
        }
    }
}

#[test]
fn old_transfers_are_forgotten_but_pending_ones_stay() {
    let (ledger, _) = setup();
    let held = pending(200, 2, 3, 5, false);
    assert_eq!(create_one(&ledger, held), CreateTransferResult::Ok);
    let batch: Vec<Transfer> = (0..super::TRANSFERS_RETAINED_MAX as u128)
        .map(|i| transfer(10_000 + i, 1, 4, 1))
        .collect();
    for chunk in batch.chunks(8_000) {
        ledger.create_transfers_now(chunk).expect("lock");
    }
    // The deposit (id 100) is the oldest finished transfer: forgotten, so the same
    // id is new again. The pending transfer is still there to be posted.
    assert_eq!(
        create_one(&ledger, transfer(100, 1, 2, 1_000)),
        CreateTransferResult::Ok
    );
    assert_eq!(
        create_one(&ledger, resolve(201, 200, true, false)),
        CreateTransferResult::Ok
    );
    let newest = transfer(10_000 + super::TRANSFERS_RETAINED_MAX as u128 - 1, 1, 4, 1);
    assert_eq!(
        create_one(&ledger, newest),
        CreateTransferResult::Exists,
        "recent transfers are still remembered"
    );
}

#[test]
fn undone_transfers_do_not_count_against_the_retention() {
    let (ledger, _) = setup();
    let kept = transfer(700, 1, 4, 1);
    assert_eq!(create_one(&ledger, kept), CreateTransferResult::Ok);
    // As many chains as the ledger retains, each undone by its failing last event.
    let chains: Vec<Transfer> = (0..super::TRANSFERS_RETAINED_MAX as u128)
        .flat_map(|i| {
            let mut first = transfer(20_000 + i, 1, 4, 1);
            first.flags.linked = true;
            [first, transfer(19_999, 3, 4, 5_000)]
        })
        .collect();
    for chunk in chains.chunks(8_000) {
        let results = ledger.create_transfers_now(chunk).expect("lock");
        assert!(results.iter().all(|r| *r != CreateTransferResult::Ok));
    }
    assert_eq!(
        create_one(&ledger, kept),
        CreateTransferResult::Exists,
        "no transfer was made since, so none was forgotten"
    );
}

/// The expiry set holds only transfers still pending: a post or void takes its
/// transfer out, so the set stays as small as what is in flight, and a chain that
/// fails puts the expiry of a resolution it undoes back.
#[test]
fn only_pending_transfers_wait_for_expiry() {
    let (ledger, now) = setup();
    let held = [
        pending(500, 2, 3, 100, false),
        pending(501, 2, 3, 100, false),
    ];
    assert!(ledger
        .create_transfers_now(&held)
        .expect("lock")
        .iter()
        .all(|r| *r == CreateTransferResult::Ok));
    assert_eq!(ledger.lock().expect("lock").expiries.len(), 2);
    let post = ledger
        .create_transfers_now(&[resolve(502, 500, true, false)])
        .expect("lock");
    assert_eq!(post, [CreateTransferResult::Ok]);
    assert_eq!(ledger.lock().expect("lock").expiries.len(), 1);

    // A void of 501 linked to a transfer that fails: the void is undone.
    let chain = [
        resolve(503, 501, false, true),
        transfer(504, 2, 3, 1_000_000),
    ];
    let results = ledger.create_transfers_now(&chain).expect("lock");
    assert_eq!(results[1], CreateTransferResult::ExceedsCredits);
    assert_eq!(ledger.lock().expect("lock").expiries.len(), 1);
    assert_eq!(balances(&ledger, 2), (100, 100, 0, 1_000));
    now.fetch_add(10_000, Ordering::Relaxed);
    assert_eq!(
        balances(&ledger, 2),
        (0, 100, 0, 1_000),
        "501 still expires after the undone void"
    );
    assert!(ledger.lock().expect("lock").expiries.is_empty());
}

/// Packets are forgotten past the retention window; a deposit never is, so its
/// idempotency key (an `initial_liquidity`, a `liquidity --key`) holds however
/// many packets came after it.
#[test]
fn deposits_outlive_the_retention_window() {
    let (ledger, _) = ledger_with_clock();
    let results = ledger
        .create_accounts_now(&[
            account(1, SETTLEMENT),
            account(2, AccountFlags::default()),
            account(3, AccountFlags::default()),
        ])
        .expect("accounts");
    assert!(results.iter().all(|r| *r == CreateAccountResult::Ok));
    let deposit = Transfer {
        code: crate::ledger::TRANSFER_CODE_DEPOSIT,
        ..transfer(7, 1, 2, 500)
    };
    assert_eq!(
        ledger.create_transfers_now(&[deposit]).expect("deposit"),
        vec![CreateTransferResult::Ok]
    );
    let packets = TRANSFERS_RETAINED_MAX as u128 + 1_000;
    let mut id = 1_000u128;
    while id < 1_000 + packets {
        let batch: Vec<Transfer> = (id..(id + 8_000).min(1_000 + packets))
            .map(|i| transfer(i, 3, 2, 1))
            .collect();
        id += batch.len() as u128;
        ledger.create_transfers_now(&batch).expect("packets");
    }
    let oldest = ledger.lookup_transfers_now(&[1_000]).expect("lookup");
    assert!(oldest.is_empty(), "the oldest packet was forgotten");
    assert_eq!(
        ledger
            .create_transfers_now(&[deposit])
            .expect("deposit again"),
        vec![CreateTransferResult::Exists],
        "the deposit is still known: it is not made twice"
    );
    let credited = ledger.lookup_accounts_now(&[2]).expect("lookup")[0].credits_posted;
    assert_eq!(credited, 500 + packets);
}
