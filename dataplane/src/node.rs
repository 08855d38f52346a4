//! Starting and stopping a data plane: compile the state, prepare the ledger, start
//! one executor per core with its listeners, and drain in-flight packets on SIGTERM.

use crate::admin::{self, Admin};
use crate::config::{Config, LedgerKind, ReceiptsConfig};
use crate::http::gate::ConnectionGate;
use crate::http::ingress;
use crate::http::spsp::{self, Spsp};
use crate::http::tls_server::TlsPorts;
use crate::ledger::backend::LedgerBackend;
use crate::ledger::holds::LedgerPort;
use crate::ledger::memory::MemoryLedger;
use crate::limits::{DRAIN_CHECK_INTERVAL, MESH_CHANNEL_SIZE};
use crate::limits::{IO_MEMORY_BYTES, REPLY_FLUSH_GRACE, SHUTDOWN_CHECK_INTERVAL};
use crate::limits::{LISTEN_BACKLOG, SHARD_START_TIMEOUT, SHARD_STOP_MARGIN, SHARD_WATCH_INTERVAL};
use crate::mesh::{MeshEnds, SharedMesh};
use crate::metrics::MetricsRegistry;
use crate::resolver::{hosts_file, system_servers, Resolver, ResolverOptions};
use crate::shard::{Job, Shard};
use crate::shared::{ReceiptStoreSetup, Shared};
use crate::startup::STOPPED_WHILE_STARTING;
use crate::startup::{first_cause, wait_until_all_ended, wait_until_any_ended};
use crate::startup::{wait_until_listening, ShardEnd, StartOutcome, StartState, Stopped};
use crate::store::memory::MemoryStore;
use crate::store::redis::{check_reachable, RedisOptions, RedisTls};
use crate::webhooks::watch::{self, Watch};
use crate::webhooks::Webhooks;
use arc_swap::ArcSwap;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use riptide_proto::connector::pipeline::PipelineOptions;
use riptide_proto::connector::snapshot::Snapshot;
use riptide_proto::stream::ServerSecret;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("state: {0}")]
    State(String),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("receipt store (Redis): {0}")]
    Receipts(String),
    #[error("tls.cert_file, tls.key_file: {0}")]
    Tls(String),
    #[error("executors: {0}")]
    Executors(String),
    #[error("shard {shard}: {message}")]
    Shard { shard: usize, message: String },
}

/// Runs the data plane until SIGTERM or SIGINT, then drains and returns.
pub fn run(config: Config) -> Result<(), NodeError> {
    let snapshot = Snapshot::build(&config.node.ilp_address, &config.state)
        .map_err(|e| NodeError::State(e.to_string()))?;
    let ledger = LedgerPort::new(
        ledger_backend(&config)?,
        config.ledger.pending_timeout_s,
        Duration::from_millis(config.ledger.request_timeout_ms),
    );
    let placement = crate::placement::plan(
        config.node.cpus.as_deref(),
        crate::placement::allowed_cpus(),
        config.node.shards,
        (online_cpus(), available_parallelism()),
    )
    .map_err(NodeError::Executors)?;
    futures::executor::block_on(ledger.ensure_accounts(&snapshot, &config.state))
        .map_err(|e| NodeError::Ledger(e.to_string()))?;
    let shard_count = placement.shards;
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .map_err(|e| NodeError::Executors(e.to_string()))?;
    }
    let peers = config.state.peers.len();
    raise_open_file_limit(config.connections.open_files_needed(peers, shard_count));
    let resolver = Arc::new(start_resolver(&config)?);
    resolver.prefetch(crate::admin::outgoing_authorities(&snapshot));
    let tls_extra_roots = read_ca_files(&config.tls.ca_files)?;
    let webhooks = Webhooks::start(&config.webhooks, Arc::clone(&resolver), &tls_extra_roots)
        .map_err(|e| NodeError::Executors(e.to_string()))?;
    let shared = Arc::new(Shared {
        gate: Arc::new(ConnectionGate::new(config.connections)),
        resolver,
        rates_feed: crate::rates_feed::FeedState::default(),
        webhooks,
        tls_extra_roots,
        tls_ports: TlsPorts::from_config(&config.tls).map_err(NodeError::Tls)?,
        snapshot: ArcSwap::from_pointee(snapshot),
        options: PipelineOptions {
            expiry_window_ms_min: config.node.expiry_window_ms_min,
            hold_ms_max: config.node.hold_ms_max,
        },
        ledger,
        metrics: MetricsRegistry::new(shard_count as usize),
        shutdown,
        start: StartState::default(),
        shard_count,
        http_body_size_max: config.node.http_body_size_max,
        in_flight_max: config.node.in_flight_max,
        receipts: receipt_store(&config)?,
        stream_secret: config.node.stream_secret,
    });
    start_shards(config, shared, placement)
}

