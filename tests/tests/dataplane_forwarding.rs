//! End to end: a client peer -> riptide (a real process) -> a downstream sink peer,
//! over real loopback sockets, with the embedded ledger. Every reject code the data
//! plane makes is provoked here and asserted.
#![allow(clippy::too_many_lines)] // test code

use riptide_proto::packet::{AmountTooLargeData, ErrorCode, Fulfill, Packet, Prepare, Reject};
use riptide_tests::dataplane::{
    node_section, prepare_for_sink, prepare_with_outcome, HttpClient, RawHttpConnection,
    RiptideProcess, SinkBehaviour, SinkPeer,
};
use riptide_tests::fixtures::{assets_toml, free_node_ports, ADMIN_TOKEN};
use riptide_tests::free_loopback_port;
use std::net::SocketAddr;
use std::time::Duration;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

struct Node {
    riptide: RiptideProcess,
}

/// Peers: alice (client, USD), bob (sink, USD), carol (sink, EUR), dead (unreachable).
fn config(
    connector: u16,
    admin: u16,
    public: u16,
    bob_url: &str,
    carol_url: &str,
    dead_url: &str,
    extra: &str,
) -> String {
    let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 1, 1_000_000_000), ("EUR", 2, 1_000_000_000)]);
    format!(
        r#"
{node}

[ledger]
kind = "memory"

{assets}
[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["alice-token-0123456789"]
initial_liquidity = 100000
max_packet_amount = 5000
rate_limit_packets_per_second = 1000

[[peers]]
id = "bob"
asset = "USD"
incoming_tokens = ["bob-token-0123456789"]
outgoing_url = "{bob_url}"
outgoing_token = "riptide-to-bob-token"
routes = ["test.bob"]

[[peers]]
id = "carol"
asset = "EUR"
incoming_tokens = ["carol-token-0123456789"]
outgoing_url = "{carol_url}"
outgoing_token = "riptide-to-carol-token"
routes = ["test.carol"]

[[peers]]
id = "dead"
asset = "USD"
incoming_tokens = ["dead-token-0123456789"]
outgoing_url = "{dead_url}"
outgoing_token = "riptide-to-dead-token"
routes = ["test.dead"]

{extra}

[rates]
base = "USD"
rates = {{ USD = 1.0, EUR = 0.5 }}
"#
    )
}

fn start(bob: &SinkPeer, carol: &SinkPeer, extra: &str, shards: u32) -> Node {
    let (connector, admin, public) = free_node_ports();
    let dead_url = format!("http://127.0.0.1:{}/ilp", free_loopback_port());
    let text = config(
        connector,
        admin,
        public,
        &bob.url(),
        &carol.url(),
        &dead_url,
        extra,
    );
    Node {
        riptide: RiptideProcess::start(
            &text,
            loopback(connector),
            loopback(admin),
            ADMIN_TOKEN,
            shards,
        ),
    }
}

fn send(node: &Node, token: &str, packet: &[u8]) -> Vec<u8> {
    let response = HttpClient::new(node.riptide.connector)
        .post_packet(token, packet)
        .expect("http");
    assert_eq!(
        response.status,
        200,
        "body: {:?}",
        String::from_utf8_lossy(&response.body)
    );
    response.body
}

fn reject_of(reply: &[u8]) -> Reject<'_> {
    match Packet::parse(reply).expect("ILP reply") {
        Packet::Reject(reject) => reject,
        other => panic!("expected a Reject, got {other:?}"),
    }
}

fn fulfillment(seed: u8) -> [u8; 32] {
    [seed; 32]
}

#[test]
fn forwards_and_relays_the_fulfill() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let node = start(&bob, &carol, "", 2);
    let prepare = prepare_for_sink(
        1234,
        "test.bob.wallet",
        Duration::from_secs(20),
        fulfillment(1),
    );
    let reply = send(&node, "alice-token-0123456789", &prepare);
    let fulfill = Fulfill::parse(&reply).expect("a Fulfill");
    assert_eq!(fulfill.fulfillment, &fulfillment(1));
    assert_eq!(fulfill.data, b"sink");

    let received = bob.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        request.headers.get("authorization").map(String::as_str),
        Some("Bearer riptide-to-bob-token")
    );
    let forwarded = Prepare::parse(&request.body).expect("a Prepare");
    let original = Prepare::parse(&prepare).expect("a Prepare");
    assert_eq!(forwarded.amount, 1234);
    assert_eq!(forwarded.destination, original.destination);
    assert_eq!(forwarded.execution_condition, original.execution_condition);
    assert_eq!(forwarded.data, original.data);
    let reduction_ms = original.expires_at.unix_ms() - forwarded.expires_at.unix_ms();
    assert!(
        reduction_ms >= 1000,
        "outgoing expiry must be at least 1 s earlier, was {reduction_ms} ms"
    );
    assert_eq!(
        &request.body[27..],
        &prepare[27..],
        "only amount and expiry may change"
    );
}

