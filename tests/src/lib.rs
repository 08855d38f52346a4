//! Harness for Riptide's end-to-end tests: real TigerBeetle and Redis servers on free
//! loopback ports (one of each per test binary, shared by its tests), and riptide
//! processes with ILP-over-HTTP peers around them. Every wait is bounded and every
//! process is stopped on drop, even when a test panics.
#![allow(clippy::too_many_lines)] // test code

pub mod dataplane;
pub mod fixtures;
pub mod https_server;
pub mod limits;
pub mod paying;
pub mod pki;
pub mod stream_client;
pub mod webhook_receiver;

use limits::TEST_PORTS;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now, with no connection lingering on it
/// either, and never handed out before in this process.
pub fn free_loopback_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let span = TEST_PORTS.end - TEST_PORTS.start;
    // Test binaries of one run start apart, so they rarely try the same ports.
    let offset = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = TEST_PORTS.start + (offset + n) % span;
        let port = u16::try_from(port).expect("test ports fit in 16 bits");
        if bindable_by_any_server(port) {
            return port;
        }
    }
    panic!("no free loopback port in {TEST_PORTS:?}");
}

/// Whether a listener without `SO_REUSEADDR` can bind `port`. `std`'s listeners set
/// it, and so pass over connections of another server still in TIME_WAIT there,
/// which make a server that does not set it (TigerBeetle, say) fail to start.
fn bindable_by_any_server(port: u16) -> bool {
    use socket2::{Domain, Socket, Type};
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    Socket::new(Domain::IPV4, Type::STREAM, None)
        .and_then(|socket| socket.bind(&address.into()))
        .is_ok()
}

fn wait_for_port(address: SocketAddr, child: &mut Child, what: &str, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} did not listen on {address} within {limit:?}");
}

/// Starts `binary` under a small shell that kills it once our end of its stdin pipe
/// closes, which happens when the test process exits, however it exits. Shared
/// servers live in statics whose destructors never run, so this is what stops them.
fn spawn_tied_to_this_process(binary: &std::path::Path, args: &[String]) -> (Child, ChildStdin) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$@" & server=$!; cat >/dev/null; kill "$server" 2>/dev/null; wait "$server""#)
        .arg(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server under its watchdog shell");
    let stdin = child.stdin.take().expect("piped stdin");
    (child, stdin)
}

fn binary_from_env(variable: &str, fallback: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(fallback));
    assert!(
        path.exists(),
        "{} not found (set {variable}): run scripts/setup.sh, then `source scripts/env.sh`",
        path.display()
    );
    path
}

/// A server process under its watchdog shell (see [`spawn_tied_to_this_process`]):
/// it can be paused and resumed (SIGSTOP, SIGCONT, as a stalled disk or VM would
/// do), killed, and started again with the same arguments and data.
pub struct Supervised {
    binary: PathBuf,
    args: Vec<String>,
    what: &'static str,
    address: SocketAddr,
    child: Child,
    tie: Option<ChildStdin>,
}

impl Supervised {
    fn start(binary: PathBuf, args: Vec<String>, what: &'static str, address: SocketAddr) -> Self {
        let (mut child, tie) = spawn_tied_to_this_process(&binary, &args);
        wait_for_port(address, &mut child, what, Duration::from_secs(60));
        Supervised {
            binary,
            args,
            what,
            address,
            child,
            tie: Some(tie),
        }
    }

    /// Signals the server, the watchdog shell's child.
    fn signal(&self, signal: &str) {
        let status = Command::new("pkill")
            .args([signal, "-P", &self.child.id().to_string()])
            .status()
            .expect("run pkill");
        assert!(status.success(), "pkill {signal} found no {}", self.what);
    }

    /// Whether the server runs (it was not killed, or was started again).
    fn is_running(&self) -> bool {
        self.tie.is_some()
    }

    /// Kills the server at once (SIGKILL) and waits for its shell to end.
    fn kill(&mut self) {
        self.signal("-KILL");
        drop(self.tie.take());
        let _ = self.child.wait();
    }

