//! Name resolution off the shards' threads. A shard never blocks on DNS: an
//! authority that is an IP address, `localhost` or in `/etc/hosts` resolves at
//! once; a cached name answers from the cache (a stale one too, while a refresh
//! runs); anything else waits for the resolver's own thread, at most
//! `dns.timeout_ms`, and a name that failed answers "unreachable" at once until
//! `dns.ttl_s_min` passes. Peers' names are resolved ahead, at start and when the
//! state changes, each cached for its record's TTL (within the configured bounds)
//! and looked up again when it ends. Queries go over UDP to the configured servers (by default those of
//! `/etc/resolv.conf`); the messages are `riptide_proto::dns`'s.

use crate::clock::within;
use crate::limits::{
    DNS_CACHE_NAMES_MAX, DNS_JOBS_MAX, DNS_REFRESH_CHECK_INTERVAL, DNS_THREADS,
    DNS_WAITERS_PER_NAME_MAX,
};
use crossbeam_channel::RecvTimeoutError;
use futures::channel::oneshot;
use riptide_proto::dns::{self, DnsError, RecordType};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResolveError {
    #[error("{0:?} is not host:port")]
    InvalidAuthority(String),
    #[error("{0}: no DNS server is configured")]
    NoServers(String),
    #[error("{0}: no answer within the DNS timeout")]
    TimedOut(String),
    #[error("{0}: too many lookups waiting")]
    Busy(String),
    #[error("{0}: {1}")]
    Failed(String, DnsError),
    #[error("{0}: the name has no address")]
    NoAddress(String),
}

/// How names are resolved (`[dns]`).
#[derive(Debug, Clone)]
pub struct ResolverOptions {
    pub servers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub ttl_s_min: u32,
    pub ttl_s_max: u32,
    /// Names with fixed addresses: `localhost` and `/etc/hosts`.
    pub hosts: HashMap<String, IpAddr>,
}

type Reply = oneshot::Sender<Result<IpAddr, ResolveError>>;

struct Entry {
    result: Result<IpAddr, ResolveError>,
    expires_at: Instant,
    /// When the address was last confirmed, for how long a failed refresh may
    /// keep it.
    confirmed_at: Instant,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    /// Names being looked up, with whoever waits for them.
    pending: HashMap<String, Vec<Reply>>,
    /// Names kept resolved ahead (the peers'): looked up again as their TTL ends,
    /// so that no packet to a peer waits for DNS.
    ahead: HashSet<String>,
}

struct Inner {
    options: ResolverOptions,
    cache: Mutex<Cache>,
}

/// The process's resolver; shards share it.
pub struct Resolver {
    inner: Arc<Inner>,
    jobs: crossbeam_channel::Sender<String>,
}

/// How a resolution starts: done, or waiting for the thread's answer.
enum Started {
    Ready(SocketAddr),
    Waiting(String, u16, oneshot::Receiver<Result<IpAddr, ResolveError>>),
}

/// What the cache said of a name.
enum Lookup {
    Ready(Result<IpAddr, ResolveError>),
    Wait(oneshot::Receiver<Result<IpAddr, ResolveError>>),
}

impl Resolver {
    /// Starts the resolver's threads; they end when the resolver is dropped.
    pub fn start(options: ResolverOptions) -> std::io::Result<Resolver> {
        let inner = Arc::new(Inner {
            options,
            cache: Mutex::default(),
        });
        let (jobs, receiver) = crossbeam_channel::bounded::<String>(DNS_JOBS_MAX);
        // Several threads, so that one name whose server is slow holds up only
        // its own lookups.
        for thread in 0..DNS_THREADS {
            let (worker, receiver) = (Arc::clone(&inner), receiver.clone());
            std::thread::Builder::new()
                .name(format!("riptide-dns-{thread}"))
                .spawn(move || worker.serve(&receiver))?;
        }
        Ok(Resolver { inner, jobs })
    }

    /// A resolver of IP addresses and `localhost` only, for tests.
    #[cfg(test)]
    pub(crate) fn addresses_only() -> Arc<Resolver> {
        let options = ResolverOptions {
            servers: Vec::new(),
            timeout: Duration::from_secs(1),
            ttl_s_min: 1,
            ttl_s_max: 1,
            hosts: hosts_file(""),
        };
        Arc::new(Resolver::start(options).expect("resolver thread"))
    }