#[test]
fn converts_across_assets_with_floor() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let node = start(&bob, &carol, "", 1);
    let prepare = prepare_for_sink(
        1001,
        "test.carol.x",
        Duration::from_secs(20),
        fulfillment(2),
    );
    let reply = send(&node, "alice-token-0123456789", &prepare);
    assert!(
        Fulfill::parse(&reply).is_ok(),
        "{:?}",
        Packet::parse(&reply)
    );
    let forwarded = Prepare::parse(&carol.received()[0].body)
        .expect("a Prepare")
        .amount;
    assert_eq!(
        forwarded, 500,
        "1001 USD cents at 0.5 EUR/USD floors to 500"
    );

    let tiny = prepare_for_sink(1, "test.carol.x", Duration::from_secs(20), fulfillment(3));
    assert_eq!(
        reject_of(&send(&node, "alice-token-0123456789", &tiny)).code,
        ErrorCode::R01
    );
}

/// A Prepare request's head, for a body of `length` bytes or chunked.
fn packet_head(framing: &str) -> String {
    format!(
        "POST /ilp HTTP/1.1\r\nHost: riptide\r\nAuthorization: Bearer alice-token-0123456789\r\nContent-Type: application/octet-stream\r\n{framing}\r\n\r\n"
    )
}

fn fulfilled(response: Option<riptide_tests::dataplane::HttpResponse>) -> bool {
    response.is_some_and(|r| r.status == 200 && Fulfill::parse(&r.body).is_ok())
}

