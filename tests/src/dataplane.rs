//! Riptide data planes and ILP-over-HTTP peers as real processes and sockets, for
//! end-to-end tests: a blocking HTTP/1.1 client and a sink peer small enough to read
//! in one sitting, so a failure points at Riptide and not at the harness.

use riptide_proto::http1::{write_response, Message};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// A parsed HTTP request, as the sink saw it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

use crate::limits::BODY_SIZE_MAX;

/// Reads from `stream` into `buffer` until a whole message is there, framed by the
/// data plane's own codec (`riptide_proto::http1`); `None` when the peer closed
/// between messages. Bytes read stay in `buffer` across a read timeout. For the test
/// peers that the end-to-end tests write themselves too.
pub fn read_message(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Message>> {
    riptide_proto::http1::read_message(stream, buffer, BODY_SIZE_MAX)
}

fn header_map(message: &Message) -> HashMap<String, String> {
    message.headers.iter().cloned().collect()
}

impl HttpResponse {
    fn of(message: Message) -> HttpResponse {
        HttpResponse {
            status: message.status().unwrap_or(0),
            headers: header_map(&message),
            body: message.body,
        }
    }
}

/// A keep-alive HTTP/1.1 client connection.
pub struct HttpClient {
    address: SocketAddr,
    connection: Option<(TcpStream, Vec<u8>)>,
}

impl HttpClient {
    pub fn new(address: SocketAddr) -> Self {
        HttpClient {
            address,
            connection: None,
        }
    }

    /// Sends one request and reads the response; reconnects once if the kept-alive
    /// connection was closed by the server.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<HttpResponse> {
        match self.request_once(method, path, headers, body) {
            Ok(response) => Ok(response),
            Err(_) => {
                self.connection = None;
                self.request_once(method, path, headers, body)
            }
        }
    }

    fn request_once(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<HttpResponse> {
        if self.connection.is_none() {
            let stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(5))?;
            stream.set_read_timeout(Some(Duration::from_secs(60)))?;
            stream.set_nodelay(true)?;
            self.connection = Some((stream, Vec::new()));
        }
        let (stream, buffer) = self
            .connection
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no connection"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let response = read_message(stream, buffer)?
            .ok_or_else(|| std::io::Error::other("connection closed"))?;
        Ok(HttpResponse::of(response))
    }

    /// POSTs an ILP packet with a bearer token, as an ILP-over-HTTP peer does.
    pub fn post_packet(&mut self, token: &str, packet: &[u8]) -> std::io::Result<HttpResponse> {
        let authorization = format!("Bearer {token}");
        self.request(
            "POST",
            "/ilp",
            &[
                ("Authorization", &authorization),
                ("Content-Type", "application/octet-stream"),
            ],
            packet,
        )
    }
}

