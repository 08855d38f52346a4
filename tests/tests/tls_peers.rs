//! TLS towards others, against real TLS servers, with certificates made here
//! (rcgen): forwarding to peers at `https://` outgoing URLs (Node's own https
//! server with `ilp-packet` fulfilling each Prepare) over kept-alive TLS
//! connections and in bursts, where a pinned CA is the only one trusted for its
//! peer and a certificate that names another host, or one from a CA nobody trusts,
//! is refused (T01); and the rates feed, webhook receivers and OTLP collectors at
//! `https://` (a rustls server).

use riptide_proto::packet::{Fulfill, Reject};
use riptide_tests::dataplane::{
    node_section, prepare_for_sink, HttpClient, NodeScript, RiptideProcess,
};
use riptide_tests::fixtures::{assets_toml, free_node_ports, ADMIN_TOKEN};
use riptide_tests::free_loopback_port;
use riptide_tests::https_server::HttpsServer;
use riptide_tests::pki::TestCa;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ALICE_TOKEN: &str = "alice-token-0123456789";
const SINK_TOKEN: &str = "riptide-to-tls-sink-0123456789";

/// A CA, and a certificate for `localhost` (only) that it signed: PEMs of the CA,
/// the certificate and its key.
fn certificates() -> (String, String, String) {
    let ca = TestCa::new("Riptide test CA");
    let server = ca.issue(&["localhost"]);
    (ca.pem, server.certificate_pem, server.key_pem)
}

fn peer(id: &str, url: &str, pinned_ca: Option<&str>) -> String {
    let pin = pinned_ca
        .map(|pem| format!("outgoing_ca_pem = '''\n{pem}'''\n"))
        .unwrap_or_default();
    format!(
        "[[peers]]\nid = \"{id}\"\nasset = \"USD\"\noutgoing_url = \"{url}\"\noutgoing_token = \"{SINK_TOKEN}\"\nroutes = [\"test.{id}\"]\noutgoing_pipeline_max = 8\n{pin}\n"
    )
}

fn start(sink_port: u16, ca_pem: &str) -> RiptideProcess {
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 1, 1_000_000)]);
    let peers = [
        peer(
            "bob",
            &format!("https://localhost:{sink_port}/ilp"),
            Some(ca_pem),
        ),
        // The same server by its IP address: the certificate names localhost only.
        peer(
            "byip",
            &format!("https://127.0.0.1:{sink_port}/ilp"),
            Some(ca_pem),
        ),
        // The web's roots only: the test CA is not among them.
        peer(
            "unpinned",
            &format!("https://localhost:{sink_port}/ilp"),
            None,
        ),
    ]
    .concat();
    let text = format!(
        "{node}\n{assets}\n[[peers]]\nid = \"alice\"\nasset = \"USD\"\nincoming_tokens = [\"{ALICE_TOKEN}\"]\ninitial_liquidity = 1000000\n\n{peers}"
    );
    RiptideProcess::start_at(&text, ports, 2)
}

fn send(riptide: &RiptideProcess, destination: &str, seed: u8) -> Vec<u8> {
    let packet = prepare_for_sink(10, destination, Duration::from_secs(20), [seed; 32]);
    HttpClient::new(riptide.connector)
        .post_packet(ALICE_TOKEN, &packet)
        .expect("an answer")
        .body
}

