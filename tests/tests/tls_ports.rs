//! TLS that Riptide serves and TLS towards Redis, against real processes:
//! `[tls] connector_port` and `public_port` with certificates made here (rcgen),
//! and `rediss://` to a Redis that speaks TLS only and asks for a client
//! certificate. The npm clients (`ilp-plugin-http`, `ilp-protocol-stream`) pay a
//! wallet over both TLS ports, trusting the test CA through `NODE_EXTRA_CA_CERTS`;
//! the payment must agree to the unit in the client, in Redis and in TigerBeetle.
//! A handshake that never finishes holds its connection no longer than a head
//! would, and a renewed certificate is served without a restart.
#![allow(clippy::too_many_lines)] // test code

use riptide_dataplane::store::connection_key;
use riptide_dataplane::store::redis::{open_client, RedisTls};
use riptide_proto::packet::Fulfill;
use riptide_proto::stream::connection_id_hex;
use riptide_tests::dataplane::{
    node_section, prepare_for_sink, HttpClient, HttpResponse, NodeScript, RiptideProcess,
    SinkBehaviour, SinkPeer,
};
use riptide_tests::fixtures::{assets_toml, free_node_ports, ADMIN_TOKEN};
use riptide_tests::pki::{Issued, TestCa};
use riptide_tests::{free_loopback_port, shared_tigerbeetle, RedisServer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JS_TOKEN_IN: &str = "riptide-to-js-0123456789";
const JS_TOKEN_OUT: &str = "js-to-riptide-0123456789";
const ALICE_TOKEN: &str = "alice-token-0123456789";
const SINK_TOKEN: &str = "riptide-to-sink-0123456789";

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `[tls]` serving `identity` on both ports.
fn tls_section(dir: &Path, identity: &Issued) -> String {
    let (certificate, key) = identity.write(dir, "riptide");
    format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nconnector_port = true\npublic_port = true\n",
        certificate.display(),
        key.display()
    )
}

/// The connection total that riptide keeps in Redis for `destination`, and its TTL.
fn redis_total_and_ttl(url: &str, tls: &RedisTls, destination: &str) -> (u64, i64) {
    let client = open_client(url, tls).expect("Redis client");
    let mut connection = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("Redis over TLS");
    let key = connection_key("shop", &connection_id_hex(destination));
    let total: String = redis::cmd("GET")
        .arg(&key)
        .query(&mut connection)
        .expect("GET");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query(&mut connection)
        .expect("TTL");
    (total.parse().expect("a number"), ttl)
}

#[test]
fn npm_clients_pay_over_tls_ports_with_totals_in_redis_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("Riptide test CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let (redis_certificate, redis_key) = ca.issue(&["localhost"]).write(dir.path(), "redis");
    let client_identity = ca.issue(&["riptide-client"]);
    let (client_certificate, client_key) = client_identity.write(dir.path(), "client");
    let redis = RedisServer::start_tls([&redis_certificate, &redis_key, &ca_file], true);

    let ports = free_node_ports();
    let client_port = free_loopback_port();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let tls = tls_section(dir.path(), &ca.issue(&["localhost"]));
    let ledger = 810_000 + std::process::id() % 1000;
    let assets = assets_toml(&[("USD", ledger, 1_000_000_000)]);
    let text = format!(
        "{node}\n{tls}\n[ledger]\nkind = \"tigerbeetle\"\naddresses = \"{tb}\"\n\n\
[receipts]\nredis_url = \"{redis_url}\"\nredis_tls_ca_file = \"{ca}\"\n\
redis_tls_cert_file = \"{cert}\"\nredis_tls_key_file = \"{key}\"\n\n\
{assets}\n\
[[peers]]\nid = \"js\"\nasset = \"USD\"\nincoming_tokens = [\"{JS_TOKEN_OUT}\"]\n\
outgoing_url = \"http://127.0.0.1:{client_port}/\"\noutgoing_token = \"{JS_TOKEN_IN}\"\n\
initial_liquidity = 10000000\n\n[[wallets]]\nid = \"shop\"\nasset = \"USD\"\n",
        tb = shared_tigerbeetle().address(),
        redis_url = redis.tls_url(),
        ca = ca_file.display(),
        cert = client_certificate.display(),
        key = client_key.display(),
    );
    let riptide = RiptideProcess::start_at(&text, ports, 2);

    let ca_path = ca_file.display().to_string();
    let args = [
        "spsp".to_owned(),
        client_port.to_string(),
        format!("https://localhost:{}/ilp", ports.0),
        JS_TOKEN_IN.to_owned(),
        JS_TOKEN_OUT.to_owned(),
        format!("https://localhost:{}/shop", ports.2),
        "12345".to_owned(),
    ];
    let mut client = NodeScript::start_with_env(
        "receiver_clients.js",
        &args,
        &[("NODE_EXTRA_CA_CERTS", &ca_path)],
    );
    let result = client.next_json(Duration::from_secs(60));
    assert_eq!(
        result["delivered"],
        "12345",
        "{result}\n{}",
        client.stderr()
    );
    let destination = result["destination"].as_str().expect("destination");

    let tls = RedisTls {
        ca_pem: Some(ca.pem.clone().into_bytes()),
        client_identity_pem: Some((
            client_identity.certificate_pem.clone().into_bytes(),
            client_identity.key_pem.clone().into_bytes(),
        )),
    };
    let (total, ttl) = redis_total_and_ttl(&redis.tls_url(), &tls, destination);
    assert_eq!(total, 12_345, "the connection total in Redis");
    assert!((86_000..=86_400).contains(&ttl), "TTL {ttl}");
    let balances = riptide.balances();
    let shop = balances[&("receiving".to_owned(), "shop".to_owned())];
    assert_eq!(
        shop,
        [0, 12_345, 0, 0],
        "the wallet's account in TigerBeetle"
    );

    // Plain HTTP on a TLS port gets no HTTP answer.
    let plain = HttpClient::new(loopback(ports.0)).post_packet(JS_TOKEN_OUT, b"\x0c\x00");
    assert!(
        plain.is_err(),
        "plain HTTP answered on a TLS port: {plain:?}"
    );
}

