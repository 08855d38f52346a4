//! The control plane against real data planes: `riptidectl apply` and its day-to-day
//! commands change what two running riptide processes do with the next packets, a data
//! plane that is down is reported with a non-zero exit, and `riptidectl serve` follows
//! its file and a Rafiki-format rates feed and re-pushes to a data plane that restarts.
//! `riptidectl incoming-payment`, `quote` and `pay` move money from a wallet on one
//! data plane through its peer into a wallet on the other.
#![allow(clippy::too_many_lines)] // test code

use riptide_proto::packet::{ErrorCode, Packet, Prepare};
use riptide_tests::dataplane::{
    in_sync, node_section, prepare_for_sink, workspace_binary, HttpClient, RiptideProcess, Serve,
    SinkBehaviour, SinkPeer,
};
use riptide_tests::fixtures::{assets_toml, free_node_ports};
use riptide_tests::free_loopback_port;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "admin-token-for-control-plane-0123456789";
const ALICE_TOKEN: &str = "alice-token-0123456789";
/// Longest any single wait in these tests may take.
const WAIT_MAX: Duration = Duration::from_secs(20);

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A data plane that starts with an empty state: everything comes from riptidectl.
struct Dataplane {
    process: Option<RiptideProcess>,
    config: String,
    connector: SocketAddr,
    admin: SocketAddr,
}

impl Dataplane {
    fn start() -> Dataplane {
        let (connector, admin, public) = free_node_ports();
        let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
        let config = format!(
            r#"
{node}

[ledger]
kind = "memory"
"#
        );
        let mut dataplane = Dataplane {
            process: None,
            config,
            connector: loopback(connector),
            admin: loopback(admin),
        };
        dataplane.restart();
        dataplane
    }

    /// Stops the process if it runs and starts it again on the same ports, with the
    /// state of its file (empty, version 0).
    fn restart(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.terminate(Duration::from_secs(10));
        }
        self.process = Some(RiptideProcess::start(
            &self.config,
            self.connector,
            self.admin,
            ADMIN_TOKEN,
            1,
        ));
    }

    fn url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Sends a Prepare from alice to carol; the HTTP status and the reply.
    fn send(&self, amount: u64, seed: u8) -> (u16, Vec<u8>) {
        let prepare = prepare_for_sink(amount, "test.carol.x", Duration::from_secs(20), [seed; 32]);
        let response = HttpClient::new(self.connector)
            .post_packet(ALICE_TOKEN, &prepare)
            .expect("http to the data plane");
        (response.status, response.body)
    }
}

/// What a packet of 1000 from alice became at carol's end, or why it did not arrive.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    Delivered(u64),
    Rejected(ErrorCode),
    HttpStatus(u16),
}

