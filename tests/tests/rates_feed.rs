//! The data plane polls Rafiki's rates feed itself (`rates.url`): cross-currency
//! packets convert at the feed's rates without `riptidectl serve`, follow a change
//! within the rates' lifetime, keep the last good rates while the feed fails, and
//! keep them across a state push that names the same feed.

use riptide_proto::packet::{Fulfill, Prepare};
use riptide_tests::dataplane::{
    node_section, prepare_for_sink, read_message, HttpClient, RiptideProcess, SinkBehaviour,
    SinkPeer,
};
use riptide_tests::fixtures::{assets_toml, free_node_ports, ADMIN_TOKEN};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALICE_TOKEN: &str = "alice-token-0123456789";

/// What the feed answers: a EUR rate, or an HTTP error status.
#[derive(Clone, Copy)]
enum FeedAnswer {
    EurPerUsd(f64),
    Status(u16),
}

/// A Rafiki-format rates feed that records the request targets it was asked.
struct Feed {
    address: SocketAddr,
    answer: Arc<Mutex<FeedAnswer>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Feed {
    fn start(answer: FeedAnswer) -> Feed {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind feed");
        let address = listener.local_addr().expect("feed address");
        let answer = Arc::new(Mutex::new(answer));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (current, log) = (Arc::clone(&answer), Arc::clone(&asked));
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut buffer = Vec::new();
                let Ok(Some(request)) = read_message(&mut stream, &mut buffer) else {
                    continue;
                };
                let target = request.method_and_path().map(|(_, path)| path.to_owned());
                log.lock().expect("log").push(target.unwrap_or_default());
                let (status, body) = match *current.lock().expect("answer") {
                    FeedAnswer::EurPerUsd(rate) => {
                        (200, format!(r#"{{"base":"USD","rates":{{"EUR":{rate}}}}}"#))
                    }
                    FeedAnswer::Status(status) => (status, String::new()),
                };
                let mut response = Vec::new();
                riptide_proto::http1::write_response(
                    &mut response,
                    status,
                    "application/json",
                    body.as_bytes(),
                    Some("close"),
                );
                let _ = stream.write_all(&response);
            }
        });
        Feed {
            address,
            answer,
            asked,
        }
    }

    fn set(&self, answer: FeedAnswer) {
        *self.answer.lock().expect("answer") = answer;
    }
}

fn start(feed: &Feed, carol: &SinkPeer) -> RiptideProcess {
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 1, 1_000_000_000), ("EUR", 2, 1_000_000_000)]);
    let (feed_address, carol_url) = (feed.address, carol.url());
    let text = format!(
        r#"{node}
{assets}
[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["{ALICE_TOKEN}"]
initial_liquidity = 1000000000

[[peers]]
id = "carol"
asset = "EUR"
outgoing_url = "{carol_url}"
outgoing_token = "riptide-to-carol-token"
routes = ["test.carol"]

[rates]
base = "USD"
url = "http://{feed_address}/rates"
lifetime_ms = 300
stale_ms_max = 3000
"#
    );
    RiptideProcess::start_at(&text, ports, 2)
}

/// Sends 1,000 USD units to carol until she receives `expected` EUR units for one
/// (bounded); returns how many packets that took.
fn pay_until_carol_gets(
    riptide: &RiptideProcess,
    carol: &SinkPeer,
    expected: u64,
    limit: Duration,
) -> usize {
    let started = Instant::now();
    let mut client = HttpClient::new(riptide.connector);
    for sent in 1.. {
        let packet = prepare_for_sink(1_000, "test.carol.x", Duration::from_secs(20), [7; 32]);
        let response = client.post_packet(ALICE_TOKEN, &packet).expect("answer");
        let received = carol.received().last().and_then(|request| {
            let fulfilled = Fulfill::parse(&response.body).is_ok();
            let amount = Prepare::parse(&request.body).ok()?.amount;
            fulfilled.then_some(amount)
        });
        if received == Some(expected) {
            return sent;
        }
        assert!(
            started.elapsed() < limit,
            "carol never got {expected} (last: {received:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!("the loop returns or fails")
}

#[test]
fn the_data_plane_polls_the_rates_feed_itself() {
    let feed = Feed::start(FeedAnswer::EurPerUsd(0.5));
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let riptide = start(&feed, &carol);
    pay_until_carol_gets(&riptide, &carol, 500, Duration::from_secs(10));
    assert!(
        feed.asked.lock().expect("log")[0].ends_with("/rates?base=USD"),
        "Rafiki's request form"
    );

    feed.set(FeedAnswer::EurPerUsd(0.25));
    pay_until_carol_gets(&riptide, &carol, 250, Duration::from_secs(5));

    // A failing feed keeps the last good rates.
    feed.set(FeedAnswer::Status(503));
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        pay_until_carol_gets(&riptide, &carol, 250, Duration::from_secs(1)),
        1
    );
    let metrics = riptide.admin_request("GET", "/metrics", b"");
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        !metrics.contains("riptide_rates_feed_fetches_total{result=\"failed\"} 0"),
        "{metrics}"
    );

    // A push of the same state (a new version, the same feed) keeps them too.
    let state = riptide.admin_request("GET", "/v1/state", b"");
    let mut state: serde_json::Value = serde_json::from_slice(&state.body).expect("state");
    state["version"] = serde_json::json!(state["version"].as_u64().unwrap_or(0) + 1);
    let body = serde_json::to_vec(&state).expect("json");
    assert_eq!(riptide.admin_request("PUT", "/v1/state", &body).status, 200);
    assert_eq!(
        pay_until_carol_gets(&riptide, &carol, 250, Duration::from_secs(1)),
        1
    );

    // Past `stale_ms_max` the last good rates are dropped: no conversion at stale
    // rates, T00 (the state has no rates of its own) until the feed is back.
    std::thread::sleep(Duration::from_millis(3_500));
    let packet = prepare_for_sink(1_000, "test.carol.x", Duration::from_secs(20), [8; 32]);
    let answer = HttpClient::new(riptide.connector)
        .post_packet(ALICE_TOKEN, &packet)
        .expect("answer");
    let reject = riptide_proto::packet::Reject::parse(&answer.body).expect("rejected");
    assert_eq!(reject.code.to_string(), "T00");
    assert!(riptide.log().contains("too old; dropped"));
    feed.set(FeedAnswer::EurPerUsd(0.5));
    pay_until_carol_gets(&riptide, &carol, 500, Duration::from_secs(5));
}
