//! Several data planes, one test: three riptides on one 3-replica TigerBeetle
//! cluster and one Redis Cluster (3 primaries, 3 replicas), their state pushed by
//! `riptidectl serve`, STREAM payments spread over them by HAProxy in TCP mode (a
//! TCP connection per packet), and one data plane killed (SIGKILL) mid-load. The
//! others go on, and no money
//! is lost or created: the paying peer's debits in TigerBeetle equal the wallet's
//! credits, every connection's total in the Redis Cluster equals what TigerBeetle
//! credited it, each equals what its client was fulfilled but for the packets in
//! flight on the killed data plane, and `riptidectl audit --idle` passes once the
//! survivors' sweeps have settled the journal the killed one left. And a peer's
//! rate limit shared by two data planes through Redis holds for both together.
#![allow(clippy::too_many_lines)] // test code

use riptide_dataplane::store::connection_key;
use riptide_proto::packet::{ErrorCode, Packet};
use riptide_proto::stream::connection_id_hex;
use riptide_tests::dataplane::{
    audit_until_clean, in_sync, node_section, prepare_for_sink, spsp_credentials, HttpClient,
    RiptideProcess, Serve, SinkBehaviour, SinkPeer,
};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use riptide_tests::paying::{pay_while, Payers, AMOUNT_MAX};
use riptide_tests::{Haproxy, RedisCluster, RedisServer, TigerBeetleCluster};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const DATAPLANES: usize = 3;
const SENDERS: usize = 6;
const PEER: &str = "payer";
const PEER_TOKEN: &str = "payer-token-0123456789";
const WALLET: &str = "shop";
const PEER_LIQUIDITY: u64 = 100_000_000;
/// The pending timeout (15 s), the sweep's margin (5 s) and interval (5 s), slack.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One data plane of the fleet: its process and ports. It starts with no state.
struct Dataplane {
    process: RiptideProcess,
    public: SocketAddr,
}

