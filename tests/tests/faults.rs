//! Money stays exact under faults, with real processes: STREAM payments into a
//! wallet while TigerBeetle stalls (SIGSTOP) or is killed and restarted, while
//! replicas of a 3-replica TigerBeetle cluster are killed and restarted, while
//! Redis stalls or is killed and restarted (durable), while the primary of a
//! Redis Cluster fails over, and while riptide itself is
//! killed (SIGKILL) and restarted. After each, checked with TigerBeetle's own
//! balances and Redis's own totals: every request was answered, the paying peer's
//! debits equal the wallet's credits, each connection's Redis total equals what the
//! ledger credited (and what the client was fulfilled, but for packets in flight
//! when riptide died), nothing is left pending, and `riptidectl audit --idle`
//! passes.
#![allow(clippy::too_many_lines)] // test code

use riptide_dataplane::store::{connection_key, journal_key};
use riptide_proto::stream::connection_id_hex;
use riptide_tests::dataplane::{
    audit_until_clean, node_section, spsp_credentials, workspace_binary, RiptideProcess,
};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use riptide_tests::paying::{pay_while, Paid, Payers, AMOUNT_MAX};
use riptide_tests::{shared_redis, shared_tigerbeetle};
use riptide_tests::{RedisCluster, RedisServer, Supervise, TigerBeetleCluster, TigerBeetleServer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const PEER_LIQUIDITY: u64 = 100_000_000;
/// Sending threads, each with a STREAM connection of its own.
const SENDERS: u32 = 3;
/// How long a settled state may take to show: the pending timeout (30 s), the
/// margin before a hold is certainly expired (5 s), a sweep interval (5 s), slack.
const SETTLE_LIMIT: Duration = Duration::from_secs(75);

/// The Redis a node keeps its receipts in.
#[derive(Clone)]
enum Receipts {
    Single(String),
    /// Every node's URL; the data plane waits for one replica per credit.
    Cluster(Vec<String>),
}

impl Receipts {
    fn config(&self) -> String {
        match self {
            Receipts::Single(url) => format!("redis_url = \"{url}\"\n"),
            Receipts::Cluster(urls) => {
                let others = urls[1..]
                    .iter()
                    .map(|url| format!("\"{url}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "redis_url = \"{}\"\nredis_cluster = true\nredis_cluster_urls = [{others}]\nredis_wait_replicas = 1\n",
                    urls[0]
                )
            }
        }
    }
}

/// A riptide receiving STREAM payments from one peer into one wallet.
struct Node {
    riptide: RiptideProcess,
    redis: Receipts,
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
        Node::start_on(&[tigerbeetle], &Receipts::Single(redis_url.to_owned()))
    }

    /// [`Node::start`] on a TigerBeetle cluster (every replica's address) and on
    /// a Redis server or cluster.
    fn start_on(replicas: &[SocketAddr], receipts: &Receipts) -> Node {
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
        let receipts_config = receipts.config();
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
{receipts_config}request_timeout_ms = 1000

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
            redis: receipts.clone(),
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

/// The connection's total in Redis, read on the primary of its slot when the
/// node's Redis is a cluster.
fn redis_total(node: &Node, destination: &str) -> u64 {
    let key = connection_key(&node.wallet, &connection_id_hex(destination));
    let mut get = redis::cmd("GET");
    get.arg(key);
    let total: Option<String> = match &node.redis {
        Receipts::Single(url) => {
            let client = redis::Client::open(url.as_str()).expect("Redis URL");
            let mut connection = client.get_connection().expect("Redis connection");
            get.query(&mut connection).expect("GET")
        }
        Receipts::Cluster(urls) => {
            let client = redis::cluster::ClusterClient::new(urls.clone()).expect("cluster");
            let mut connection = client.get_connection().expect("Redis Cluster connection");
            get.query(&mut connection).expect("GET")
        }
    };
    total.map_or(0, |t| t.parse().expect("a number"))
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
    let (clean, report) = audit_until_clean(node.riptide.admin, SETTLE_LIMIT);
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
        let total = redis_total(node, &sender.destination);
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
    let redis = Receipts::Single(shared_redis().url());
    let node = Node::start_on(cluster.addresses(), &redis);
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

/// A Redis Cluster of 3 primaries and 3 replicas: the primary of the wallet's
/// slot (every key of a credit carries the wallet as its hash tag) is killed
/// mid-payment; its replica takes over after the node timeout (1 s), and the old
/// primary comes back empty as a replica. The data plane waits for one replica
/// per credit (`redis_wait_replicas = 1`), so no answered credit is lost in the
/// failover: each connection's total in the cluster still equals what its client
/// was fulfilled, and what TigerBeetle credited.
#[test]
fn redis_cluster_primary_killed_during_a_stream_payment() {
    let mut redis = RedisCluster::start(3, 1);
    let tigerbeetle = shared_tigerbeetle();
    let node = Node::start_on(&[tigerbeetle.address()], &Receipts::Cluster(redis.urls()));
    let primary = redis.primary_of(&journal_key(&node.wallet));
    let mut paid = pay_while(node.payers(), Duration::from_secs(12), || {
        std::thread::sleep(Duration::from_millis(2_000));
        redis.kill(primary);
        std::thread::sleep(Duration::from_millis(4_000));
        redis.restart(primary);
    });
    redis.wait_until_ok(Duration::from_secs(30));
    // The node asked may learn of the failover a moment after the others.
    let started = Instant::now();
    while redis.primary_of(&journal_key(&node.wallet)) == primary {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a replica took the wallet's slot over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        some_packets_failed(&paid),
        "the failover was felt: {paid:?}"
    );
    // Payments go on after the failover, on the new primary.
    let after = pay_while(node.payers(), Duration::from_secs(3), || {});
    assert!(
        after.iter().map(|p| p.fulfilled).sum::<u64>() > 0,
        "payments went on: {after:?}"
    );
    paid.extend(after);
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
    let wallet = node.wallet.clone();
    let riptide = &mut node.riptide;
    let mut journal_at_kill = 0;
    let paid = pay_while(payers, Duration::from_secs(8), || {
        std::thread::sleep(Duration::from_millis(2_000));
        tigerbeetle.pause();
        std::thread::sleep(Duration::from_millis(300));
        riptide.kill();
        tigerbeetle.kill();
        journal_at_kill = journal_size(&redis.url(), &wallet);
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
        let (clean, report) = audit_until_clean(node.riptide.admin, Duration::ZERO);
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

fn journal_size(redis_url: &str, wallet: &str) -> u64 {
    let client = redis::Client::open(redis_url).expect("Redis URL");
    let mut connection = client.get_connection().expect("Redis connection");
    redis::cmd("ZCARD")
        .arg(journal_key(wallet))
        .query(&mut connection)
        .expect("ZCARD")
}
