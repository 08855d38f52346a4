//! Accounting end to end, against a real TigerBeetle server and against the embedded
//! ledger, with the same suite: every balance equals the sum of the fulfilled
//! packets, nothing stays pending, cross-currency chains move liquidity, a peer out
//! of balance gets T04 and moves nothing, expired packets are voided, a restarted
//! riptide finds its accounts, and liquidity commands are idempotent.
#![allow(clippy::too_many_lines)] // test code

use riptide_proto::packet::{ErrorCode, Packet};
use riptide_tests::dataplane::{
    node_section, prepare_with_outcome, HttpClient, RiptideProcess, SinkBehaviour, SinkPeer,
};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use riptide_tests::{free_loopback_port, shared_tigerbeetle, Supervise};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ledger {
    Memory,
    TigerBeetle,
}

/// Names unique in this run, so tests sharing one TigerBeetle never share accounts.
struct Names {
    usd: String,
    eur: String,
    alice: String,
    bob: String,
    carol: String,
    ledger_usd: u32,
    ledger_eur: u32,
}

fn names(ledger: Ledger) -> Names {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let run = std::process::id() % 100_000;
    let tag = format!(
        "{}{run}x{n}",
        if ledger == Ledger::Memory { "m" } else { "t" }
    );
    let base = 10 + (run % 1000) * 1000 + n * 2;
    Names {
        usd: format!("U{tag}"),
        eur: format!("E{tag}"),
        alice: format!("alice{tag}"),
        bob: format!("bob{tag}"),
        carol: format!("carol{tag}"),
        ledger_usd: base + if ledger == Ledger::Memory { 0 } else { 500_000 },
        ledger_eur: base + 1 + if ledger == Ledger::Memory { 0 } else { 500_000 },
    }
}

struct Setup {
    config: String,
    connector: u16,
    admin: u16,
    names: Names,
}

fn setup(ledger: Ledger, sink: &SinkPeer, alice_liquidity: u64) -> Setup {
    let names = names(ledger);
    let (connector, admin, public) = free_node_ports();
    let ledger_section = match ledger {
        Ledger::Memory => "kind = \"memory\"".to_owned(),
        Ledger::TigerBeetle => format!(
            "kind = \"tigerbeetle\"\naddresses = \"{}\"",
            shared_tigerbeetle().address()
        ),
    };
    let Names {
        usd,
        eur,
        alice,
        bob,
        carol,
        ledger_usd,
        ledger_eur,
    } = &names;
    let url = sink.url();
    let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
    let config = format!(
        r#"
{node}
hold_ms_max = 5000

[ledger]
{ledger_section}
pending_timeout_s = 10
request_timeout_ms = 1000

[[assets]]
code = "{usd}"
scale = 2
ledger = {ledger_usd}
initial_liquidity = 1000000

[[assets]]
code = "{eur}"
scale = 2
ledger = {ledger_eur}
initial_liquidity = 1000000

[[peers]]
id = "{alice}"
asset = "{usd}"
incoming_tokens = ["{alice}-token-0123456789"]
initial_liquidity = {alice_liquidity}

[[peers]]
id = "{bob}"
asset = "{usd}"
outgoing_url = "{url}"
outgoing_token = "to-bob"
routes = ["test.bob"]

[[peers]]
id = "{carol}"
asset = "{eur}"
outgoing_url = "{url}"
outgoing_token = "to-carol"
routes = ["test.carol"]

[[wallets]]
id = "shop{alice}"
asset = "{usd}"

[rates]
base = "{usd}"
rates = {{ {usd} = 1.0, {eur} = 0.5 }}
"#
    );
    Setup {
        config,
        connector,
        admin,
        names,
    }
}

fn start(setup: &Setup) -> RiptideProcess {
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    RiptideProcess::start(
        &setup.config,
        at(setup.connector),
        at(setup.admin),
        ADMIN_TOKEN,
        2,
    )
}

fn balances(riptide: &RiptideProcess) -> HashMap<(String, String), [u128; 4]> {
    riptide.balances()
}

fn peer(balances: &HashMap<(String, String), [u128; 4]>, name: &str) -> [u128; 4] {
    balances[&("peer".to_owned(), name.to_owned())]
}