impl Dataplane {
    fn start(tigerbeetle: &[SocketAddr], redis: &[String]) -> Dataplane {
        let (connector, admin, public) = free_node_ports();
        let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
        let quoted = |items: Vec<String>| {
            items
                .iter()
                .map(|item| format!("\"{item}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let addresses = quoted(tigerbeetle.iter().map(ToString::to_string).collect());
        let other_nodes = quoted(redis[1..].to_vec());
        let config = format!(
            r#"{node}hold_ms_max = 5000

[ledger]
kind = "tigerbeetle"
cluster_id = 0
addresses = [{addresses}]
pending_timeout_s = 15
request_timeout_ms = 1000

[receipts]
redis_url = "{}"
redis_cluster = true
redis_cluster_urls = [{other_nodes}]
redis_wait_replicas = 1
request_timeout_ms = 1000
"#,
            redis[0]
        );
        let process = RiptideProcess::start_at(&config, (connector, admin, public), 1);
        Dataplane {
            process,
            public: loopback(public),
        }
    }

    fn admin_url(&self) -> String {
        format!("http://{}", self.process.admin)
    }

    /// Packets this data plane fulfilled, from its metrics.
    fn fulfilled(&self) -> u64 {
        let metrics = self.process.admin_request("GET", "/metrics", b"");
        String::from_utf8_lossy(&metrics.body)
            .lines()
            .filter(|line| {
                line.starts_with("riptide_packets_total{") && line.contains("outcome=\"fulfilled\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// The state every data plane gets from `riptidectl serve`.
fn state_file(dataplanes: &[Dataplane]) -> String {
    let urls: Vec<String> = dataplanes
        .iter()
        .map(|d| format!("{{ url = \"{}\" }}", d.admin_url()))
        .collect();
    let ledger = 700_000 + std::process::id() % 100_000;
    format!(
        r#"[control]
dataplanes = [{}]

[[assets]]
code = "USD"
scale = 2
ledger = {ledger}

[[peers]]
id = "{PEER}"
asset = "USD"
incoming_tokens = ["{PEER_TOKEN}"]
initial_liquidity = {PEER_LIQUIDITY}

[[wallets]]
id = "{WALLET}"
asset = "USD"
"#,
        urls.join(", ")
    )
}

fn redis_total(redis: &RedisCluster, destination: &str) -> u64 {
    let mut connection = redis.client().get_connection().expect("cluster connection");
    let total: Option<String> = redis::cmd("GET")
        .arg(connection_key(WALLET, &connection_id_hex(destination)))
        .query(&mut connection)
        .expect("GET");
    total.map_or(0, |t| t.parse().expect("a number"))
}

#[test]
fn three_dataplanes_behind_haproxy_one_killed_mid_load() {
    let tigerbeetle = TigerBeetleCluster::start(3);
    let redis = RedisCluster::start(3, 1);
    let mut dataplanes: Vec<Dataplane> = (0..DATAPLANES)
        .map(|_| Dataplane::start(tigerbeetle.addresses(), &redis.urls()))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.toml");
    std::fs::write(&file, state_file(&dataplanes)).expect("state file");
    let serve = Serve::start(&file, dir.path().join("serve.log"), ADMIN_TOKEN);
    serve.wait_for("every data plane in sync", in_sync);
    let balancer = Haproxy::start(
        &dataplanes
            .iter()
            .map(|d| d.process.connector)
            .collect::<Vec<_>>(),
    );

    // Credentials from one data plane's SPSP are good on every other: they share
    // the STREAM secret, and the connection's total is in the shared Redis.
    let connections: Vec<(String, Vec<u8>)> = (0..SENDERS)
        .map(|i| spsp_credentials(dataplanes[i % DATAPLANES].public, WALLET))
        .collect();
    let killed = 1;
    let mut fulfilled_before_kill = Vec::new();
    let payers = Payers {
        connector: balancer.address(),
        token: PEER_TOKEN.to_owned(),
        connections,
    };
    let mut paid = pay_while(payers, Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_secs(4));
        fulfilled_before_kill = dataplanes.iter().map(Dataplane::fulfilled).collect();
        dataplanes[killed].process.kill();
    });
    for sender in &paid {
        eprintln!(
            "sender: fulfilled {}, rejects {:?}, unanswered {}",
            sender.fulfilled, sender.codes, sender.unanswered
        );
    }
    eprintln!("fulfilled by each data plane before the kill: {fulfilled_before_kill:?}");
    assert!(
        fulfilled_before_kill.iter().all(|&n| n > 0),
        "the load balancer spread packets over every data plane: {fulfilled_before_kill:?}"
    );
    for (index, dataplane) in dataplanes.iter().enumerate() {
        if index != killed {
            let after = dataplane.fulfilled();
            assert!(
                after > fulfilled_before_kill[index],
                "data plane {index} went on after the kill: {after}"
            );
        }
    }

    // Settled: the killed data plane's holds expire, and a survivor's sweep keeps
    // or takes back the counts it left in the journal.
    let survivor = &dataplanes[0];
    let started = Instant::now();
    let (clean, report) = audit_until_clean(survivor.process.admin, SETTLE_LIMIT);
    assert!(
        clean,
        "riptidectl audit --idle: {report:#}\n{}",
        survivor.process.log()
    );
    eprintln!("settled after {:?}", started.elapsed());

    let balances = survivor.process.balances();
    let wallet = balances[&("receiving".to_owned(), WALLET.to_owned())];
    let peer = balances[&("peer".to_owned(), PEER.to_owned())];
    assert_eq!(
        peer[0], wallet[1],
        "the peer paid exactly what the wallet got"
    );
    let mut redis_sum = 0u128;
    for sender in &mut paid {
        let total = redis_total(&redis, &sender.destination);
        redis_sum += u128::from(total);
        let lost = total.checked_sub(sender.fulfilled).unwrap_or_else(|| {
            panic!(
                "Redis {total} below what the client was fulfilled, {}",
                sender.fulfilled
            )
        });
        assert!(
            lost <= AMOUNT_MAX,
            "at most the packet in flight on the killed data plane was credited without its \
             Fulfill: {lost}"
        );
    }
    assert_eq!(
        redis_sum, wallet[1],
        "the Redis Cluster's totals equal the wallet's credits in TigerBeetle"
    );
    assert!(redis_sum > 0, "money moved");
    drop(serve);
}

/// Packets per second the limited peer may send, in all or per data plane.
const RATE_LIMIT: u64 = 20;
/// How long each run of the limit test sends.
const LIMIT_RUN: Duration = Duration::from_secs(3);

/// Two data planes (embedded ledgers, one Redis) forwarding a peer's packets to a
/// sink, the peer's rate limit counted as `scope` says.
fn limited_pair(redis_url: &str, sink: &SinkPeer, scope: &str) -> Vec<RiptideProcess> {
    (0..2)
        .map(|_| {
            let ports = free_node_ports();
            let node = node_section("test.riptide", ports, ADMIN_TOKEN);
            let config = format!(
                r#"{node}
[ledger]
kind = "memory"

[receipts]
redis_url = "{redis_url}"

[[assets]]
code = "USD"
scale = 2
ledger = 1
initial_liquidity = 1000000000

[[peers]]
id = "limited"
asset = "USD"
incoming_tokens = ["limited-token-0123456789"]
initial_liquidity = 1000000000
rate_limit_packets_per_second = {RATE_LIMIT}
limit_scope = "{scope}"

[[peers]]
id = "bob"
asset = "USD"
outgoing_url = "{}"
outgoing_token = "riptide-to-bob-0123456789"
routes = ["test.bob"]
"#,
                sink.url()
            );
            RiptideProcess::start_at(&config, ports, 2)
        })
        .collect()
}

/// Sends as fast as two threads per data plane can for [`LIMIT_RUN`]; returns
/// the packets fulfilled, the T05 rejects and any other rejects, in all.
fn send_limited(dataplanes: &[RiptideProcess]) -> (u64, u64, u64) {
    let senders: Vec<_> = dataplanes
        .iter()
        .flat_map(|d| [d.connector, d.connector])
        .map(|connector| {
            std::thread::spawn(move || {
                let (mut fulfilled, mut limited, mut other) = (0, 0, 0);
                let started = Instant::now();
                while started.elapsed() < LIMIT_RUN {
                    let prepare = prepare_for_sink(1, "test.bob", Duration::from_secs(20), [7; 32]);
                    let response = HttpClient::new(connector)
                        .post_packet("limited-token-0123456789", &prepare)
                        .expect("an HTTP answer");
                    match Packet::parse(&response.body).expect("an ILP reply") {
                        Packet::Fulfill(_) => fulfilled += 1,
                        Packet::Reject(reject) if reject.code == ErrorCode::T05 => limited += 1,
                        Packet::Reject(_) => other += 1,
                        Packet::Prepare(_) => panic!("a Prepare is no reply"),
                    }
                }
                (fulfilled, limited, other)
            })
        })
        .collect();
    senders
        .into_iter()
        .map(|s| s.join().expect("sender"))
        .fold((0, 0, 0), |(f, l, o), (f2, l2, o2)| {
            (f + f2, l + l2, o + o2)
        })
}

/// `limit_scope = "shared"`: two data planes together pass at most the one
/// limit (a full bucket of one second, then its refill), where with the default
/// scope each passes the whole limit.
#[test]
fn a_shared_rate_limit_holds_across_two_dataplanes() {
    let redis = RedisServer::start();
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let run = |scope: &str| {
        let dataplanes = limited_pair(&redis.url(), &sink, scope);
        let started = Instant::now();
        let (fulfilled, limited, other) = send_limited(&dataplanes);
        let elapsed_s = started.elapsed().as_secs_f64();
        eprintln!(
            "{scope}: {fulfilled} fulfilled, {limited} T05, {other} other rejects in {elapsed_s:.2} s"
        );
        let lease_failures = dataplanes
            .iter()
            .map(|d| d.log().matches("shared limit lease failed").count())
            .sum::<usize>();
        assert!(limited > 0, "{scope}: the limit bit");
        (fulfilled, elapsed_s, lease_failures)
    };
    let (shared, elapsed_s, lease_failures) = run("shared");
    // The shared bucket: a second's burst, then the refill; a lease of one token
    // may be in hand on each data plane when the run ends. A lease that found no
    // answer in time (a slow machine) hands a data plane its own bucket of the
    // whole limit for a second: a second's burst and refill more, each time.
    let fallbacks = lease_failures as u64;
    let most =
        RATE_LIMIT + (RATE_LIMIT as f64 * elapsed_s).ceil() as u64 + 2 + fallbacks * 2 * RATE_LIMIT;
    assert!(
        shared <= most,
        "shared: {shared} passed in {elapsed_s:.2} s, at most {most} may"
    );
    assert!(
        shared >= RATE_LIMIT * LIMIT_RUN.as_secs() / 2,
        "shared: the limit is reached, not starved ({shared})"
    );
    let (apart, _, _) = run("dataplane");
    let shared_most = RATE_LIMIT + (RATE_LIMIT as f64 * elapsed_s).ceil() as u64 + 2;
    assert!(
        apart > shared_most,
        "each data plane on its own passes the whole limit: {apart} against {shared_most}"
    );
}
