//! The Redis receipt store against a real Redis, without a data plane, on a single
//! server and on a Redis Cluster of 3 primaries and 3 replicas (every test runs on
//! both): credits and their take-backs. A take-back happens once and only for a
//! credit that was counted, so it is safe after a lost answer and safe to repeat;
//! a credit repeated after a lost answer counts once.
#![allow(clippy::too_many_lines)] // test code

use futures::channel::oneshot;
use redis::ConnectionLike;
use riptide_dataplane::store::redis::{RedisOptions, RedisTls, RedisWorker};
use riptide_dataplane::store::{
    connection_key, Claim, CreditResult, IncomingPayment, Opened, StoreAnswer, StoreError, StoreOp,
};
use riptide_tests::{shared_redis, RedisCluster};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// A Redis the store runs on.
#[derive(Clone, Copy, Debug)]
enum Target {
    Single,
    Cluster,
}

const TARGETS: [Target; 2] = [Target::Single, Target::Cluster];

fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::start(3, 1))
}

fn options(target: Target) -> RedisOptions {
    let (urls, cluster) = match target {
        Target::Single => (vec![shared_redis().url()], false),
        Target::Cluster => (shared_cluster().urls(), true),
    };
    RedisOptions {
        urls,
        cluster,
        tls: RedisTls::default(),
        connection_ttl_s: 60,
        request_timeout: Duration::from_secs(2),
        wait_replicas: match target {
            Target::Single => 0,
            Target::Cluster => 1,
        },
    }
}

fn worker(target: Target) -> RedisWorker {
    RedisWorker::spawn(options(target), "test-redis-worker".into()).expect("worker")
}

/// Runs one command on the target, routed by its key on a cluster.
fn query(target: Target, command: &redis::Cmd) -> redis::Value {
    match target {
        Target::Single => {
            let client = redis::Client::open(shared_redis().url()).expect("url");
            let mut redis = client.get_connection().expect("connection");
            redis.req_command(command).expect("command")
        }
        Target::Cluster => {
            let mut redis = shared_cluster()
                .client()
                .get_connection()
                .expect("connection");
            redis.req_command(command).expect("command")
        }
    }
}