/// The packet port's HTTP/1.1: what real clients send beyond one request at a time
/// with a Content-Length, and how malformed requests are refused.
#[test]
fn http_framing_on_the_packet_port() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let node = start(&bob, &carol, "", 2);
    let address = node.riptide.connector;
    let prepare =
        |seed: u8| prepare_for_sink(10, "test.bob", Duration::from_secs(20), fulfillment(seed));

    // Two requests in one write, the first chunked in two chunks: answered in order.
    let (first, second) = (prepare(60), prepare(61));
    let mut request = packet_head("Transfer-Encoding: chunked").into_bytes();
    let (a, b) = first.split_at(7);
    for chunk in [a, b] {
        request.extend_from_slice(format!("{:x};note=1\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request.extend_from_slice(packet_head(&format!("Content-Length: {}", second.len())).as_bytes());
    request.extend_from_slice(&second);
    let mut connection = RawHttpConnection::connect(address).expect("connect");
    connection.send(&request).expect("write");
    let replies = [
        connection.response().expect("read"),
        connection.response().expect("read"),
    ];
    let fulfillments: Vec<[u8; 32]> = replies
        .into_iter()
        .map(|r| {
            let body = r.expect("a response").body;
            *Fulfill::parse(&body).expect("a Fulfill").fulfillment
        })
        .collect();
    assert_eq!(fulfillments, vec![fulfillment(60), fulfillment(61)]);

    // Expect: 100-continue gets the interim answer before the body is sent.
    let third = prepare(62);
    let head = packet_head(&format!(
        "Content-Length: {}\r\nExpect: 100-continue",
        third.len()
    ));
    connection.send(head.as_bytes()).expect("write");
    let interim = connection.response().expect("read").expect("a response");
    assert_eq!(interim.status, 100);
    connection.send(&third).expect("write");
    assert!(fulfilled(connection.response().expect("read")));

    // HTTP/1.0 without keep-alive: answered, then closed.
    let fourth = prepare(63);
    let mut old = RawHttpConnection::connect(address).expect("connect");
    let head =
        packet_head(&format!("Content-Length: {}", fourth.len())).replace("HTTP/1.1", "HTTP/1.0");
    old.send(&[head.as_bytes(), &fourth].concat())
        .expect("write");
    let reply = old.response().expect("read").expect("a response");
    assert_eq!(
        reply.headers.get("connection").map(String::as_str),
        Some("close")
    );
    assert!(Fulfill::parse(&reply.body).is_ok());
    assert!(
        old.response().expect("read").is_none(),
        "closed after an HTTP/1.0 request"
    );

    // HTTP/1.0 with keep-alive: told so, and the connection stays open.
    let mut kept = RawHttpConnection::connect(address).expect("connect");
    let head = head.replace("Content-Length", "Connection: keep-alive\r\nContent-Length");
    for seed in [64, 65] {
        let packet = prepare(seed);
        assert_eq!(packet.len(), fourth.len());
        kept.send(&[head.as_bytes(), &packet].concat())
            .expect("write");
        let reply = kept.response().expect("read").expect("a response");
        assert_eq!(
            reply.headers.get("connection").map(String::as_str),
            Some("keep-alive")
        );
        assert!(Fulfill::parse(&reply.body).is_ok());
    }

    // Refusals, each with the connection closed after it when the rest cannot be framed.
    let refusals: [(&[u8], u16, bool); 7] = [
        (b"GET /ilp HTTP/1.1\r\nHost: riptide\r\n\r\n", 405, false),
        (b"HEAD /ilp HTTP/1.1\r\nHost: riptide\r\n\r\n", 405, true),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, true),
        (
            b"POST /ilp HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            true,
        ),
        (
            b"POST /ilp HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            400,
            true,
        ),
        (
            b"POST /ilp HTTP/1.1\r\nAuthorization: Bearer alice-token-0123456789\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            true,
        ),
        // Without a good token nothing of the body is read: 401, and the
        // connection closes.
        (
            b"POST /ilp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            401,
            true,
        ),
    ];
    for (request, status, closes) in refusals {
        let mut connection = RawHttpConnection::connect(address).expect("connect");
        connection.send(request).expect("write");
        let response = connection.response().expect("read").expect("a response");
        assert_eq!(
            response.status,
            status,
            "{}",
            String::from_utf8_lossy(request)
        );
        if closes {
            assert!(connection.response().expect("read").is_none());
        }
    }
    let mut padded = b"POST /ilp HTTP/1.1\r\nX-Padding: ".to_vec();
    padded.resize(9 * 1024, b'a');
    padded.extend_from_slice(b"\r\n\r\n");
    let mut connection = RawHttpConnection::connect(address).expect("connect");
    connection.send(&padded).expect("write");
    assert_eq!(
        connection
            .response()
            .expect("read")
            .expect("a response")
            .status,
        431
    );
}

/// A next hop that writes more than its reply: every reply it sends is followed by
/// bytes no request asked for. Riptide must not read those as the next packet's reply,
/// so it must not reuse such a connection.
fn start_overtalkative_peer() -> (String, std::thread::JoinHandle<()>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/ilp", listener.local_addr().expect("address"));
    let server = std::thread::spawn(move || {
        // Serves three connections at most, each for as long as it lives.
        for mut stream in listener.incoming().take(3).flatten() {
            let mut buffer = Vec::new();
            while let Ok(Some(request)) =
                riptide_tests::dataplane::read_message(&mut stream, &mut buffer)
            {
                let Ok(prepare) = Prepare::parse(&request.body) else {
                    break;
                };
                let fulfillment: [u8; 32] = prepare.data[..32].try_into().expect("32 bytes");
                let reply = Fulfill {
                    fulfillment: &fulfillment,
                    data: b"",
                }
                .to_bytes();
                let mut answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    reply.len()
                )
                .into_bytes();
                answer.extend_from_slice(&reply);
                answer.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                if stream.write_all(&answer).is_err() {
                    break;
                }
            }
        }
    });
    (url, server)
}

#[test]
fn a_connection_with_unasked_bytes_is_not_reused() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let (url, _server) = start_overtalkative_peer();
    let extra = format!(
        "\n[[peers]]\nid = \"talker\"\nasset = \"USD\"\nincoming_tokens = [\"talker-token-0123456789\"]\noutgoing_url = \"{url}\"\noutgoing_token = \"riptide-to-talker-token\"\nroutes = [\"test.talker\"]\n"
    );
    let node = start(&bob, &carol, &extra, 1);
    for seed in [70, 71, 72] {
        let prepare = prepare_for_sink(
            10,
            "test.talker.x",
            Duration::from_secs(20),
            fulfillment(seed),
        );
        let reply = send(&node, "alice-token-0123456789", &prepare);
        let fulfill = Fulfill::parse(&reply)
            .unwrap_or_else(|_| panic!("packet {seed}: {:?}", Packet::parse(&reply)));
        assert_eq!(*fulfill.fulfillment, fulfillment(seed));
    }
}