    /// Starts the server again, on the same address with the same data.
    fn restart(&mut self) {
        let (mut child, tie) = spawn_tied_to_this_process(&self.binary, &self.args);
        wait_for_port(self.address, &mut child, self.what, Duration::from_secs(60));
        self.child = child;
        self.tie = Some(tie);
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // A paused server would not see the watchdog's SIGTERM.
        let _ = Command::new("pkill")
            .args(["-CONT", "-P", &self.child.id().to_string()])
            .status();
        drop(self.tie.take());
        let _ = self.child.wait();
    }
}

/// A data directory for a server, named for this test process. Shared servers live
/// in statics whose destructors never run, so their directories outlive the process
/// (a TigerBeetle data file is over 1 GiB): the ones left by test processes that
/// have ended are removed here, before a new one is made.
fn server_dir(kind: &str) -> tempfile::TempDir {
    let parent = std::env::temp_dir();
    let prefix = format!("riptide-{kind}-");
    for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .tempdir_in(&parent)
        .expect("temp dir")
}

/// A throwaway single-replica TigerBeetle server in development mode, on a free
/// loopback port, with requests of up to 8189 transfers (`--limit-request=1MiB`).
pub struct TigerBeetleServer {
    server: Supervised,
    _dir: tempfile::TempDir,
}

impl TigerBeetleServer {
    pub fn start() -> TigerBeetleServer {
        let binary = binary_from_env("RIPTIDE_TIGERBEETLE_BIN", "");
        let dir = server_dir("tigerbeetle");
        let data_file = dir.path().join("0_0.tigerbeetle");
        format_replica(&binary, &data_file, 0, 1);
        let port = free_loopback_port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let args = start_args(&format!("127.0.0.1:{port}"), &data_file);
        TigerBeetleServer {
            server: Supervised::start(binary, args, "tigerbeetle", address),
            _dir: dir,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.server.address
    }
}

impl Supervise for TigerBeetleServer {
    fn supervised(&self) -> &Supervised {
        &self.server
    }