    /// The address to connect to for `authority` (`host:port`).
    pub async fn resolve(&self, authority: &str) -> Result<SocketAddr, ResolveError> {
        let (host, port, receiver) = match self.begin(authority)? {
            Started::Ready(address) => return Ok(address),
            Started::Waiting(host, port, receiver) => (host, port, receiver),
        };
        // The thread answers within its timeout; the margin covers its queue.
        let wait = self.inner.options.timeout * 2;
        match within(wait, receiver).await {
            Some(Ok(result)) => result.map(|ip| SocketAddr::new(ip, port)),
            _ => Err(ResolveError::TimedOut(host)),
        }
    }

    /// [`resolve`](Self::resolve) for a thread that may block (webhook delivery):
    /// the resolver's thread answers within its own timeout.
    pub fn resolve_blocking(&self, authority: &str) -> Result<SocketAddr, ResolveError> {
        match self.begin(authority)? {
            Started::Ready(address) => Ok(address),
            Started::Waiting(host, port, receiver) => match futures::executor::block_on(receiver) {
                Ok(result) => result.map(|ip| SocketAddr::new(ip, port)),
                Err(_) => Err(ResolveError::TimedOut(host)),
            },
        }
    }

    /// The address at once, or the lookup to wait for.
    fn begin(&self, authority: &str) -> Result<Started, ResolveError> {
        let (host, port) = split_authority(authority)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Started::Ready(SocketAddr::new(ip, port)));
        }
        let host = host.to_ascii_lowercase();
        if let Some(ip) = self.inner.options.hosts.get(&host) {
            return Ok(Started::Ready(SocketAddr::new(*ip, port)));
        }
        match self.lookup(&host, Instant::now()) {
            Lookup::Ready(result) => result.map(|ip| Started::Ready(SocketAddr::new(ip, port))),
            Lookup::Wait(receiver) => Ok(Started::Waiting(host, port, receiver)),
        }
    }

    /// Keeps the names of `authorities` (the peers' endpoints) resolved ahead, in
    /// place of those given before: looked up now, and again as each TTL ends.
    pub fn prefetch<'a>(&self, authorities: impl Iterator<Item = &'a str>) {
        let mut ahead = HashSet::new();
        for authority in authorities {
            let Ok((host, _)) = split_authority(authority) else {
                continue;
            };
            let host = host.to_ascii_lowercase();
            let fixed =
                host.parse::<IpAddr>().is_ok() || self.inner.options.hosts.contains_key(&host);
            if !fixed && ahead.len() < DNS_CACHE_NAMES_MAX {
                drop(self.lookup(&host, Instant::now()));
                ahead.insert(host);
            }
        }
        self.inner.lock().ahead = ahead;
    }

    /// The cached answer, or a wait for the thread's. A stale answer is used while
    /// its refresh runs; a name already being looked up is not asked twice.
    fn lookup(&self, host: &str, now: Instant) -> Lookup {
        let mut cache = self.inner.lock();
        let cached = cache.entries.get(host).map(|entry| {
            let fresh = entry.expires_at > now;
            (entry.result.clone(), fresh)
        });
        match cached {
            Some((result, true)) => return Lookup::Ready(result),
            Some((Ok(stale), false)) => {
                // A refresh that cannot be queued now is asked for by a later packet.
                let _ = self.ask(&mut cache, host, None);
                return Lookup::Ready(Ok(stale));
            }
            _ => {}
        }
        let (reply, receiver) = oneshot::channel();
        if let Err(error) = self.ask(&mut cache, host, Some(reply)) {
            return Lookup::Ready(Err(error));
        }
        Lookup::Wait(receiver)
    }

    /// Queues a lookup of `host` unless one is pending; `reply` waits for it.
    fn ask(&self, cache: &mut Cache, host: &str, reply: Option<Reply>) -> Result<(), ResolveError> {
        if let Some(waiting) = cache.pending.get_mut(host) {
            if let Some(reply) = reply {
                // Packets that stopped waiting (their deadline) make room.
                waiting.retain(|waiter| !waiter.is_canceled());
                if waiting.len() >= DNS_WAITERS_PER_NAME_MAX {
                    return Err(ResolveError::Busy(host.to_owned()));
                }
                waiting.push(reply);
            }
            return Ok(());
        }
        if self.jobs.try_send(host.to_owned()).is_err() {
            return Err(ResolveError::Busy(host.to_owned()));
        }
        cache
            .pending
            .insert(host.to_owned(), reply.into_iter().collect());
        Ok(())
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        crate::clock::lock(&self.cache)
    }

    /// A resolver thread: the lookups shards ask for, and between them, every
    /// check interval, one name kept ahead whose answer has ended. One name a turn
    /// per thread, so that a slow server holds up one thread's refreshes, not a
    /// queue of them.
    fn serve(&self, jobs: &crossbeam_channel::Receiver<String>) {
        let mut next_refresh = Instant::now() + DNS_REFRESH_CHECK_INTERVAL;
        loop {
            let wait = next_refresh.saturating_duration_since(Instant::now());
            match jobs.recv_timeout(wait) {
                Ok(name) => self.look_up(&name),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= next_refresh {
                if let Some(name) = self.take_due() {
                    self.look_up(&name);
                }
                next_refresh = Instant::now() + DNS_REFRESH_CHECK_INTERVAL;
            }
        }
    }

    /// A name kept ahead whose answer has ended (or failed) and that nobody is
    /// looking up, marked pending so that no other thread takes it too.
    fn take_due(&self) -> Option<String> {
        let now = Instant::now();
        let mut cache = self.lock();
        let due = cache
            .ahead
            .iter()
            .filter(|name| !cache.pending.contains_key(*name))
            .find(|name| cache.entries.get(*name).is_none_or(|e| e.expires_at <= now))
            .cloned()?;
        cache.pending.insert(due.clone(), Vec::new());
        Some(due)
    }

    /// Runs on the resolver's thread: queries, caches, and answers the waiters.
    fn look_up(&self, host: &str) {
        let (result, ttl_s) = query_servers(&self.options, host);
        let options = &self.options;
        let ttl_s = ttl_s.clamp(options.ttl_s_min, options.ttl_s_max);
        let now = Instant::now();
        let mut cache = self.lock();
        let waiters = cache.pending.remove(host).unwrap_or_default();
        // A failed refresh keeps the last good address for another short while, up
        // to ttl_s_max after it was last confirmed: a DNS outage should not take a
        // working peer away, but a name that is gone (NXDOMAIN) goes at once.
        let keep_for = Duration::from_secs(u64::from(options.ttl_s_max));
        let stale = cache.entries.get(host).and_then(|entry| {
            let address = entry.result.clone().ok()?;
            let recent = now.duration_since(entry.confirmed_at) < keep_for;
            recent.then_some((address, entry.confirmed_at))
        });
        let (kept, confirmed_at) = match (&result, stale) {
            (Err(ResolveError::Failed(_, DnsError::NameNotFound)), _) => (result.clone(), now),
            (Err(_), Some((stale, confirmed_at))) => (Ok(stale), confirmed_at),
            _ => (result.clone(), now),
        };
        if cache.entries.len() >= DNS_CACHE_NAMES_MAX && !cache.entries.contains_key(host) {
            cache.entries.retain(|_, entry| entry.expires_at > now);
        }
        if cache.entries.len() < DNS_CACHE_NAMES_MAX || cache.entries.contains_key(host) {
            let expires_at = now + Duration::from_secs(u64::from(ttl_s));
            cache.entries.insert(
                host.to_owned(),
                Entry {
                    result: kept.clone(),
                    expires_at,
                    confirmed_at,
                },
            );
        }
        drop(cache);
        for waiter in waiters {
            let _ = waiter.send(kept.clone());
        }
    }
}