/// The embedded store, or Redis checked with a PING so that a wrong URL or TLS
/// setting stops the start rather than every local packet.
fn receipt_store(config: &Config) -> Result<ReceiptStoreSetup, NodeError> {
    let receipts = &config.receipts;
    let Some(url) = receipts.redis_url_to_connect() else {
        return Ok(ReceiptStoreSetup::Memory(Arc::new(MemoryStore::new(
            receipts.connection_ttl_s,
        ))));
    };
    let options = RedisOptions {
        urls: receipts.redis_urls_to_connect(&url),
        cluster: receipts.redis_cluster,
        tls: redis_tls(receipts)?,
        connection_ttl_s: receipts.connection_ttl_s,
        request_timeout: Duration::from_millis(receipts.request_timeout_ms),
        wait_replicas: receipts.redis_wait_replicas,
    };
    check_reachable(&options).map_err(|e| NodeError::Receipts(e.to_string()))?;
    Ok(ReceiptStoreSetup::Redis(options))
}

/// Reads the TLS files of `[receipts]`; an unreadable one names its field.
fn redis_tls(receipts: &ReceiptsConfig) -> Result<RedisTls, NodeError> {
    let read = |field: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|error| {
            NodeError::Receipts(format!("receipts.{field}: {}: {error}", path.display()))
        })
    };
    let ca_pem = match &receipts.redis_tls_ca_file {
        Some(path) => Some(read("redis_tls_ca_file", path)?),
        None => None,
    };
    let client_identity_pem = match (&receipts.redis_tls_cert_file, &receipts.redis_tls_key_file) {
        (Some(cert), Some(key)) => Some((
            read("redis_tls_cert_file", cert)?,
            read("redis_tls_key_file", key)?,
        )),
        _ => None,
    };
    Ok(RedisTls {
        ca_pem,
        client_identity_pem,
    })
}

#[cfg(feature = "tigerbeetle")]
fn ledger_backend(config: &Config) -> Result<LedgerBackend, NodeError> {
    use crate::ledger::tigerbeetle::TigerBeetleLedger;
    match config.ledger.kind {
        LedgerKind::Memory => Ok(LedgerBackend::Memory(MemoryLedger::new())),
        LedgerKind::TigerBeetle => {
            let timeout = Duration::from_millis(config.ledger.request_timeout_ms);
            TigerBeetleLedger::connect(config.ledger.cluster_id, &config.ledger.addresses, timeout)
                .map(LedgerBackend::TigerBeetle)
                .map_err(|e| NodeError::Ledger(e.to_string()))
        }
    }
}

#[cfg(not(feature = "tigerbeetle"))]
fn ledger_backend(config: &Config) -> Result<LedgerBackend, NodeError> {
    match config.ledger.kind {
        LedgerKind::Memory => Ok(LedgerBackend::Memory(MemoryLedger::new())),
        LedgerKind::TigerBeetle => Err(NodeError::Ledger(
            "this riptide was built without TigerBeetle; rebuild with `--features tigerbeetle`"
                .into(),
        )),
    }
}

