//! Quotes and outgoing payments end to end: riptide A pays from a wallet through its
//! peer riptide B into B's wallet (SPSP), same currency and across currencies, and
//! into a receiver made with the npm `ilp-protocol-stream` server. Balances in a real
//! TigerBeetle match what was sent and delivered to the unit; a payment that runs out
//! of money stops in a failed state that says why.
#![allow(clippy::too_many_lines)] // test code

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use riptide_tests::dataplane::{node_section, NodeScript, RiptideProcess};
use riptide_tests::fixtures::ADMIN_TOKEN;
use riptide_tests::webhook_receiver::{signed_with, WebhookReceiver};
use riptide_tests::{free_loopback_port, shared_tigerbeetle};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Ports and names of one two-node setup, unique in this run.
struct Names {
    tag: String,
    usd: String,
    eur: String,
    ledger_base: u32,
}

fn names() -> Names {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let run = std::process::id() % 100_000;
    let tag = format!("o{run}x{n}");
    Names {
        usd: format!("U{tag}"),
        eur: format!("E{tag}"),
        ledger_base: 800_000 + (run % 1000) * 100 + n * 2,
        tag,
    }
}

struct Node {
    process: RiptideProcess,
    public: u16,
}

impl Node {
    fn start(address: &str, body: &str) -> Node {
        start_with_connector(address, body, free_loopback_port())
    }

