//! Money stays exact under faults, with real processes: STREAM payments into a
//! wallet while TigerBeetle stalls (SIGSTOP) or is killed and restarted, while
//! replicas of a 3-replica TigerBeetle cluster are killed and restarted, while
//! Redis stalls or is killed and restarted (durable), and while riptide itself is
//! killed (SIGKILL) and restarted. After each, checked with TigerBeetle's own
//! balances and Redis's own totals: every request was answered, the paying peer's
//! debits equal the wallet's credits, each connection's Redis total equals what the
//! ledger credited (and what the client was fulfilled, but for packets in flight
//! when riptide died), nothing is left pending, and `riptidectl audit --idle`
//! passes.
#![allow(clippy::too_many_lines)] // test code

use riptide_proto::stream::connection_id_hex;
use riptide_tests::dataplane::{
    node_section, spsp_credentials, workspace_binary, HttpClient, RiptideProcess,
};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use riptide_tests::stream_client::StreamClient;
use riptide_tests::{shared_redis, shared_tigerbeetle};
use riptide_tests::{RedisServer, Supervise, TigerBeetleCluster, TigerBeetleServer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const PEER_LIQUIDITY: u64 = 100_000_000;
/// Sending threads, each with a STREAM connection of its own.
const SENDERS: u32 = 3;
/// The largest packet a sender sends.
const AMOUNT_MAX: u64 = 100;
/// How long a settled state may take to show: the pending timeout (30 s), the
/// margin before a hold is certainly expired (5 s), a sweep interval (5 s), slack.
const SETTLE_LIMIT: Duration = Duration::from_secs(75);

/// A riptide receiving STREAM payments from one peer into one wallet.
struct Node {
    riptide: RiptideProcess,
    redis_url: String,
    connector: SocketAddr,
    public: u16,
    peer: String,
    wallet: String,
    token: String,
    /// Deposited into the wallet by liquidity commands, not by packets.
    deposited: u128,
}

impl Node {
    fn start(tigerbeetle: SocketAddr, redis_url: &str) -> Node {
        Node::start_on(&[tigerbeetle], redis_url)
    }

    /// [`Node::start`] on a TigerBeetle cluster: every replica's address.
    fn start_on(replicas: &[SocketAddr], redis_url: &str) -> Node {
        let tigerbeetle = replicas
            .iter()
            .map(|address| format!("\"{address}\""))
            .collect::<Vec<_>>()
            .join(", ");
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let run = std::process::id() % 100_000;
        let tag = format!("f{run}x{n}");
        let ledger = 900_000 + (run % 1000) * 100 + n;
        let (connector, admin, public) = free_node_ports();
        let (peer, wallet, asset) = (
            format!("payer{tag}"),
            format!("shop{tag}"),
            format!("U{tag}"),
        );
        let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
        let config = format!(
            r#"{node}hold_ms_max = 5000

[ledger]
kind = "tigerbeetle"
cluster_id = 0
addresses = [{tigerbeetle}]
# Money is exact when the ledger is back within a pending transfer's life: a
# packet whose post is still unknown at its reply deadline is fulfilled, and posted
# once TigerBeetle answers. 10 s proved too short in loaded full runs (a killed
# TigerBeetle, restarted, and its client's reconnection took longer).
pending_timeout_s = 30
request_timeout_ms = 1000

[receipts]
redis_url = "{redis_url}"
request_timeout_ms = 1000

[[assets]]
code = "{asset}"
scale = 2
ledger = {ledger}

[[peers]]
id = "{peer}"
asset = "{asset}"
incoming_tokens = ["{peer}-token-0123456789"]
initial_liquidity = {PEER_LIQUIDITY}

[[wallets]]
id = "{wallet}"
asset = "{asset}"
"#
        );
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let riptide = RiptideProcess::start(&config, at(connector), at(admin), ADMIN_TOKEN, 2);
        Node {
            riptide,
            redis_url: redis_url.to_owned(),
            connector: at(connector),
            public,
            token: format!("{peer}-token-0123456789"),
            peer,
            wallet,
            deposited: 0,
        }
    }

    /// The wallet's STREAM credentials, from SPSP.
    fn credentials(&self) -> (String, Vec<u8>) {
        spsp_credentials(
            SocketAddr::from(([127, 0, 0, 1], self.public)),
            &self.wallet,
        )
    }

    fn account(&self, kind: &str, name: &str) -> [u128; 4] {
        self.riptide.balances()[&(kind.to_owned(), name.to_owned())]
    }
}

/// What one sender paid: its connection and the amounts it was fulfilled.
#[derive(Debug)]
struct Paid {
    destination: String,
    fulfilled: u64,
    /// Requests that got no HTTP answer (riptide was down).
    unanswered: u32,
    codes: BTreeMap<String, u32>,
}

/// Where and how the senders pay: riptide's packet port, the peer's token, and
/// one STREAM connection's credentials per sender.
struct Payers {
    connector: SocketAddr,
    token: String,
    connections: Vec<(String, Vec<u8>)>,
}

impl Node {
    fn payers(&self) -> Payers {
        self.payers_of(SENDERS)
    }

    fn payers_of(&self, senders: u32) -> Payers {
        Payers {
            connector: self.connector,
            token: self.token.clone(),
            connections: (0..senders).map(|_| self.credentials()).collect(),
        }
    }
}

/// Pays from one thread per connection for `length`, while `fault` runs on this
/// thread. A request that gets no HTTP answer (riptide down) is counted and the
/// sender goes on with the next packet.
fn pay_while(payers: Payers, length: Duration, fault: impl FnOnce()) -> Vec<Paid> {
    let senders: Vec<_> = payers
        .connections
        .into_iter()
        .enumerate()
        .map(|(thread, (destination, secret))| {
            let (connector, token) = (payers.connector, payers.token.clone());
            std::thread::spawn(move || {
                let mut client = StreamClient::new(&destination, &secret);
                let mut paid = Paid {
                    destination: destination.clone(),
                    fulfilled: 0,
                    unanswered: 0,
                    codes: BTreeMap::new(),
                };
                let started = Instant::now();
                let mut i = thread as u64;
                while started.elapsed() < length {
                    i += 1;
                    let amount = 1 + (i * 37) % AMOUNT_MAX;
                    let prepare = client.prepare(amount, 0, false);
                    let response = HttpClient::new(connector).post_packet(&token, &prepare);
                    let Ok(response) = response else {
                        paid.unanswered += 1;
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    assert_eq!(response.status, 200, "an ILP reply");
                    match client.read_reply(&response.body).code {
                        None => paid.fulfilled += amount,
                        Some(code) => *paid.codes.entry(format!("{code:?}")).or_default() += 1,
                    }
                }
                paid
            })
        })
        .collect();
    fault();
    senders
        .into_iter()
        .map(|s| s.join().expect("sender thread"))
        .collect()
}

fn redis_total(redis_url: &str, destination: &str) -> u64 {
    let client = redis::Client::open(redis_url).expect("Redis URL");
    let mut connection = client.get_connection().expect("Redis connection");
    let total: Option<String> = redis::cmd("GET")
        .arg(format!(
            "stream_received:{}",
            connection_id_hex(destination)
        ))
        .query(&mut connection)
        .expect("GET");
    total.map_or(0, |t| t.parse().expect("a number"))
}

/// `riptidectl audit --idle` against the node: exit 0 and its JSON report.
fn audit(node: &Node) -> (bool, Value) {
    let output = riptidectl(node, &["audit", "--idle", "--json"]);
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.success(), report)
}

/// Waits until the node is settled (audit clean on an idle node) and checks the
/// money: the peer paid what the wallet got, each Redis total equals what the
/// ledger credited, and equals what its client was fulfilled, up to one packet
/// per sender in flight when riptide died (`in_flight_lost`).
fn check_exact(node: &Node, paid: &[Paid], in_flight_lost: bool) {
    for sender in paid {
        eprintln!(
            "sender: fulfilled {}, rejects {:?}, unanswered {}",
            sender.fulfilled, sender.codes, sender.unanswered
        );
    }
    let started = Instant::now();
    let (mut clean, mut report) = audit(node);
    while !clean && started.elapsed() < SETTLE_LIMIT {
        std::thread::sleep(Duration::from_millis(500));
        (clean, report) = audit(node);
    }
    assert!(
        clean,
        "riptidectl audit --idle: {report:#}\n{}",
        node.riptide.log()
    );
    eprintln!("settled after {:?}", started.elapsed());
    let metrics = node.riptide.admin_request("GET", "/metrics", b"");
    for line in String::from_utf8_lossy(&metrics.body).lines() {
        if line.starts_with("riptide_ledger_failures_total")
            || line.starts_with("riptide_journal_swept_total")
        {
            eprintln!("{line}");
        }
    }
    let wallet = node.account("receiving", &node.wallet);
    let peer = node.account("peer", &node.peer);
    let from_packets = wallet[1] - node.deposited;
    assert_eq!(
        peer[0], from_packets,
        "the peer paid exactly what the wallet got"
    );
    let mut redis_sum = 0u128;
    for sender in paid {
        let total = redis_total(&node.redis_url, &sender.destination);
        redis_sum += u128::from(total);
        if in_flight_lost {
            let lost = total
                .checked_sub(sender.fulfilled)
                .unwrap_or_else(|| panic!("Redis {total} below the client's {}", sender.fulfilled));
            assert!(
                lost <= AMOUNT_MAX,
                "at most the packet in flight was credited without its Fulfill: {lost}"
            );
        } else {
            assert_eq!(
                total, sender.fulfilled,
                "Redis total equals what the client was fulfilled ({:?})",
                sender.codes
            );
        }
    }
    assert_eq!(
        redis_sum, from_packets,
        "Redis totals equal the wallet's credits in TigerBeetle"
    );
    assert!(redis_sum > 0, "money moved");
}

fn some_packets_failed(paid: &[Paid]) -> bool {
    paid.iter().any(|p| !p.codes.is_empty() || p.unanswered > 0)
}

/// `riptidectl` against the node, with the admin token from the environment.
fn riptidectl(node: &Node, args: &[&str]) -> std::process::Output {
    std::process::Command::new(workspace_binary("riptidectl"))
        .args(args)
        .arg("--dataplane")
        .arg(format!("http://{}", node.riptide.admin))
        .env("RIPTIDE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run riptidectl")
}

#[test]
fn tigerbeetle_stalled_during_a_stream_payment() {
    let tigerbeetle = TigerBeetleServer::start();
    let mut node = Node::start(tigerbeetle.address(), &shared_redis().url());
    // A deposit into the wallet is not a packet: the audit tells them apart.
    let wallet = node.wallet.clone();
    let deposit = riptidectl(
        &node,
        &[
            "liquidity",
            "deposit",
            "--wallet",
            &wallet,
            "777",
            "--key",
            "stall-test",
        ],
    );
    assert!(deposit.status.success(), "{deposit:?}");
    node.deposited = 777;
    let paid = pay_while(node.payers(), Duration::from_secs(6), || {
        std::thread::sleep(Duration::from_millis(1_500));
        tigerbeetle.pause();
        std::thread::sleep(Duration::from_millis(2_500));
        tigerbeetle.resume();
    });
    check_exact(&node, &paid, false);
}

#[test]
fn tigerbeetle_killed_and_restarted_during_a_stream_payment() {
    let mut tigerbeetle = TigerBeetleServer::start();
    let node = Node::start(tigerbeetle.address(), &shared_redis().url());
    // Down for longer than a hold and its lookup take to time out (1 s each), so
    // that packets sent meanwhile fail. In some full runs of the suite no sender saw
    // a failure (not reproduced alone, even under load); a second outage, with fresh
    // connections, is tried then, and every round is checked for exact money.
    let mut paid = Vec::new();
    for round in 1..=2 {
        let this_round = pay_while(node.payers(), Duration::from_secs(8), || {
            std::thread::sleep(Duration::from_millis(1_500));
            tigerbeetle.kill();
            std::thread::sleep(Duration::from_millis(3_000));
            tigerbeetle.restart();
        });
        let felt = some_packets_failed(&this_round);
        eprintln!("outage {round} felt: {felt}; {this_round:?}");
        paid.extend(this_round);
        if felt {
            break;
        }
    }
    assert!(some_packets_failed(&paid), "the outage was felt: {paid:?}");
    check_exact(&node, &paid, false);
}

/// A 3-replica TigerBeetle cluster: its primary (replica 0 in the first view) is
/// killed mid-payment and restarted, then a backup. The cluster goes on with a
/// quorum; money stays exact through the view change and the restarts.
#[test]
fn tigerbeetle_cluster_replicas_killed_and_restarted_during_a_stream_payment() {
    let mut cluster = TigerBeetleCluster::start(3);
    let node = Node::start_on(cluster.addresses(), &shared_redis().url());
    let mut paid = Vec::new();
    for replica in [0, 2] {
        let this_round = pay_while(node.payers(), Duration::from_secs(8), || {
            std::thread::sleep(Duration::from_millis(1_500));
            cluster.kill(replica);
            std::thread::sleep(Duration::from_millis(3_000));
            cluster.restart(replica);
        });
        eprintln!("replica {replica} killed and restarted: {this_round:?}");
        let fulfilled: u64 = this_round.iter().map(|p| p.fulfilled).sum();
        assert!(fulfilled > 0, "payments went on: {this_round:?}");
        paid.extend(this_round);
    }
    check_exact(&node, &paid, false);
}

#[test]
fn redis_stalled_during_a_stream_payment() {
    let redis = RedisServer::start();
    let node = Node::start(shared_tigerbeetle().address(), &redis.url());
    let paid = pay_while(node.payers(), Duration::from_secs(6), || {
        std::thread::sleep(Duration::from_millis(1_500));
        redis.pause();
        std::thread::sleep(Duration::from_millis(2_500));
        redis.resume();
    });
    assert!(some_packets_failed(&paid), "the stall was felt");
    check_exact(&node, &paid, false);
}

#[test]
fn redis_killed_and_restarted_during_a_stream_payment() {
    let mut redis = RedisServer::start_durable();
    let node = Node::start(shared_tigerbeetle().address(), &redis.url());
    let paid = pay_while(node.payers(), Duration::from_secs(7), || {
        std::thread::sleep(Duration::from_millis(1_500));
        redis.kill();
        std::thread::sleep(Duration::from_millis(1_500));
        redis.restart();
    });
    assert!(some_packets_failed(&paid), "the outage was felt: {paid:?}");
    check_exact(&node, &paid, false);
}

/// Riptide is killed while TigerBeetle is stalled, so that packets it had counted
/// in Redis wait for their posts; TigerBeetle is killed too before it reads them,
/// then both start again. Those counts are in the journal, their holds expire in
/// TigerBeetle, and the restarted riptide's sweep takes them back: Redis ends
/// equal to the ledger.
#[test]
fn riptide_killed_and_restarted_during_a_stream_payment() {
    let mut tigerbeetle = TigerBeetleServer::start();
    let redis = RedisServer::start();
    let mut node = Node::start(tigerbeetle.address(), &redis.url());
    // Enough senders that, when TigerBeetle stalls, some are past their count and
    // wait for their post (each is at its hold or its post about half the time).
    let payers = node.payers_of(8);
    let riptide = &mut node.riptide;
    let mut journal_at_kill = 0;
    let paid = pay_while(payers, Duration::from_secs(8), || {
        std::thread::sleep(Duration::from_millis(2_000));
        tigerbeetle.pause();
        std::thread::sleep(Duration::from_millis(300));
        riptide.kill();
        tigerbeetle.kill();
        journal_at_kill = journal_size(&redis.url());
        tigerbeetle.restart();
        riptide.restart(Duration::from_secs(30));
    });
    assert!(
        paid.iter().any(|p| p.unanswered > 0),
        "requests in flight at the kill got no answer"
    );
    eprintln!("counts in the journal at the kill: {journal_at_kill}");
    if journal_at_kill > 0 {
        // Before their holds expire, the audit sees them: it fails, and says why.
        let (clean, report) = audit(&node);
        assert!(
            !clean,
            "riptidectl audit --idle exits 1 with counts unsettled"
        );
        let problems = report["audit"]["problems"].to_string();
        assert!(problems.contains("wait in the journal"), "{report:#}");
    }
    check_exact(&node, &paid, true);
    if journal_at_kill > 0 {
        // Metrics are published once a second.
        let swept = |metrics: &str| {
            metrics
                .lines()
                .filter(|l| l.starts_with("riptide_journal_swept_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        };
        let started = Instant::now();
        let mut metrics = String::new();
        while started.elapsed() < Duration::from_secs(5) {
            let response = node.riptide.admin_request("GET", "/metrics", b"");
            metrics = String::from_utf8_lossy(&response.body).into_owned();
            if swept(&metrics) >= journal_at_kill {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            swept(&metrics) >= journal_at_kill,
            "the {journal_at_kill} counts left at the kill were settled by the sweep:\n{metrics}"
        );
        eprintln!("swept: {}", swept(&metrics));
    }
}

fn journal_size(redis_url: &str) -> u64 {
    let client = redis::Client::open(redis_url).expect("Redis URL");
    let mut connection = client.get_connection().expect("Redis connection");
    redis::cmd("ZCARD")
        .arg("riptide:unsettled")
        .query(&mut connection)
        .expect("ZCARD")
}