#[test]
fn packets_go_to_tls_peers_over_kept_connections_and_bad_certificates_are_refused() {
    let (ca_pem, certificate_pem, key_pem) = certificates();
    let dir = tempfile::tempdir().expect("temp dir");
    let (key_file, certificate_file) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    std::fs::write(&key_file, key_pem).expect("key");
    std::fs::write(&certificate_file, certificate_pem).expect("certificate");
    let sink_port = free_loopback_port();
    let mut sink = NodeScript::start(
        "https_sink.js",
        &[
            sink_port.to_string(),
            key_file.display().to_string(),
            certificate_file.display().to_string(),
            SINK_TOKEN.to_owned(),
        ],
    );
    assert_eq!(
        sink.next_json(Duration::from_secs(20))["listening"],
        sink_port
    );
    let riptide = start(sink_port, &ca_pem);

    let senders: Vec<_> = (0..24u8)
        .map(|seed| {
            let connector = riptide.connector;
            std::thread::spawn(move || {
                let packet =
                    prepare_for_sink(10, "test.bob.x", Duration::from_secs(20), [seed; 32]);
                HttpClient::new(connector)
                    .post_packet(ALICE_TOKEN, &packet)
                    .expect("an answer")
                    .body
            })
        })
        .collect();
    for sender in senders {
        let reply = sender.join().expect("sender");
        let fulfill = Fulfill::parse(&reply).expect("fulfilled over TLS");
        assert_eq!(fulfill.data, b"over tls");
    }
    for seed in 0..8u8 {
        assert!(Fulfill::parse(&send(&riptide, "test.bob.y", seed)).is_ok());
    }
    let started = Instant::now();
    loop {
        let counts = sink.next_json(Duration::from_secs(5));
        if counts["served"] == 32 {
            let connections = counts["connections"].as_u64().expect("count");
            println!("{connections} TLS connections carried 32 packets");
            assert!(
                connections <= 24,
                "{connections} TLS connections for 32 packets"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{counts}");
    }

    for (destination, why) in [
        ("test.byip.x", "a certificate for another name"),
        ("test.unpinned.x", "a CA that is not trusted"),
    ] {
        let reply = send(&riptide, destination, 99);
        let reject = Reject::parse(&reply).unwrap_or_else(|_| panic!("{why}: not refused"));
        assert_eq!(reject.code.to_string(), "T01", "{why}");
    }
}

#[test]
fn the_rates_feed_webhooks_and_otlp_are_reached_over_https() {
    let (ca_pem, certificate_pem, key_pem) = certificates();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("CA file");
    let server = HttpsServer::start(
        &certificate_pem,
        &key_pem,
        Arc::new(|request| match request.method_and_path() {
            Some(("GET", path)) if path.starts_with("/rates") => {
                (200, br#"{"base":"USD","rates":{"EUR":0.5}}"#.to_vec())
            }
            _ => (200, Vec::new()),
        }),
    );
    let carol = riptide_tests::dataplane::SinkPeer::start(
        riptide_tests::dataplane::SinkBehaviour::FulfillFromData,
    );
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 1, 1_000_000), ("EUR", 2, 1_000_000)]);
    let (rates_url, hooks_url, carol_url) =
        (server.url("/rates"), server.url("/hooks"), carol.url());
    let otlp_url = server.url("");
    let text = format!(
        "{node}\n[tls]\nca_files = [\"{ca}\"]\n\n[webhooks]\nurl = \"{hooks_url}\"\ncheck_interval_ms = 200\n\n\
[telemetry]\notlp_urls = [\"{otlp_url}\"]\nexport_interval_ms = 200\n\n{assets}\n\
[[peers]]\nid = \"alice\"\nasset = \"USD\"\nincoming_tokens = [\"{ALICE_TOKEN}\"]\ninitial_liquidity = 1000000\n\n\
[[peers]]\nid = \"carol\"\nasset = \"EUR\"\noutgoing_url = \"{carol_url}\"\noutgoing_token = \"{SINK_TOKEN}\"\nroutes = [\"test.carol\"]\n\n\
[[wallets]]\nid = \"shop\"\nasset = \"USD\"\n\n[rates]\nbase = \"USD\"\nurl = \"{rates_url}\"\nlifetime_ms = 300\n",
        ca = ca_file.display()
    );
    let riptide = RiptideProcess::start_at(&text, ports, 2);
    // Cross-currency packets convert once the feed has answered over TLS.
    let started = Instant::now();
    loop {
        let reply = send(&riptide, "test.carol.x", 5);
        let received = carol.received().last().and_then(|request| {
            riptide_proto::packet::Prepare::parse(&request.body)
                .ok()
                .map(|p| p.amount)
        });
        if Fulfill::parse(&reply).is_ok() && received == Some(5) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the https feed never applied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // An event reaches the https receiver.
    let created = riptide.admin_request(
        "POST",
        "/v1/incoming-payments",
        br#"{"wallet":"shop","incoming_amount":"100"}"#,
    );
    assert_eq!(created.status, 201);
    wait_for_post(&server, "/hooks", "incoming_payment.created");
    // And OTLP metrics reach the https collector.
    wait_for_post(&server, "/v1/metrics", "packet_count_prepare");
}

/// Waits (10 s at most) until `server` got a POST to `path` whose body has `needle`.
fn wait_for_post(server: &HttpsServer, path: &str, needle: &str) {
    let started = Instant::now();
    while !server.requests().iter().any(|request| {
        request.method_and_path() == Some(("POST", path))
            && String::from_utf8_lossy(&request.body).contains(needle)
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no POST {path} with {needle} over https"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