fn deliver(dataplane: &Dataplane, carol: &SinkPeer, seed: u8) -> Delivery {
    let (status, reply) = dataplane.send(1000, seed);
    if status != 200 {
        return Delivery::HttpStatus(status);
    }
    match Packet::parse(&reply) {
        Ok(Packet::Fulfill(_)) => {
            let received = carol.received();
            let last = received.last().expect("carol saw the packet");
            Delivery::Delivered(Prepare::parse(&last.body).expect("a Prepare").amount)
        }
        Ok(Packet::Reject(reject)) => Delivery::Rejected(reject.code),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Waits until every data plane delivers as `expected` (bounded).
fn wait_for_delivery(dataplanes: &[&Dataplane], carol: &SinkPeer, expected: Delivery) {
    let started = Instant::now();
    let mut seed = 0u8;
    for dataplane in dataplanes {
        loop {
            seed = seed.wrapping_add(1);
            let got = deliver(dataplane, carol, seed);
            if got == expected {
                break;
            }
            assert!(
                started.elapsed() < WAIT_MAX,
                "{}: expected {expected:?}, still {got:?}",
                dataplane.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The desired state: alice (USD, sends) and carol (EUR, receives), one rate source.
struct StateSpec<'a> {
    dataplanes: &'a [String],
    carol_url: String,
    alice: bool,
    max_packet: u64,
    rates: &'a str,
}

impl StateSpec<'_> {
    fn toml(&self) -> String {
        let urls: Vec<String> = self
            .dataplanes
            .iter()
            .map(|url| format!("{{ url = \"{url}\" }}"))
            .collect();
        let alice = if self.alice {
            format!(
                r#"
[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["{ALICE_TOKEN}"]
initial_liquidity = 100000000
max_packet_amount = {}
"#,
                self.max_packet
            )
        } else {
            String::new()
        };
        let assets = assets_toml(&[("USD", 1, 1_000_000_000), ("EUR", 2, 1_000_000_000)]);
        format!(
            r#"
[control]
dataplanes = [{}]

{assets}{alice}
[[peers]]
id = "carol"
asset = "EUR"
outgoing_url = "{}"
outgoing_token = "riptide-to-carol-token"
routes = ["test.carol"]

[rates]
base = "USD"
{}
"#,
            urls.join(", "),
            self.carol_url,
            self.rates
        )
    }
}

/// Writes the file whole, by rename, as an editor does: a watcher never reads half.
fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).expect("write state file");
    std::fs::rename(&temporary, path).expect("rename state file");
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs riptidectl with the admin token in its environment; bounded in time.
fn riptidectl(args: &[&str]) -> Output {
    let mut child = Command::new(workspace_binary("riptidectl"))
        .args(args)
        .env("RIPTIDE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("RIPTIDE_DATAPLANES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start riptidectl");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let readers = (
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        }),
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        }),
    );
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("riptidectl {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        code: status.code().unwrap_or(-1),
        stdout: readers.0.join().unwrap_or_default(),
        stderr: readers.1.join().unwrap_or_default(),
    };
    assert!(
        !output.stdout.contains(ADMIN_TOKEN) && !output.stderr.contains(ADMIN_TOKEN),
        "the admin token leaked: {}{}",
        output.stdout,
        output.stderr
    );
    output
}

/// `riptidectl` against both data planes, with short timeouts.
fn ctl(dataplanes: &[&Dataplane], args: &[&str]) -> Output {
    let urls: Vec<String> = dataplanes.iter().map(|d| d.url()).collect();
    let mut all: Vec<&str> = Vec::new();
    for url in &urls {
        all.extend(["--dataplane", url]);
    }
    all.extend(["--timeout-ms", "3000", "--attempts", "3"]);
    all.extend(args);
    riptidectl(&all)
}

fn assert_ok(output: &Output) {
    assert_eq!(
        output.code, 0,
        "stdout: {}\nstderr: {}",
        output.stdout, output.stderr
    );
}