    fn supervised_mut(&mut self) -> &mut Supervised {
        &mut self.server
    }
}

/// Formats the data file of one replica of cluster 0, in development mode.
fn format_replica(binary: &Path, data_file: &Path, replica: u8, replica_count: u8) {
    let format = Command::new(binary)
        .args(["format", "--cluster=0", "--development"])
        .arg(format!("--replica={replica}"))
        .arg(format!("--replica-count={replica_count}"))
        .arg(data_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run tigerbeetle format");
    assert!(format.success(), "tigerbeetle format failed: {format}");
}

/// `tigerbeetle start` for a replica of the cluster at `addresses`, with requests
/// of up to 8189 transfers.
fn start_args(addresses: &str, data_file: &Path) -> Vec<String> {
    vec![
        "start".into(),
        format!("--addresses={addresses}"),
        "--development".into(),
        "--experimental".into(),
        "--limit-request=1MiB".into(),
        "--memory-lsm-manifest=1MiB".into(),
        data_file.display().to_string(),
    ]
}

/// A throwaway TigerBeetle cluster of `replicas` replicas on loopback, each a
/// process of its own with its own data file, all in development mode with
/// requests of up to 8189 transfers. A quorum must be up for the cluster to answer.
pub struct TigerBeetleCluster {
    replicas: Vec<Supervised>,
    addresses: Vec<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl TigerBeetleCluster {
    pub fn start(replica_count: u8) -> TigerBeetleCluster {
        let binary = binary_from_env("RIPTIDE_TIGERBEETLE_BIN", "");
        let dir = server_dir("tigerbeetle-cluster");
        let addresses: Vec<SocketAddr> = (0..replica_count)
            .map(|_| SocketAddr::from(([127, 0, 0, 1], free_loopback_port())))
            .collect();
        let all = addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut data_files = Vec::new();
        for replica in 0..replica_count {
            let data_file = dir.path().join(format!("0_{replica}.tigerbeetle"));
            format_replica(&binary, &data_file, replica, replica_count);
            data_files.push(data_file);
        }
        // Started together: each waits for a quorum before it serves.
        let replicas = addresses
            .iter()
            .zip(&data_files)
            .map(|(address, data_file)| {
                let args = start_args(&all, data_file);
                let (child, tie) = spawn_tied_to_this_process(&binary, &args);
                (args, *address, child, tie)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(args, address, mut child, tie)| {
                wait_for_port(
                    address,
                    &mut child,
                    "tigerbeetle replica",
                    Duration::from_secs(60),
                );
                Supervised {
                    binary: binary.clone(),
                    args,
                    what: "tigerbeetle replica",
                    address,
                    child,
                    tie: Some(tie),
                }
            })
            .collect();
        let cluster = TigerBeetleCluster {
            replicas,
            addresses,
            _dir: dir,
        };
        cluster.wait_until_it_answers(Duration::from_secs(60));
        cluster
    }

    /// Waits until the cluster answers a request: its replicas listen before they
    /// have agreed on a view, and a data plane started then could not set up its
    /// accounts within its request timeout.
    fn wait_until_it_answers(&self, limit: Duration) {
        use riptide_dataplane::ledger::tigerbeetle::TigerBeetleLedger;
        use riptide_dataplane::ledger::Ledger;
        let all = self
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let ledger = TigerBeetleLedger::connect(0, &all, Duration::from_secs(2))
            .expect("a client of the cluster");
        let started = std::time::Instant::now();
        while futures::executor::block_on(ledger.lookup_accounts(&[1])).is_err() {
            assert!(
                started.elapsed() < limit,
                "the TigerBeetle cluster did not answer within {limit:?}"
            );
        }
    }

    /// The replicas' addresses, in replica order.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Kills replica `index` (SIGKILL); its data file stays for [`Self::restart`].
    pub fn kill(&mut self, index: usize) {
        self.replicas[index].kill();
    }

    /// Starts replica `index` again on its address and data file.
    pub fn restart(&mut self, index: usize) {
        self.replicas[index].restart();
    }
}

/// A throwaway Redis server, loopback only: without persistence by default, or
/// durable (every write fsynced to its append-only file) to survive a restart.
pub struct RedisServer {
    server: Supervised,
    _dir: Option<tempfile::TempDir>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&["--save", "", "--appendonly", "no"], None)
    }

    /// A Redis that keeps its data across [`Self::kill`] and [`Self::restart`].
    pub fn start_durable() -> RedisServer {
        let dir = server_dir("redis");
        let path = dir.path().display().to_string();
        let options = [
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            &path,
        ];
        Self::start_with(&options, Some(dir))
    }

    /// A Redis that speaks TLS only, with the certificate and key in `files` (PEM
    /// paths: certificate, key, and the CA its clients' certificates must chain
    /// to). With `client_certificates`, a client must show one.
    pub fn start_tls(files: [&std::path::Path; 3], client_certificates: bool) -> RedisServer {
        let binary = binary_from_env("RIPTIDE_REDIS_SERVER", "/usr/bin/redis-server");
        let port = free_loopback_port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let [certificate, key, ca] = files.map(|path| path.display().to_string());
        let auth = if client_certificates { "yes" } else { "no" };
        let args: Vec<String> = [
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-cert-file",
            &certificate,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            auth,
            "--tls-port",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([port.to_string()])
        .collect();
        RedisServer {
            server: Supervised::start(binary, args, "redis-server", address),
            _dir: None,
        }
    }

    fn start_with(options: &[&str], dir: Option<tempfile::TempDir>) -> RedisServer {
        let binary = binary_from_env("RIPTIDE_REDIS_SERVER", "/usr/bin/redis-server");
        let port = free_loopback_port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let args: Vec<String> = options
            .iter()
            .chain(&["--bind", "127.0.0.1", "--port"])
            .map(|s| s.to_string())
            .chain([port.to_string()])
            .collect();
        RedisServer {
            server: Supervised::start(binary, args, "redis-server", address),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.server.address)
    }

    /// The `rediss://` URL of a [`Self::start_tls`] server, by the name its test
    /// certificate carries.
    pub fn tls_url(&self) -> String {
        format!("rediss://localhost:{}/", self.server.address.port())
    }
}

impl Supervise for RedisServer {
    fn supervised(&self) -> &Supervised {
        &self.server
    }

    fn supervised_mut(&mut self) -> &mut Supervised {
        &mut self.server
    }
}

/// A throwaway Redis Cluster on loopback: `primaries` primaries with `replicas`
/// replicas each, every node a process of its own, created by `redis-cli
/// --cluster create`, with a one-second node timeout so that a failover takes a
/// few seconds, and without full coverage required, so that the others serve
/// while one primary's slots are down. Nodes keep no data on disk: a killed node comes back empty and
/// rejoins as a replica of whoever took its slots.
pub struct RedisCluster {
    nodes: Vec<Supervised>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub fn start(primaries: usize, replicas: usize) -> RedisCluster {
        let binary = binary_from_env("RIPTIDE_REDIS_SERVER", "/usr/bin/redis-server");
        let dir = server_dir("redis-cluster");
        let nodes: Vec<Supervised> = (0..primaries * (1 + replicas))
            .map(|_| {
                let port = free_loopback_port();
                // The cluster bus's own free port: by default it is the port plus
                // 10,000, which may be taken, or past 65,535.
                let bus_port = free_loopback_port();
                let node_dir = dir.path().join(port.to_string());
                std::fs::create_dir_all(&node_dir).expect("node dir");
                let args: Vec<String> = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "1000",
                    // The slots of the other primaries stay served while one
                    // primary's are down.
                    "--cluster-require-full-coverage",
                    "no",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    &node_dir.display().to_string(),
                    "--port",
                    &port.to_string(),
                    "--cluster-port",
                    &bus_port.to_string(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let address = SocketAddr::from(([127, 0, 0, 1], port));
                Supervised::start(binary.clone(), args, "redis cluster node", address)
            })
            .collect();
        let cli = binary.with_file_name("redis-cli");
        let output = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|node| node.address.to_string()))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", cli.display()));
        assert!(
            output.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.wait_until_ok(Duration::from_secs(30));
        cluster
    }

    /// Every node's URL, for clients to learn the cluster from.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("redis://{}/", node.address))
            .collect()
    }

    /// A client of the whole cluster.
    pub fn client(&self) -> redis::cluster::ClusterClient {
        redis::cluster::ClusterClient::new(self.urls()).expect("cluster client")
    }

    /// Waits until every running node says the cluster is ok with every slot
    /// served, and every replica is linked to its primary. (A node may still
    /// learn of a failover a moment later than the others.)
    pub fn wait_until_ok(&self, limit: Duration) {
        let started = std::time::Instant::now();
        while !self.all_ok() {
            assert!(
                started.elapsed() < limit,
                "the Redis Cluster was not ok within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn all_ok(&self) -> bool {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .all(|node| {
                let info: Option<String> =
                    redis::Client::open(format!("redis://{}/", node.address))
                        .and_then(|client| {
                            client.get_connection_with_timeout(Duration::from_secs(1))
                        })
                        .and_then(|mut connection| {
                            redis::cmd("CLUSTER").arg("INFO").query(&mut connection)
                        })
                        .ok();
                let replication: Option<String> =
                    redis::Client::open(format!("redis://{}/", node.address))
                        .and_then(|client| {
                            client.get_connection_with_timeout(Duration::from_secs(1))
                        })
                        .and_then(|mut connection| {
                            redis::cmd("INFO").arg("replication").query(&mut connection)
                        })
                        .ok();
                // A replica is of use once its link to its primary is up.
                let linked = replication.is_some_and(|replication| {
                    replication.contains("role:master")
                        || replication.contains("master_link_status:up")
                });
                linked
                    && info.is_some_and(|info| {
                        info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                    })
            })
    }

    /// The index of the node that is primary for `key`'s slot now.
    pub fn primary_of(&self, key: &str) -> usize {
        let node = self
            .nodes
            .iter()
            .find(|node| node.is_running())
            .expect("a running node");
        let client = redis::Client::open(format!("redis://{}/", node.address)).expect("url");
        let mut connection = client.get_connection().expect("connection");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut connection)
            .expect("CLUSTER KEYSLOT");
        let ranges: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut connection)
            .expect("CLUSTER SLOTS")
            .into_iter()
            .filter_map(|range| match range {
                redis::Value::Array(items) => {
                    let start = redis::from_redis_value::<u16>(items.first()?.clone()).ok()?;
                    let end = redis::from_redis_value::<u16>(items.get(1)?.clone()).ok()?;
                    let primary = match items.get(2)? {
                        redis::Value::Array(node) => (
                            redis::from_redis_value::<String>(node.first()?.clone()).ok()?,
                            redis::from_redis_value::<u16>(node.get(1)?.clone()).ok()?,
                        ),
                        _ => return None,
                    };
                    Some((start, end, primary))
                }
                _ => None,
            })
            .collect();
        let (_, _, (_, port)) = ranges
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .unwrap_or_else(|| panic!("no node holds slot {slot}"));
        self.nodes
            .iter()
            .position(|node| node.address.port() == *port)
            .expect("the primary is one of ours")
    }

