//! The admin API of a running riptide: state pushes with versions take effect on the
//! next packets, tokens of removed peers are refused, status and metrics report.
#![allow(clippy::too_many_lines)] // test code

use riptide_proto::packet::{ErrorCode, Fulfill, Packet, Reject};
use riptide_tests::dataplane::{
    node_section, prepare_for_sink, HttpClient, RiptideProcess, SinkBehaviour, SinkPeer,
};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

fn start(sink: &SinkPeer) -> RiptideProcess {
    let (connector, admin, public) = free_node_ports();
    let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
    let config = format!(
        r#"
{node}

[[assets]]
code = "USD"
scale = 2
ledger = 1

[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["alice-token-0123456789"]
initial_liquidity = 1000000
max_packet_amount = 1000

[[peers]]
id = "bob"
asset = "USD"
outgoing_url = "{}"
outgoing_token = "to-bob"
routes = ["test.bob"]
"#,
        sink.url()
    );
    RiptideProcess::start(
        &config,
        SocketAddr::from(([127, 0, 0, 1], connector)),
        SocketAddr::from(([127, 0, 0, 1], admin)),
        ADMIN_TOKEN,
        2,
    )
}

fn state(version: u64, max_packet_amount: u64, with_alice: bool, sink: &SinkPeer) -> Vec<u8> {
    let mut peers = vec![
        json!({"id": "bob", "asset": "USD", "outgoing_url": sink.url(), "outgoing_token": "to-bob", "routes": ["test.bob"]}),
    ];
    if with_alice {
        peers.push(json!({"id": "alice", "asset": "USD", "incoming_tokens": ["alice-token-0123456789"], "initial_liquidity": 1000000, "max_packet_amount": max_packet_amount}));
    }
    let document = json!({"version": version, "assets": [{"code": "USD", "scale": 2, "ledger": 1}], "peers": peers});
    serde_json::to_vec(&document).expect("JSON")
}

fn send_amount(riptide: &RiptideProcess, amount: u64, seed: u8) -> (u16, Vec<u8>) {
    let prepare = prepare_for_sink(amount, "test.bob.x", Duration::from_secs(20), [seed; 32]);
    let response = HttpClient::new(riptide.connector)
        .post_packet("alice-token-0123456789", &prepare)
        .expect("http");
    (response.status, response.body)
}

#[test]
fn state_pushes_take_effect() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let riptide = start(&sink);
    let (status, reply) = send_amount(&riptide, 1500, 1);
    assert_eq!(status, 200);
    assert_eq!(Reject::parse(&reply).expect("reject").code, ErrorCode::F08);

    let pushed = riptide.admin_request("PUT", "/v1/state", &state(2, 2000, true, &sink));
    assert_eq!(
        pushed.status,
        200,
        "{}",
        String::from_utf8_lossy(&pushed.body)
    );
    let (_, reply) = send_amount(&riptide, 1500, 2);
    assert!(
        Fulfill::parse(&reply).is_ok(),
        "the raised maximum applies: {:?}",
        Packet::parse(&reply)
    );

    let same = riptide.admin_request("PUT", "/v1/state", &state(2, 10, true, &sink));
    assert_eq!(same.status, 200);
    assert!(String::from_utf8_lossy(&same.body).contains("\"changed\":false"));
    let older = riptide.admin_request("PUT", "/v1/state", &state(1, 10, true, &sink));
    assert_eq!(older.status, 409);

    let invalid = riptide.admin_request(
        "PUT",
        "/v1/state",
        br#"{"version": 9, "peers": [{"id": "x", "asset": "GBP"}]}"#,
    );
    assert_eq!(invalid.status, 400);
    assert!(
        String::from_utf8_lossy(&invalid.body).contains("peers[0].asset: unknown asset"),
        "{}",
        String::from_utf8_lossy(&invalid.body)
    );

    let removed = riptide.admin_request("PUT", "/v1/state", &state(3, 2000, false, &sink));
    assert_eq!(removed.status, 200);
    let (status, _) = send_amount(&riptide, 10, 3);
    assert_eq!(status, 401, "a removed peer's token is refused");

    let current = riptide.admin_request("GET", "/v1/state", b"");
    let document: serde_json::Value = serde_json::from_slice(&current.body).expect("JSON");
    assert_eq!(document["version"], 3);
}

#[test]
fn status_metrics_and_auth() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let riptide = start(&sink);
    for seed in 0..3 {
        let (status, _) = send_amount(&riptide, 10, 10 + seed);
        assert_eq!(status, 200);
    }
    std::thread::sleep(Duration::from_millis(1200));
    let status = riptide.admin_request("GET", "/v1/status", b"");
    let body: serde_json::Value = serde_json::from_slice(&status.body).expect("JSON");
    assert_eq!(body["shards"], 2);
    assert_eq!(body["peers"]["alice"]["fulfilled"], 3);
    let metrics = riptide.admin_request("GET", "/metrics", b"");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("riptide_packets_total{peer=\"alice\",outcome=\"fulfilled\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("riptide_packet_latency_seconds_count 3"),
        "{text}"
    );
    let anonymous = HttpClient::new(riptide.admin)
        .request("GET", "/v1/status", &[], b"")
        .expect("http");
    assert_eq!(anonymous.status, 401);
    let wrong = HttpClient::new(riptide.admin)
        .request("GET", "/metrics", &[("Authorization", "Bearer nope")], b"")
        .expect("http");
    assert_eq!(wrong.status, 401);
}

#[test]
fn ledger_batches_are_measured() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let riptide = start(&sink);
    for seed in 0..4 {
        let (status, _) = send_amount(&riptide, 10, 40 + seed);
        assert_eq!(status, 200);
    }
    std::thread::sleep(Duration::from_millis(1200));
    let metrics = riptide.admin_request("GET", "/metrics", b"");
    let text = String::from_utf8_lossy(&metrics.body);
    // Each fulfilled packet makes two ledger requests: its hold and its post.
    assert!(
        text.contains("riptide_ledger_batch_events_count 8"),
        "{text}"
    );
    assert!(
        text.contains("riptide_ledger_request_seconds{quantile=\"0.5\"}"),
        "{text}"
    );
}
