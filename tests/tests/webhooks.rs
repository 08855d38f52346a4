//! Rafiki-style webhooks from the real binary: incoming payments created, completed
//! and expired, a peer's and an asset's liquidity at or below its threshold; each
//! event signed (`Rafiki-Signature`, checked here with ring's HMAC) and retried
//! until the receiver answers 200, with deliveries and failures in `/metrics`. The
//! incoming payments live in a real Redis.

use base64::Engine;
use riptide_proto::packet::Fulfill;
use riptide_tests::dataplane::{
    node_section, prepare_for_sink, HttpClient, RiptideProcess, SinkBehaviour, SinkPeer,
};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use riptide_tests::stream_client::StreamClient;
use riptide_tests::webhook_receiver::{signed_with, WebhookReceiver};
use serde_json::{json, Value};
use std::time::Duration;

const ALICE_TOKEN: &str = "alice-token-0123456789";
const SECRET: &str = "webhook-secret-for-tests";
const WAIT: Duration = Duration::from_secs(15);

fn start(receiver: &WebhookReceiver, sink: &SinkPeer) -> RiptideProcess {
    start_on(receiver, sink, &riptide_tests::shared_redis().url())
}

/// [`start`] on the Redis at `redis_url`: the incoming payments and the watch list
/// are there, and the watch reads them back from there.
fn start_on(receiver: &WebhookReceiver, sink: &SinkPeer, redis_url: &str) -> RiptideProcess {
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let (receiver_url, sink_url) = (receiver.url(), sink.url());
    // USD's threshold is above its liquidity: low from the first check.
    let text = format!(
        r#"{node}
[receipts]
redis_url = "{redis_url}"

[webhooks]
url = "{receiver_url}"
secret = "{SECRET}"
retry_backoff_ms = 200
check_interval_ms = 200

[[assets]]
code = "USD"
scale = 2
ledger = 1
initial_liquidity = 1000
liquidity_threshold = 5000

[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["{ALICE_TOKEN}"]
initial_liquidity = 10000
liquidity_threshold = 9000

[[peers]]
id = "bob"
asset = "USD"
outgoing_url = "{sink_url}"
outgoing_token = "riptide-to-bob-token"
routes = ["test.bob"]

[[wallets]]
id = "shop"
asset = "USD"
"#
    );
    RiptideProcess::start_at(&text, ports, 2)
}

fn create_payment(riptide: &RiptideProcess, request: &Value) -> Value {
    let response = riptide.admin_request(
        "POST",
        "/v1/incoming-payments",
        &serde_json::to_vec(request).expect("json"),
    );
    assert_eq!(response.status, 201);
    serde_json::from_slice(&response.body).expect("payment")
}

/// Pays `amount` into the payment's credentials as alice, with STREAM.
fn pay(riptide: &RiptideProcess, payment: &Value, amount: u64) {
    let secret = base64::engine::general_purpose::STANDARD
        .decode(payment["shared_secret"].as_str().expect("secret"))
        .expect("base64");
    let mut stream = StreamClient::new(payment["ilp_address"].as_str().expect("address"), &secret);
    let mut client = HttpClient::new(riptide.connector);
    let response = client
        .post_packet(ALICE_TOKEN, &stream.prepare(amount, 0, false))
        .expect("answer");
    assert!(
        Fulfill::parse(&response.body).is_ok(),
        "the payment is paid"
    );
}

/// Alice's liquidity falls to her threshold (9,000) after 1,000 units sent on; the
/// asset's is below its own from the start.
fn liquidity_falls_to_its_thresholds(riptide: &RiptideProcess, receiver: &WebhookReceiver) {
    let mut client = HttpClient::new(riptide.connector);
    for seed in 0..10u8 {
        let packet = prepare_for_sink(100, "test.bob.x", Duration::from_secs(20), [seed; 32]);
        let response = client.post_packet(ALICE_TOKEN, &packet).expect("answer");
        assert!(Fulfill::parse(&response.body).is_ok());
    }
    let peer_low = receiver.wait_for("peer.liquidity_low", |data| data["id"] == "alice", WAIT);
    assert_eq!(peer_low.body["data"]["liquidityThreshold"], "9000");
    assert_eq!(peer_low.body["data"]["asset"]["code"], "USD");
    let asset_low = receiver.wait_for("asset.liquidity_low", |data| data["id"] == "USD", WAIT);
    assert_eq!(asset_low.body["data"]["balance"], "1000");
}

#[test]
fn events_are_signed_retried_and_delivered() {
    // The first two deliveries fail: each is tried again.
    let receiver = WebhookReceiver::start(2);
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let riptide = start(&receiver, &sink);

    let paid = create_payment(
        &riptide,
        &json!({"wallet": "shop", "incoming_amount": "500", "expires_in_ms": 600_000}),
    );
    let lapsing = create_payment(
        &riptide,
        &json!({"wallet": "shop", "incoming_amount": "500", "expires_in_ms": 500}),
    );
    let id = |payment: &Value| payment["id"].as_str().expect("id").to_owned();
    let (paid_id, lapsing_id) = (id(&paid), id(&lapsing));
    let created = receiver.wait_for(
        "incoming_payment.created",
        |data| data["id"] == paid_id.as_str(),
        WAIT,
    );
    assert_eq!(created.body["data"]["walletAddressId"], "shop");
    assert_eq!(
        created.body["data"]["incomingAmount"],
        json!({"value": "500", "assetCode": "USD", "assetScale": 2})
    );
    assert!(signed_with(
        &created,
        SECRET.as_bytes(),
        Duration::from_secs(60)
    ));

    pay(&riptide, &paid, 500);
    let completed = receiver.wait_for(
        "incoming_payment.completed",
        |data| data["id"] == paid_id.as_str(),
        WAIT,
    );
    assert_eq!(completed.body["data"]["receivedAmount"]["value"], "500");
    assert_eq!(completed.body["data"]["completed"], true);
    receiver.wait_for(
        "incoming_payment.expired",
        |data| data["id"] == lapsing_id.as_str(),
        WAIT,
    );

    liquidity_falls_to_its_thresholds(&riptide, &receiver);

    let deliveries = receiver.deliveries();
    assert!(deliveries
        .iter()
        .all(|d| signed_with(d, SECRET.as_bytes(), Duration::from_secs(60))));
    // A low balance is announced once, not on every packet after.
    std::thread::sleep(Duration::from_millis(600));
    let alice_lows = receiver
        .deliveries()
        .iter()
        .filter(|d| d.answered == 200 && d.body["type"] == "peer.liquidity_low")
        .count();
    assert_eq!(alice_lows, 1);
    // Every event has an id of its own, and the retried ones arrived again.
    let ids: std::collections::HashSet<_> = deliveries
        .iter()
        .map(|d| d.body["id"].to_string())
        .collect();
    assert!(ids.len() >= 5);
    assert_eq!(deliveries.iter().filter(|d| d.answered == 500).count(), 2);
    let metrics = riptide.admin_request("GET", "/metrics", b"");
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        metrics.contains("riptide_webhooks_total{result=\"failed\"} 2"),
        "{metrics}"
    );
}

