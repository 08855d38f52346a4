//! Independent implementations on both sides of riptide: an `ilp-protocol-stream`
//! sender and receiver, each peered with riptide through `ilp-plugin-http`, pay
//! through it. Both learn their addresses from riptide by ILDCP, and the receiver's
//! replies travel back to the sender through riptide too.
#![allow(clippy::too_many_lines)] // test code

use riptide_tests::dataplane::{node_section, NodeScript, RiptideProcess};
use riptide_tests::fixtures::{assets_toml, ADMIN_TOKEN};
use riptide_tests::free_loopback_port;
use std::net::SocketAddr;
use std::time::Duration;

fn config(
    connector: u16,
    admin: u16,
    client_port: u16,
    server_port: u16,
    server_asset: &str,
    pipeline_max: u16,
) -> String {
    let public = free_loopback_port();
    let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 1, 1_000_000_000), ("EUR", 2, 1_000_000_000)]);
    format!(
        r#"
{node}

{assets}
[[peers]]
id = "jsclient"
asset = "USD"
incoming_tokens = ["client-to-riptide-0123456789"]
outgoing_url = "http://127.0.0.1:{client_port}/"
outgoing_token = "riptide-to-client-0123456789"
outgoing_pipeline_max = {pipeline_max}
initial_liquidity = 100000000
max_packet_amount = 5000

[[peers]]
id = "jsserver"
asset = "{server_asset}"
incoming_tokens = ["server-to-riptide-0123456789"]
outgoing_url = "http://127.0.0.1:{server_port}/"
outgoing_token = "riptide-to-server-0123456789"
outgoing_pipeline_max = {pipeline_max}
initial_liquidity = 100000000

[rates]
base = "USD"
rates = {{ USD = 1.0, EUR = 0.5 }}
"#
    )
}

/// Pays `amount` from the JS sender to the JS receiver; riptide sends to each in
/// bursts of up to `pipeline_max` Prepares.
fn pay(
    server_asset: &str,
    amount: u64,
    pipeline_max: u16,
) -> (serde_json::Value, serde_json::Value) {
    let (connector, admin) = (free_loopback_port(), free_loopback_port());
    let (client_port, server_port) = (free_loopback_port(), free_loopback_port());
    let text = config(
        connector,
        admin,
        client_port,
        server_port,
        server_asset,
        pipeline_max,
    );
    let riptide = RiptideProcess::start(
        &text,
        SocketAddr::from(([127, 0, 0, 1], connector)),
        SocketAddr::from(([127, 0, 0, 1], admin)),
        ADMIN_TOKEN,
        2,
    );
    let url = format!("http://127.0.0.1:{connector}/ilp");
    let expected_delivery = if server_asset == "EUR" {
        amount / 2
    } else {
        amount
    };
    let mut receiver = NodeScript::start(
        "stream_pay.js",
        &[
            "receiver".into(),
            server_port.to_string(),
            url.clone(),
            "riptide-to-server-0123456789".into(),
            "server-to-riptide-0123456789".into(),
            expected_delivery.to_string(),
            "40".into(),
        ],
    );
    let credentials = receiver.next_json(Duration::from_secs(30));
    let destination = credentials["destination"]
        .as_str()
        .expect("destination")
        .to_owned();
    assert!(
        destination.starts_with("test.riptide.jsserver."),
        "ILDCP gave {destination}"
    );
    let mut sender = NodeScript::start(
        "stream_pay.js",
        &[
            "sender".into(),
            client_port.to_string(),
            url,
            "riptide-to-client-0123456789".into(),
            "client-to-riptide-0123456789".into(),
            destination,
            credentials["secret"].as_str().expect("secret").to_owned(),
            amount.to_string(),
        ],
    );
    let sent = sender.next_json(Duration::from_secs(60));
    let received = receiver.next_json(Duration::from_secs(60));
    let status = riptide.admin_request("GET", "/v1/status", b"");
    assert_eq!(status.status, 200);
    (sent, received)
}

#[test]
fn javascript_stream_payment_through_riptide() {
    let (sent, received) = pay("USD", 20_000, 1);
    assert_eq!(
        sent["address"], "test.riptide.jsclient",
        "the sender learnt its address by ILDCP"
    );
    assert_eq!(sent["sent"], "20000");
    assert_eq!(received["received"], "20000");
    assert_eq!(sent["delivered"], "20000");
}

/// Also with riptide pipelining its Prepares to both JS peers (Node's HTTP server
/// answers pipelined requests in order).
#[test]
fn javascript_stream_payment_across_currencies() {
    let (sent, received) = pay("EUR", 20_000, 16);
    assert_eq!(sent["sent"], "20000");
    assert_eq!(
        received["received"], "10000",
        "USD 200.00 at 0.5 is EUR 100.00, floored per packet"
    );
    assert_eq!(sent["delivered"], received["received"]);
}