    fn admin(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let response = self.process.admin_request(method, path, text.as_bytes());
        let parsed = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, parsed)
    }

    fn balance(&self, kind: &str, name: &str) -> i128 {
        let (status, body) = self.admin("GET", "/v1/balances", &Value::Null);
        assert_eq!(status, 200, "{body}");
        let row = body["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .find(|row| row["kind"] == kind && row["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} account {name}: {body}"))
            .clone();
        assert_eq!(row["debits_pending"], "0", "nothing left pending on {name}");
        assert_eq!(
            row["credits_pending"], "0",
            "nothing left pending on {name}"
        );
        row["balance"]
            .as_str()
            .expect("balance")
            .parse()
            .expect("number")
    }

    fn fund_wallet(&self, wallet: &str, amount: u64) {
        let (status, body) = self.admin(
            "POST",
            "/v1/liquidity",
            &json!({
                "account": format!("wallet:{wallet}"),
                "direction": "deposit",
                "amount": amount.to_string(),
                "idempotency_key": format!("fund-{wallet}"),
            }),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Quotes, pays, and waits (bounded) for the payment to end.
    fn quote_and_pay(&self, request: &Value) -> (Value, Value) {
        let (status, quote) = self.admin("POST", "/v1/quotes", request);
        assert_eq!(status, 201, "{quote}");
        let (status, payment) = self.admin(
            "POST",
            "/v1/outgoing-payments",
            &json!({ "quote_id": quote["id"] }),
        );
        assert_eq!(status, 201, "{payment}");
        let path = format!(
            "/v1/outgoing-payments/{}",
            payment["id"].as_str().expect("id")
        );
        let started = Instant::now();
        loop {
            let (status, payment) = self.admin("GET", &path, &Value::Null);
            assert_eq!(status, 200, "{payment}");
            if payment["state"] != "sending" {
                return (quote, payment);
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "payment still sending after 60 s: {payment}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn amount(value: &Value) -> u64 {
    value
        .as_str()
        .expect("amount string")
        .parse()
        .expect("number")
}

/// A pays from its wallet (in `payer_asset`) through peer B (paid in `link_asset`)
/// into B's wallet (in `payee_asset`); B takes packets up to `max_packet`.
struct Pair {
    a: Node,
    b: Node,
    payer: String,
    payee: String,
    b_on_a: String,
    a_on_b: String,
}

fn pair(
    names: &Names,
    payer_asset: &str,
    link_asset: &str,
    payee_asset: &str,
    max_packet: u64,
) -> Pair {
    pair_with(
        names,
        (payer_asset, link_asset, payee_asset),
        max_packet,
        "",
    )
}

/// The run's USD and EUR (its ledgers, 1,000,000.00 of liquidity each) and their
/// rates: a EUR is 2 USD.
fn assets_and_rates(names: &Names) -> String {
    let Names {
        usd,
        eur,
        ledger_base,
        ..
    } = names;
    format!(
        r#"
[[assets]]
code = "{usd}"
scale = 2
ledger = {ledger_base}
initial_liquidity = 100000000

[[assets]]
code = "{eur}"
scale = 2
ledger = {ledger_eur}
initial_liquidity = 100000000

[rates]
base = "{usd}"
rates = {{ {usd} = 1.0, {eur} = 0.5 }}
"#,
        ledger_eur = ledger_base + 1
    )
}

/// [`pair`] with `extra` (TOML tables) in both nodes' configurations.
fn pair_with(
    names: &Names,
    (payer_asset, link_asset, payee_asset): (&str, &str, &str),
    max_packet: u64,
    extra: &str,
) -> Pair {
    let tag = &names.tag;
    let assets = assets_and_rates(names);
    let (payer, payee) = (format!("payer{tag}"), format!("payee{tag}"));
    let (b_on_a, a_on_b) = (format!("b{tag}"), format!("a{tag}"));
    let b_connector = free_loopback_port();
    // B first: A's peer entry needs B's connector port, which B's config fixes.
    let b_body = format!(
        r#"{assets}
[[peers]]
id = "{a_on_b}"
asset = "{link_asset}"
incoming_tokens = ["a-to-b-{tag}-0123456789"]
initial_liquidity = 100000000
max_packet_amount = {max_packet}

[[wallets]]
id = "{payee}"
asset = "{payee_asset}"
{extra}"#
    );
    let b = start_with_connector("test.b", &b_body, b_connector);
    let a_body = format!(
        r#"{assets}
[[peers]]
id = "{b_on_a}"
asset = "{link_asset}"
outgoing_url = "http://127.0.0.1:{b_connector}/ilp"
outgoing_token = "a-to-b-{tag}-0123456789"
routes = ["test.b"]

[[wallets]]
id = "{payer}"
asset = "{payer_asset}"
{extra}"#
    );
    let a = Node::start("test.a", &a_body);
    Pair {
        a,
        b,
        payer,
        payee,
        b_on_a,
        a_on_b,
    }
}

/// [`Node::start`] with a chosen connector port.
fn start_with_connector(address: &str, body: &str, connector: u16) -> Node {
    let (admin, public) = (free_loopback_port(), free_loopback_port());
    let node = node_section(address, (connector, admin, public), ADMIN_TOKEN);
    let config = format!(
        r#"
{node}

[ledger]
kind = "tigerbeetle"
addresses = "{tb}"

{body}
"#,
        tb = shared_tigerbeetle().address()
    );
    let process = RiptideProcess::start(
        &config,
        SocketAddr::from(([127, 0, 0, 1], connector)),
        SocketAddr::from(([127, 0, 0, 1], admin)),
        ADMIN_TOKEN,
        2,
    );
    Node { process, public }
}

#[test]
fn fixed_send_through_a_peer_into_its_wallet_balances_exactly() {
    let names = names();
    let p = pair(&names, &names.usd, &names.usd, &names.usd, 1_000_000);
    p.a.fund_wallet(&p.payer, 100_000);
    let spsp = format!("http://127.0.0.1:{}/{}", p.b.public, p.payee);
    let (quote, payment) = p.a.quote_and_pay(&json!({
        "wallet": p.payer,
        "destination": { "spsp": spsp },
        "send_amount": "50000",
    }));
    assert_eq!(quote["destination_asset"]["code"], names.usd.as_str());
    assert_eq!(quote["rate"], 1.0);
    assert_eq!(payment["state"], "completed", "{payment}");
    assert_eq!(
        (amount(&payment["sent"]), amount(&payment["delivered"])),
        (50_000, 50_000)
    );
    assert_eq!(
        p.a.balance("receiving", &p.payer),
        50_000,
        "the wallet paid what was sent"
    );
    assert_eq!(
        p.a.balance("peer", &p.b_on_a),
        50_000,
        "A owes B's side what it forwarded"
    );
    assert_eq!(p.b.balance("peer", &p.a_on_b), 100_000_000 - 50_000);
    assert_eq!(
        p.b.balance("receiving", &p.payee),
        50_000,
        "B's wallet got every unit"
    );
}

#[test]
fn fixed_delivery_across_currencies_delivers_exactly() {
    let names = names();
    // A's wallet is in USD; A pays B in EUR (0.5 per USD); B's wallet is in EUR.
    let p = pair(&names, &names.usd, &names.eur, &names.eur, 4_000);
    p.a.fund_wallet(&p.payer, 100_000);
    let spsp = format!("http://127.0.0.1:{}/{}", p.b.public, p.payee);
    let (quote, payment) = p.a.quote_and_pay(&json!({
        "wallet": p.payer,
        "destination": { "spsp": spsp },
        "receive_amount": 10_000,
        "slippage": 0.01,
    }));
    assert_eq!(quote["rate"], 0.5, "{quote}");
    assert_eq!(
        quote["max_packet_amount"], "8000",
        "B's F08 limit of 4000 EUR, in USD"
    );
    assert_eq!(payment["state"], "completed", "{payment}");
    let (sent, delivered) = (amount(&payment["sent"]), amount(&payment["delivered"]));
    assert_eq!(delivered, 10_000);
    assert_eq!(sent, 20_000);
    assert!(sent <= amount(&quote["source_amount"]));
    assert_eq!(
        p.a.balance("receiving", &p.payer),
        100_000 - i128::from(sent)
    );
    assert_eq!(p.b.balance("receiving", &p.payee), 10_000);
    assert_eq!(p.b.balance("peer", &p.a_on_b), 100_000_000 - 10_000);
}

/// A payment's whole budget moves from the wallet into the payment's own account
/// before the first packet: a wallet that holds less fails the payment at once,
/// with the reason, and nothing moves.
#[test]
fn a_payment_the_wallet_cannot_fund_fails_with_the_reason() {
    let names = names();
    let p = pair(&names, &names.usd, &names.usd, &names.usd, 1_000);
    p.a.fund_wallet(&p.payer, 3_500);
    let spsp = format!("http://127.0.0.1:{}/{}", p.b.public, p.payee);
    let (_, payment) = p.a.quote_and_pay(&json!({
        "wallet": p.payer,
        "destination": { "spsp": spsp },
        "send_amount": 10_000,
    }));
    assert_eq!(payment["state"], "failed", "{payment}");
    let error = payment["last_error"].as_str().expect("a reason");
    assert!(error.contains("insufficient balance"), "{error}");
    assert_eq!(amount(&payment["sent"]), 0, "{payment}");
    assert_eq!(p.a.balance("receiving", &p.payer), 3_500);
    assert_eq!(p.b.balance("receiving", &p.payee), 0);
    // Paying the same quote again answers the same payment; nothing moves.
    let (status, again) = p.a.admin(
        "POST",
        "/v1/outgoing-payments",
        &json!({ "quote_id": payment["quote_id"] }),
    );
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], payment["id"]);
    assert_eq!(again["state"], "failed");
    assert_eq!(p.a.balance("receiving", &p.payer), 3_500);
}

#[test]
fn quotes_refuse_what_cannot_be_paid() {
    let names = names();
    let p = pair(&names, &names.usd, &names.usd, &names.usd, 1_000);
    let unknown_wallet = p.a.admin(
        "POST",
        "/v1/quotes",
        &json!({"wallet": "nobody", "destination": {"spsp": "http://127.0.0.1:1/x"}, "send_amount": 5}),
    );
    assert_eq!(unknown_wallet.0, 404, "{}", unknown_wallet.1);
    let no_receiver = p.a.admin(
        "POST",
        "/v1/quotes",
        &json!({
            "wallet": p.payer,
            "destination": {"ilp_address": "test.b.nobody", "shared_secret": SECRET},
            "send_amount": 5
        }),
    );
    assert_eq!(no_receiver.0, 502, "{}", no_receiver.1);
    let bad_spsp = p.a.admin(
        "POST",
        "/v1/quotes",
        &json!({"wallet": p.payer, "destination": {"spsp": format!("http://127.0.0.1:{}/nobody", p.b.public)}, "send_amount": 5}),
    );
    assert_eq!(bad_spsp.0, 502, "{}", bad_spsp.1);
    assert!(
        bad_spsp.1["error"]
            .as_str()
            .is_some_and(|e| e.contains("404")),
        "{}",
        bad_spsp.1
    );
    let unknown_quote = p.a.admin(
        "POST",
        "/v1/outgoing-payments",
        &json!({"quote_id": "feed"}),
    );
    assert_eq!(unknown_quote.0, 404);
}

#[test]
fn pays_an_ilp_protocol_stream_receiver() {
    let names = names();
    let Names { tag, usd, .. } = &names;
    let js_port = free_loopback_port();
    let connector = free_loopback_port();
    let body = format!(
        r#"
[[assets]]
code = "{usd}"
scale = 2
ledger = {ledger}
initial_liquidity = 100000000

[[peers]]
id = "js{tag}"
asset = "{usd}"
incoming_tokens = ["js-to-a-{tag}-0123456789"]
outgoing_url = "http://127.0.0.1:{js_port}/"
outgoing_token = "a-to-js-{tag}-0123456789"

[[wallets]]
id = "payer{tag}"
asset = "{usd}"
"#,
        ledger = names.ledger_base
    );
    let a = start_with_connector("test.a", &body, connector);
    a.fund_wallet(&format!("payer{tag}"), 50_000);
    let mut receiver = NodeScript::start(
        "stream_pay.js",
        &[
            "receiver".into(),
            js_port.to_string(),
            format!("http://127.0.0.1:{connector}/ilp"),
            format!("a-to-js-{tag}-0123456789"),
            format!("js-to-a-{tag}-0123456789"),
            "20000".into(),
            "40".into(),
        ],
    );
    let credentials = receiver.next_json(Duration::from_secs(30));
    // Given as Rafiki's SPSP answers give it: base64url without padding.
    let secret = STANDARD
        .decode(credentials["secret"].as_str().expect("secret"))
        .expect("base64");
    let (_, payment) = a.quote_and_pay(&json!({
        "wallet": format!("payer{tag}"),
        "destination": {
            "ilp_address": credentials["destination"],
            "shared_secret": URL_SAFE_NO_PAD.encode(secret),
        },
        "send_amount": 20_000,
    }));
    assert_eq!(payment["state"], "completed", "{payment}");
    assert_eq!(amount(&payment["delivered"]), 20_000);
    let received = receiver.next_json(Duration::from_secs(30));
    assert_eq!(received["received"], "20000");
    assert_eq!(a.balance("receiving", &format!("payer{tag}")), 30_000);
    assert_eq!(a.balance("peer", &format!("js{tag}")), 20_000);
}

#[test]
fn webhooks_announce_the_payment_on_both_sides() {
    let receiver = WebhookReceiver::start(0);
    let extra = format!(
        "\n[webhooks]\nurl = \"{}\"\nsecret = \"both-sides-secret\"\ncheck_interval_ms = 200\n",
        receiver.url()
    );
    let names = names();
    let assets = (names.usd.as_str(), names.usd.as_str(), names.usd.as_str());
    let p = pair_with(&names, assets, 1_000_000, &extra);
    p.a.fund_wallet(&p.payer, 100_000);
    let (status, incoming) = p.b.admin(
        "POST",
        "/v1/incoming-payments",
        &json!({"wallet": p.payee, "incoming_amount": "20000", "expires_in_ms": 600_000}),
    );
    assert_eq!(status, 201, "{incoming}");
    let (_, payment) = p.a.quote_and_pay(&json!({
        "wallet": p.payer,
        "destination": {
            "ilp_address": incoming["ilp_address"],
            "shared_secret": incoming["shared_secret"],
        },
        "receive_amount": "20000",
    }));
    assert_eq!(payment["state"], "completed", "{payment}");
    let wait = Duration::from_secs(15);
    let (outgoing_id, incoming_id) = (payment["id"].clone(), incoming["id"].clone());
    receiver.wait_for("outgoing_payment.created", |d| d["id"] == outgoing_id, wait);
    let completed = receiver.wait_for(
        "outgoing_payment.completed",
        |d| d["id"] == outgoing_id,
        wait,
    );
    let data = &completed.body["data"];
    assert_eq!(data["walletAddressId"], p.payer.as_str());
    assert_eq!(data["state"], "COMPLETED");
    assert_eq!(data["sentAmount"]["value"], "20000");
    assert_eq!(data["debitAmount"]["assetCode"], names.usd.as_str());
    receiver.wait_for("incoming_payment.created", |d| d["id"] == incoming_id, wait);
    let paid = receiver.wait_for(
        "incoming_payment.completed",
        |d| d["id"] == incoming_id,
        wait,
    );
    assert_eq!(paid.body["data"]["receivedAmount"]["value"], "20000");
    // Paying the completed incoming payment again: B closes the connection, and
    // A's payment fails with its event.
    let (_, again) = p.a.quote_and_pay(&json!({
        "wallet": p.payer,
        "destination": {
            "ilp_address": incoming["ilp_address"],
            "shared_secret": incoming["shared_secret"],
        },
        "send_amount": "100",
    }));
    assert_eq!(again["state"], "failed", "{again}");
    let again_id = again["id"].clone();
    let failed = receiver.wait_for("outgoing_payment.failed", |d| d["id"] == again_id, wait);
    assert_eq!(failed.body["data"]["state"], "FAILED");
    assert!(receiver.deliveries().iter().all(|d| signed_with(
        d,
        b"both-sides-secret",
        Duration::from_secs(60)
    )));
}

/// The SPSP query of a quote over `https://`: B serves SPSP on a TLS public port
/// (`[tls] public_port`), A trusts the test CA (`[tls] ca_files`) and pays B's
/// wallet through its `https://localhost` URL.
#[test]
fn quotes_and_pays_through_an_https_spsp_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = riptide_tests::pki::TestCa::new("Riptide test CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let (certificate, key) = ca.issue(&["localhost"]).write(dir.path(), "spsp");
    let extra = format!(
        "\n[tls]\nca_files = [\"{}\"]\ncert_file = \"{}\"\nkey_file = \"{}\"\npublic_port = true\n",
        ca_file.display(),
        certificate.display(),
        key.display()
    );
    let names = names();
    let usd = names.usd.clone();
    let p = pair_with(&names, (&usd, &usd, &usd), 1_000_000, &extra);
    p.a.fund_wallet(&p.payer, 10_000);
    let spsp = format!("https://localhost:{}/{}", p.b.public, p.payee);
    let (quote, payment) = p.a.quote_and_pay(&json!({
        "wallet": p.payer,
        "destination": { "spsp": spsp },
        "send_amount": "4000",
    }));
    assert_eq!(quote["destination_asset"]["code"], usd.as_str());
    assert_eq!(payment["state"], "completed", "{payment}");
    assert_eq!(amount(&payment["delivered"]), 4_000);
    assert_eq!(p.b.balance("receiving", &p.payee), 4_000);
    // Plain http:// to the TLS port finds no SPSP server.
    let plain = format!("http://127.0.0.1:{}/{}", p.b.public, p.payee);
    let refused = p.a.admin(
        "POST",
        "/v1/quotes",
        &json!({"wallet": p.payer, "destination": {"spsp": plain}, "send_amount": 5}),
    );
    assert_eq!(refused.0, 502, "{}", refused.1);
}

/// Paying a wallet of the same data plane: no peer, no ILP hop; the local
/// receiver is paid from the paying wallet's account, in the one ledger. Through
/// its own SPSP, into an incoming payment, and across currencies (the liquidity
/// accounts take the conversion); exact by TigerBeetle's balances and by the
/// receipt totals. A wallet cannot pay itself.
#[test]
fn wallets_of_one_data_plane_pay_each_other() {
    let names = names();
    let Names { tag, usd, eur, .. } = &names;
    let (alice, bob, claire) = (
        format!("alice{tag}"),
        format!("bob{tag}"),
        format!("claire{tag}"),
    );
    let assets = assets_and_rates(&names);
    let body = format!(
        r#"{assets}
[[wallets]]
id = "{alice}"
asset = "{usd}"

[[wallets]]
id = "{bob}"
asset = "{usd}"

[[wallets]]
id = "{claire}"
asset = "{eur}"
"#
    );
    let node = Node::start("test.solo", &body);
    node.fund_wallet(&alice, 100_000);

    // Through SPSP on its own public port.
    let spsp = format!("http://127.0.0.1:{}/{bob}", node.public);
    let (quote, payment) = node.quote_and_pay(&json!({
        "wallet": alice,
        "destination": { "spsp": spsp },
        "send_amount": "30000",
    }));
    assert_eq!(quote["rate"], 1.0, "{quote}");
    assert_eq!(payment["state"], "completed", "{payment}");
    assert_eq!(amount(&payment["delivered"]), 30_000);
    assert_eq!(node.balance("receiving", &alice), 70_000);
    assert_eq!(node.balance("receiving", &bob), 30_000);

    // Into an incoming payment of bob's, for exactly its amount.
    let (status, incoming) = node.admin(
        "POST",
        "/v1/incoming-payments",
        &json!({"wallet": bob, "incoming_amount": "12345", "expires_in_ms": 600_000}),
    );
    assert_eq!(status, 201, "{incoming}");
    let (_, payment) = node.quote_and_pay(&json!({
        "wallet": alice,
        "destination": {
            "ilp_address": incoming["ilp_address"],
            "shared_secret": incoming["shared_secret"],
        },
        "receive_amount": "12345",
    }));
    assert_eq!(payment["state"], "completed", "{payment}");
    let id = incoming["id"].as_str().expect("id");
    let (_, state) = node.admin("GET", &format!("/v1/incoming-payments/{id}"), &Value::Null);
    assert_eq!(
        (state["received"].as_str(), state["state"].as_str()),
        (Some("12345"), Some("completed"))
    );
    assert_eq!(node.balance("receiving", &bob), 42_345);
    assert_eq!(node.balance("receiving", &alice), 70_000 - 12_345);

    // Across currencies: 10,000 USD units are 5,000 EUR units for claire.
    let spsp = format!("http://127.0.0.1:{}/{claire}", node.public);
    let (_, payment) = node.quote_and_pay(&json!({
        "wallet": alice,
        "destination": { "spsp": spsp },
        "send_amount": "10000",
    }));
    assert_eq!(payment["state"], "completed", "{payment}");
    assert_eq!(amount(&payment["delivered"]), 5_000);
    assert_eq!(node.balance("receiving", &claire), 5_000);
    assert_eq!(node.balance("receiving", &alice), 70_000 - 12_345 - 10_000);

    // A wallet paying itself is refused at the quote.
    let spsp = format!("http://127.0.0.1:{}/{alice}", node.public);
    let (status, refused) = node.admin(
        "POST",
        "/v1/quotes",
        &json!({"wallet": alice, "destination": {"spsp": spsp}, "send_amount": 5}),
    );
    assert_ne!(status, 201, "{refused}");
    assert_eq!(node.balance("receiving", &alice), 70_000 - 12_345 - 10_000);

    // The receipt store agrees with the ledger.
    let (status, audit) = node.admin("GET", "/v1/audit", &Value::Null);
    assert_eq!(status, 200, "{audit}");
    assert!(
        audit["problems"].as_array().is_some_and(Vec::is_empty),
        "{audit}"
    );
}

/// A TCP forwarder that holds each chunk from the client for `delay` before
/// passing it on: a slow path, so that a payment is still sending when the test
/// kills its data plane.
fn slow_forwarder(upstream: u16, delay: Duration) -> u16 {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream, delay: Duration| {
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 65_536];
                    while let Ok(n @ 1..) = from.read(&mut buffer) {
                        std::thread::sleep(delay);
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            };
            let (client_read, server_read) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            pipe(client_read, server, delay);
            pipe(server_read, client, Duration::ZERO);
        }
    });
    port
}