fn liquidity(balances: &HashMap<(String, String), [u128; 4]>, code: &str) -> [u128; 4] {
    balances[&("liquidity".to_owned(), code.to_owned())]
}

/// Sends `count` packets from four threads, each fulfilled or rejected at random;
/// returns the sum of the fulfilled amounts.
fn send_random(setup: &Setup, destination: &str, count: u32) -> (u128, u32) {
    let token = format!("{}-token-0123456789", setup.names.alice);
    let threads: Vec<_> = (0..4u32)
        .map(|thread| {
            let (token, destination) = (token.clone(), destination.to_owned());
            let connector = SocketAddr::from(([127, 0, 0, 1], setup.connector));
            std::thread::spawn(move || {
                let mut client = HttpClient::new(connector);
                let (mut fulfilled_sum, mut fulfilled_count) = (0u128, 0u32);
                for i in 0..count / 4 {
                    let seed = thread * 10_000 + i;
                    let amount = u64::from(2 + seed % 97);
                    let outcome = (seed.wrapping_mul(2_654_435_761) >> 7) as u8;
                    let mut fulfillment = [0u8; 32];
                    fulfillment[..4].copy_from_slice(&seed.to_be_bytes());
                    let prepare = prepare_with_outcome(
                        amount,
                        &destination,
                        Duration::from_secs(20),
                        fulfillment,
                        outcome,
                    );
                    let response = client.post_packet(&token, &prepare).expect("http");
                    assert_eq!(response.status, 200);
                    match Packet::parse(&response.body).expect("ILP reply") {
                        Packet::Fulfill(_) => {
                            assert_eq!(outcome % 2, 0);
                            fulfilled_sum += u128::from(amount);
                            fulfilled_count += 1;
                        }
                        Packet::Reject(reject) => {
                            assert_eq!(reject.code, ErrorCode::F99, "{:?}", reject.message_lossy())
                        }
                        Packet::Prepare(_) => panic!("a Prepare is no reply"),
                    }
                }
                (fulfilled_sum, fulfilled_count)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("sender thread"))
        .fold((0, 0), |(s, c), (ts, tc)| (s + ts, c + tc))
}

fn random_outcomes_balance(ledger: Ledger) -> Vec<[u128; 4]> {
    let sink = SinkPeer::start(SinkBehaviour::FulfillIfEven);
    let setup = setup(ledger, &sink, 10_000_000);
    let riptide = start(&setup);
    let (same_sum, same_count) = send_random(&setup, "test.bob.x", 200);
    let (cross_sum, cross_count) = send_random(&setup, "test.carol.x", 120);
    assert!(
        same_count > 30 && same_count < 170,
        "outcomes are mixed: {same_count} of 200 fulfilled"
    );
    assert!(cross_count > 10, "{cross_count} of 120 fulfilled");
    let b = balances(&riptide);
    let n = &setup.names;
    let alice = peer(&b, &n.alice);
    assert_eq!(
        alice[0],
        same_sum + cross_sum,
        "alice is debited what was fulfilled"
    );
    assert_eq!(
        peer(&b, &n.bob)[1],
        same_sum,
        "bob is credited what was fulfilled"
    );
    let usd = liquidity(&b, &n.usd);
    let eur = liquidity(&b, &n.eur);
    assert_eq!(
        usd[1] - 1_000_000,
        cross_sum,
        "USD liquidity takes the cross-currency amounts in"
    );
    let carol = peer(&b, &n.carol);
    assert_eq!(
        eur[0], carol[1],
        "EUR liquidity pays carol exactly what carol is credited"
    );
    assert!(
        carol[1] <= cross_sum / 2 && carol[1] + u128::from(cross_count) >= cross_sum / 2,
        "floored per packet at 0.5"
    );
    for (key, amounts) in &b {
        assert_eq!(
            (amounts[2], amounts[3]),
            (0, 0),
            "{key:?} has nothing pending"
        );
    }
    vec![alice, peer(&b, &n.bob), carol, usd, eur]
}

#[test]
fn random_outcomes_balance_in_both_ledgers_alike() {
    let memory = random_outcomes_balance(Ledger::Memory);
    let tigerbeetle = random_outcomes_balance(Ledger::TigerBeetle);
    assert_eq!(
        memory, tigerbeetle,
        "the embedded ledger and TigerBeetle agree to the unit"
    );
}

fn out_of_balance_and_timeouts(ledger: Ledger) {
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let setup = setup(ledger, &sink, 1000);
    let riptide = start(&setup);
    let token = format!("{}-token-0123456789", setup.names.alice);
    let mut client = HttpClient::new(riptide.connector);
    let mut codes = Vec::new();
    for seed in 0..4u8 {
        let prepare =
            prepare_with_outcome(300, "test.bob.x", Duration::from_secs(20), [seed; 32], 0);
        let reply = client.post_packet(&token, &prepare).expect("http").body;
        codes.push(match Packet::parse(&reply).expect("reply") {
            Packet::Fulfill(_) => None,
            Packet::Reject(reject) => Some(reject.code),
            Packet::Prepare(_) => panic!("no"),
        });
    }
    assert_eq!(
        codes,
        [None, None, None, Some(ErrorCode::T04)],
        "{ledger:?}"
    );
    sink.set(SinkBehaviour::Delay(
        Duration::from_millis(2500),
        Box::new(SinkBehaviour::FulfillFromData),
    ));
    let slow = prepare_with_outcome(50, "test.bob.x", Duration::from_millis(2200), [9; 32], 0);
    let reply = client.post_packet(&token, &slow).expect("http").body;
    assert_eq!(
        riptide_proto::packet::Reject::parse(&reply)
            .expect("reject")
            .code,
        ErrorCode::R00
    );
    let b = balances(&riptide);
    assert_eq!(
        peer(&b, &setup.names.alice),
        [900, 1000, 0, 0],
        "{ledger:?}: 3 x 300 moved, nothing held"
    );
    assert_eq!(peer(&b, &setup.names.bob), [0, 900, 0, 0], "{ledger:?}");
    let shop = ("receiving".to_owned(), format!("shop{}", setup.names.alice));
    assert_eq!(
        b.get(&shop),
        Some(&[0, 0, 0, 0]),
        "{ledger:?}: the wallet has its receiving account"
    );
}

#[test]
fn out_of_balance_and_timeouts_memory() {
    out_of_balance_and_timeouts(Ledger::Memory);
}

#[test]
fn out_of_balance_and_timeouts_tigerbeetle() {
    out_of_balance_and_timeouts(Ledger::TigerBeetle);
}

#[test]
fn restart_finds_accounts_and_liquidity_is_idempotent() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let setup = setup(Ledger::TigerBeetle, &sink, 1000);
    let token = format!("{}-token-0123456789", setup.names.alice);
    {
        let riptide = start(&setup);
        let prepare = prepare_with_outcome(400, "test.bob.x", Duration::from_secs(20), [1; 32], 0);
        let reply = HttpClient::new(riptide.connector)
            .post_packet(&token, &prepare)
            .expect("http")
            .body;
        assert!(riptide_proto::packet::Fulfill::parse(&reply).is_ok());
        let deposit = json!({"account": format!("peer:{}", setup.names.alice), "direction": "deposit", "amount": "500", "idempotency_key": format!("{}-topup-1", setup.names.alice)});
        let body = serde_json::to_vec(&deposit).expect("JSON");
        let first = riptide.admin_request("POST", "/v1/liquidity", &body);
        assert_eq!(
            (
                first.status,
                String::from_utf8_lossy(&first.body).contains("\"created\":true")
            ),
            (200, true)
        );
        let again = riptide.admin_request("POST", "/v1/liquidity", &body);
        assert_eq!(
            (
                again.status,
                String::from_utf8_lossy(&again.body).contains("\"created\":false")
            ),
            (200, true),
            "a retried deposit does not move money twice"
        );
        let withdraw = json!({"account": format!("peer:{}", setup.names.alice), "direction": "withdraw", "amount": "10000", "idempotency_key": format!("{}-out-1", setup.names.alice)});
        let refused = riptide.admin_request(
            "POST",
            "/v1/liquidity",
            &serde_json::to_vec(&withdraw).expect("JSON"),
        );
        assert_eq!(
            refused.status,
            409,
            "{}",
            String::from_utf8_lossy(&refused.body)
        );
    }
    let riptide = start(&setup);
    let b = balances(&riptide);
    assert_eq!(
        peer(&b, &setup.names.alice),
        [400, 1500, 0, 0],
        "initial liquidity once, the deposit once, the packet kept"
    );
    let prepare = prepare_with_outcome(1100, "test.bob.x", Duration::from_secs(20), [2; 32], 0);
    let reply = HttpClient::new(riptide.connector)
        .post_packet(&token, &prepare)
        .expect("http")
        .body;
    assert!(
        riptide_proto::packet::Fulfill::parse(&reply).is_ok(),
        "the restarted riptide spends the same balance"
    );
}

/// A ledger that stops answering turns packets into T00 within the request timeout,
/// never into hung requests; a ledger that is away at start stops riptide with a
/// clear error.
#[test]
fn ledger_outage_rejects_t00_and_start_fails_cleanly() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let server = riptide_tests::TigerBeetleServer::start();
    let mut setup = setup(Ledger::TigerBeetle, &sink, 1000);
    setup.config = setup.config.replace(
        &shared_tigerbeetle().address().to_string(),
        &server.address().to_string(),
    );
    let riptide = start(&setup);
    let token = format!("{}-token-0123456789", setup.names.alice);
    drop(server);
    let started = std::time::Instant::now();
    let prepare = prepare_with_outcome(10, "test.bob.x", Duration::from_secs(20), [3; 32], 0);
    let reply = HttpClient::new(riptide.connector)
        .post_packet(&token, &prepare)
        .expect("http")
        .body;
    let reject = riptide_proto::packet::Reject::parse(&reply).expect("a Reject");
    assert_eq!(reject.code, ErrorCode::T00);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within the request timeout"
    );
    drop(riptide);

    let dead = format!("127.0.0.1:{}", free_loopback_port());
    let config = setup.config.replace(
        &server_address_line(&setup.config),
        &format!("addresses = \"{dead}\""),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("riptide.toml");
    std::fs::write(&path, config).expect("config");
    let output = std::process::Command::new(riptide_tests::dataplane::workspace_binary("riptide"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run riptide");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ledger"), "{stderr}");
}

fn server_address_line(config: &str) -> String {
    config
        .lines()
        .find(|line| line.starts_with("addresses = "))
        .expect("addresses line")
        .to_owned()
}

/// Both shortfalls are T04, told apart in the message: the sender's own balance, or
/// the connector's liquidity in the destination asset.
#[test]
fn balance_and_liquidity_shortfalls_are_told_apart() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let mut setup = setup(Ledger::Memory, &sink, 1000);
    let eur_block = format!(
        "ledger = {}\ninitial_liquidity = 1000000",
        setup.names.ledger_eur
    );
    assert!(setup.config.contains(&eur_block));
    setup.config = setup.config.replace(
        &eur_block,
        &format!(
            "ledger = {}\ninitial_liquidity = 100",
            setup.names.ledger_eur
        ),
    );
    let riptide = start(&setup);
    let token = format!("{}-token-0123456789", setup.names.alice);
    let mut client = HttpClient::new(riptide.connector);
    let mut send = |amount: u64, destination: &str, seed: u8| {
        let prepare =
            prepare_with_outcome(amount, destination, Duration::from_secs(20), [seed; 32], 0);
        client.post_packet(&token, &prepare).expect("http").body
    };
    // 400 USD units become 200 EUR units: more than the 100 of EUR liquidity.
    let reply = send(400, "test.carol.x", 1);
    let reject = riptide_proto::packet::Reject::parse(&reply).expect("a Reject");
    assert_eq!(
        (reject.code, reject.message),
        (ErrorCode::T04, &b"insufficient liquidity"[..])
    );
    let reply = send(1001, "test.bob.x", 2);
    let reject = riptide_proto::packet::Reject::parse(&reply).expect("a Reject");
    assert_eq!(
        (reject.code, reject.message),
        (ErrorCode::T04, &b"insufficient balance"[..])
    );
    let b = balances(&riptide);
    assert_eq!(
        peer(&b, &setup.names.alice),
        [0, 1000, 0, 0],
        "nothing moved"
    );
}

