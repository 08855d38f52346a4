//! Riptide's own STREAM receiver end to end, with a real TigerBeetle and a real
//! Redis: npm clients (`ilp-protocol-stream`, `@interledger/pay`) peered with riptide
//! over `ilp-plugin-http` pay a wallet through SPSP and incoming payments through
//! their credentials. The client's delivered amount, the connection total in Redis
//! and the receiving balance in TigerBeetle must agree to the unit; receipts verify
//! with the verifier's secret; an incoming payment is never paid past its amount.
#![allow(clippy::too_many_lines)] // test code

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use riptide_dataplane::store::connection_key;
use riptide_proto::packet::ErrorCode;
use riptide_proto::stream::{connection_id_hex, Receipt};
use riptide_tests::dataplane::{
    node_section, workspace_binary, HttpClient, NodeScript, RiptideProcess,
};
use riptide_tests::fixtures::ADMIN_TOKEN;
use riptide_tests::stream_client::StreamClient;
use riptide_tests::{free_loopback_port, shared_redis, shared_tigerbeetle, RedisServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const PEER_LIQUIDITY: u64 = 10_000_000;

/// Where the receipt store and the ledger are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backends<'a> {
    /// TigerBeetle and this Redis.
    Real { redis_url: &'a str },
    /// The embedded ledger and store.
    Embedded,
}

/// A riptide with one client peer (USD) and two wallets (USD and EUR at 0.5).
struct Receiver {
    riptide: RiptideProcess,
    connector: u16,
    public: u16,
    /// The port the client's plugin listens on (riptide's outgoing URL for it).
    client_port: u16,
    peer: String,
    usd: String,
    wallet_usd: String,
    wallet_eur: String,
}

impl Receiver {
    fn start(backends: Backends<'_>) -> Receiver {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let run = std::process::id() % 100_000;
        let tag = format!("r{run}x{n}");
        let ledger_base = 700_000 + (run % 1000) * 100 + n * 2;
        let (connector, admin, public, client_port) = (
            free_loopback_port(),
            free_loopback_port(),
            free_loopback_port(),
            free_loopback_port(),
        );
        let backends_section = match backends {
            Backends::Real { redis_url } => format!(
                "[ledger]\nkind = \"tigerbeetle\"\naddresses = \"{}\"\n\n[receipts]\nredis_url = \"{redis_url}\"\nrequest_timeout_ms = 1000\n",
                shared_tigerbeetle().address()
            ),
            Backends::Embedded => String::new(),
        };
        let (usd, eur) = (format!("U{tag}"), format!("E{tag}"));
        let (peer, wallet_usd, wallet_eur) = (
            format!("js{tag}"),
            format!("shop{tag}"),
            format!("boutique{tag}"),
        );
        let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
        let config = format!(
            r#"
{node}

{backends_section}
[[assets]]
code = "{usd}"
scale = 2
ledger = {ledger_usd}
initial_liquidity = 1000000000

[[assets]]
code = "{eur}"
scale = 2
ledger = {ledger_eur}
initial_liquidity = 1000000000

[[peers]]
id = "{peer}"
asset = "{usd}"
incoming_tokens = ["{peer}-to-riptide-0123456789"]
outgoing_url = "http://127.0.0.1:{client_port}/"
outgoing_token = "riptide-to-{peer}-0123456789"
initial_liquidity = {PEER_LIQUIDITY}

[[wallets]]
id = "{wallet_usd}"
asset = "{usd}"

[[wallets]]
id = "{wallet_eur}"
asset = "{eur}"

[rates]
base = "{usd}"
rates = {{ {usd} = 1.0, {eur} = 0.5 }}
"#,
            ledger_usd = ledger_base,
            ledger_eur = ledger_base + 1,
        );
        let riptide = RiptideProcess::start(
            &config,
            SocketAddr::from(([127, 0, 0, 1], connector)),
            SocketAddr::from(([127, 0, 0, 1], admin)),
            ADMIN_TOKEN,
            2,
        );
        Receiver {
            riptide,
            connector,
            public,
            client_port,
            peer,
            usd,
            wallet_usd,
            wallet_eur,
        }
    }

    /// The arguments every client mode starts with: its plugin's port, riptide's
    /// ILP-over-HTTP URL, and the two tokens.
    fn plugin_args(&self) -> Vec<String> {
        vec![
            self.client_port.to_string(),
            format!("http://127.0.0.1:{}/ilp", self.connector),
            format!("riptide-to-{}-0123456789", self.peer),
            format!("{}-to-riptide-0123456789", self.peer),
        ]
    }

    fn spsp_url(&self, wallet: &str) -> String {
        format!("http://127.0.0.1:{}/{wallet}", self.public)
    }

    fn run_client(&self, mode: &str, args: &[String], limit: Duration) -> Value {
        self.run_client_with_env(mode, args, limit, &[])
    }

    fn run_client_with_env(
        &self,
        mode: &str,
        args: &[String],
        limit: Duration,
        env: &[(&str, &str)],
    ) -> Value {
        let mut all = vec![mode.to_owned()];
        all.extend(self.plugin_args());
        all.extend_from_slice(args);
        let mut script = NodeScript::start_with_env("receiver_clients.js", &all, env);
        let result = script.next_json(limit);
        println!("{mode}: {result}");
        result
    }

    /// A posted balance from the admin API, by account kind and name.
    fn balance(&self, kind: &str, name: &str) -> i128 {
        let response = self.riptide.admin_request("GET", "/v1/balances", b"");
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let body: Value = serde_json::from_slice(&response.body).expect("balances JSON");
        let row = body["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .find(|row| row["kind"] == kind && row["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} account {name}"))
            .clone();
        assert_eq!(row["debits_pending"], "0", "nothing pending on {name}");
        assert_eq!(row["credits_pending"], "0", "nothing pending on {name}");
        row["balance"]
            .as_str()
            .expect("balance")
            .parse()
            .expect("number")
    }

    fn admin_json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .riptide
            .admin_request(method, path, body.to_string().as_bytes());
        let parsed = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, parsed)
    }

    fn spsp(&self, path: &str, headers: &[(&str, &str)]) -> riptide_tests::dataplane::HttpResponse {
        HttpClient::new(SocketAddr::from(([127, 0, 0, 1], self.public)))
            .request("GET", path, headers, b"")
            .expect("SPSP request")
    }
}