    /// Kills node `index` (SIGKILL); it comes back empty with [`Self::restart`].
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Starts node `index` again on its port; it rejoins the cluster.
    pub fn restart(&mut self, index: usize) {
        self.nodes[index].restart();
    }
}

/// HAProxy in TCP mode on loopback, spreading connections round robin over
/// `backends`, checking each every 200 ms (one failed check takes it out, two
/// good ones bring it back) and sending a connection that its backend refused to
/// another (`option redispatch`).
pub struct Haproxy {
    server: Supervised,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    pub fn start(backends: &[SocketAddr]) -> Haproxy {
        let binary = binary_from_env("RIPTIDE_HAPROXY", "/usr/sbin/haproxy");
        let dir = server_dir("haproxy");
        let port = free_loopback_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(index, address)| {
                format!("    server riptide{index} {address} check inter 200ms fall 1 rise 2\n")
            })
            .collect();
        let config = format!(
            "global\n    maxconn 4096\n\ndefaults\n    mode tcp\n    timeout connect 1s\n    \
             timeout client 30s\n    timeout server 30s\n    retries 3\n    option redispatch\n\n\
             frontend packets\n    bind 127.0.0.1:{port}\n    default_backend riptides\n\n\
             backend riptides\n    balance roundrobin\n{servers}"
        );
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, config).expect("write haproxy.cfg");
        let args = vec![
            "-db".to_owned(),
            "-f".to_owned(),
            config_path.display().to_string(),
        ];
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        Haproxy {
            server: Supervised::start(binary, args, "haproxy", address),
            _dir: dir,
        }
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.server.address
    }
}