#[test]
fn http_refusals() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let node = start(&bob, &carol, "", 2);
    let prepare = prepare_for_sink(10, "test.bob", Duration::from_secs(20), fulfillment(4));
    let mut client = HttpClient::new(node.riptide.connector);
    let unknown = client.post_packet("not-a-token", &prepare).expect("http");
    assert_eq!(unknown.status, 401);
    let missing = client
        .request(
            "POST",
            "/",
            &[("Content-Type", "application/octet-stream")],
            &prepare,
        )
        .expect("http");
    assert_eq!(missing.status, 401);
    let wrong_type = client
        .request(
            "POST",
            "/",
            &[
                ("Authorization", "Bearer alice-token-0123456789"),
                ("Content-Type", "text/plain"),
            ],
            &prepare,
        )
        .expect("http");
    assert_eq!(wrong_type.status, 400);
    let garbage = client
        .post_packet("alice-token-0123456789", b"\x0c\x05garbage")
        .expect("http");
    assert_eq!(garbage.status, 400);
    let plugin_type = client
        .request(
            "POST",
            "/",
            &[
                ("Authorization", "Bearer alice-token-0123456789"),
                ("Content-Type", "application/ilp+octet-stream"),
            ],
            &prepare,
        )
        .expect("http");
    assert_eq!(
        plugin_type.status, 200,
        "ilp-plugin-http's content type is accepted"
    );
    assert!(
        bob.received().len() == 1,
        "refused requests never reach the next hop"
    );
}

/// Routes as Rafiki's connector has them: a longest prefix that leads back to the
/// sender gives way to a shorter one, and peers sharing a prefix share its packets.
#[test]
fn routes_fall_back_past_the_sender_and_spread_over_shared_prefixes() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let extra = format!(
        r#"
[[peers]]
id = "dave"
asset = "USD"
incoming_tokens = ["dave-token-0123456789"]
initial_liquidity = 100000
routes = ["test.bob.dave"]

[[peers]]
id = "shared-one"
asset = "USD"
outgoing_url = "{}"
outgoing_token = "riptide-to-shared-one"
routes = ["test.shared"]

[[peers]]
id = "shared-two"
asset = "USD"
outgoing_url = "{}"
outgoing_token = "riptide-to-shared-two"
routes = ["test.shared"]
"#,
        bob.url(),
        carol.url()
    );
    let node = start(&bob, &carol, &extra, 2);
    let expiry = Duration::from_secs(20);

    // dave's own prefix is the longest; test.bob takes the packet instead.
    let past_dave = prepare_for_sink(10, "test.bob.dave.x", expiry, fulfillment(40));
    let reply = send(&node, "dave-token-0123456789", &past_dave);
    assert!(matches!(Packet::parse(&reply), Ok(Packet::Fulfill(_))));
    assert_eq!(bob.received().len(), 1);

    // Twenty payments to the shared prefix reach both of its peers.
    for seed in 0..20u8 {
        let packet = prepare_for_sink(10, "test.shared.x", expiry, fulfillment(100 + seed));
        let reply = send(&node, "alice-token-0123456789", &packet);
        assert!(matches!(Packet::parse(&reply), Ok(Packet::Fulfill(_))));
    }
    let (to_bob, to_carol) = (bob.received().len() - 1, carol.received().len());
    assert_eq!(to_bob + to_carol, 20);
    assert!(to_bob > 0 && to_carol > 0, "bob {to_bob}, carol {to_carol}");
}

/// Two tokens in one request are refused on both ports, and what follows a Prepare's
/// envelope is not passed on to the next hop.
#[test]
fn ambiguous_tokens_are_refused_and_trailing_bytes_not_forwarded() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let node = start(&bob, &carol, "", 2);
    let prepare = prepare_for_sink(10, "test.bob", Duration::from_secs(20), fulfillment(70));

    let head = packet_head(&format!("Content-Length: {}", prepare.len())).replace(
        "Content-Type",
        "Authorization: Bearer bob-token-0123456789\r\nContent-Type",
    );
    let mut connection = RawHttpConnection::connect(node.riptide.connector).expect("connect");
    connection
        .send(&[head.as_bytes(), &prepare].concat())
        .expect("write");
    let refused = connection.response().expect("read").expect("a response");
    assert_eq!(refused.status, 400);
    assert!(bob.received().is_empty());

    let admin = HttpClient::new(node.riptide.admin)
        .request(
            "GET",
            "/v1/status",
            &[
                ("Authorization", &format!("Bearer {ADMIN_TOKEN}")),
                ("Authorization", "Bearer another"),
            ],
            b"",
        )
        .expect("http");
    assert_eq!(admin.status, 401);

    let with_tail = [prepare.as_slice(), b"not part of the packet"].concat();
    let reply = send(&node, "alice-token-0123456789", &with_tail);
    assert!(Fulfill::parse(&reply).is_ok());
    let received = bob.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body.len(), prepare.len());
}