/// Riptide A's data planes (on one TigerBeetle and one Redis) paying riptide B
/// (embedded ledger, so that the audit of A's ledgers sees A's accounts alone)
/// through a slow path, 10 units a packet: a payment of 6,000 takes seconds.
struct SharedPayments {
    b: Node,
    a_config: String,
    payer: String,
    payee: String,
    b_on_a: String,
}

impl SharedPayments {
    /// On the shared Redis.
    fn new() -> SharedPayments {
        let redis = riptide_tests::shared_redis().url();
        SharedPayments::on(&format!("redis_url = \"{redis}\""))
    }

    /// With `receipts` (the `[receipts]` table's lines) for A's data planes.
    fn on(receipts: &str) -> SharedPayments {
        let names = names();
        let tag = &names.tag;
        let assets = assets_and_rates(&names);
        let usd = &names.usd;
        let (payer, payee, b_on_a) = (
            format!("payer{tag}"),
            format!("payee{tag}"),
            format!("b{tag}"),
        );
        let b_connector = free_loopback_port();
        let b_body = format!(
            r#"{assets}
[[peers]]
id = "a{tag}"
asset = "{usd}"
incoming_tokens = ["a-to-b-{tag}-0123456789"]
initial_liquidity = 100000000
max_packet_amount = 10

[[wallets]]
id = "{payee}"
asset = "{usd}"
"#
        );
        let (admin, public) = (free_loopback_port(), free_loopback_port());
        let node = node_section("test.b", (b_connector, admin, public), ADMIN_TOKEN);
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let config = format!("{node}\n{b_body}");
        let b = Node {
            process: RiptideProcess::start(&config, at(b_connector), at(admin), ADMIN_TOKEN, 2),
            public,
        };
        let forwarder = slow_forwarder(b_connector, Duration::from_millis(100));
        let a_config = format!(
            r#"hold_ms_max = 3000

[ledger]
kind = "tigerbeetle"
addresses = "{tb}"
pending_timeout_s = 10
request_timeout_ms = 1000

[receipts]
{receipts}

{assets}
[[peers]]
id = "{b_on_a}"
asset = "{usd}"
outgoing_url = "http://127.0.0.1:{forwarder}/ilp"
outgoing_token = "a-to-b-{tag}-0123456789"
routes = ["test.b"]

[[wallets]]
id = "{payer}"
asset = "{usd}"
"#,
            tb = shared_tigerbeetle().address(),
        );
        SharedPayments {
            b,
            a_config,
            payer,
            payee,
            b_on_a,
        }
    }

