//! Where Riptide answers differently from Rafiki's connector (the README's table),
//! each answer driven by the independent npm clients: an `ilp-protocol-stream`
//! receiver and sender, and `@interledger/pay`, peered with riptide through
//! `ilp-plugin-http`. A temporary answer (T01 from one of two peers sharing a
//! prefix, T00 before the rates feed first answered) must be paid through; a final
//! one (R01, F07) must end the payment at once instead of after its timeout; a
//! route back to the sender must give way to a shorter prefix.
#![allow(clippy::too_many_lines)] // test code

use riptide_tests::dataplane::{node_section, NodeScript, RiptideProcess, SinkBehaviour, SinkPeer};
use riptide_tests::fixtures::{assets_toml, free_node_ports, ADMIN_TOKEN};
use riptide_tests::free_loopback_port;
use serde_json::Value;
use std::time::{Duration, Instant};

const CLIENT_IN: &str = "riptide-to-client-0123456789";
const CLIENT_OUT: &str = "client-to-riptide-0123456789";
const SERVER_IN: &str = "riptide-to-server-0123456789";
const SERVER_OUT: &str = "server-to-riptide-0123456789";
const FLAKY_TOKEN: &str = "riptide-to-flaky-0123456789";

/// Where riptide's rates come from.
enum Rates<'a> {
    /// `USD = 1.0, EUR = 0.5, NOR = 1.0` in the file.
    Fixed,
    /// A rates feed at this URL.
    Feed(&'a str),
}

/// A riptide between a JS sender (`jsclient`, USD) and a JS receiver (`jsserver`,
/// in `server_asset`), with `flaky` (HTTP 500 to everything) routed on jsserver's
/// own prefix beside it when asked, and `norate` on an asset that a feed may leave out.
struct Net {
    riptide: RiptideProcess,
    url: String,
    client_port: u16,
    server_port: u16,
    flaky: SinkPeer,
}

impl Net {
    fn start(server_asset: &str, rates: &Rates<'_>, with_flaky: bool) -> Net {
        let flaky = SinkPeer::start(SinkBehaviour::Status(500));
        let ports = free_node_ports();
        let (client_port, server_port) = (free_loopback_port(), free_loopback_port());
        let node = node_section("test.riptide", ports, ADMIN_TOKEN);
        let assets = assets_toml(&[
            ("USD", 1, 1_000_000_000),
            ("EUR", 2, 1_000_000_000),
            ("NOR", 3, 1_000_000_000),
        ]);
        let rates = match rates {
            Rates::Fixed => "rates = { USD = 1.0, EUR = 0.5, NOR = 1.0 }".to_owned(),
            Rates::Feed(url) => format!("url = \"{url}\"\nlifetime_ms = 200"),
        };
        let flaky_url = flaky.url();
        let flaky_route = if with_flaky {
            "test.riptide.jsserver"
        } else {
            "test.flaky"
        };
        let text = format!(
            r#"
{node}
{assets}
[[peers]]
id = "jsclient"
asset = "USD"
incoming_tokens = ["{CLIENT_OUT}"]
outgoing_url = "http://127.0.0.1:{client_port}/"
outgoing_token = "{CLIENT_IN}"
initial_liquidity = 100000000
max_packet_amount = 100000

[[peers]]
id = "jsserver"
asset = "{server_asset}"
incoming_tokens = ["{SERVER_OUT}"]
outgoing_url = "http://127.0.0.1:{server_port}/"
outgoing_token = "{SERVER_IN}"
initial_liquidity = 100000000

[[peers]]
id = "flaky"
asset = "USD"
outgoing_url = "{flaky_url}"
outgoing_token = "{FLAKY_TOKEN}"
routes = ["{flaky_route}"]

[[peers]]
id = "norate"
asset = "NOR"
outgoing_url = "{flaky_url}"
outgoing_token = "{FLAKY_TOKEN}"
routes = ["test.norate"]

[rates]
base = "USD"
{rates}
"#
        );
        let riptide = RiptideProcess::start_at(&text, ports, 2);
        Net {
            url: format!("http://127.0.0.1:{}/ilp", ports.0),
            riptide,
            client_port,
            server_port,
            flaky,
        }
    }