/// The watch list is in Redis: payments created before riptide was killed still
/// raise their completed and expired events after it restarts, once each.
#[test]
fn payments_created_before_a_restart_still_raise_their_events() {
    let receiver = WebhookReceiver::start(0);
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    // A Redis of its own: another test's data plane would watch the same list.
    let redis = riptide_tests::RedisServer::start();
    let mut riptide = start_on(&receiver, &sink, &redis.url());
    let paid = create_payment(
        &riptide,
        &json!({"wallet": "shop", "incoming_amount": "300", "expires_in_ms": 600_000}),
    );
    let lapsing = create_payment(
        &riptide,
        &json!({"wallet": "shop", "incoming_amount": "300", "expires_in_ms": 1_500}),
    );
    riptide.kill();
    riptide.restart(Duration::from_secs(20));
    pay(&riptide, &paid, 300);
    let id = |payment: &Value| payment["id"].as_str().expect("id").to_owned();
    let (paid_id, lapsing_id) = (id(&paid), id(&lapsing));
    receiver.wait_for(
        "incoming_payment.completed",
        |data| data["id"] == paid_id.as_str(),
        WAIT,
    );
    receiver.wait_for(
        "incoming_payment.expired",
        |data| data["id"] == lapsing_id.as_str(),
        WAIT,
    );
    std::thread::sleep(Duration::from_millis(600));
    let ends = receiver
        .deliveries()
        .iter()
        .filter(|d| {
            d.body["type"] == "incoming_payment.completed"
                || d.body["type"] == "incoming_payment.expired"
        })
        .count();
    assert_eq!(ends, 2, "one event each");
}
