//! Proves the test setup: a real TigerBeetle takes accounts and a transfer and
//! reports the balances; a real Redis counts with INCRBY and EXPIRE.
#![allow(clippy::too_many_lines)] // test code

use futures::future::{select, Either};
use riptide_tests::{shared_redis, shared_tigerbeetle};
use std::future::Future;
use std::time::Duration;
use tigerbeetle_unofficial as tb;

/// The client retries forever when the server is gone; a test must not.
fn within<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    let timer = futures_timer::Delay::new(limit);
    match futures::executor::block_on(select(Box::pin(future), timer)) {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("TigerBeetle did not answer within {limit:?}"),
    }
}

#[test]
fn tigerbeetle_accounts_and_a_transfer() {
    let server = shared_tigerbeetle();
    let client = tb::Client::new(0, server.address().to_string()).expect("client");
    let ledger = 700;
    let (credit_limited, plain) = (tb::id(), tb::id());
    let accounts = vec![
        tb::Account::new(credit_limited, ledger, 1)
            .with_flags(tb::account::Flags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        tb::Account::new(plain, ledger, 1),
    ];
    within(Duration::from_secs(30), client.create_accounts(accounts)).expect("accounts created");

    let deposit = tb::Transfer::new(tb::id())
        .with_debit_account_id(plain)
        .with_credit_account_id(credit_limited)
        .with_amount(500)
        .with_ledger(ledger)
        .with_code(1);
    within(
        Duration::from_secs(10),
        client.create_transfers(vec![deposit]),
    )
    .expect("deposit");
    let overdraft = tb::Transfer::new(tb::id())
        .with_debit_account_id(credit_limited)
        .with_credit_account_id(plain)
        .with_amount(501)
        .with_ledger(ledger)
        .with_code(1);
    let refused = within(
        Duration::from_secs(10),
        client.create_transfers(vec![overdraft]),
    );
    assert!(refused.is_err(), "a debit past the credits is refused");

    let found = within(
        Duration::from_secs(10),
        client.lookup_accounts(vec![credit_limited, plain]),
    )
    .expect("lookup");
    assert_eq!(found.len(), 2);
    let limited = found
        .iter()
        .find(|a| a.id() == credit_limited)
        .expect("limited account");
    assert_eq!(limited.credits_posted(), 500);
    assert_eq!(limited.debits_posted(), 0);
}

#[test]
fn redis_counts_with_incrby_and_expire() {
    let server = shared_redis();
    let client = redis::Client::open(server.url()).expect("redis url");
    let mut connection = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    let key = "setup-proof:stream_received:abc";
    let first: u64 = redis::cmd("INCRBY")
        .arg(key)
        .arg(400)
        .query(&mut connection)
        .expect("incrby");
    let second: u64 = redis::cmd("INCRBY")
        .arg(key)
        .arg(100)
        .query(&mut connection)
        .expect("incrby");
    let _: i64 = redis::cmd("EXPIRE")
        .arg(key)
        .arg(600)
        .query(&mut connection)
        .expect("expire");
    let ttl: i64 = redis::cmd("TTL")
        .arg(key)
        .query(&mut connection)
        .expect("ttl");
    assert_eq!((first, second), (400, 500));
    assert!((1..=600).contains(&ttl), "ttl {ttl}");
}