#[test]
fn every_reject_code() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let node = start(&bob, &carol, "", 2);
    let alice = "alice-token-0123456789";
    let ok_expiry = Duration::from_secs(20);

    let no_route = prepare_for_sink(10, "test.nobody.x", ok_expiry, fulfillment(5));
    let reject = reject_of(&send(&node, alice, &no_route)).to_owned_code();
    assert_eq!(reject.0, ErrorCode::F02);
    assert_eq!(reject.1, "test.riptide");

    let peer_protocol = prepare_for_sink(0, "peer.route.control", ok_expiry, fulfillment(6));
    assert_eq!(
        reject_of(&send(&node, alice, &peer_protocol)).code,
        ErrorCode::F02
    );

    let too_large = prepare_for_sink(5001, "test.bob", ok_expiry, fulfillment(7));
    let reply = send(&node, alice, &too_large);
    let reject = reject_of(&reply);
    assert_eq!(reject.code, ErrorCode::F08);
    let data = AmountTooLargeData::parse(reject.data).expect("F08 data");
    assert_eq!((data.amount_received, data.amount_max), (5001, 5000));

    let too_soon = prepare_for_sink(10, "test.bob", Duration::from_millis(900), fulfillment(8));
    assert_eq!(
        reject_of(&send(&node, alice, &too_soon)).code,
        ErrorCode::R02
    );

    let unreachable = prepare_for_sink(10, "test.dead", ok_expiry, fulfillment(9));
    assert_eq!(
        reject_of(&send(&node, alice, &unreachable)).code,
        ErrorCode::T01
    );

    bob.set(SinkBehaviour::FulfillWith([0xee; 32]));
    let wrong = prepare_for_sink(10, "test.bob", ok_expiry, fulfillment(10));
    assert_eq!(reject_of(&send(&node, alice, &wrong)).code, ErrorCode::F05);

    let downstream = Reject {
        code: ErrorCode::F99,
        triggered_by: "test.bob",
        message: b"no",
        data: b"app",
    }
    .to_bytes();
    bob.set(SinkBehaviour::Raw(downstream.clone()));
    let relayed = prepare_for_sink(10, "test.bob", ok_expiry, fulfillment(11));
    assert_eq!(
        send(&node, alice, &relayed),
        downstream,
        "downstream Rejects are relayed unchanged"
    );

    bob.set(SinkBehaviour::Status(500));
    let failing = prepare_for_sink(10, "test.bob", ok_expiry, fulfillment(12));
    assert_eq!(
        reject_of(&send(&node, alice, &failing)).code,
        ErrorCode::T01
    );

    bob.set(SinkBehaviour::Delay(
        Duration::from_millis(2500),
        Box::new(SinkBehaviour::FulfillFromData),
    ));
    let slow = prepare_for_sink(10, "test.bob", Duration::from_millis(2200), fulfillment(13));
    assert_eq!(reject_of(&send(&node, alice, &slow)).code, ErrorCode::R00);

    let back_to_sender = prepare_for_sink(10, "test.riptide.alice.x", ok_expiry, fulfillment(14));
    assert_eq!(
        reject_of(&send(&node, alice, &back_to_sender)).code,
        ErrorCode::F02
    );
}

#[test]
fn ildcp_answers_the_child_address() {
    use riptide_proto::packet::ildcp::{IldcpResponse, PEER_PROTOCOL_CONDITION};
    use riptide_proto::packet::{Address, Timestamp};
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let node = start(&bob, &carol, "", 1);
    let expires_at = Timestamp::from_unix_ms(riptide_dataplane::clock::unix_now_ms() + 60_000)
        .expect("in range");
    let request = Prepare {
        amount: 0,
        expires_at,
        execution_condition: &PEER_PROTOCOL_CONDITION,
        destination: Address::parse_str("peer.config").expect("valid"),
        data: b"",
    }
    .to_bytes();
    let reply = send(&node, "carol-token-0123456789", &request);
    let fulfill = Fulfill::parse(&reply).expect("ILDCP Fulfill");
    let response = IldcpResponse::parse(fulfill.data).expect("ILDCP data");
    assert_eq!(response.client_address.as_str(), "test.riptide.carol");
    assert_eq!((response.asset_code, response.asset_scale), ("EUR", 2));
}