#[test]
fn apply_and_day_to_day_commands_reach_every_dataplane() {
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let (a, b) = (Dataplane::start(), Dataplane::start());
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.toml");
    let urls = [a.url(), b.url()];
    let spec = StateSpec {
        dataplanes: &urls,
        carol_url: carol.url(),
        alice: true,
        max_packet: 5000,
        rates: "rates = { USD = 1.0, EUR = 0.5 }",
    };
    std::fs::write(&file, spec.toml()).expect("write state");
    let file_arg = file.display().to_string();

    let applied = riptidectl(&["apply", "-f", &file_arg, "--json"]);
    assert_ok(&applied);
    let report = applied.json();
    let version = report["version"].as_u64().expect("version");
    for dataplane in report["dataplanes"].as_array().expect("dataplanes") {
        assert_eq!(dataplane["acknowledged_version"], version, "{report}");
    }
    wait_for_delivery(&[&a, &b], &carol, Delivery::Delivered(500));

    // Applying the same file again changes nothing and says so.
    let again = riptidectl(&["apply", "-f", &file_arg]);
    assert_ok(&again);
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);

    assert_ok(&ctl(&[&a, &b], &["rates", "set", "EUR=0.8"]));
    wait_for_delivery(&[&a, &b], &carol, Delivery::Delivered(800));
    let rates = ctl(&[&a], &["rates", "show", "--json"]).json();
    assert_eq!(rates["rates"]["EUR"], 0.8);

    assert_ok(&ctl(
        &[&a, &b],
        &["limits", "set", "alice", "--max-packet", "100"],
    ));
    wait_for_delivery(&[&a, &b], &carol, Delivery::Rejected(ErrorCode::F08));

    let peers = ctl(&[&b], &["peer", "list", "--json"]);
    assert_ok(&peers);
    assert!(!peers.stdout.contains(ALICE_TOKEN), "tokens are not listed");
    let alice = &peers.json()["peers"][0];
    assert_eq!(
        (alice["id"].as_str(), alice["max_packet_amount"].as_u64()),
        (Some("alice"), Some(100))
    );
    // A limit shared by both data planes, as the README writes the command.
    assert_ok(&ctl(
        &[&a, &b],
        &[
            "limits",
            "set",
            "alice",
            "--rate",
            "100000/s",
            "--limit-scope",
            "shared",
        ],
    ));
    let alice = &ctl(&[&b], &["peer", "list", "--json"]).json()["peers"][0];
    assert_eq!(
        (
            alice["rate_limit_packets_per_second"].as_u64(),
            alice["limit_scope"].as_str()
        ),
        (Some(100_000), Some("shared"))
    );

    assert_ok(&ctl(
        &[&a, &b],
        &["route", "add", "test.elsewhere", "--peer", "carol"],
    ));
    let routes = ctl(&[&a], &["route", "list"]);
    assert!(
        routes.stdout.contains("test.elsewhere  carol"),
        "{}",
        routes.stdout
    );

    // Counters are published once a second; rejects by code show after that.
    std::thread::sleep(Duration::from_millis(1200));
    let status = ctl(&[&a, &b], &["status", "--json", "--interval-ms", "0"]);
    assert_ok(&status);
    let status = status.json();
    let rows = status["dataplanes"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["version"], rows[1]["version"]);
    assert!(
        rows[0]["rejects_by_code"]["F08"].as_u64() >= Some(1),
        "{status}"
    );
    assert!(rows[0]["fulfilled"].as_u64() >= Some(1), "{status}");

    let deposit = [
        "liquidity",
        "deposit",
        "--peer",
        "alice",
        "1000",
        "--key",
        "k-1",
        "--json",
    ];
    assert_eq!(ctl(&[&a], &deposit).json()["created"], true);
    assert_eq!(
        ctl(&[&a], &deposit).json()["created"],
        false,
        "the key moves money once"
    );
    let balances = ctl(&[&a], &["balance", "--json"]).json();
    let accounts = balances["balances"]["accounts"]
        .as_array()
        .expect("accounts");
    assert!(accounts.iter().any(|account| account["name"] == "alice"));

    let missing = ctl(&[&a, &b], &["peer", "remove", "nobody"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert_ok(&ctl(&[&a, &b], &["peer", "remove", "alice"]));
    wait_for_delivery(&[&a, &b], &carol, Delivery::HttpStatus(401));
}

#[test]
fn apply_reports_a_dataplane_that_is_down_and_exits_non_zero() {
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let up = Dataplane::start();
    let down = format!("http://127.0.0.1:{}", free_loopback_port());
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.toml");
    let urls = [up.url(), down.clone()];
    let spec = StateSpec {
        dataplanes: &urls,
        carol_url: carol.url(),
        alice: true,
        max_packet: 5000,
        rates: "rates = { USD = 1.0, EUR = 0.5 }",
    };
    std::fs::write(&file, spec.toml()).expect("write state");
    let file_arg = file.display().to_string();

    let applied = riptidectl(&["apply", "-f", &file_arg, "--json", "--attempts", "3"]);
    assert_eq!(applied.code, 1, "stderr: {}", applied.stderr);
    let report = applied.json();
    assert_eq!(report["ok"], false);
    let rows = report["dataplanes"].as_array().expect("rows");
    assert_eq!(rows[0]["acknowledged_version"], report["version"]);
    assert_eq!(rows[1]["url"], down.as_str());
    assert_eq!(rows[1]["acknowledged_version"], Value::Null);
    assert_eq!(rows[1]["attempts"], 3);
    assert!(rows[1]["error"]
        .as_str()
        .is_some_and(|e| e.contains("unreachable")));
    assert!(applied.stderr.contains("retrying"), "{}", applied.stderr);
    assert!(
        applied.stderr.contains("did not acknowledge"),
        "{}",
        applied.stderr
    );
    // The data plane that is up got the state all the same.
    wait_for_delivery(&[&up], &carol, Delivery::Delivered(500));

    // An invalid file is refused before anything is sent, naming field and line.
    let invalid = spec
        .toml()
        .replace("max_packet_amount = 5000", "max_packet_amount = 0");
    std::fs::write(&file, invalid).expect("write state");
    let refused = riptidectl(&["apply", "-f", &file_arg]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains("line 22: peers[0].max_packet_amount: must be greater than 0"),
        "{}",
        refused.stderr
    );
}

/// A Rafiki-format rates feed: `GET /rates?base=USD` answers the current EUR rate.
struct RatesServer {
    address: SocketAddr,
    eur: Arc<Mutex<String>>,
    requests: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RatesServer {
    fn start(eur: &str) -> RatesServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind rates feed");
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("address");
        let eur = Arc::new(Mutex::new(eur.to_owned()));
        let requests = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (eur, requests, stop) =
                (Arc::clone(&eur), Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            requests.fetch_add(1, Ordering::Relaxed);
                            answer_rates(stream, &eur);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        RatesServer {
            address,
            eur,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/rates", self.address)
    }

    fn set(&self, eur: &str) {
        *self.eur.lock().expect("rates lock") = eur.to_owned();
    }
}

impl Drop for RatesServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer_rates(mut stream: std::net::TcpStream, eur: &Mutex<String>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(Some(request)) = riptide_tests::dataplane::read_message(&mut stream, &mut Vec::new())
    else {
        return;
    };
    let (status, body) = if request.method_and_path() == Some(("GET", "/rates?base=USD")) {
        let eur = eur.lock().expect("rates lock").clone();
        (
            "200 OK",
            format!(r#"{{"base":"USD","rates":{{"EUR":{eur}}}}}"#),
        )
    } else {
        ("404 Not Found", "{}".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

#[test]
fn serve_follows_the_file_the_rates_feed_and_restarted_dataplanes() {
    let carol = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let feed = RatesServer::start("0.5");
    let (a, mut b) = (Dataplane::start(), Dataplane::start());
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.toml");
    let urls = [a.url(), b.url()];
    let rates = format!("url = \"{}\"\nlifetime_ms = 300", feed.url());
    let mut spec = StateSpec {
        dataplanes: &urls,
        carol_url: carol.url(),
        alice: true,
        max_packet: 5000,
        rates: &rates,
    };
    write_atomically(&file, &spec.toml());
    let serve = Serve::start(&file, dir.path().join("serve.log"), ADMIN_TOKEN);

    let first = serve.wait_for("both data planes in sync", in_sync);
    assert!(first["rates"]["age_ms"].as_u64().is_some(), "{first}");
    wait_for_delivery(&[&a, &b], &carol, Delivery::Delivered(500));

    // A new rate from the feed reaches the next packets.
    feed.set("0.8");
    wait_for_delivery(&[&a, &b], &carol, Delivery::Delivered(800));
    assert!(feed.requests.load(Ordering::Relaxed) >= 2);

    // An edit of the file does too.
    spec.max_packet = 100;
    write_atomically(&file, &spec.toml());
    wait_for_delivery(&[&a, &b], &carol, Delivery::Rejected(ErrorCode::F08));

    // A data plane that restarts on its own (empty) file gets the state again.
    b.restart();
    let restarted = serve.wait_for("the restart noticed and repaired", |status| {
        in_sync(status) && status["dataplanes"][1]["restarts_detected"].as_u64() >= Some(1)
    });
    assert_eq!(restarted["dataplanes"][0]["restarts_detected"], 0);
    wait_for_delivery(&[&b], &carol, Delivery::Rejected(ErrorCode::F08));

    // Removing a peer from the file refuses its token everywhere.
    spec.alice = false;
    write_atomically(&file, &spec.toml());
    wait_for_delivery(&[&a, &b], &carol, Delivery::HttpStatus(401));

    // A broken file keeps the last good state and says why.
    write_atomically(&file, "[[peers]]\nid = 5\n");
    let broken = serve.wait_for("the file error reported", |status| {
        status["file"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("line 2"))
    });
    assert!(in_sync(&broken));
    assert!(!serve.log().contains(ADMIN_TOKEN));
}

const A_TO_B_TOKEN: &str = "a-to-b-token-for-control-plane-0123456789";

/// A data plane with its state in its file: the memory ledger and the embedded
/// receipt store, one USD asset, and `body` (peers, wallets).
struct PaymentNode {
    _process: RiptideProcess,
    admin: SocketAddr,
    public: u16,
}

impl PaymentNode {
    fn start(address: &str, connector: u16, body: &str) -> PaymentNode {
        let (admin, public) = (free_loopback_port(), free_loopback_port());
        let node = node_section(address, (connector, admin, public), ADMIN_TOKEN);
        let config = format!(
            r#"
{node}

[ledger]
kind = "memory"

[[assets]]
code = "USD"
scale = 2
ledger = 1
initial_liquidity = 1000000000

[rates]
base = "USD"
rates = {{ USD = 1.0 }}
{body}
"#
        );
        let process = RiptideProcess::start(
            &config,
            loopback(connector),
            loopback(admin),
            ADMIN_TOKEN,
            1,
        );
        PaymentNode {
            _process: process,
            admin: loopback(admin),
            public,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.admin)
    }
}

/// `riptidectl` against these payment nodes, with short timeouts.
fn ctl_pay(nodes: &[&PaymentNode], args: &[&str]) -> Output {
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let mut all: Vec<&str> = Vec::new();
    for url in &urls {
        all.extend(["--dataplane", url]);
    }
    all.extend(["--timeout-ms", "3000", "--attempts", "3"]);
    all.extend(args);
    riptidectl(&all)
}

/// The value of `name` in riptidectl's `name  value` lines.
fn field<'a>(output: &'a Output, name: &str) -> Option<&'a str> {
    output.stdout.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim())
    })
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

#[test]
fn incoming_payments_quotes_and_payments_between_two_dataplanes() {
    // B first: A's peer entry names B's connector port.
    let b_connector = free_loopback_port();
    let b = PaymentNode::start(
        "test.b",
        b_connector,
        &format!(
            r#"
[[peers]]
id = "a"
asset = "USD"
incoming_tokens = ["{A_TO_B_TOKEN}"]
initial_liquidity = 100000000

[[wallets]]
id = "shop"
asset = "USD"
"#
        ),
    );
    let a = PaymentNode::start(
        "test.a",
        free_loopback_port(),
        &format!(
            r#"
[[peers]]
id = "b"
asset = "USD"
outgoing_url = "http://127.0.0.1:{b_connector}/ilp"
outgoing_token = "{A_TO_B_TOKEN}"
routes = ["test.b"]

[[wallets]]
id = "payer"
asset = "USD"
"#
        ),
    );

    let funded = ctl_pay(
        &[&a],
        &[
            "liquidity",
            "deposit",
            "--wallet",
            "payer",
            "100000",
            "--key",
            "fund-payer",
            "--json",
        ],
    );
    assert_ok(&funded);
    assert_eq!(funded.json()["account"], "wallet:payer");
    assert_eq!(funded.json()["created"], true);

    // An incoming payment on B, paid from A with its credentials.
    let created = ctl_pay(
        &[&b],
        &[
            "incoming-payment",
            "create",
            "--wallet",
            "shop",
            "--amount",
            "5000",
            "--json",
        ],
    );
    assert_ok(&created);
    let incoming = created.json();
    assert_eq!(incoming["state"], "pending", "{incoming}");
    assert_eq!(incoming["incoming_amount"], "5000");
    let (incoming_id, address, secret) = (
        text(&incoming, "id"),
        text(&incoming, "ilp_address"),
        text(&incoming, "shared_secret"),
    );
    assert!(address.starts_with("test.b."), "{address}");

    let quoted = ctl_pay(
        &[&a],
        &[
            "quote",
            "--wallet",
            "payer",
            "--ilp-address",
            address,
            "--shared-secret",
            secret,
            "--receive",
            "5000",
            "--json",
        ],
    );
    assert_ok(&quoted);
    let quote = quoted.json();
    assert_eq!(quote["min_delivery_amount"], "5000", "{quote}");
    assert_eq!(quote["fixed"], "delivery");
    let source: u64 = text(&quote, "source_amount").parse().expect("number");
    assert!((5000..=5100).contains(&source), "{quote}");

    // Given both data planes, pay uses the first that answers (A, whose store
    // holds the quote).
    let paid = ctl_pay(&[&a, &b], &["pay", "--quote", text(&quote, "id"), "--json"]);
    assert_ok(&paid);
    let payment = paid.json();
    assert_eq!(payment["state"], "completed", "{payment}");
    assert_eq!(payment["delivered"], "5000");
    assert_eq!(payment["dataplane"], a.url().as_str());

    let shown = ctl_pay(&[&b], &["incoming-payment", "show", incoming_id, "--json"]);
    assert_ok(&shown);
    let shown = shown.json();
    assert_eq!(
        (shown["state"].as_str(), shown["received"].as_str()),
        (Some("completed"), Some("5000")),
        "{shown}"
    );
    let shown_text = ctl_pay(&[&b], &["incoming-payment", "show", incoming_id]);
    assert_ok(&shown_text);
    assert_eq!(
        field(&shown_text, "state"),
        Some("completed"),
        "{}",
        shown_text.stdout
    );
    assert_eq!(field(&shown_text, "received"), Some("5000"));
    let closed = ctl_pay(&[&b], &["incoming-payment", "credentials", incoming_id]);
    assert_eq!(closed.code, 1, "no credentials for a completed payment");
    assert!(
        closed.stderr.contains("no longer pending"),
        "{}",
        closed.stderr
    );

    // Quote and pay at once, to B's wallet through SPSP, as people read it.
    let spsp = format!("http://127.0.0.1:{}/shop", b.public);
    let paid = ctl_pay(
        &[&a],
        &[
            "pay", "--wallet", "payer", "--spsp", &spsp, "--send", "2000",
        ],
    );
    assert_ok(&paid);
    assert_eq!(field(&paid, "state"), Some("completed"), "{}", paid.stdout);
    assert_eq!(field(&paid, "delivered"), Some("2000"));
    let payment_id = field(&paid, "id").expect("an id").to_owned();
    let shown = ctl_pay(&[&a], &["payment", "show", &payment_id, "--json"]);
    assert_ok(&shown);
    assert_eq!(shown.json()["sent"], "2000");
    // A data plane that cannot be reached is passed over for the next one.
    let dead = format!("http://127.0.0.1:{}", free_loopback_port());
    let url = a.url();
    let past_dead = riptidectl(&[
        "--dataplane",
        &dead,
        "--dataplane",
        &url,
        "--attempts",
        "1",
        "payment",
        "show",
        &payment_id,
        "--json",
    ]);
    assert_ok(&past_dead);
    assert_eq!(past_dead.json()["sent"], "2000");
    assert!(
        past_dead.stderr.contains("trying the next data plane"),
        "{}",
        past_dead.stderr
    );

    // An SPSP URL for a wallet B does not have: the quote fails, and says why.
    let unknown = format!("http://127.0.0.1:{}/nobody", b.public);
    let refused = ctl_pay(
        &[&a],
        &[
            "pay", "--wallet", "payer", "--spsp", &unknown, "--send", "100",
        ],
    );
    assert_eq!(
        refused.code, 1,
        "stdout: {}\nstderr: {}",
        refused.stdout, refused.stderr
    );
    assert!(refused.stderr.contains("404"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains("retrying"),
        "a quote is asked once"
    );

    // More than the wallet holds: the payment starts, fails on the way, and says why.
    let too_much = ctl_pay(
        &[&a],
        &[
            "pay", "--wallet", "payer", "--spsp", &spsp, "--send", "1000000", "--json",
        ],
    );
    assert_eq!(
        too_much.code, 1,
        "stdout: {}\nstderr: {}",
        too_much.stdout, too_much.stderr
    );
    let failed = too_much.json();
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        too_much.stderr.contains("insufficient balance"),
        "{}",
        too_much.stderr
    );

    // What was refused before anything was sent is a usage error.
    let usage = ctl_pay(&[&a], &["pay", "--quote", "q", "--wallet", "payer"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

/// Through `riptidectl serve`, against TigerBeetle: an `initial_liquidity` changed
/// after its deposit is applied with a notice and moves nothing (it used to wedge
/// every later push with a 503), and a state the ledger refuses (an asset moved to
/// another ledger) reads `refused` with the ledger's reason, not `unreachable`.
#[test]
fn serve_reports_changed_liquidity_and_ledger_refusals() {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let run = std::process::id() % 100_000;
    let (asset, peer) = (format!("L{run}x{n}"), format!("payer{run}x{n}"));
    let ledger = 800_000 + (run % 1000) * 10 + n;
    let (connector, admin, public) = free_node_ports();
    let node = node_section("test.riptide", (connector, admin, public), ADMIN_TOKEN);
    let config = format!(
        "{node}\n[ledger]\nkind = \"tigerbeetle\"\ncluster_id = \"0\"\naddresses = \"{}\"\n",
        riptide_tests::shared_tigerbeetle().address()
    );
    let riptide = RiptideProcess::start(
        &config,
        loopback(connector),
        loopback(admin),
        ADMIN_TOKEN,
        1,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.toml");
    let state = |ledger: u32, peer_liquidity: u64| {
        format!(
            r#"
[control]
dataplanes = [{{ url = "http://{}" }}]

[[assets]]
code = "{asset}"
scale = 2
ledger = {ledger}
initial_liquidity = 1000

[[peers]]
id = "{peer}"
asset = "{asset}"
incoming_tokens = ["{peer}-token-0123456789"]
initial_liquidity = {peer_liquidity}
"#,
            loopback(admin)
        )
    };
    let peer_credits = || {
        let response = riptide.admin_request("GET", "/v1/balances", b"");
        let body: Value = serde_json::from_slice(&response.body).expect("balances JSON");
        body["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .find(|row| row["kind"] == "peer" && row["name"] == peer.as_str())
            .map(|row| row["credits_posted"].as_str().unwrap_or("?").to_owned())
    };
    write_atomically(&file, &state(ledger, 500));
    let serve = Serve::start(&file, dir.path().join("serve.log"), ADMIN_TOKEN);
    let first = serve.wait_for("in sync", in_sync);
    assert_eq!(peer_credits().as_deref(), Some("500"));

    write_atomically(&file, &state(ledger, 900));
    let version = first["desired_version"].as_u64().expect("version");
    let changed = serve.wait_for("the changed liquidity applied", |status| {
        in_sync(status) && status["desired_version"].as_u64() > Some(version)
    });
    assert_eq!(changed["dataplanes"][0]["state"], "in_sync", "{changed}");
    let log = serve.log();
    assert!(
        log.contains("notice") && log.contains("initial_liquidity is 900 but 500 was deposited"),
        "serve prints the notice:\n{log}"
    );
    assert_eq!(
        peer_credits().as_deref(),
        Some("500"),
        "a changed value moves nothing"
    );

    write_atomically(&file, &state(ledger + 7, 900));
    let refused = serve.wait_for("the ledger's refusal reported", |status| {
        status["dataplanes"][0]["state"] == "refused"
    });
    let error = refused["dataplanes"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("422") && error.contains("create account"),
        "the reason is given: {refused}"
    );
}

/// `riptidectl decode` on the ILDCP exchange of a real data plane: the request and
/// the answer are recognised as ILDCP before any decryption, with a shared secret
/// given or not (a secret used to make the CLI try to decrypt them and fail).
#[test]
fn decode_reads_a_real_ildcp_exchange_with_or_without_a_secret() {
    use riptide_proto::packet::ildcp::{ILDCP_DESTINATION, PEER_PROTOCOL_CONDITION};
    use riptide_proto::packet::{Address, Timestamp};
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 1, 1_000)]);
    let text = format!(
        "{node}\n{assets}\n[[peers]]\nid = \"alice\"\nasset = \"USD\"\nincoming_tokens = [\"alice-token-0123456789\"]\n"
    );
    let riptide = RiptideProcess::start_at(&text, ports, 1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let request = Prepare {
        amount: 0,
        expires_at: Timestamp::from_unix_ms(now_ms + 30_000).expect("in range"),
        execution_condition: &PEER_PROTOCOL_CONDITION,
        destination: Address::parse_str(ILDCP_DESTINATION).expect("address"),
        data: &[],
    }
    .to_bytes();
    let answer = HttpClient::new(riptide.connector)
        .post_packet("alice-token-0123456789", &request)
        .expect("ILDCP answer");
    assert_eq!(answer.status, 200);
    let secret = "t9CdLhbm-DxVtg5C_NfCuO1JYkod9zxZs4Pb4uhpAwk";
    for (packet, key) in [(&request, "ildcpRequest"), (&answer.body, "ildcpResponse")] {
        let packet_hex = hex::encode(packet);
        for args in [
            vec!["decode", packet_hex.as_str()],
            vec!["decode", packet_hex.as_str(), "--shared-secret", secret],
        ] {
            let output = riptidectl(&args);
            assert_ok(&output);
            let json = output.json();
            assert!(json[key] != Value::Null && json[key] != false, "{json}");
            assert!(json.get("stream").is_none(), "{json}");
        }
    }
    let decoded = riptidectl(&["decode", &hex::encode(&answer.body)]).json();
    assert_eq!(
        decoded["ildcpResponse"]["clientAddress"],
        "test.riptide.alice"
    );
}