/// A connection that writes raw bytes and reads responses one by one, to test HTTP
/// framing: pipelining, chunked bodies, interim responses, connection close.
pub struct RawHttpConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawHttpConnection {
    pub fn connect(address: SocketAddr) -> std::io::Result<RawHttpConnection> {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        Ok(RawHttpConnection {
            stream,
            buffer: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next response, or `None` when the server closed the connection.
    pub fn response(&mut self) -> std::io::Result<Option<HttpResponse>> {
        Ok(read_message(&mut self.stream, &mut self.buffer)?.map(HttpResponse::of))
    }
}

/// How the sink answers a Prepare.
#[derive(Debug, Clone)]
pub enum SinkBehaviour {
    /// Fulfill with the first 32 bytes of the Prepare's data as the fulfillment.
    FulfillFromData,
    /// Fulfill with this (possibly wrong) fulfillment.
    FulfillWith([u8; 32]),
    /// Answer these raw bytes.
    Raw(Vec<u8>),
    /// Answer this HTTP status with an empty body.
    Status(u16),
    /// Wait, then behave as the inner behaviour.
    Delay(Duration, Box<SinkBehaviour>),
    /// Fulfill from the data when its 33rd byte is even, else reject with F99: a
    /// sender picks each packet's outcome.
    FulfillIfEven,
    /// Fulfill from the data, after the delay when its 33rd byte is [`SLOW_MARK`]:
    /// a sender picks which packets are slow.
    DelayMarked(Duration),
}

/// The byte of [`SinkBehaviour::DelayMarked`] that makes a packet slow.
pub const SLOW_MARK: u8 = 0xFF;

/// A downstream ILP-over-HTTP peer that records what it receives.
pub struct SinkPeer {
    pub address: SocketAddr,
    pub behaviour: Arc<Mutex<SinkBehaviour>>,
    pub received: Arc<Mutex<Vec<HttpRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SinkPeer {
    pub fn start(behaviour: SinkBehaviour) -> SinkPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let address = listener.local_addr().expect("sink address");
        listener.set_nonblocking(true).expect("nonblocking");
        let behaviour = Arc::new(Mutex::new(behaviour));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (behaviour, received, stop) = (
                Arc::clone(&behaviour),
                Arc::clone(&received),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || accept_loop(listener, behaviour, received, stop))
        };
        SinkPeer {
            address,
            behaviour,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/ilp", self.address)
    }

    pub fn set(&self, behaviour: SinkBehaviour) {
        *self.behaviour.lock().expect("sink lock") = behaviour;
    }

    pub fn received(&self) -> Vec<HttpRequest> {
        self.received.lock().expect("sink lock").clone()
    }
}

impl Drop for SinkPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    behaviour: Arc<Mutex<SinkBehaviour>>,
    received: Arc<Mutex<Vec<HttpRequest>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (behaviour, received, stop) = (
                    Arc::clone(&behaviour),
                    Arc::clone(&received),
                    Arc::clone(&stop),
                );
                std::thread::spawn(move || {
                    serve_sink_connection(stream, behaviour, received, stop)
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn serve_sink_connection(
    mut stream: TcpStream,
    behaviour: Arc<Mutex<SinkBehaviour>>,
    received: Arc<Mutex<Vec<HttpRequest>>>,
    stop: Arc<AtomicBool>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buffer = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let message = match read_message(&mut stream, &mut buffer) {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        let (method, path) = message.method_and_path().unwrap_or_default();
        let request = HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: header_map(&message),
            body: message.body,
        };
        let current = behaviour.lock().expect("sink lock").clone();
        let body = request.body.clone();
        // Recorded on arrival, so a test can tell a packet is in flight.
        received.lock().expect("sink lock").push(request);
        let (status, reply) = sink_reply(&current, &body);
        let mut response = Vec::with_capacity(128 + reply.len());
        write_response(
            &mut response,
            status,
            "application/octet-stream",
            &reply,
            None,
        );
        if stream.write_all(&response).is_err() {
            return;
        }
    }
}

fn sink_reply(behaviour: &SinkBehaviour, prepare: &[u8]) -> (u16, Vec<u8>) {
    use riptide_proto::packet::{Fulfill, Prepare};
    match behaviour {
        SinkBehaviour::FulfillFromData => match Prepare::parse(prepare) {
            Ok(parsed) if parsed.data.len() >= 32 => {
                let mut fulfillment = [0u8; 32];
                fulfillment.copy_from_slice(&parsed.data[..32]);
                (
                    200,
                    Fulfill {
                        fulfillment: &fulfillment,
                        data: b"sink",
                    }
                    .to_bytes(),
                )
            }
            _ => (400, Vec::new()),
        },
        SinkBehaviour::FulfillWith(fulfillment) => (
            200,
            Fulfill {
                fulfillment,
                data: b"",
            }
            .to_bytes(),
        ),
        SinkBehaviour::Raw(bytes) => (200, bytes.clone()),
        SinkBehaviour::Status(status) => (*status, Vec::new()),
        SinkBehaviour::FulfillIfEven => match Prepare::parse(prepare) {
            Ok(parsed) if parsed.data.len() > 32 && parsed.data[32] % 2 == 0 => {
                sink_reply(&SinkBehaviour::FulfillFromData, prepare)
            }
            Ok(_) => {
                let reject = riptide_proto::packet::Reject {
                    code: riptide_proto::packet::ErrorCode::F99,
                    triggered_by: "test.sink",
                    message: b"odd",
                    data: b"",
                };
                (200, reject.to_bytes())
            }
            Err(_) => (400, Vec::new()),
        },
        SinkBehaviour::DelayMarked(duration) => {
            let marked =
                Prepare::parse(prepare).is_ok_and(|parsed| parsed.data.get(32) == Some(&SLOW_MARK));
            if marked {
                std::thread::sleep(*duration);
            }
            sink_reply(&SinkBehaviour::FulfillFromData, prepare)
        }
        SinkBehaviour::Delay(duration, inner) => {
            std::thread::sleep(*duration);
            sink_reply(inner, prepare)
        }
    }
}

/// A Prepare whose fulfillment the sink derives: the first 32 bytes of its data.
pub fn prepare_for_sink(
    amount: u64,
    destination: &str,
    expires_in: Duration,
    fulfillment: [u8; 32],
) -> Vec<u8> {
    prepare_with_outcome(amount, destination, expires_in, fulfillment, 0)
}

/// Like [`prepare_for_sink`], with the byte [`SinkBehaviour::FulfillIfEven`] reads.
pub fn prepare_with_outcome(
    amount: u64,
    destination: &str,
    expires_in: Duration,
    fulfillment: [u8; 32],
    outcome: u8,
) -> Vec<u8> {
    use riptide_proto::packet::{condition_of, Address, Prepare, Timestamp};
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let condition = condition_of(&fulfillment);
    let mut data = fulfillment.to_vec();
    data.push(outcome);
    data.extend_from_slice(b"riptide-test");
    Prepare {
        amount,
        expires_at: Timestamp::from_unix_ms(now_ms + expires_in.as_millis() as u64)
            .expect("in range"),
        execution_condition: &condition,
        destination: Address::parse_str(destination).expect("valid destination"),
        data: &data,
    }
    .to_bytes()
}

/// Path of a binary built in this workspace's target folder.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile folder");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

/// The stream secret of every test riptide (base64 of the bytes 0 to 31).
pub const TEST_STREAM_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The `[node]` table of a test riptide: its address, ports and admin token.
pub fn node_section(
    address: &str,
    (connector, admin, public): (u16, u16, u16),
    admin_token: &str,
) -> String {
    format!(
        r#"[node]
ilp_address = "{address}"
connector_port = {connector}
admin_port = {admin}
public_port = {public}
stream_secret = "{TEST_STREAM_SECRET}"
admin_token = "{admin_token}"
"#
    )
}

/// A wallet's STREAM credentials from SPSP on `public`: destination and secret.
pub fn spsp_credentials(public: SocketAddr, wallet: &str) -> (String, Vec<u8>) {
    use base64::Engine;
    let response = HttpClient::new(public)
        .request(
            "GET",
            &format!("/{wallet}"),
            &[("Accept", "application/spsp4+json")],
            b"",
        )
        .expect("SPSP request");
    assert_eq!(response.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&response.body).expect("SPSP JSON");
    let secret = body["shared_secret"].as_str().expect("secret");
    (
        body["destination_account"]
            .as_str()
            .expect("destination")
            .to_owned(),
        base64::engine::general_purpose::STANDARD
            .decode(secret)
            .expect("base64"),
    )
}

/// A running `riptide` process, stopped (SIGTERM, then kill) on drop.
pub struct RiptideProcess {
    pub child: Child,
    pub connector: SocketAddr,
    pub admin: SocketAddr,
    pub admin_token: String,
    pub log_path: PathBuf,
    config_path: PathBuf,
    shards: u32,
    _dir: tempfile::TempDir,
}

impl RiptideProcess {
    /// Writes `config_toml` to a file and starts `riptide` with it, waiting until the
    /// admin API answers (bounded).
    pub fn start(
        config_toml: &str,
        connector: SocketAddr,
        admin: SocketAddr,
        admin_token: &str,
        shards: u32,
    ) -> RiptideProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("riptide.toml");
        std::fs::write(&config_path, config_toml).expect("write config");
        let log_path = dir.path().join("riptide.log");
        let child = spawn_riptide(&config_path, shards, &log_path);
        let mut process = RiptideProcess {
            child,
            connector,
            admin,
            admin_token: admin_token.to_owned(),
            log_path,
            config_path,
            shards,
            _dir: dir,
        };
        process.wait_ready(Duration::from_secs(20));
        process
    }

    /// [`start`](Self::start) on loopback `ports` (connector, admin, public, as
    /// `fixtures::free_node_ports` gives them) with the tests' admin token.
    pub fn start_at(config_toml: &str, ports: (u16, u16, u16), shards: u32) -> RiptideProcess {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let token = crate::fixtures::ADMIN_TOKEN;
        RiptideProcess::start(
            config_toml,
            loopback(ports.0),
            loopback(ports.1),
            token,
            shards,
        )
    }

    /// Kills riptide at once (SIGKILL): no drain, nothing finished.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts riptide again with the same configuration, ports and log (appended).
    /// A riptide that stops at start because its ledger does not answer yet (a
    /// server that is itself starting) is started again, within `limit`.
    pub fn restart(&mut self, limit: Duration) {
        let started = Instant::now();
        loop {
            self.child = spawn_riptide(&self.config_path, self.shards, &self.log_path);
            match self.ready_within(Duration::from_secs(20)) {
                Ok(()) => return,
                Err(why) if started.elapsed() >= limit => panic!("{why}: {}", self.log()),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn wait_ready(&mut self, limit: Duration) {
        if let Err(why) = self.ready_within(limit) {
            panic!("{why}: {}", self.log());
        }
    }

    fn ready_within(&mut self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("riptide exited early with {status}"));
            }
            let mut client = HttpClient::new(self.admin);
            if let Ok(response) = client.request("GET", "/healthz", &[], b"") {
                if response.status == 200 && TcpStream::connect(self.connector).is_ok() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "riptide did not become ready in {limit:?}; its threads: {}",
            thread_states(self.child.id())
        ))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Every account of the state from the admin API, by (kind, name): debits
    /// posted, credits posted, debits pending, credits pending. Each must exist.
    pub fn balances(&self) -> std::collections::HashMap<(String, String), [u128; 4]> {
        let response = self.admin_request("GET", "/v1/balances", b"");
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let body: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
        let rows = body["accounts"].as_array().expect("accounts");
        rows.iter()
            .map(|row| {
                assert_eq!(
                    row["exists"], true,
                    "every account of the state exists: {row}"
                );
                let key = (
                    row["kind"].as_str().expect("kind").to_owned(),
                    row["name"].as_str().expect("name").to_owned(),
                );
                let amounts = [
                    "debits_posted",
                    "credits_posted",
                    "debits_pending",
                    "credits_pending",
                ]
                .map(|field| {
                    row[field]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .expect("amount")
                });
                (key, amounts)
            })
            .collect()
    }

    /// An authenticated admin request.
    pub fn admin_request(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        let authorization = format!("Bearer {}", self.admin_token);
        HttpClient::new(self.admin)
            .request(
                method,
                path,
                &[
                    ("Authorization", &authorization),
                    ("Content-Type", "application/json"),
                ],
                body,
            )
            .expect("admin request")
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// Each thread of process `pid`: its name, state and the kernel function it waits
/// in, for a start that hangs to say where.
fn thread_states(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "unreadable".into();
    };
    let read = |task: &std::path::Path, file: &str| {
        std::fs::read_to_string(task.join(file))
            .map_or_else(|_| "?".into(), |text| text.trim().to_owned())
    };
    let states: Vec<String> = tasks
        .flatten()
        .map(|task| {
            let path = task.path();
            let state = read(&path, "stat")
                .rsplit(") ")
                .next()
                .unwrap_or("?")
                .chars()
                .next()
                .unwrap_or('?');
            format!("{} {state} {}", read(&path, "comm"), read(&path, "wchan"))
        })
        .collect();
    states.join(", ")
}

/// Runs riptide with `--config config_path` and `args` until it exits, `limit` at
/// most (past it, kills riptide and fails): its exit code and what it wrote to stderr.
pub fn run_riptide_to_exit(
    config_path: &std::path::Path,
    args: &[&str],
    limit: Duration,
) -> (Option<i32>, String) {
    let stderr_file = tempfile::NamedTempFile::new().expect("stderr file");
    let mut child = Command::new(workspace_binary("riptide"))
        .arg("--config")
        .arg(config_path)
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr_file.reopen().expect("stderr file"))
        .spawn()
        .expect("run riptide");
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(stderr_file.path()).unwrap_or_default();
            panic!("riptide {args:?} still ran after {limit:?}: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(stderr_file.path()).expect("read stderr");
    (status.code(), stderr)
}

fn spawn_riptide(config_path: &std::path::Path, shards: u32, log_path: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("log file");
    Command::new(workspace_binary("riptide"))
        .arg("--config")
        .arg(config_path)
        .arg("--shards")
        .arg(shards.to_string())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start riptide")
}

impl Drop for RiptideProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.terminate(Duration::from_secs(5));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A Node script from `tests/interop`, its stdout read line by line; killed on drop.
pub struct NodeScript {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NodeScript {
    pub fn start(script: &str, args: &[String]) -> NodeScript {
        NodeScript::start_with_env(script, args, &[])
    }

    /// [`start`](Self::start) with extra environment variables (such as
    /// `NODE_EXTRA_CA_CERTS`, for a test CA).
    pub fn start_with_env(script: &str, args: &[String], env: &[(&str, &str)]) -> NodeScript {
        let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop");
        assert!(
            interop.join("node_modules/ilp-protocol-stream").exists(),
            "npm packages missing: run scripts/setup-npm.sh"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(&interop)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("node is installed");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        NodeScript {
            child,
            lines,
            stderr_path,
            _dir: dir,
        }
    }

    /// The next line the script prints, parsed as JSON, within `limit`.
    pub fn next_json(&mut self, limit: Duration) -> serde_json::Value {
        match self.lines.recv_timeout(limit) {
            Ok(line) => {
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            }
            Err(_) => panic!(
                "no line from node within {limit:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Longest wait for `riptidectl serve` to reach a state.
const SERVE_WAIT_MAX: Duration = Duration::from_secs(20);

/// `riptidectl serve` as a child process, stopped on drop.
pub struct Serve {
    child: Child,
    status: SocketAddr,
    log: PathBuf,
}

impl Serve {
    /// Serves the state of `file` to the data planes it names, with their admin
    /// token; its log goes to `log`.
    pub fn start(file: &Path, log: PathBuf, admin_token: &str) -> Serve {
        let status = SocketAddr::from(([127, 0, 0, 1], crate::free_loopback_port()));
        let child = Command::new(workspace_binary("riptidectl"))
            .args(["serve", "-f"])
            .arg(file)
            .args([
                "--listen",
                &status.to_string(),
                "--watch-ms",
                "100",
                "--poll-ms",
                "200",
            ])
            .args(["--timeout-ms", "2000"])
            .env("RIPTIDE_ADMIN_TOKEN", admin_token)
            .env_remove("RIPTIDE_DATAPLANES")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start riptidectl serve");
        Serve { child, status, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        let response = HttpClient::new(self.status)
            .request("GET", "/status", &[], b"")
            .ok()?;
        (response.status == 200).then(|| serde_json::from_slice(&response.body).ok())?
    }

    /// Waits until `check` holds for the status document (bounded).
    pub fn wait_for(
        &self,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            if let Some(status) = self.status() {
                if check(&status) {
                    return status;
                }
            }
            assert!(
                started.elapsed() < SERVE_WAIT_MAX,
                "serve: {what} not reached: {:?}\nlog:\n{}",
                self.status(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether every data plane acknowledged the state `riptidectl serve` wants.
pub fn in_sync(status: &serde_json::Value) -> bool {
    let desired = &status["desired_version"];
    status["in_sync"] == true
        && status["dataplanes"].as_array().is_some_and(|rows| {
            rows.iter()
                .all(|row| &row["acknowledged_version"] == desired)
        })
}

/// `riptidectl audit --idle --json` through the data plane whose admin API is at
/// `admin` (the tests' admin token), asked again every 500 ms until it passes or
/// `limit` has passed: whether it passed, and its last report.
pub fn audit_until_clean(admin: SocketAddr, limit: Duration) -> (bool, serde_json::Value) {
    let audit = || {
        let output = Command::new(workspace_binary("riptidectl"))
            .args(["audit", "--idle", "--json", "--dataplane"])
            .arg(format!("http://{admin}"))
            .env("RIPTIDE_ADMIN_TOKEN", crate::fixtures::ADMIN_TOKEN)
            .output()
            .expect("run riptidectl");
        let report = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        (output.status.success(), report)
    };
    let started = Instant::now();
    let (mut clean, mut report) = audit();
    while !clean && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(500));
        (clean, report) = audit();
    }
    (clean, report)
}