#[test]
fn rate_limit_and_liquidity() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let extra = r#"
[[peers]]
id = "limited"
asset = "USD"
incoming_tokens = ["limited-token-0123456789"]
initial_liquidity = 140
rate_limit_packets_per_second = 3
"#;
    let node = start(&bob, &carol, extra, 2);
    // A burst of 3 and 3 per second: whatever the pace of this machine, no more
    // than 3 + 3 x elapsed seconds may pass, and 20 quick packets must hit the limit.
    let started = std::time::Instant::now();
    let mut fulfilled = 0u64;
    let mut limited = 0u64;
    for seed in 0..20u8 {
        let prepare = prepare_for_sink(
            1,
            "test.bob",
            Duration::from_secs(20),
            fulfillment(100 + seed),
        );
        let reply = send(&node, "limited-token-0123456789", &prepare);
        match Packet::parse(&reply).expect("ILP reply") {
            Packet::Fulfill(_) => fulfilled += 1,
            Packet::Reject(reject) => {
                assert_eq!(
                    reject.code,
                    ErrorCode::T05,
                    "only the rate limit refuses here"
                );
                limited += 1;
            }
            Packet::Prepare(_) => panic!("a Prepare is no reply"),
        }
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let allowed = 3 + 3 * elapsed_ms / 1000 + 1;
    assert!(
        fulfilled <= allowed,
        "{fulfilled} passed in {elapsed_ms} ms, at most {allowed} may"
    );
    if elapsed_ms < 5_000 {
        assert!(limited > 0, "the limit must bite within {elapsed_ms} ms");
    }

    std::thread::sleep(Duration::from_millis(1100));
    // 140 units of liquidity, less one per packet that passed above: all but 10 of
    // the rest passes, then 20 more does not.
    let remaining = 140 - fulfilled;
    let first = prepare_for_sink(
        remaining - 10,
        "test.bob",
        Duration::from_secs(20),
        fulfillment(120),
    );
    assert!(Fulfill::parse(&send(&node, "limited-token-0123456789", &first)).is_ok());
    let second = prepare_for_sink(20, "test.bob", Duration::from_secs(20), fulfillment(121));
    assert_eq!(
        reject_of(&send(&node, "limited-token-0123456789", &second)).code,
        ErrorCode::T04
    );
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let bob = SinkPeer::start(SinkBehaviour::Delay(
        Duration::from_millis(700),
        Box::new(SinkBehaviour::FulfillFromData),
    ));
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let mut node = start(&bob, &carol, "", 2);
    let connector = node.riptide.connector;
    let in_flight = std::thread::spawn(move || {
        let prepare = prepare_for_sink(10, "test.bob", Duration::from_secs(20), fulfillment(30));
        HttpClient::new(connector)
            .post_packet("alice-token-0123456789", &prepare)
            .expect("http")
    });
    // Terminate only once the packet is in flight at the next hop.
    let started = std::time::Instant::now();
    while bob.received().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the packet never reached bob"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = node
        .riptide
        .terminate(Duration::from_secs(10))
        .expect("riptide exits");
    assert!(
        status.success(),
        "exit status {status}: {}",
        node.riptide.log()
    );
    let response = in_flight.join().expect("client thread");
    assert_eq!(response.status, 200);
    assert!(
        Fulfill::parse(&response.body).is_ok(),
        "the packet in flight finished"
    );
}

trait OwnedCode {
    fn to_owned_code(&self) -> (ErrorCode, String);
}

impl OwnedCode for Reject<'_> {
    fn to_owned_code(&self) -> (ErrorCode, String) {
        (self.code, self.triggered_by.to_owned())
    }
}

#[test]
fn throughput_limit_and_body_size() {
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let extra = r#"
[[peers]]
id = "metered"
asset = "USD"
incoming_tokens = ["metered-token-0123456789"]
initial_liquidity = 100000
throughput_limit_per_second = 100
"#;
    let node = start(&bob, &carol, extra, 1);
    // 100 per second with a burst of 100: after 100 units at once, 100 more within
    // the same second are refused; refill would need a whole second.
    let started = std::time::Instant::now();
    let first = prepare_for_sink(100, "test.bob", Duration::from_secs(20), fulfillment(40));
    assert!(Fulfill::parse(&send(&node, "metered-token-0123456789", &first)).is_ok());
    let second = prepare_for_sink(100, "test.bob", Duration::from_secs(20), fulfillment(41));
    let reply = send(&node, "metered-token-0123456789", &second);
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(
            reject_of(&reply).code,
            ErrorCode::T04,
            "200 units in under a second over a limit of 100"
        );
    }

    let huge = vec![0u8; 70 * 1024];
    let response = HttpClient::new(node.riptide.connector)
        .post_packet("alice-token-0123456789", &huge)
        .expect("http");
    assert_eq!(response.status, 413);
}