    /// The JS receiver, and its destination and secret.
    fn receiver(&self, expect: u64) -> (NodeScript, String, String) {
        let (receiver, (destination, secret), _) = self.receiver_of_two(expect);
        (receiver, destination, secret)
    }

    /// The receiver of [`Net::receiver`], with the credentials of two connections
    /// to it: one per paying client, since a client that ends its connection
    /// closes it at the receiver for good.
    #[allow(clippy::type_complexity)]
    fn receiver_of_two(&self, expect: u64) -> (NodeScript, (String, String), (String, String)) {
        let mut receiver = NodeScript::start(
            "stream_pay.js",
            &[
                "receiver".into(),
                self.server_port.to_string(),
                self.url.clone(),
                SERVER_IN.into(),
                SERVER_OUT.into(),
                expect.to_string(),
                "60".into(),
            ],
        );
        let credentials = receiver.next_json(Duration::from_secs(30));
        let text = |key: &str| credentials[key].as_str().expect(key).to_owned();
        let first = (text("destination"), text("secret"));
        let second = (text("second_destination"), text("second_secret"));
        (receiver, first, second)
    }

    /// Pays with `ilp-protocol-stream` from jsclient; a failure is reported, not
    /// thrown.
    fn stream(&self, destination: &str, secret: &str, amount: u64) -> Value {
        self.client(
            "stream",
            &[destination, secret, &amount.to_string(), "30000"],
        )
    }

    /// Quotes and pays with `@interledger/pay` from jsclient (USD, scale 2), with
    /// prices in USD that agree with riptide's rates (a EUR costs 2 USD).
    fn pay(&self, destination: &str, secret: &str, amount_to_deliver: u64) -> Value {
        self.client(
            "pay",
            &[
                "-",
                destination,
                secret,
                &amount_to_deliver.to_string(),
                "USD",
                "2",
                r#"{"USD":1,"EUR":2,"NOR":1}"#,
            ],
        )
    }

    /// Runs `attempt` again, as a wallet retries, while it failed before any
    /// money moved because the client could not set its connection up: both
    /// clients probe the path first with a few packets and give up when too few of
    /// them reach the receiver, whatever the temporary code that stopped the rest
    /// (here: those that took the peer answering 500).
    fn retrying_setup(attempt: impl Fn() -> Value) -> Value {
        for _ in 0..8 {
            let result = attempt();
            let error = result["error"].as_str().unwrap_or_default();
            let setup_failed = error.starts_with("connect:")
                || error == "EstablishmentFailed"
                || error == "RateProbeFailed";
            if !setup_failed || result["delivered"] != "0" {
                return result;
            }
        }
        panic!("eight tries in a row failed to set the connection up");
    }

    fn client(&self, mode: &str, tail: &[&str]) -> Value {
        let mut args = vec![
            mode.to_owned(),
            self.client_port.to_string(),
            self.url.clone(),
            CLIENT_IN.to_owned(),
            CLIENT_OUT.to_owned(),
        ];
        args.extend(tail.iter().map(|s| (*s).to_owned()));
        let mut script = NodeScript::start("receiver_clients.js", &args);
        let result = script.next_json(Duration::from_secs(90));
        println!("{mode}: {result}");
        result
    }