/// Faults a test can inflict on a server it started.
pub trait Supervise {
    fn supervised(&self) -> &Supervised;
    fn supervised_mut(&mut self) -> &mut Supervised;

    /// Stops the server where it is (SIGSTOP), as a stalled disk or VM would.
    fn pause(&self) {
        self.supervised().signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    fn resume(&self) {
        self.supervised().signal("-CONT");
    }

    /// Kills the server (SIGKILL); its data stays for [`Supervise::restart`] (a
    /// TigerBeetle data file; a Redis only when durable).
    fn kill(&mut self) {
        self.supervised_mut().kill();
    }

    /// Starts a killed server again on its port and data.
    fn restart(&mut self) {
        self.supervised_mut().restart();
    }
}

/// The TigerBeetle server shared by the tests of this test binary. It lives until the
/// binary exits; its data file is in a temp dir, and the process is a child that the
/// kernel reaps. Tests keep apart by using their own ledgers or account ids.
pub fn shared_tigerbeetle() -> &'static TigerBeetleServer {
    static SERVER: OnceLock<TigerBeetleServer> = OnceLock::new();
    SERVER.get_or_init(TigerBeetleServer::start)
}

/// The Redis server shared by the tests of this test binary; tests use distinct keys.
pub fn shared_redis() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}