/// Riptide A and B, chained: A routes `test.b` to B, whose address space holds the
/// sink. `pipeline_max` is each hop's `outgoing_pipeline_max` (A to B, B to the sink).
/// Returns (B, A).
fn start_chain(sink: &SinkPeer, pipeline_max: u16) -> (RiptideProcess, Node) {
    let (b_connector, b_admin, b_public) = free_node_ports();
    let (a_connector, a_admin, a_public) = free_node_ports();
    let node = node_section("test.b", (b_connector, b_admin, b_public), ADMIN_TOKEN);
    let b_config = format!(
        r#"
{node}

[[assets]]
code = "EUR"
scale = 2
ledger = 2
initial_liquidity = 1000000

[[peers]]
id = "a"
asset = "EUR"
incoming_tokens = ["a-to-b-token-0123456789"]
initial_liquidity = 1000000

[[peers]]
id = "sink"
asset = "EUR"
outgoing_url = "{}"
outgoing_token = "b-to-sink"
outgoing_pipeline_max = {pipeline_max}
routes = ["test.b.sink"]
"#,
        sink.url()
    );
    let node = node_section("test.a", (a_connector, a_admin, a_public), ADMIN_TOKEN);
    let a_config = format!(
        r#"
{node}

[[assets]]
code = "USD"
scale = 2
ledger = 1
initial_liquidity = 1000000

[[assets]]
code = "EUR"
scale = 2
ledger = 2
initial_liquidity = 1000000

[[peers]]
id = "client"
asset = "USD"
incoming_tokens = ["client-token-0123456789"]
initial_liquidity = 1000000

[[peers]]
id = "b"
asset = "EUR"
outgoing_url = "http://127.0.0.1:{b_connector}/ilp"
outgoing_token = "a-to-b-token-0123456789"
outgoing_pipeline_max = {pipeline_max}
routes = ["test.b"]

[rates]
base = "USD"
rates = {{ USD = 1.0, EUR = 0.5 }}
"#
    );
    let b = RiptideProcess::start(
        &b_config,
        loopback(b_connector),
        loopback(b_admin),
        ADMIN_TOKEN,
        2,
    );
    let a = Node {
        riptide: RiptideProcess::start(
            &a_config,
            loopback(a_connector),
            loopback(a_admin),
            ADMIN_TOKEN,
            2,
        ),
    };
    (b, a)
}

/// client -> riptide A -> riptide B -> sink.
#[test]
fn two_riptides_chained() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let (_b, a) = start_chain(&sink, 1);
    let prepare = prepare_for_sink(
        1000,
        "test.b.sink.alice",
        Duration::from_secs(20),
        fulfillment(50),
    );
    let reply = send(&a, "client-token-0123456789", &prepare);
    assert_eq!(
        Fulfill::parse(&reply)
            .expect("a Fulfill through two hops")
            .fulfillment,
        &fulfillment(50)
    );
    let at_sink = Prepare::parse(&sink.received()[0].body)
        .expect("a Prepare")
        .to_owned_amount_and_expiry();
    let original = Prepare::parse(&prepare).expect("a Prepare");
    assert_eq!(at_sink.0, 500, "converted once, at A");
    assert!(
        original.expires_at.unix_ms() - at_sink.1 >= 2000,
        "each hop took its second"
    );

    let unknown = prepare_for_sink(
        10,
        "test.b.nobody",
        Duration::from_secs(20),
        fulfillment(51),
    );
    let reply = send(&a, "client-token-0123456789", &unknown);
    let reject = reject_of(&reply);
    // `nobody` is not a connection token of B's receiver: F06 from B.
    assert_eq!(
        (reject.code, reject.triggered_by),
        (ErrorCode::F06, "test.b"),
        "B's reject is relayed unchanged"
    );
}