/// TigerBeetle stopped (SIGSTOP) for longer than the ledger request timeout while
/// packets flow, then resumed: every request is answered, every Fulfill the sender
/// got is booked exactly once (by TigerBeetle's own balances), no hold is left
/// pending, and the audit finds nothing wrong. A timed-out ledger answer is
/// unknown, not failed: posts are looked up and sent again until they land.
#[test]
fn tigerbeetle_stalled_under_load_books_every_fulfill() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillIfEven);
    let server = riptide_tests::TigerBeetleServer::start();
    let mut setup = setup(Ledger::TigerBeetle, &sink, 10_000_000);
    setup.config = setup.config.replace(
        &shared_tigerbeetle().address().to_string(),
        &server.address().to_string(),
    );
    let riptide = start(&setup);
    let token = format!("{}-token-0123456789", setup.names.alice);
    let connector = SocketAddr::from(([127, 0, 0, 1], setup.connector));
    let senders: Vec<_> = (0..4u32)
        .map(|thread| {
            let token = token.clone();
            std::thread::spawn(move || {
                let mut client = HttpClient::new(connector);
                let (mut fulfilled, mut codes) = (0u128, HashMap::<String, u32>::new());
                let mut slowest = Duration::ZERO;
                let started = std::time::Instant::now();
                let mut i = 0u32;
                // About five seconds of traffic, through the stall.
                while started.elapsed() < Duration::from_secs(5) {
                    i += 1;
                    let seed = thread * 100_000 + i;
                    let amount = u64::from(2 + seed % 97);
                    let mut fulfillment = [0u8; 32];
                    fulfillment[..4].copy_from_slice(&seed.to_be_bytes());
                    let outcome = (seed.wrapping_mul(2_654_435_761) >> 7) as u8;
                    let prepare = prepare_with_outcome(
                        amount,
                        "test.bob.x",
                        Duration::from_secs(20),
                        fulfillment,
                        outcome,
                    );
                    let sent = std::time::Instant::now();
                    let response = client.post_packet(&token, &prepare).expect("answered");
                    slowest = slowest.max(sent.elapsed());
                    assert_eq!(response.status, 200);
                    match Packet::parse(&response.body).expect("an ILP reply") {
                        Packet::Fulfill(_) => fulfilled += u128::from(amount),
                        Packet::Reject(reject) => {
                            *codes.entry(format!("{:?}", reject.code)).or_default() += 1;
                        }
                        Packet::Prepare(_) => panic!("a Prepare is no reply"),
                    }
                }
                (fulfilled, codes, slowest)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    server.pause();
    std::thread::sleep(Duration::from_millis(2_500));
    server.resume();
    let mut fulfilled = 0u128;
    let mut codes: HashMap<String, u32> = HashMap::new();
    let mut slowest = Duration::ZERO;
    for sender in senders {
        let (sum, by_code, slow) = sender.join().expect("sender thread");
        fulfilled += sum;
        slowest = slowest.max(slow);
        for (code, count) in by_code {
            *codes.entry(code).or_default() += count;
        }
    }
    assert!(fulfilled > 0, "some packets went through: {codes:?}");
    // Packets in flight wait out the stall: a Fulfill waits for its post (up to
    // its expiry), a new packet's hold is abandoned with T00.
    assert!(
        slowest >= Duration::from_secs(2),
        "the stall was felt: {slowest:?}"
    );
    // Posts still being retried, and abandoned holds being voided, land soon
    // after the server is back; expiries take the pending timeout at most.
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    let balances = loop {
        let balances = balances(&riptide);
        let alice = peer(&balances, &setup.names.alice);
        let settled = alice[2] == 0 && alice[0] == fulfilled;
        if settled || std::time::Instant::now() > deadline {
            break balances;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let alice = peer(&balances, &setup.names.alice);
    let bob = peer(&balances, &setup.names.bob);
    assert_eq!(
        alice[0], fulfilled,
        "alice paid exactly the Fulfills she got: {codes:?}"
    );
    assert_eq!(bob[1], fulfilled, "bob was credited exactly those");
    assert_eq!((alice[2], bob[3]), (0, 0), "nothing left pending");
    let audit = riptide.admin_request("GET", "/v1/audit?idle=true", b"");
    assert_eq!(audit.status, 200);
    let report: Value = serde_json::from_slice(&audit.body).expect("JSON");
    assert_eq!(report["problems"], json!([]), "audit: {report:#}");
    let metrics =
        String::from_utf8_lossy(&riptide.admin_request("GET", "/metrics", b"").body).into_owned();
    assert!(
        !metrics.contains("riptide_ledger_failures_total{kind=\"post\"}"),
        "no post failed for good:\n{metrics}"
    );
}