/// The certificates of `[tls] ca_files`; a file that cannot be read or holds no
/// certificate stops the start, naming it.
fn read_ca_files(
    files: &[std::path::PathBuf],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, NodeError> {
    let mut roots = Vec::new();
    for file in files {
        let failed = |message: String| {
            NodeError::State(format!("tls.ca_files: {}: {message}", file.display()))
        };
        let pem = std::fs::read(file).map_err(|e| failed(e.to_string()))?;
        roots.extend(crate::http::transport::read_ca_pem(&pem).map_err(failed)?);
    }
    Ok(roots)
}

/// The resolver of `[dns]`: its servers, or /etc/resolv.conf's, and /etc/hosts.
fn start_resolver(config: &Config) -> Result<Resolver, NodeError> {
    let dns = &config.dns;
    let mut servers = dns
        .server_addresses()
        .map_err(|e| NodeError::State(format!("{}: {}", e.path, e.message)))?;
    if servers.is_empty() {
        let resolv_conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        servers = system_servers(&resolv_conf);
    }
    let hosts = hosts_file(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
    Resolver::start(ResolverOptions {
        servers,
        timeout: Duration::from_millis(dns.timeout_ms),
        ttl_s_min: dns.ttl_s_min,
        ttl_s_max: dns.ttl_s_max,
        hosts,
    })
    .map_err(|e| NodeError::Executors(e.to_string()))
}

/// Raises the soft limit of open files to the hard limit, and warns when even that
/// is below what the connection limits need: past it, accepts and connects fail
/// for everyone rather than the gate refusing the one source that holds too many.
fn raise_open_file_limit(needed: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let raised = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    if raised < needed {
        tracing::warn!(
            open_files = raised,
            needed,
            "the open-file limit is below what [connections] allows; raise it (ulimit -n, LimitNOFILE) or lower connections.per_port_max"
        );
    }
}

/// What the process may use at once: its affinity, and its cgroup CPU quota.
fn available_parallelism() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// The machine's CPUs, whatever this process's affinity.
fn online_cpus() -> u32 {
    glommio::CpuSet::online().map_or(1, |cpus| cpus.len() as u32)
}

/// glommio's set of the planned CPUs: all of them must be online.
fn executor_cpu_set(cpus: &[u32]) -> Result<glommio::CpuSet, NodeError> {
    let online = glommio::CpuSet::online().map_err(|e| NodeError::Executors(e.to_string()))?;
    let set = online.filter(|location| cpus.contains(&(location.cpu as u32)));
    if set.len() != cpus.len() {
        return Err(NodeError::Executors(format!(
            "the executors' CPUs {cpus:?} are not all online"
        )));
    }
    Ok(set)
}

fn start_shards(
    config: Config,
    shared: Arc<Shared>,
    placement: crate::placement::Placement,
) -> Result<(), NodeError> {
    let shard_count = shared.shard_count as usize;
    let cpu_set = placement
        .cpus
        .as_deref()
        .map(executor_cpu_set)
        .transpose()?;
    let mesh = SharedMesh::full(shard_count, MESH_CHANNEL_SIZE);
    let connector_address = SocketAddr::new(config.node.bind_address, config.node.connector_port);
    let admin_address = SocketAddr::new(config.node.admin_bind_address, config.node.admin_port);
    let public_address = SocketAddr::new(config.node.bind_address, config.node.public_port);
    let document = Arc::new(Mutex::new(config.state.clone()));
    let node = config.node.clone();
    let telemetry = config.telemetry.clone();
    let watched = Arc::clone(&shared);
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::MaxSpread(shard_count, cpu_set))
        .io_memory(IO_MEMORY_BYTES)
        .name("riptide-shard")
        .on_all_shards(move || {
            let (shared, mesh, document, node, telemetry) = (
                Arc::clone(&shared),
                mesh.clone(),
                Arc::clone(&document),
                node.clone(),
                telemetry.clone(),
            );
            async move {
                let addresses = Listeners {
                    connector: connector_address,
                    admin: admin_address,
                    public: public_address,
                };
                run_shard(shared, mesh, addresses, document, (node, telemetry)).await
            }
        })
        .map_err(|e| NodeError::Executors(e.to_string()))?;
    let any_ended = || handles.handles().iter().any(|handle| handle.is_finished());
    let all_ended = || handles.handles().iter().all(|handle| handle.is_finished());
    let shared = watched;
    let outcome = wait_until_listening(
        &shared.start.listening,
        shard_count,
        any_ended,
        (SHARD_START_TIMEOUT, SHARD_WATCH_INTERVAL),
    );
    if outcome == StartOutcome::Listening {
        tracing::info!(shards = shard_count, %connector_address, %admin_address, %public_address, "riptide started");
        wait_until_any_ended(&shared.shutdown, any_ended, SHARD_WATCH_INTERVAL);
    } else if !shared.shutdown.load(Ordering::Relaxed) {
        // The start failed (a signal during the start is no failure: the shards
        // finish joining, then drain).
        shared.start.abandoned.store(true, Ordering::Release);
    }
    // A shard that could not start or ended stops the others: they drain as on SIGTERM.
    shared.shutdown.store(true, Ordering::Relaxed);
    let stop_timeout = stop_timeout(&shared.options);
    if !wait_until_all_ended(all_ended, (stop_timeout, SHARD_WATCH_INTERVAL)) {
        return Err(NodeError::Executors(format!(
            "the shards did not all stop within {stop_timeout:?}"
        )));
    }
    let ends: Vec<ShardEnd> = handles.join_all().into_iter().map(ShardEnd::of).collect();
    first_cause(&ends, outcome).map_err(|stopped| match stopped {
        Stopped::Shard { shard, message } => NodeError::Shard { shard, message },
        Stopped::StartTimedOut => NodeError::Executors(format!(
            "the shards did not all listen within {SHARD_START_TIMEOUT:?}"
        )),
    })
}

/// How long the shards may take to stop once asked: their drain, then the last
/// replies' grace, and a margin.
fn stop_timeout(options: &PipelineOptions) -> Duration {
    drain_bound(options) + REPLY_FLUSH_GRACE + SHARD_STOP_MARGIN
}

/// How long a draining shard waits for its packets: as long as a packet may be held.
fn drain_bound(options: &PipelineOptions) -> Duration {
    Duration::from_millis(
        options
            .hold_ms_max
            .saturating_add(options.expiry_window_ms_min),
    )
}

/// Where a shard listens.
#[derive(Debug, Clone, Copy)]
struct Listeners {
    connector: SocketAddr,
    admin: SocketAddr,
    public: SocketAddr,
}

fn bind(address: SocketAddr) -> Result<glommio::net::TcpListener, String> {
    listen_shared(address).map_err(|e| format!("cannot listen on {address}: {e}"))
}

/// A listener every shard binds (`SO_REUSEPORT`: the kernel spreads connections
/// over them) that also takes a port with connections of an earlier server still
/// in TIME_WAIT (`SO_REUSEADDR`). glommio's own bind sets only the first, and then
/// fails for a minute after a server that set the second (a restart from another
/// build, a proxy that held the port) closed its connections there. The one
/// `unsafe` of the data plane: glommio takes a socket built elsewhere only as a
/// raw descriptor.
#[allow(unsafe_code)]
fn listen_shared(address: SocketAddr) -> std::io::Result<glommio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: `into_raw_fd` gives up the only owner of this open, listening TCP
    // socket, so the listener becomes its sole owner and closes it once.
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

async fn run_shard(
    shared: Arc<Shared>,
    mesh: SharedMesh<Job>,
    addresses: Listeners,
    document: Arc<Mutex<crate::config::StateDocument>>,
    (node, telemetry): (crate::config::NodeConfig, crate::config::TelemetryConfig),
) -> Result<(), String> {
    crate::clock::mark_executor_thread();
    let (senders, receivers) = join_mesh(&shared, &mesh).await?;
    drop(mesh);
    let shard = Shard::new(Arc::clone(&shared), senders).map_err(|e| e.to_string())?;
    shard.spawn_mesh_receivers(receivers);
    shard.spawn_metrics_publisher();
    if shard.id == 0 {
        let stopping = Arc::clone(&shared.shutdown);
        let sweep = crate::drivers::sweep_journal(shard.ports().clone(), move || {
            stopping.load(Ordering::Relaxed)
        });
        glommio::spawn_local(sweep).detach();
    }
    let listener = bind(addresses.connector)?;
    // SPSP on every shard, like the connector port: the kernel spreads connections.
    let spsp = Rc::new(Spsp {
        shard: Rc::clone(&shard),
        server_secret: ServerSecret::new(&node.stream_secret),
        random: ring::rand::SystemRandom::new(),
    });
    glommio::spawn_local(spsp::serve(spsp, bind(addresses.public)?)).detach();
    if shard.id == 0 {
        let admin_listener = bind(addresses.admin)?;
        let feed = crate::rates_feed::poll(Rc::clone(&shard), Arc::clone(&document));
        glommio::spawn_local(feed).detach();
        let telemetry = crate::telemetry::export(Rc::clone(&shard), telemetry);
        glommio::spawn_local(telemetry).detach();
        let watch = Rc::new(Watch::default());
        let interval = shared.webhooks.check_interval;
        let watching = watch::run(
            Rc::clone(&shard),
            Rc::clone(&watch),
            Arc::clone(&document),
            interval,
        );
        glommio::spawn_local(watching).detach();
        let payments = Rc::new(crate::outgoing_payments::Payments::default());
        let resuming =
            crate::outgoing_payments::resume::run_forever(Rc::clone(&shard), Rc::clone(&payments));
        glommio::spawn_local(resuming).detach();
        let admin = Rc::new(Admin {
            shard: Rc::clone(&shard),
            token: node.admin_token.clone(),
            node,
            watch,
            document,
            payments,
        });
        glommio::spawn_local(admin::serve(admin, admin_listener)).detach();
    }
    shared.start.listening.fetch_add(1, Ordering::Release);
    ingress::serve(Rc::clone(&shard), listener).await;
    drain(&shard).await;
    Ok(())
}

/// Joins the other shards, unless the start is abandoned first: a shard that cannot
/// start never joins, and the main thread then stops the ones that wait for it.
async fn join_mesh(shared: &Shared, mesh: &SharedMesh<Job>) -> Result<MeshEnds<Job>, String> {
    let joined = std::pin::pin!(mesh.join());
    let stopped = std::pin::pin!(async {
        // Bounded: the main thread abandons the start once it times out.
        while !shared.start.abandoned.load(Ordering::Acquire) {
            glommio::timer::sleep(SHUTDOWN_CHECK_INTERVAL).await;
        }
    });
    match futures::future::select(joined, stopped).await {
        futures::future::Either::Left((Ok(ends), _)) => Ok(ends),
        futures::future::Either::Left((Err(e), _)) => Err(format!("cross-shard mesh failed: {e}")),
        futures::future::Either::Right(((), _)) => Err(STOPPED_WHILE_STARTING.to_owned()),
    }
}

/// Waits for this shard's packets in flight, at most as long as a packet may be held.
async fn drain(shard: &Shard) {
    let deadline = Instant::now() + drain_bound(&shard.shared.options);
    while shard.busy() && Instant::now() < deadline {
        glommio::timer::sleep(DRAIN_CHECK_INTERVAL).await;
    }
    // The last replies are computed but hyper still writes them: give it a moment
    // before the executor drops its tasks.
    glommio::timer::sleep(REPLY_FLUSH_GRACE).await;
    if shard.id == 0 {
        tracing::info!("riptide stopped");
    }
    debug_assert!(shard.shared.shutdown.load(Ordering::Relaxed));
}
