//! The connector's decisions per packet, without IO: route lookup in a table of
//! 10,000 prefixes, exact rate conversion, the whole pipeline decision for a
//! cross-currency forward, one hold-and-post on the embedded ledger, and one STREAM
//! sender step against the receiver (both sans-IO).
#![allow(clippy::too_many_lines)] // test code

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use riptide_dataplane::config::Config;
use riptide_dataplane::ledger::memory::MemoryLedger;
use riptide_dataplane::ledger::{Account, AccountFlags, Transfer, TransferFlags};
use riptide_proto::connector::pipeline::{decide, Decision, PeerLimiters, PipelineOptions};
use riptide_proto::connector::snapshot::Snapshot;
use riptide_proto::packet::{Address, Prepare, Timestamp};
use riptide_proto::routing::RoutingTable;
use std::time::{SystemTime, UNIX_EPOCH};

const CONFIG: &str = r#"
[node]
ilp_address = "test.riptide"
stream_secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
admin_token = "bench-admin-token-0123456789"

[[assets]]
code = "USD"
scale = 2
ledger = 1

[[assets]]
code = "EUR"
scale = 2
ledger = 2

[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["alice-token-0123456789"]

[[peers]]
id = "bob"
asset = "EUR"
outgoing_url = "http://127.0.0.1:4000/ilp"
outgoing_token = "to-bob"
routes = ["test.bob"]

[rates]
base = "USD"
rates = { USD = 1.0, EUR = 0.92 }
"#;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn routing(c: &mut Criterion) {
    let mut table = RoutingTable::new();
    for i in 0..10_000u32 {
        table.insert(&format!("g.region{}.peer{}", i % 100, i), i);
    }
    c.bench_function("routing/lookup_10k_prefixes", |b| {
        b.iter(|| table.lookup(black_box("g.region42.peer4242.alice.wallet"), 0, |_| false))
    });
}

fn decision(c: &mut Criterion) {
    let no_env = |_: &str| None;
    let config = Config::parse(CONFIG, "bench.toml", &no_env).expect("bench config");
    let snapshot = Snapshot::build(&config.node.ilp_address, &config.state).expect("snapshot");
    let eur = snapshot.peer(1).asset;
    let usd = snapshot.peer(0).asset;
    c.bench_function("rates/convert_usd_eur", |b| {
        b.iter(|| {
            snapshot.rates.convert(
                black_box(123_456),
                snapshot.asset_ref(usd),
                snapshot.asset_ref(eur),
            )
        })
    });
    let condition = [7u8; 32];
    let data = [0u8; 100];
    let now = now_ms();
    let prepare = Prepare {
        amount: 1_000,
        expires_at: Timestamp::from_unix_ms_saturating(now + 30_000),
        execution_condition: &condition,
        destination: Address::parse_str("test.bob.wallet.123").expect("address"),
        data: &data,
    };
    let options = PipelineOptions::default();
    let mut limiters = PeerLimiters::default();
    limiters.sync(&snapshot);
    c.bench_function("pipeline/decide_cross_currency_forward", |b| {
        b.iter(|| {
            let decision = decide(
                &snapshot,
                &mut limiters,
                &options,
                0,
                black_box(&prepare),
                now,
            );
            debug_assert!(matches!(decision, Decision::Forward(_)));
            decision
        })
    });
}

fn ledger(c: &mut Criterion) {
    let ledger = MemoryLedger::new();
    let limited = AccountFlags {
        debits_must_not_exceed_credits: true,
        ..AccountFlags::default()
    };
    let accounts = [
        Account {
            id: 1,
            ledger: 1,
            code: 1,
            ..Account::default()
        },
        Account {
            id: 2,
            ledger: 1,
            code: 1,
            flags: limited,
            ..Account::default()
        },
        Account {
            id: 3,
            ledger: 1,
            code: 1,
            ..Account::default()
        },
    ];
    ledger.create_accounts_now(&accounts).expect("accounts");
    let deposit = Transfer {
        id: 1,
        debit_account_id: 1,
        credit_account_id: 2,
        amount: u128::from(u64::MAX),
        ledger: 1,
        code: 1,
        ..Transfer::default()
    };
    ledger.create_transfers_now(&[deposit]).expect("deposit");
    let mut next_id = 10u128;
    c.bench_function("ledger/memory_hold_then_post", |b| {
        b.iter(|| {
            next_id += 2;
            let hold = Transfer {
                id: next_id,
                debit_account_id: 2,
                credit_account_id: 3,
                amount: 1,
                ledger: 1,
                code: 1,
                timeout_s: 60,
                flags: TransferFlags {
                    pending: true,
                    ..TransferFlags::default()
                },
                ..Transfer::default()
            };
            let post = Transfer {
                id: next_id + 1,
                pending_id: next_id,
                amount: 1,
                ledger: 1,
                code: 1,
                flags: TransferFlags {
                    post_pending_transfer: true,
                    ..TransferFlags::default()
                },
                ..Transfer::default()
            };
            ledger.create_transfers_now(&[hold]).expect("hold");
            ledger.create_transfers_now(&[post]).expect("post")
        })
    });
}

criterion_group!(benches, routing, decision, ledger);
criterion_main!(benches);