    /// Packets from `peer` that ended with `outcome`, once riptide's metrics show
    /// at least one (they are published about once a second).
    fn packets_with(&self, peer: &str, outcome: &str) -> u64 {
        let series = format!("riptide_packets_total{{peer=\"{peer}\",outcome=\"{outcome}\"}} ");
        let started = Instant::now();
        loop {
            let response = self.riptide.admin_request("GET", "/metrics", b"");
            let text = String::from_utf8_lossy(&response.body).into_owned();
            let count = text
                .lines()
                .filter_map(|line| line.strip_prefix(&series))
                .filter_map(|value| value.trim().parse::<u64>().ok())
                .sum::<u64>();
            if count > 0 || started.elapsed() > Duration::from_secs(5) {
                return count;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn elapsed(result: &Value) -> Duration {
    Duration::from_millis(result["elapsedMs"].as_u64().expect("elapsedMs"))
}

fn delivered(result: &Value) -> u64 {
    let text = result["delivered"].as_str().expect("delivered");
    text.parse().expect("a number")
}

/// A client's payment that failed with nothing delivered, well before its own
/// timeouts (30 s for the stream, 10 s for pay's probe).
fn ended_at_once(result: &Value) {
    assert_eq!(delivered(result), 0, "{result}");
    assert!(result["error"].is_string(), "{result}");
    assert!(
        elapsed(result) < Duration::from_secs(5),
        "not at once: {result}"
    );
}

/// Rafiki answers T00 where Riptide answers T01 (the next hop answered non-200);
/// and where several peers share a prefix, Riptide picks by the packet's condition
/// where Rafiki picks at random. Half the packets meet `flaky`'s 500: both clients
/// take the T01 as temporary and pay through over `jsserver`.
#[test]
fn t01_from_a_peer_sharing_the_prefix_is_paid_through() {
    let net = Net::start("USD", &Rates::Fixed, true);
    let (_receiver, (destination, secret), (pay_destination, pay_secret)) =
        net.receiver_of_two(25_000);
    let streamed = Net::retrying_setup(|| net.stream(&destination, &secret, 20_000));
    assert_eq!(streamed["delivered"], "20000", "{streamed}");
    assert!(streamed["error"].is_null(), "{streamed}");
    // Its own connection: the stream client ended the first one, and whether that
    // close reached the receiver (or met the flaky peer's 500) decided before
    // whether this payment found the connection closed.
    let paid = Net::retrying_setup(|| net.pay(&pay_destination, &pay_secret, 5_000));
    assert!(paid["error"].is_null(), "{paid}");
    assert!(delivered(&paid) >= 5_000, "{paid}");
    assert!(
        !net.flaky.received().is_empty(),
        "no packet went to the peer sharing the prefix"
    );
    assert!(
        net.packets_with("jsclient", "T01") > 0,
        "no T01 was answered"
    );
}

/// Rafiki forwards a Prepare whose amount converts to zero; Riptide answers R01.
/// One unit of USD is half a unit of EUR: the stream sender stops at once with
/// R01, and `@interledger/pay`'s probes pass over their R01s and pay.
#[test]
fn r01_ends_a_payment_too_small_to_deliver_and_pay_probes_past_it() {
    let net = Net::start("EUR", &Rates::Fixed, false);
    let (_receiver, destination, secret) = net.receiver(1_000);
    ended_at_once(&net.stream(&destination, &secret, 1));
    assert!(
        net.packets_with("jsclient", "R01") > 0,
        "no R01 was answered"
    );
    let paid = net.pay(&destination, &secret, 1_000);
    assert!(paid["error"].is_null(), "{paid}");
    assert!(delivered(&paid) >= 1_000, "{paid}");
}

/// A feed's rates that leave an asset out, or none yet.
fn feed_with(rates: &str) -> SinkPeer {
    let feed = SinkPeer::start(SinkBehaviour::Status(503));
    if !rates.is_empty() {
        feed.set(SinkBehaviour::Raw(rates.as_bytes().to_vec()));
    }
    feed
}

/// A missing rate: F07 as in Rafiki, final, so both clients give up at once.
#[test]
fn f07_for_an_asset_without_a_rate_ends_both_clients_at_once() {
    let feed = feed_with(r#"{"base":"USD","rates":{"USD":1.0,"EUR":0.5}}"#);
    let net = Net::start("USD", &Rates::Feed(&feed.url()), false);
    let started = Instant::now();
    while feed.received().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "feed never asked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    ended_at_once(&net.stream("test.norate.someone", secret, 1_000));
    ended_at_once(&net.pay("test.norate.someone", secret, 1_000));
    assert!(
        net.packets_with("jsclient", "F07") > 0,
        "no F07 was answered"
    );
    assert_eq!(
        net.packets_with("jsclient", "T00"),
        0,
        "the feed had answered"
    );
}

/// Before the rates feed first answered, Riptide has no rate to miss and answers
/// T00, temporary: `@interledger/pay`'s rate probe keeps probing through it (for
/// up to 10 s) and pays once the feed answers, 2 s after the payment started.
/// (F07 there would end the payment at once; `ilp-protocol-stream` gives up
/// setting a connection up after a few failed test packets, whatever their code.)
#[test]
fn t00_before_the_first_rates_is_paid_through_once_they_come() {
    let feed = feed_with("");
    let net = Net::start("EUR", &Rates::Feed(&feed.url()), false);
    let (_receiver, destination, secret) = net.receiver(2_000);
    let rates = br#"{"base":"USD","rates":{"USD":1.0,"EUR":0.5,"NOR":1.0}}"#.to_vec();
    let answer_later = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        feed.set(SinkBehaviour::Raw(rates));
        feed
    });
    let paid = net.pay(&destination, &secret, 2_000);
    let _feed = answer_later.join().expect("feed");
    assert!(paid["error"].is_null(), "{paid}");
    assert!(delivered(&paid) >= 2_000, "{paid}");
    // The client's own clock starts after its process is up, which can be a few
    // hundred ms after the 2 s timer started: it waited through most of them.
    assert!(elapsed(&paid) >= Duration::from_secs(1), "{paid}");
    assert!(
        net.packets_with("jsclient", "T00") > 0,
        "no T00 was answered"
    );
    assert_eq!(
        net.packets_with("jsclient", "F07"),
        0,
        "no rate was missing"
    );
}

/// A route back to the sender gives way to a shorter prefix, in Rafiki and in
/// Riptide: riptide A routes `test.b.jsserver` to the JS sender itself (a stale
/// route), and `test.b` to riptide B, where the JS receiver is.
#[test]
fn a_route_back_to_the_sender_gives_way_to_a_shorter_prefix() {
    let (a_ports, b_ports) = (free_node_ports(), free_node_ports());
    let (client_port, server_port) = (free_loopback_port(), free_loopback_port());
    let assets = assets_toml(&[("USD", 1, 1_000_000_000)]);
    let (a_url, b_url) = (
        format!("http://127.0.0.1:{}/ilp", a_ports.0),
        format!("http://127.0.0.1:{}/ilp", b_ports.0),
    );
    let a_node = node_section("test.a", a_ports, ADMIN_TOKEN);
    let a = RiptideProcess::start_at(
        &format!(
            r#"
{a_node}
{assets}
[[peers]]
id = "jsclient"
asset = "USD"
incoming_tokens = ["{CLIENT_OUT}"]
outgoing_url = "http://127.0.0.1:{client_port}/"
outgoing_token = "{CLIENT_IN}"
routes = ["test.b.jsserver"]
initial_liquidity = 100000000

[[peers]]
id = "b"
asset = "USD"
incoming_tokens = ["b-to-a-0123456789ab"]
outgoing_url = "{b_url}"
outgoing_token = "a-to-b-0123456789ab"
routes = ["test.b"]
initial_liquidity = 100000000
"#
        ),
        a_ports,
        2,
    );
    let b_node = node_section("test.b", b_ports, ADMIN_TOKEN);
    let _b = RiptideProcess::start_at(
        &format!(
            r#"
{b_node}
{assets}
[[peers]]
id = "a"
asset = "USD"
incoming_tokens = ["a-to-b-0123456789ab"]
outgoing_url = "{a_url}"
outgoing_token = "b-to-a-0123456789ab"
initial_liquidity = 100000000

[[peers]]
id = "jsserver"
asset = "USD"
incoming_tokens = ["{SERVER_OUT}"]
outgoing_url = "http://127.0.0.1:{server_port}/"
outgoing_token = "{SERVER_IN}"
initial_liquidity = 100000000
"#
        ),
        b_ports,
        2,
    );
    let mut receiver = NodeScript::start(
        "stream_pay.js",
        &[
            "receiver".into(),
            server_port.to_string(),
            b_url,
            SERVER_IN.into(),
            SERVER_OUT.into(),
            "3000".into(),
            "60".into(),
        ],
    );
    let credentials = receiver.next_json(Duration::from_secs(30));
    let destination = credentials["destination"].as_str().expect("destination");
    assert!(destination.starts_with("test.b.jsserver."), "{destination}");
    let mut sender = NodeScript::start(
        "stream_pay.js",
        &[
            "sender".into(),
            client_port.to_string(),
            a_url,
            CLIENT_IN.into(),
            CLIENT_OUT.into(),
            destination.to_owned(),
            credentials["secret"].as_str().expect("secret").to_owned(),
            "3000".into(),
        ],
    );
    let sent = sender.next_json(Duration::from_secs(60));
    assert_eq!(sent["delivered"], "3000", "{sent}");
    assert_eq!(
        receiver.next_json(Duration::from_secs(30))["received"],
        "3000"
    );
    drop(a);
}