fn redis_connection_total(redis_url: &str, wallet: &str, destination: &str) -> u64 {
    let client = redis::Client::open(redis_url).expect("Redis URL");
    let mut connection = client.get_connection().expect("Redis connection");
    let key = connection_key(wallet, &connection_id_hex(destination));
    let total: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query(&mut connection)
        .expect("GET");
    total.map_or(0, |t| t.parse().expect("a number"))
}

fn number(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.parse().expect("numeric string"),
        Value::Number(n) => n.as_u64().expect("u64"),
        other => panic!("not a number: {other}"),
    }
}

#[test]
fn spsp_payment_with_receipts_agrees_in_client_redis_and_tigerbeetle() {
    let redis_url = shared_redis().url();
    let receiver = Receiver::start(Backends::Real {
        redis_url: &redis_url,
    });
    let (nonce, secret) = ([0x11u8; 16], [0x22u8; 32]);
    let result = receiver.run_client(
        "spsp",
        &[
            receiver.spsp_url(&receiver.wallet_usd),
            "12345".into(),
            STANDARD.encode(nonce),
            STANDARD.encode(secret),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(result["error"], Value::Null, "{result}");
    assert_eq!(result["receiptsEnabled"], true);
    assert_eq!(number(&result["sent"]), 12_345);
    assert_eq!(number(&result["delivered"]), 12_345);
    let destination = result["destination"].as_str().expect("destination");
    assert_eq!(
        redis_connection_total(&redis_url, &receiver.wallet_usd, destination),
        12_345
    );
    assert_eq!(receiver.balance("receiving", &receiver.wallet_usd), 12_345);
    assert_eq!(
        receiver.balance("peer", &receiver.peer),
        i128::from(PEER_LIQUIDITY) - 12_345
    );
    let receipt = STANDARD
        .decode(result["receipt"].as_str().expect("a receipt"))
        .expect("base64");
    let receipt = Receipt::verify(&receipt, &secret).expect("receipt verifies");
    assert_eq!((receipt.nonce, receipt.total_received), (nonce, 12_345));
}

#[test]
fn spsp_payment_across_currencies_credits_the_converted_amount() {
    let redis_url = shared_redis().url();
    let receiver = Receiver::start(Backends::Real {
        redis_url: &redis_url,
    });
    let result = receiver.run_client(
        "spsp",
        &[receiver.spsp_url(&receiver.wallet_eur), "20000".into()],
        Duration::from_secs(60),
    );
    assert_eq!(result["error"], Value::Null, "{result}");
    assert_eq!(result["receipt"], Value::Null, "no receipts were asked for");
    assert_eq!(number(&result["sent"]), 20_000);
    let delivered = number(&result["delivered"]);
    assert_eq!(delivered, 10_000, "USD 200.00 at 0.5 is EUR 100.00");
    let destination = result["destination"].as_str().expect("destination");
    assert_eq!(
        redis_connection_total(&redis_url, &receiver.wallet_eur, destination),
        delivered
    );
    assert_eq!(
        receiver.balance("receiving", &receiver.wallet_eur),
        i128::from(delivered)
    );
    assert_eq!(
        receiver.balance("peer", &receiver.peer),
        i128::from(PEER_LIQUIDITY) - 20_000
    );
}

fn create_payment(receiver: &Receiver, amount: u64) -> Value {
    create_payment_expiring(receiver, amount, 600_000)
}

fn create_payment_expiring(receiver: &Receiver, amount: u64, expires_in_ms: u64) -> Value {
    let (status, payment) = receiver.admin_json(
        "POST",
        "/v1/incoming-payments",
        &serde_json::json!({
            "wallet": receiver.wallet_usd,
            "incoming_amount": amount,
            "expires_in_ms": expires_in_ms,
        }),
    );
    assert_eq!(status, 201, "{payment}");
    assert_eq!(payment["state"], "pending");
    payment
}

fn payment_state(receiver: &Receiver, id: &str) -> Value {
    let (status, payment) =
        receiver.admin_json("GET", &format!("/v1/incoming-payments/{id}"), &Value::Null);
    assert_eq!(status, 200, "{payment}");
    payment
}

#[test]
fn interledger_pay_completes_an_incoming_payment_and_no_more_is_taken() {
    let redis_url = shared_redis().url();
    let receiver = Receiver::start(Backends::Real {
        redis_url: &redis_url,
    });
    let payment = create_payment(&receiver, 4_321);
    let id = payment["id"].as_str().expect("id");
    let result = receiver.run_client(
        "pay",
        &[
            "-".into(),
            payment["ilp_address"].as_str().expect("address").into(),
            payment["shared_secret"].as_str().expect("secret").into(),
            "4321".into(),
            receiver.usd.clone(),
            "2".into(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(result["error"], Value::Null, "{result}");
    assert_eq!(result["delivered"], "4321");
    assert_eq!(result["destinationAsset"]["code"], receiver.usd.as_str());
    let state = payment_state(&receiver, id);
    assert_eq!(
        (state["received"].as_str(), state["state"].as_str()),
        (Some("4321"), Some("completed"))
    );
    assert_eq!(receiver.balance("receiving", &receiver.wallet_usd), 4_321);

    // A completed payment takes nothing more, and tells the sender to close.
    let more = receiver.run_client(
        "stream",
        &[
            payment["ilp_address"].as_str().expect("address").into(),
            payment["shared_secret"].as_str().expect("secret").into(),
            "100".into(),
            "3000".into(),
        ],
        Duration::from_secs(30),
    );
    assert_ne!(more["error"], Value::Null, "{more}");
    assert_eq!(number(&more["delivered"]), 0);
    assert_eq!(payment_state(&receiver, id)["received"], "4321");
    assert_eq!(receiver.balance("receiving", &receiver.wallet_usd), 4_321);
    let (status, _) = receiver.admin_json(
        "POST",
        &format!("/v1/incoming-payments/{id}/credentials"),
        &Value::Null,
    );
    assert_eq!(status, 409, "no new credentials for a completed payment");
}

#[test]
fn concurrent_connections_never_overpay_an_incoming_payment() {
    let redis_url = shared_redis().url();
    let receiver = Receiver::start(Backends::Real {
        redis_url: &redis_url,
    });
    let cap = 9_000;
    let payment = create_payment(&receiver, cap);
    let id = payment["id"].as_str().expect("id").to_owned();
    let senders: Vec<NodeScript> = (0..3)
        .map(|i| {
            let (status, credentials) = receiver.admin_json(
                "POST",
                &format!("/v1/incoming-payments/{id}/credentials"),
                &Value::Null,
            );
            assert_eq!(status, 200, "{credentials}");
            let mut args = vec!["stream".to_owned()];
            let mut plugin = receiver.plugin_args();
            plugin[0] = free_loopback_port().to_string();
            // Each sender listens on its own port; riptide answers on the HTTP
            // response, so it never calls these back.
            args.extend(plugin);
            args.extend([
                credentials["ilp_address"]
                    .as_str()
                    .expect("address")
                    .to_owned(),
                credentials["shared_secret"]
                    .as_str()
                    .expect("secret")
                    .to_owned(),
                (4_000 + i).to_string(),
                "8000".into(),
            ]);
            NodeScript::start("receiver_clients.js", &args)
        })
        .collect();
    let mut delivered_sum = 0;
    for mut sender in senders {
        let result = sender.next_json(Duration::from_secs(60));
        eprintln!("sender: {result}");
        delivered_sum += number(&result["delivered"]);
    }
    let received = number(&payment_state(&receiver, &id)["received"]);
    assert!(received <= cap, "received {received} past the cap {cap}");
    assert_eq!(
        received, cap,
        "the senders asked for more, and StreamMaxMoney led them to the cap"
    );
    assert_eq!(received, delivered_sum, "clients and store agree");
    assert_eq!(
        receiver.balance("receiving", &receiver.wallet_usd),
        i128::from(received),
        "ledger and store agree"
    );
    assert_eq!(
        receiver.balance("peer", &receiver.peer),
        i128::from(PEER_LIQUIDITY) - i128::from(received)
    );
}

/// The bundled load generator's `stream` (event-driven, several connections,
/// each with its own SPSP connection) pays a wallet as the README runs it; with
/// no warm-up every answer is counted, so what it reports fulfilled is, to the
/// unit, what the wallet received in TigerBeetle.
#[test]
fn the_load_generator_pays_a_wallet_exactly_what_it_reports() {
    let redis_url = shared_redis().url();
    let receiver = Receiver::start(Backends::Real {
        redis_url: &redis_url,
    });
    let output = std::process::Command::new(workspace_binary("riptide-loadgen"))
        .args([
            "stream",
            "--target",
            &format!("http://127.0.0.1:{}/ilp", receiver.connector),
            "--token",
            &format!("{}-to-riptide-0123456789", receiver.peer),
            "--spsp",
            &format!(
                "http://127.0.0.1:{}/{}",
                receiver.public, receiver.wallet_usd
            ),
            "--connections",
            "8",
            "--threads",
            "2",
            "--warmup-s",
            "0",
            "--duration-s",
            "2",
            // Paced, so that the shared TigerBeetle and Redis keep up beside the
            // other tests; a reject (a store timeout under load) moves no money
            // and would not break the count below.
            "--rate",
            "400",
            "--amount",
            "3",
            "--json",
        ])
        .output()
        .expect("run riptide-loadgen");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the report is JSON");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    let fulfilled = number(&report["fulfilled"]);
    assert!(fulfilled > 0, "{report}");
    let amount: i128 = report["amount_fulfilled"]
        .as_str()
        .and_then(|amount| amount.parse().ok())
        .unwrap_or_else(|| panic!("amount_fulfilled in {report}"));
    assert_eq!(amount, 3 * i128::from(fulfilled));
    assert_eq!(receiver.balance("receiving", &receiver.wallet_usd), amount);
    // Each fulfilled packet's count went to Redis in a pipeline, as /metrics says
    // (the shards publish their counters once a second).
    let (pipelines, ops) = store_pipeline_counters(&receiver, fulfilled);
    assert!(
        pipelines >= 1 && ops >= fulfilled && pipelines <= ops,
        "{pipelines} pipelines carried {ops} operations for {fulfilled} packets"
    );
    assert_eq!(
        receiver.balance("peer", &receiver.peer),
        i128::from(PEER_LIQUIDITY) - amount
    );
}

/// `riptide_store_pipelines_total` and `riptide_store_pipeline_ops_total` once
/// the operations reach `ops_at_least`, or as they are after 5 s.
fn store_pipeline_counters(receiver: &Receiver, ops_at_least: u64) -> (u64, u64) {
    let started = std::time::Instant::now();
    loop {
        let response = receiver.riptide.admin_request("GET", "/metrics", b"");
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let counter = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let counters = (
            counter("riptide_store_pipelines_total "),
            counter("riptide_store_pipeline_ops_total "),
        );
        if counters.1 >= ops_at_least || started.elapsed() > Duration::from_secs(5) {
            return counters;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn spsp_credentials(receiver: &Receiver, wallet: &str) -> (String, Vec<u8>) {
    riptide_tests::dataplane::spsp_credentials(
        SocketAddr::from(([127, 0, 0, 1], receiver.public)),
        wallet,
    )
}

#[test]
fn a_failed_store_voids_the_hold_and_counts_nothing() {
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let receiver = Receiver::start(Backends::Real {
        redis_url: &redis_url,
    });
    let (destination, secret) = spsp_credentials(&receiver, &receiver.wallet_usd);
    let mut client = StreamClient::new(&destination, &secret);
    let mut http = HttpClient::new(SocketAddr::from(([127, 0, 0, 1], receiver.connector)));
    let token = format!("{}-to-riptide-0123456789", receiver.peer);
    let reply = http
        .post_packet(&token, &client.prepare(700, 700, false))
        .expect("POST");
    assert_eq!(
        client.read_reply(&reply.body).code,
        None,
        "first packet fulfilled"
    );

    drop(redis);
    let reply = http
        .post_packet(&token, &client.prepare(300, 300, false))
        .expect("POST");
    let read = client.read_reply(&reply.body);
    assert_eq!(read.code, Some(ErrorCode::T00), "{read:?}");
    assert_eq!(receiver.balance("receiving", &receiver.wallet_usd), 700);
    assert_eq!(
        receiver.balance("peer", &receiver.peer),
        i128::from(PEER_LIQUIDITY) - 700
    );
}

#[test]
fn probes_minimums_and_unknown_destinations_get_the_protocol_answers() {
    let receiver = Receiver::start(Backends::Embedded);
    let (destination, secret) = spsp_credentials(&receiver, &receiver.wallet_eur);
    let mut client = StreamClient::new(&destination, &secret);
    let mut http = HttpClient::new(SocketAddr::from(([127, 0, 0, 1], receiver.connector)));
    let token = format!("{}-to-riptide-0123456789", receiver.peer);
    let mut send = |prepare: Vec<u8>| http.post_packet(&token, &prepare).expect("POST").body;

    // A rate probe learns the converted amount and moves nothing.
    let packet = client.prepare(1_000_000, 0, true);
    let probe = client.read_reply(&send(packet));
    assert_eq!(
        (probe.code, probe.amount_arrived),
        (Some(ErrorCode::F99), Some(500_000))
    );
    // Below the sender's minimum: declined with what arrived.
    let packet = client.prepare(100, 51, false);
    let low = client.read_reply(&send(packet));
    assert_eq!(
        (low.code, low.amount_arrived),
        (Some(ErrorCode::F99), Some(50))
    );
    let packet = client.prepare(100, 50, false);
    let paid = client.read_reply(&send(packet));
    assert_eq!((paid.code, paid.amount_arrived), (None, Some(50)));
    assert!(
        paid.frames.iter().any(|f| f.contains("total_received: 50")),
        "{paid:?}"
    );
    assert_eq!(receiver.balance("receiving", &receiver.wallet_eur), 50);

    // Unknown tokens and addresses: bare rejects that say nothing.
    for (address, code) in [
        ("test.riptide.bm90LWEtdG9rZW4", ErrorCode::F06),
        ("test.riptide", ErrorCode::F02),
    ] {
        let mut stranger = StreamClient::new(address, &[9; 32]);
        let packet = stranger.prepare(10, 0, false);
        let read = stranger.read_reply(&send(packet));
        assert_eq!(
            (read.code, read.message.len(), read.amount_arrived),
            (Some(code), 0, None)
        );
    }
}

/// Pays `destination` with both npm clients (`ilp-protocol-stream` with a 20 s
/// timeout, then `@interledger/pay`), each expected to fail at once with nothing
/// delivered; gives their errors.
fn both_clients_fail_at_once(receiver: &Receiver, destination: &str, secret: &str) -> [String; 2] {
    let streamed = receiver.run_client(
        "stream",
        &[
            destination.into(),
            secret.into(),
            "100".into(),
            "20000".into(),
        ],
        Duration::from_secs(40),
    );
    let paid = receiver.run_client(
        "pay",
        &[
            "-".into(),
            destination.into(),
            secret.into(),
            "100".into(),
            receiver.usd.clone(),
            "2".into(),
        ],
        Duration::from_secs(40),
    );
    [streamed, paid].map(|result| {
        assert_eq!(number(&result["delivered"]), 0, "{result}");
        let elapsed_ms = result["elapsedMs"].as_u64().expect("elapsedMs");
        assert!(elapsed_ms < 5_000, "not at once: {result}");
        result["error"].as_str().expect("an error").to_owned()
    })
}

/// Rafiki answers F02 for a completed or expired incoming payment and for a token
/// under its address that does not decrypt; Riptide answers F99 with a STREAM
/// `ConnectionClose` for the first two (the sender learns the receiver closed) and
/// F06 for the last. Both npm clients end at once on each, well before their own
/// timeouts, and `@interledger/pay` names the receiver's close.
#[test]
fn closed_payments_and_foreign_tokens_end_both_clients_at_once() {
    let redis_url = shared_redis().url();
    let receiver = Receiver::start(Backends::Real {
        redis_url: &redis_url,
    });
    let completed = create_payment(&receiver, 100);
    let credentials = |payment: &Value| {
        (
            payment["ilp_address"].as_str().expect("address").to_owned(),
            payment["shared_secret"]
                .as_str()
                .expect("secret")
                .to_owned(),
        )
    };
    let (address, secret) = credentials(&completed);
    let first = receiver.run_client(
        "stream",
        &[
            address.clone(),
            secret.clone(),
            "100".into(),
            "20000".into(),
        ],
        Duration::from_secs(40),
    );
    assert_eq!(number(&first["delivered"]), 100, "{first}");
    let id = completed["id"].as_str().expect("id");
    assert_eq!(payment_state(&receiver, id)["state"], "completed");
    let [_, paid] = both_clients_fail_at_once(&receiver, &address, &secret);
    assert_eq!(paid, "ClosedByReceiver", "a completed payment");

    let expiring = create_payment_expiring(&receiver, 100, 300);
    std::thread::sleep(Duration::from_millis(1_500));
    let id = expiring["id"].as_str().expect("id");
    assert_eq!(payment_state(&receiver, id)["state"], "expired");
    let (address, secret) = credentials(&expiring);
    let [_, paid] = both_clients_fail_at_once(&receiver, &address, &secret);
    assert_eq!(paid, "ClosedByReceiver", "an expired payment");

    let foreign = "test.riptide.bm90LWEtdG9rZW4";
    let [_, paid] = both_clients_fail_at_once(&receiver, foreign, &secret);
    assert_eq!(paid, "EstablishmentFailed", "a token that does not decrypt");
    assert_eq!(receiver.balance("receiving", &receiver.wallet_usd), 100);
}

/// `@interledger/pay` queries SPSP itself, as it does for a payment pointer, and
/// reads Riptide's answer (standard base64 secret, `application/spsp4+json`). It
/// refuses URLs with a port, so the test maps a name onto the public port the way
/// a proxy in front of it would.
#[test]
fn interledger_pay_pays_a_wallet_through_riptides_spsp_answer() {
    let receiver = Receiver::start(Backends::Embedded);
    let mapping = format!("riptide.test=127.0.0.1:{}", receiver.public);
    let result = receiver.run_client_with_env(
        "pay",
        &[
            format!("http://riptide.test/{}", receiver.wallet_usd),
            "-".into(),
            "-".into(),
            "2500".into(),
            receiver.usd.clone(),
            "2".into(),
        ],
        Duration::from_secs(60),
        &[("RIPTIDE_MAP_HOST", &mapping)],
    );
    assert_eq!(result["error"], Value::Null, "{result}");
    assert_eq!(result["delivered"], "2500");
    assert_eq!(receiver.balance("receiving", &receiver.wallet_usd), 2_500);
}

#[test]
fn spsp_answers_as_the_rfc_says() {
    let receiver = Receiver::start(Backends::Embedded);
    let accept = ("Accept", "application/spsp4+json, application/spsp+json");
    let ok = receiver.spsp(&format!("/{}", receiver.wallet_usd), &[accept]);
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers.get("content-type").map(String::as_str),
        Some("application/spsp4+json")
    );
    assert_eq!(
        ok.headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some("*")
    );
    let body: Value = serde_json::from_slice(&ok.body).expect("JSON");
    assert_eq!(body["receipts_enabled"], false);
    assert!(body["destination_account"]
        .as_str()
        .is_some_and(|d| d.starts_with("test.riptide.")));
    assert_eq!(
        STANDARD
            .decode(body["shared_secret"].as_str().expect("secret"))
            .map(|s| s.len()),
        Ok(32)
    );
    let again: Value = serde_json::from_slice(
        &receiver
            .spsp(&format!("/{}", receiver.wallet_usd), &[accept])
            .body,
    )
    .expect("JSON");
    assert_ne!(
        again["destination_account"], body["destination_account"],
        "fresh each time"
    );

    let unknown = receiver.spsp("/nobody", &[accept]);
    assert_eq!(unknown.status, 404);
    let unknown: Value = serde_json::from_slice(&unknown.body).expect("JSON");
    assert_eq!(unknown["id"], "InvalidReceiverError");
    assert_eq!(
        receiver
            .spsp(
                &format!("/{}", receiver.wallet_usd),
                &[("Accept", "text/html")]
            )
            .status,
        406
    );
    let half = receiver.spsp(
        &format!("/{}", receiver.wallet_usd),
        &[accept, ("Receipt-Nonce", "AAAAAAAAAAAAAAAAAAAAAA==")],
    );
    assert_eq!(half.status, 400);
    let both = receiver.spsp(
        &format!("/{}", receiver.wallet_usd),
        &[
            accept,
            ("Receipt-Nonce", "AAAAAAAAAAAAAAAAAAAAAA=="),
            (
                "Receipt-Secret",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ],
    );
    assert_eq!(both.status, 200);
    let both: Value = serde_json::from_slice(&both.body).expect("JSON");
    assert_eq!(both["receipts_enabled"], true);
}