/// Asks each server in turn within the timeout: A records first, AAAA if there are
/// none. Returns the first address and its TTL (for a failure, the shortest).
fn query_servers(options: &ResolverOptions, host: &str) -> (Result<IpAddr, ResolveError>, u32) {
    let failed = |error| (Err(error), 0);
    if options.servers.is_empty() {
        return failed(ResolveError::NoServers(host.to_owned()));
    }
    let deadline = Instant::now() + options.timeout;
    let mut last = ResolveError::TimedOut(host.to_owned());
    for (tried, server) in options.servers.iter().enumerate() {
        let left = options.servers.len() - tried;
        let share = deadline.saturating_duration_since(Instant::now()) / left as u32;
        if share.is_zero() {
            break;
        }
        for record in [RecordType::A, RecordType::Aaaa] {
            match query_one(*server, host, record, share) {
                Ok(answer) => match answer.addresses.first() {
                    Some(address) => return (Ok(*address), answer.ttl_s),
                    None => last = ResolveError::NoAddress(host.to_owned()),
                },
                Err(error) => {
                    last = error;
                    break;
                }
            }
        }
        if matches!(
            last,
            ResolveError::NoAddress(_) | ResolveError::Failed(_, DnsError::NameNotFound)
        ) {
            break;
        }
    }
    failed(last)
}