/// A blocking TLS client trusting `roots`, for the checks that need to see the
/// served certificate.
fn tls_connect(
    port: u16,
    roots: &[&str],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            store.add(certificate.expect("PEM")).expect("root");
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(store)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let connection = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(loopback(port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    stream
}

/// The leaf certificate the server showed, as PEM's DER.
fn served_certificate(
    stream: &rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
) -> Vec<u8> {
    stream.conn.peer_certificates().expect("a certificate")[0].to_vec()
}

fn tls_request(
    stream: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    head: &str,
    body: &[u8],
) -> HttpResponse {
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut buffer = Vec::new();
    let message = riptide_proto::http1::read_message(stream, &mut buffer, 1 << 20)
        .expect("read")
        .expect("an answer");
    HttpResponse {
        status: message.status().unwrap_or(0),
        headers: message.headers.iter().cloned().collect(),
        body: message.body,
    }
}

/// How long riptide keeps a TCP connection that sends nothing.
fn held_for(port: u16) -> Duration {
    let mut tcp = TcpStream::connect(loopback(port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let _ = tcp.read(&mut byte);
    started.elapsed()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM")
        .to_vec()
}

#[test]
fn tls_ports_bound_handshakes_and_serve_a_renewed_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("Riptide test CA");
    let first = ca.issue(&["localhost"]);
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let tls = tls_section(dir.path(), &first);
    let assets = assets_toml(&[("USD", 2, 1_000_000)]);
    let text = format!(
        "{node}\n{tls}\n[connections]\nidle_timeout_ms = 60000\nhead_timeout_ms = 1000\n\n{assets}\n\
[[peers]]\nid = \"alice\"\nasset = \"USD\"\nincoming_tokens = [\"{ALICE_TOKEN}\"]\ninitial_liquidity = 1000000\n\n\
[[peers]]\nid = \"bob\"\nasset = \"USD\"\noutgoing_url = \"{url}\"\noutgoing_token = \"{SINK_TOKEN}\"\nroutes = [\"test.bob\"]\n\n\
[[wallets]]\nid = \"shop\"\nasset = \"USD\"\n",
        url = sink.url()
    );
    let riptide = RiptideProcess::start_at(&text, ports, 2);

    // A packet and an SPSP query over TLS, from a client that checks the name.
    let mut connector = tls_connect(ports.0, &[&ca.pem]);
    assert_eq!(
        served_certificate(&connector),
        der_of(&first.certificate_pem)
    );
    let packet = prepare_for_sink(10, "test.bob.x", Duration::from_secs(20), [7; 32]);
    let head = format!(
        "POST /ilp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ALICE_TOKEN}\r\n\
Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        packet.len()
    );
    let answer = tls_request(&mut connector, &head, &packet);
    assert_eq!(answer.status, 200);
    assert!(Fulfill::parse(&answer.body).is_ok(), "fulfilled over TLS");
    let mut public = tls_connect(ports.2, &[&ca.pem]);
    let spsp = tls_request(
        &mut public,
        "GET /shop HTTP/1.1\r\nHost: localhost\r\nAccept: application/spsp4+json\r\n\r\n",
        b"",
    );
    assert_eq!(spsp.status, 200);
    assert!(String::from_utf8_lossy(&spsp.body).contains("destination_account"));

    // A connection that never starts its handshake is closed at the head timeout,
    // not the idle one.
    for port in [ports.0, ports.2] {
        let held = held_for(port);
        assert!(
            held >= Duration::from_millis(800) && held < Duration::from_secs(10),
            "port {port}: held {held:?}"
        );
    }

    // A renewed certificate (from another CA) is served without a restart.
    let second_ca = TestCa::new("Riptide renewed CA");
    let second = second_ca.issue(&["localhost"]);
    second.write(dir.path(), "riptide");
    let started = Instant::now();
    loop {
        let stream = tls_connect(ports.0, &[&ca.pem, &second_ca.pem]);
        if served_certificate(&stream) == der_of(&second.certificate_pem) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the renewed certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(riptide.log().contains("TLS certificate reloaded"));
}

#[test]
fn a_redis_certificate_that_does_not_verify_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("Riptide test CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let (certificate, key) = ca.issue(&["localhost"]).write(dir.path(), "redis");
    let redis = RedisServer::start_tls([&certificate, &key, &ca_file], false);
    let stranger = TestCa::new("Nobody's CA").write(dir.path(), "stranger.pem");
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 2, 1_000_000)]);
    let config = dir.path().join("riptide.toml");
    std::fs::write(
        &config,
        format!(
            "{node}\n[receipts]\nredis_url = \"{}\"\nredis_tls_ca_file = \"{}\"\n\n{assets}",
            redis.tls_url(),
            stranger.display()
        ),
    )
    .expect("config");
    let output = std::process::Command::new(riptide_tests::dataplane::workspace_binary("riptide"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run riptide");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("receipt store (Redis)"), "{stderr}");
}