/// Many packets at once through two riptides that pipeline to their next hop (A's
/// bursts arrive at B's ingress, B's bursts at the sink): each packet gets its own
/// answer, fulfilled or rejected as the sink chose for it.
#[test]
fn bursts_through_two_riptides() {
    let sink = SinkPeer::start(SinkBehaviour::FulfillIfEven);
    let (_b, a) = start_chain(&sink, 16);
    let connector = a.riptide.connector;
    let senders: Vec<_> = (0..16u8)
        .map(|thread| {
            std::thread::spawn(move || {
                let mut client = HttpClient::new(connector);
                for round in 0..4u8 {
                    let seed = 100 + thread * 4 + round;
                    let outcome = seed % 2;
                    let prepare = prepare_with_outcome(
                        10,
                        "test.b.sink.x",
                        Duration::from_secs(20),
                        fulfillment(seed),
                        outcome,
                    );
                    let response = client
                        .post_packet("client-token-0123456789", &prepare)
                        .expect("http");
                    assert_eq!(response.status, 200);
                    match Packet::parse(&response.body).expect("an ILP reply") {
                        Packet::Fulfill(fulfill) => {
                            assert_eq!(outcome, 0, "packet {seed} fulfilled");
                            assert_eq!(*fulfill.fulfillment, fulfillment(seed));
                        }
                        Packet::Reject(reject) => {
                            assert_eq!(outcome, 1, "packet {seed} rejected: {reject:?}");
                            assert_eq!(reject.code, ErrorCode::F99);
                        }
                        Packet::Prepare(_) => panic!("a Prepare as a reply"),
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("every packet got its own answer");
    }
    assert_eq!(sink.received().len(), 64);
    // Published once a second: every Prepare is counted, in at most as many sends.
    std::thread::sleep(Duration::from_millis(1200));
    let metrics = a.riptide.admin_request("GET", "/metrics", b"");
    let text = String::from_utf8_lossy(&metrics.body);
    let counter = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    let (prepares, sends) = (
        counter("riptide_outgoing_prepares_total "),
        counter("riptide_outgoing_sends_total "),
    );
    assert_eq!(prepares, 64);
    assert!((1..=64).contains(&sends), "{sends} sends");
    eprintln!("A sent 64 Prepares to B in {sends} sends");
}

/// Requests pipelined in one write run side by side: all three reach the next hop
/// before the first answer comes back (the hop holds each for a second), and the
/// answers come in request order.
#[test]
fn pipelined_requests_run_side_by_side() {
    let bob = SinkPeer::start(SinkBehaviour::Delay(
        Duration::from_secs(1),
        Box::new(SinkBehaviour::FulfillFromData),
    ));
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let node = start(&bob, &carol, "", 1);
    let mut request = Vec::new();
    for seed in [80, 81, 82] {
        let prepare = prepare_for_sink(10, "test.bob", Duration::from_secs(20), fulfillment(seed));
        request.extend_from_slice(
            packet_head(&format!("Content-Length: {}", prepare.len())).as_bytes(),
        );
        request.extend_from_slice(&prepare);
    }
    let mut connection = RawHttpConnection::connect(node.riptide.connector).expect("connect");
    connection.send(&request).expect("write");
    let first = connection.response().expect("read");
    assert_eq!(
        bob.received().len(),
        3,
        "all three were forwarded before any answer"
    );
    let answers = [
        first,
        connection.response().expect("read"),
        connection.response().expect("read"),
    ];
    for (answer, seed) in answers.into_iter().zip([80, 81, 82]) {
        let answer = answer.expect("an answer");
        let fulfill = Fulfill::parse(&answer.body).expect("a Fulfill");
        assert_eq!(*fulfill.fulfillment, fulfillment(seed), "in request order");
    }
}

trait AmountAndExpiry {
    fn to_owned_amount_and_expiry(&self) -> (u64, u64);
}

impl AmountAndExpiry for Prepare<'_> {
    fn to_owned_amount_and_expiry(&self) -> (u64, u64) {
        (self.amount, self.expires_at.unix_ms())
    }
}

/// A route may be a bare scheme, as in Rafiki: `g` and `test` send everything under
/// them that no longer route claims to an upstream, while Riptide's own address and
/// the longer routes keep their packets.
#[test]
fn bare_scheme_routes_send_the_rest_upstream() {
    let upstream = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let bob = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 1, 1_000_000)]);
    let text = format!(
        "{node}\n{assets}\n\
[[peers]]\nid = \"alice\"\nasset = \"USD\"\nincoming_tokens = [\"alice-token-0123456789\"]\ninitial_liquidity = 1000000\n\n\
[[peers]]\nid = \"upstream\"\nasset = \"USD\"\noutgoing_url = \"{up}\"\noutgoing_token = \"to-upstream-0123456789\"\nroutes = [\"g\", \"test\"]\n\n\
[[peers]]\nid = \"bob\"\nasset = \"USD\"\noutgoing_url = \"{bob}\"\noutgoing_token = \"to-bob-0123456789ab\"\nroutes = [\"test.bob\"]\n",
        up = upstream.url(),
        bob = bob.url()
    );
    let riptide = RiptideProcess::start_at(&text, ports, 1);
    let mut client = HttpClient::new(riptide.connector);
    for (seed, destination) in [
        (1u8, "g.far.away"),
        (2, "test.elsewhere.x"),
        (3, "test.bob.x"),
    ] {
        let packet = prepare_for_sink(10, destination, Duration::from_secs(20), [seed; 32]);
        let answer = client
            .post_packet("alice-token-0123456789", &packet)
            .expect("answer");
        assert!(Fulfill::parse(&answer.body).is_ok(), "{destination}");
    }
    let destinations = |sink: &SinkPeer| -> Vec<String> {
        sink.received()
            .iter()
            .filter_map(|r| {
                Prepare::parse(&r.body)
                    .ok()
                    .map(|p| p.destination.to_string())
            })
            .collect()
    };
    assert_eq!(destinations(&upstream), ["g.far.away", "test.elsewhere.x"]);
    assert_eq!(destinations(&bob), ["test.bob.x"]);
}