/// One query to one server, waiting at most `wait` for its answer; answers from
/// elsewhere or for another id are ignored.
fn query_one(
    server: SocketAddr,
    host: &str,
    record: RecordType,
    wait: Duration,
) -> Result<dns::Answer, ResolveError> {
    let io = |_| ResolveError::TimedOut(host.to_owned());
    let id = query_id();
    let query =
        dns::query(id, host, record).map_err(|e| ResolveError::Failed(host.to_owned(), e))?;
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(io)?;
    socket.connect(server).map_err(io)?;
    socket.send(&query).map_err(io)?;
    let deadline = Instant::now() + wait;
    let mut buffer = [0u8; 1_232];
    // Bounded: each turn reads one datagram or ends at the deadline.
    for _ in 0..DNS_JOBS_MAX {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left)).map_err(io)?;
        let size = socket.recv(&mut buffer).map_err(io)?;
        match dns::parse_answer(&buffer[..size], id, host, record) {
            Err(DnsError::WrongId) => continue,
            Err(error) => return Err(ResolveError::Failed(host.to_owned(), error)),
            Ok(answer) => return Ok(answer),
        }
    }
    Err(ResolveError::TimedOut(host.to_owned()))
}

/// A query id an off-path attacker cannot guess (with the random source port).
fn query_id() -> u16 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut id = [0u8; 2];
    let _ = SystemRandom::new().fill(&mut id);
    u16::from_be_bytes(id)
}

/// `host:port`, `[v6]:port`, or an IP address with its port.
fn split_authority(authority: &str) -> Result<(&str, u16), ResolveError> {
    let invalid = || ResolveError::InvalidAuthority(authority.to_owned());
    let (host, port) = authority.rsplit_once(':').ok_or_else(invalid)?;
    let port = port.parse().map_err(|_| invalid())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(invalid());
    }
    Ok((host, port))
}

/// The servers of `/etc/resolv.conf`'s `nameserver` lines, on port 53.
pub fn system_servers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The names of an `/etc/hosts` file (the first address of each), and `localhost`.
pub fn hosts_file(text: &str) -> HashMap<String, IpAddr> {
    let mut hosts = HashMap::new();
    hosts.insert("localhost".to_owned(), IpAddr::from([127, 0, 0, 1]));
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        for name in fields {
            hosts.entry(name.to_ascii_lowercase()).or_insert(ip);
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_authority("peer.example:8080"),
            Ok(("peer.example", 8080))
        );
        assert_eq!(split_authority("[::1]:80"), Ok(("::1", 80)));
        assert_eq!(split_authority("10.0.0.1:3000"), Ok(("10.0.0.1", 3000)));
        for bad in ["peer.example", ":80", "peer:http"] {
            assert!(split_authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn system_files_are_read() {
        let servers = system_servers("# comment\nnameserver 10.0.0.53\nnameserver ::1\nsearch x\n");
        assert_eq!(
            servers,
            vec![
                SocketAddr::from(([10, 0, 0, 53], 53)),
                SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 53))
            ]
        );
        let hosts =
            hosts_file("127.0.0.1 localhost\n10.1.1.1 Peer.Lan peer # the peer\nbad line\n");
        assert_eq!(hosts.get("peer.lan"), Some(&IpAddr::from([10, 1, 1, 1])));
        assert_eq!(hosts.get("peer"), Some(&IpAddr::from([10, 1, 1, 1])));
        assert_eq!(hosts.get("localhost"), Some(&IpAddr::from([127, 0, 0, 1])));
    }
}