    /// One more data plane of A.
    fn start_a(&self) -> Node {
        let (connector, admin, public) = (
            free_loopback_port(),
            free_loopback_port(),
            free_loopback_port(),
        );
        let node = node_section("test.a", (connector, admin, public), ADMIN_TOKEN);
        let config = format!("{node}{}", self.a_config);
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Node {
            process: RiptideProcess::start(&config, at(connector), at(admin), ADMIN_TOKEN, 2),
            public,
        }
    }

    /// Funds the wallet on `quoter`, which quotes 6,000; `payer` pays the quote.
    /// Answers the payment's path once `reader` sees it under way.
    fn pay_until_under_way(&self, quoter: &Node, payer: &Node, reader: &Node) -> String {
        quoter.fund_wallet(&self.payer, 100_000);
        let spsp = format!("http://127.0.0.1:{}/{}", self.b.public, self.payee);
        let (status, quote) = quoter.admin(
            "POST",
            "/v1/quotes",
            &json!({ "wallet": self.payer, "destination": { "spsp": spsp }, "send_amount": 6_000 }),
        );
        assert_eq!(status, 201, "{quote}");
        assert_eq!(amount(&quote["max_packet_amount"]), 10, "{quote}");
        let (status, payment) = payer.admin(
            "POST",
            "/v1/outgoing-payments",
            &json!({ "quote_id": quote["id"] }),
        );
        assert_eq!(status, 201, "{payment}");
        assert_eq!(payment["id"], quote["id"], "a payment has its quote's id");
        // Paid again, anywhere, the quote answers its payment: nothing pays twice.
        let (status, again) = quoter.admin(
            "POST",
            "/v1/outgoing-payments",
            &json!({ "quote_id": quote["id"] }),
        );
        assert_eq!(status, 201, "{again}");
        assert_eq!(again["id"], payment["id"]);
        let path = format!("/v1/outgoing-payments/{}", text_of(&quote["id"]));
        let started = Instant::now();
        loop {
            let (status, seen) = reader.admin("GET", &path, &Value::Null);
            assert_eq!(status, 200, "the reader sees the payment: {seen}");
            if amount(&seen["sent"]) >= 500 {
                assert_eq!(seen["state"], "sending", "{seen}");
                // The payment's own account holds its budget meanwhile, and the
                // balances show it (kind `payment`, named by the payment's id).
                let (status, balances) = reader.admin("GET", "/v1/balances", &Value::Null);
                assert_eq!(status, 200, "{balances}");
                let row = balances["accounts"]
                    .as_array()
                    .expect("accounts")
                    .iter()
                    .find(|row| row["kind"] == "payment" && row["name"] == quote["id"])
                    .cloned()
                    .unwrap_or_else(|| panic!("no payment account: {balances}"));
                assert_eq!(row["credits_posted"], "6000", "{row}");
                return path;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no progress: {seen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (bounded) for `finisher` to end the payment, then checks that the
    /// wallet paid the quote's amount exactly once and the ledger audits clean.
    fn finished_exactly(&self, finisher: &Node, path: &str) {
        let started = Instant::now();
        let finished = loop {
            let (status, seen) = finisher.admin("GET", path, &Value::Null);
            assert_eq!(status, 200, "{seen}");
            if seen["state"] != "sending" {
                break seen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "not finished after 120 s: {seen}\n{}",
                finisher.process.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(finished["state"], "completed", "{finished}");
        assert_eq!(amount(&finished["sent"]), 6_000, "{finished}");
        let log = finisher.process.log();
        assert!(log.contains("taking over an outgoing payment"), "{log}");
        assert_eq!(finisher.balance("receiving", &self.payer), 100_000 - 6_000);
        assert_eq!(finisher.balance("peer", &self.b_on_a), 6_000);
        // B may have got the packets in flight when the owner died: their holds
        // expired unposted on A (the connector's loss, as for any packet a crash
        // leaves unanswered).
        let received = self.b.balance("receiving", &self.payee);
        assert!(
            (6_000..=6_000 + 16 * 10).contains(&received),
            "B received {received}"
        );
        let (clean, report) = riptide_tests::dataplane::audit_until_clean(
            finisher.process.admin,
            Duration::from_secs(30),
        );
        assert!(clean, "{report:#}");
    }
}

fn text_of(value: &Value) -> &str {
    value.as_str().expect("a string")
}

/// The payment is made on one data plane, which is killed (SIGKILL) while it
/// sends; another data plane sharing TigerBeetle and Redis takes it over once its
/// lease lapses and the dead one's holds expired, and finishes it: the wallet is
/// debited exactly the quote's amount, once, and the payment's account is settled.
#[test]
fn a_payment_whose_data_plane_dies_is_finished_by_another() {
    let setup = SharedPayments::new();
    let (other, mut owner) = (setup.start_a(), setup.start_a());
    let path = setup.pay_until_under_way(&other, &owner, &other);
    owner.process.kill();
    setup.finished_exactly(&other, &path);
}

/// The payment's only data plane is killed while it sends and started again (a
/// new process, with a new owner name): it takes its own payment over and
/// finishes it, exactly.
#[test]
fn a_payment_is_finished_by_its_data_plane_restarted() {
    let setup = SharedPayments::new();
    let mut only = setup.start_a();
    let path = setup.pay_until_under_way(&only, &only, &only);
    only.process.kill();
    only.process.restart(Duration::from_secs(30));
    setup.finished_exactly(&only, &path);
}

/// The same takeover on a Redis Cluster of 3 primaries and 3 replicas, the
/// quotes and payments in their own slots, replicas acknowledging each write.
#[test]
fn a_payment_whose_data_plane_dies_is_finished_by_another_on_a_redis_cluster() {
    let cluster = riptide_tests::RedisCluster::start(3, 1);
    let urls = cluster.urls();
    let others: Vec<String> = urls[1..].iter().map(|url| format!("\"{url}\"")).collect();
    let receipts = format!(
        "redis_url = \"{}\"\nredis_cluster = true\nredis_cluster_urls = [{}]\nredis_wait_replicas = 1",
        urls[0],
        others.join(", ")
    );
    let setup = SharedPayments::on(&receipts);
    let (other, mut owner) = (setup.start_a(), setup.start_a());
    let path = setup.pay_until_under_way(&other, &owner, &other);
    owner.process.kill();
    setup.finished_exactly(&other, &path);
}