/// Runs `ops` as one batch (one pipeline) and waits for every answer.
fn run(worker: &RedisWorker, ops: Vec<StoreOp>) -> Vec<Result<StoreAnswer, StoreError>> {
    let (batch, answers): (Vec<_>, Vec<_>) = ops
        .into_iter()
        .map(|op| {
            let (reply, answer) = oneshot::channel();
            ((op, Some(reply)), answer)
        })
        .unzip();
    assert!(worker.send(batch).is_ok(), "worker queue has room");
    answers
        .into_iter()
        .map(|answer| futures::executor::block_on(answer).expect("worker answers"))
        .collect()
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn total(target: Target, wallet: &str, connection: &str) -> Option<String> {
    let mut get = redis::cmd("GET");
    get.arg(connection_key(wallet, connection));
    redis::from_redis_value(query(target, &get)).expect("a total or nothing")
}

#[test]
fn a_wallet_credit_is_taken_back_once_and_only_if_counted() {
    for target in TARGETS {
        a_wallet_credit_is_taken_back_once_and_only_if_counted_on(target);
    }
}

fn a_wallet_credit_is_taken_back_once_and_only_if_counted_on(target: Target) {
    let worker = worker(target);
    let connection = unique("wallet-connection-");
    let credit = |id: u64, amount: u64| StoreOp::Credit {
        connection: connection.clone(),
        wallet: "shop".into(),
        amount,
        payment: None,
        now_ms: 0,
        credit_id: id,
        post_ids: vec![u128::from(id) << 64 | 1],
        settle_after_ms: 1,
    };
    let undo = |id: u64, amount: u64| StoreOp::Undo {
        connection: connection.clone(),
        wallet: "shop".into(),
        amount,
        payment: None,
        credit_id: id,
    };
    let answers = run(
        &worker,
        vec![
            credit(1, 700),
            credit(2, 300),
            undo(2, 300),
            undo(2, 300),
            // Sent again after a lost answer: counted once.
            credit(1, 700),
        ],
    );
    assert_eq!(
        answers,
        vec![
            Ok(StoreAnswer::Credit(CreditResult::Credited {
                connection_total: 700,
                remaining: None
            })),
            Ok(StoreAnswer::Credit(CreditResult::Credited {
                connection_total: 1_000,
                remaining: None
            })),
            Ok(StoreAnswer::Undone(true)),
            Ok(StoreAnswer::Undone(false)),
            Ok(StoreAnswer::Credit(CreditResult::Credited {
                connection_total: 700,
                remaining: None
            })),
        ]
    );
    assert_eq!(total(target, "shop", &connection).as_deref(), Some("700"));
    // A take-back of a credit that never ran changes nothing and creates nothing.
    let stranger = unique("never-credited-");
    let answers = run(
        &worker,
        vec![StoreOp::Undo {
            connection: stranger.clone(),
            wallet: "shop".into(),
            amount: 5,
            payment: None,
            credit_id: 9,
        }],
    );
    assert_eq!(answers, vec![Ok(StoreAnswer::Undone(false))]);
    assert_eq!(total(target, "shop", &stranger), None);
}

#[test]
fn an_incoming_payment_is_capped_and_a_take_back_frees_room() {
    for target in TARGETS {
        an_incoming_payment_is_capped_and_a_take_back_frees_room_on(target);
    }
}

fn an_incoming_payment_is_capped_and_a_take_back_frees_room_on(target: Target) {
    let worker = worker(target);
    let id = unique("payment-");
    let connection = unique("payment-connection-");
    let payment = IncomingPayment {
        id: id.clone(),
        wallet: "shop".into(),
        incoming_amount: Some(1_000),
        expires_at_ms: now_ms() + 3_600_000,
        received: 0,
    };
    let credit = |credit_id: u64, amount: u64| StoreOp::Credit {
        connection: connection.clone(),
        wallet: "shop".into(),
        amount,
        payment: Some(id.clone()),
        now_ms: now_ms(),
        credit_id,
        post_ids: vec![u128::from(credit_id)],
        settle_after_ms: now_ms() + 3_600_000,
    };
    let answers = run(
        &worker,
        vec![
            StoreOp::CreatePayment {
                payment,
                watch: false,
            },
            credit(1, 600),
            credit(2, 500),
            StoreOp::Undo {
                connection: connection.clone(),
                wallet: "shop".into(),
                amount: 600,
                payment: Some(id.clone()),
                credit_id: 1,
            },
            credit(3, 1_000),
            credit(4, 1),
            StoreOp::GetPayment { id: id.clone() },
        ],
    );
    assert_eq!(answers[0], Ok(StoreAnswer::Created));
    assert_eq!(
        answers[1],
        Ok(StoreAnswer::Credit(CreditResult::Credited {
            connection_total: 600,
            remaining: Some(400)
        }))
    );
    assert_eq!(
        answers[2],
        Ok(StoreAnswer::Credit(CreditResult::Exceeds {
            connection_total: 600,
            remaining: 400
        }))
    );
    assert_eq!(answers[3], Ok(StoreAnswer::Undone(true)));
    assert_eq!(
        answers[4],
        Ok(StoreAnswer::Credit(CreditResult::Credited {
            connection_total: 1_000,
            remaining: Some(0)
        }))
    );
    assert_eq!(answers[5], Ok(StoreAnswer::Credit(CreditResult::Completed)));
    let Ok(StoreAnswer::Payment(Some(found))) = &answers[6] else {
        panic!("payment: {:?}", answers[6]);
    };
    assert_eq!(found.received, 1_000);
}

#[test]
fn the_journal_lists_unsettled_counts_until_settled_or_taken_back() {
    for target in TARGETS {
        the_journal_lists_unsettled_counts_until_settled_or_taken_back_on(target);
    }
}

fn the_journal_lists_unsettled_counts_until_settled_or_taken_back_on(target: Target) {
    let worker = worker(target);
    let connection = unique("journal-connection-");
    let wallet = unique("journal-wallet-");
    let due = now_ms().saturating_sub(1);
    let credit = |credit_id: u64, settle_after_ms: u64| StoreOp::Credit {
        connection: connection.clone(),
        wallet: wallet.clone(),
        amount: 10 * credit_id,
        payment: None,
        now_ms: now_ms(),
        credit_id,
        post_ids: vec![credit_id.into(), (u128::from(credit_id) << 64) | 7],
        settle_after_ms,
    };
    let later = now_ms() + 3_600_000;
    let settle = |wallet: &str, credit_id: u64| StoreOp::Settle {
        connection: connection.clone(),
        wallet: wallet.to_owned(),
        credit_id,
    };
    // The Settles of one wallet in one pipeline go out together, with another
    // wallet's between them.
    let answers = run(
        &worker,
        vec![
            credit(1, due),
            credit(2, due),
            credit(3, later),
            credit(4, due),
            settle(&wallet, 2),
            settle(&unique("other-wallet-"), 9),
            settle(&wallet, 4),
            StoreOp::Unsettled {
                wallets: vec![unique("quiet-wallet-"), wallet.clone()],
                before_ms: now_ms(),
                limit: 10_000,
            },
        ],
    );
    assert_eq!(
        answers[4..7],
        [
            Ok(StoreAnswer::Settled),
            Ok(StoreAnswer::Settled),
            Ok(StoreAnswer::Settled)
        ]
    );
    let Ok(StoreAnswer::Unsettled(records)) = &answers[7] else {
        panic!("journal: {:?}", answers[7]);
    };
    let ours: Vec<_> = records
        .iter()
        .filter(|r| r.connection == connection)
        .collect();
    assert_eq!(ours.len(), 1, "only the due, unsettled count: {ours:?}");
    assert_eq!(ours[0].credit_id, 1);
    assert_eq!(ours[0].amount, 10);
    assert_eq!(ours[0].post_ids, vec![1, (1u128 << 64) | 7]);
    assert_eq!(ours[0].settle_after_ms, due);
    // A settled count cannot be taken back; an unsettled one leaves the journal.
    let undo = |credit_id: u64| StoreOp::Undo {
        connection: connection.clone(),
        wallet: wallet.clone(),
        amount: 10 * credit_id,
        payment: None,
        credit_id,
    };
    let answers = run(
        &worker,
        vec![
            undo(2),
            undo(4),
            undo(1),
            StoreOp::Unsettled {
                wallets: vec![wallet.clone()],
                before_ms: later + 1,
                limit: 10_000,
            },
        ],
    );
    assert_eq!(answers[0], Ok(StoreAnswer::Undone(false)));
    assert_eq!(answers[1], Ok(StoreAnswer::Undone(false)));
    assert_eq!(answers[2], Ok(StoreAnswer::Undone(true)));
    let Ok(StoreAnswer::Unsettled(records)) = &answers[3] else {
        panic!("journal: {:?}", answers[3]);
    };
    let left: Vec<u64> = records
        .iter()
        .filter(|r| r.connection == connection)
        .map(|r| r.credit_id)
        .collect();
    assert_eq!(left, vec![3]);
    assert_eq!(total(target, &wallet, &connection).as_deref(), Some("90"));
    // The wallet's own total counts the same, and never expires.
    let answers = run(
        &worker,
        vec![StoreOp::WalletTotals {
            wallets: vec![wallet.clone(), unique("never-paid-")],
        }],
    );
    assert_eq!(answers, vec![Ok(StoreAnswer::WalletTotals(vec![90, 0]))]);
}

/// The webhooks' watch list: a payment created with `watch` is listed until one
/// `Unwatch` takes it off; a second one finds it gone (another data plane raised
/// the event).
#[test]
fn watched_payments_are_listed_until_one_caller_takes_them_off() {
    for target in TARGETS {
        watched_payments_are_listed_until_one_caller_takes_them_off_on(target);
    }
}

fn watched_payments_are_listed_until_one_caller_takes_them_off_on(target: Target) {
    let worker = worker(target);
    let (watched, unwatched) = (unique("watched"), unique("unwatched"));
    let create = |id: &str, watch: bool| StoreOp::CreatePayment {
        payment: IncomingPayment {
            id: id.to_owned(),
            wallet: "shop".into(),
            incoming_amount: Some(10),
            expires_at_ms: now_ms() + 60_000,
            received: 0,
        },
        watch,
    };
    let answers = run(
        &worker,
        vec![
            create(&watched, true),
            create(&unwatched, false),
            StoreOp::WatchedPayments { limit: 100_000 },
        ],
    );
    let Ok(StoreAnswer::Watched(ids)) = &answers[2] else {
        panic!("{answers:?}");
    };
    assert!(ids.contains(&watched), "{ids:?}");
    assert!(!ids.contains(&unwatched), "{ids:?}");
    let unwatch = || StoreOp::Unwatch {
        id: watched.clone(),
    };
    let answers = run(&worker, vec![unwatch(), unwatch()]);
    assert_eq!(
        answers,
        vec![
            Ok(StoreAnswer::Unwatched(true)),
            Ok(StoreAnswer::Unwatched(false))
        ]
    );
}

/// A primary of a cluster without replicas is down: the operations on its slots
/// are answered unavailable, and those of the same batch on other nodes get their
/// own answers, each its own replies.
#[test]
fn a_node_down_fails_its_own_operations_only() {
    let mut cluster = RedisCluster::start(3, 0);
    let wallets: Vec<String> = (0..64).map(|i| unique(&format!("w{i}-"))).collect();
    let primary = |wallet: &str| cluster.primary_of(&riptide_dataplane::store::wallet_key(wallet));
    let dead = wallets[0].clone();
    let down = primary(&dead);
    let live = wallets
        .iter()
        .find(|w| primary(w) != down)
        .expect("a wallet on another primary")
        .clone();
    let worker = RedisWorker::spawn(
        RedisOptions {
            urls: cluster.urls(),
            cluster: true,
            tls: RedisTls::default(),
            connection_ttl_s: 60,
            request_timeout: Duration::from_secs(2),
            wait_replicas: 0,
        },
        "test-redis-worker".into(),
    )
    .expect("worker");
    cluster.kill(down);
    let credit = |wallet: &str, payment: Option<String>| StoreOp::Credit {
        connection: unique("connection-"),
        wallet: wallet.to_owned(),
        amount: 5,
        payment,
        now_ms: now_ms(),
        credit_id: 1,
        post_ids: vec![1],
        settle_after_ms: now_ms() + 60_000,
    };
    let answers = run(
        &worker,
        vec![
            StoreOp::Settle {
                connection: unique("settled-"),
                wallet: dead.clone(),
                credit_id: 9,
            },
            credit(&live, None),
            credit(&live, Some(unique("no-such-payment-"))),
            credit(&dead, None),
            // Goes out with the first Settle, and takes its answer.
            StoreOp::Settle {
                connection: unique("settled-"),
                wallet: dead.clone(),
                credit_id: 10,
            },
        ],
    );
    assert!(
        matches!(answers[4], Err(StoreError::Unavailable(_))),
        "{answers:?}"
    );
    assert!(
        matches!(answers[0], Err(StoreError::Unavailable(_))),
        "{answers:?}"
    );
    assert_eq!(
        answers[1],
        Ok(StoreAnswer::Credit(CreditResult::Credited {
            connection_total: 5,
            remaining: None
        }))
    );
    assert_eq!(
        answers[2],
        Ok(StoreAnswer::Credit(CreditResult::UnknownPayment))
    );
    assert!(
        matches!(answers[3], Err(StoreError::Unavailable(_))),
        "{answers:?}"
    );
}

/// Quotes and outgoing payments, by the same rules on one Redis, a Redis Cluster
/// and the embedded store: a quote is paid once (the second payment answers the
/// first), a lease is renewed by its owner alone, a payment is taken over only
/// once its lease lapsed and by one claimant, and a closed payment is left alone.
#[test]
fn an_outgoing_payment_is_made_once_and_taken_over_only_after_its_lease() {
    for target in TARGETS {
        let worker = worker(target);
        outgoing_payment_rules(&|op| run(&worker, vec![op]).remove(0).expect("answer"));
    }
    let memory = riptide_dataplane::store::memory::MemoryStore::new(60);
    outgoing_payment_rules(&|op| memory.execute(op));
}

fn outgoing_payment_rules(execute: &dyn Fn(StoreOp) -> StoreAnswer) {
    let id = unique("quote");
    let now = now_ms();
    let put = StoreOp::PutQuote {
        id: id.clone(),
        record: "quote-record".into(),
        expires_at_ms: now + 60_000,
    };
    assert_eq!(execute(put), StoreAnswer::Created);
    let get = StoreOp::GetQuote { id: id.clone() };
    assert_eq!(
        execute(get),
        StoreAnswer::Quote(Some("quote-record".into()))
    );
    let open = |record: &str, owner: &str| StoreOp::OpenOutgoing {
        id: id.clone(),
        record: record.into(),
        owner: owner.into(),
        lease_until_ms: now + 5_000,
        now_ms: now,
    };
    // The caller lists the payment first, as the data plane does.
    let list = StoreOp::ListOutgoing {
        id: id.clone(),
        until_ms: Some(now + 5_000),
    };
    assert_eq!(execute(list), StoreAnswer::Listed);
    assert_eq!(
        execute(open("first", "a")),
        StoreAnswer::Opened(Opened::Fresh)
    );
    assert_eq!(
        execute(open("second", "b")),
        StoreAnswer::Opened(Opened::Existing("first".into()))
    );
    let get = StoreOp::GetQuote { id: id.clone() };
    assert_eq!(execute(get), StoreAnswer::Quote(None), "the quote is taken");
    let lapsed = |before_ms| StoreOp::LapsedOutgoing {
        before_ms,
        limit: 100_000,
    };
    let StoreAnswer::Lapsed(open_ids) = execute(lapsed(u64::MAX)) else {
        panic!("a list");
    };
    assert!(open_ids.contains(&id), "listed as open");
    let StoreAnswer::Lapsed(lapsed_ids) = execute(lapsed(now + 1_000)) else {
        panic!("a list");
    };
    assert!(!lapsed_ids.contains(&id), "its lease runs");
    // Leases of 300 ms, on the store's clock (Redis's own, for Redis): the test
    // waits them out.
    let renew = |owner: &str, record: &str, close: bool| {
        let now_ms = now_ms();
        StoreOp::RenewOutgoing {
            id: id.clone(),
            owner: owner.into(),
            lease_until_ms: now_ms + 300,
            now_ms,
            record: Some(record.into()),
            close,
        }
    };
    assert_eq!(
        execute(renew("b", "stolen", false)),
        StoreAnswer::Renewed(false)
    );
    assert_eq!(
        execute(renew("a", "progress", false)),
        StoreAnswer::Renewed(true)
    );
    let get = StoreOp::GetOutgoing { id: id.clone() };
    assert_eq!(execute(get), StoreAnswer::Outgoing(Some("progress".into())));
    let claim = |owner: &str| {
        let now_ms = now_ms();
        StoreOp::ClaimOutgoing {
            id: id.clone(),
            owner: owner.into(),
            now_ms,
            lease_until_ms: now_ms + 5_000,
        }
    };
    assert_eq!(execute(claim("b")), StoreAnswer::Claimed(Claim::Held));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        execute(claim("b")),
        StoreAnswer::Claimed(Claim::Claimed("progress".into()))
    );
    assert_eq!(
        execute(claim("c")),
        StoreAnswer::Claimed(Claim::Held),
        "one claimant wins"
    );
    assert_eq!(
        execute(renew("a", "late", false)),
        StoreAnswer::Renewed(false)
    );
    assert_eq!(
        execute(renew("b", "done", true)),
        StoreAnswer::Renewed(true)
    );
    assert_eq!(execute(claim("c")), StoreAnswer::Claimed(Claim::Closed));
    let unlist = StoreOp::ListOutgoing {
        id: id.clone(),
        until_ms: None,
    };
    assert_eq!(execute(unlist), StoreAnswer::Listed);
    let StoreAnswer::Lapsed(open_ids) = execute(lapsed(u64::MAX)) else {
        panic!("a list");
    };
    assert!(!open_ids.contains(&id), "taken off the list");
    let get = StoreOp::GetOutgoing { id: id.clone() };
    assert_eq!(execute(get), StoreAnswer::Outgoing(Some("done".into())));
    let nothing = unique("never");
    let claim_nothing = StoreOp::ClaimOutgoing {
        id: nothing.clone(),
        owner: "a".into(),
        now_ms: now,
        lease_until_ms: now,
    };
    assert_eq!(execute(claim_nothing), StoreAnswer::Claimed(Claim::Gone));
    let open_nothing = StoreOp::OpenOutgoing {
        id: nothing,
        record: "r".into(),
        owner: "a".into(),
        lease_until_ms: now,
        now_ms: now,
    };
    assert_eq!(
        execute(open_nothing),
        StoreAnswer::Opened(Opened::QuoteGone)
    );
}
