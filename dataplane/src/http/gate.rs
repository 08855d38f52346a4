//! What a client may hold before and after it shows a token, for the whole process:
//! connections per port and per source address, connections per peer, and failed
//! authentications per source. Shards share one gate; it is touched when a
//! connection opens, authenticates, fails to, or closes, never per packet.

use crate::clock::lock;
use crate::config::ConnectionsConfig;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window in which failed authentications of one source are counted.
const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Sources whose failures are remembered at most. Past it, the expired windows go;
/// if none has, every source counts as past its allowance until some do: an attacker
/// with that many addresses slows everyone's failures, never anyone's successes.
const AUTH_FAILURE_SOURCES_MAX: usize = 65_536;

/// The three listening ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Packets = 0,
    Public = 1,
    Admin = 2,
}

impl Port {
    pub const ALL: [Port; 3] = [Port::Packets, Port::Public, Port::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Port::Packets => "connector",
            Port::Public => "public",
            Port::Admin => "admin",
        }
    }
}

/// Why a connection or request was turned away, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PortFull = 0,
    SourceFull = 1,
    PeerFull = 2,
    AuthSlowed = 3,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::PortFull,
        Refusal::SourceFull,
        Refusal::PeerFull,
        Refusal::AuthSlowed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Refusal::PortFull => "port_full",
            Refusal::SourceFull => "source_full",
            Refusal::PeerFull => "peer_full",
            Refusal::AuthSlowed => "auth_slowed",
        }
    }
}

pub struct ConnectionGate {
    limits: ConnectionsConfig,
    open_by_port: [AtomicU32; 3],
    open_by_source: Mutex<HashMap<IpAddr, u32>>,
    open_by_peer: Mutex<HashMap<Arc<str>, u32>>,
    auth_failures: Mutex<HashMap<IpAddr, FailureWindow>>,
    refusals: [AtomicU64; 4],
}

#[derive(Debug, Clone, Copy)]
struct FailureWindow {
    started_at: Instant,
    failures: u32,
}

impl ConnectionGate {
    pub fn new(limits: ConnectionsConfig) -> ConnectionGate {
        ConnectionGate {
            limits,
            open_by_port: Default::default(),
            open_by_source: Mutex::new(HashMap::new()),
            open_by_peer: Mutex::new(HashMap::new()),
            auth_failures: Mutex::new(HashMap::new()),
            refusals: Default::default(),
        }
    }

    pub fn limits(&self) -> &ConnectionsConfig {
        &self.limits
    }

    /// A permit for a connection just accepted from `source` on `port`, or why not.
    /// The permit gives its place back when dropped.
    pub fn admit(self: &Arc<Self>, port: Port, source: IpAddr) -> Result<Permit, Refusal> {
        let source = source_key(source);
        let on_port = &self.open_by_port[port as usize];
        let taken = on_port.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < self.limits.per_port_max).then_some(open + 1)
        });
        if taken.is_err() {
            return Err(self.refused(Refusal::PortFull));
        }
        let mut sources = lock(&self.open_by_source);
        let open = sources.entry(source).or_default();
        if *open >= self.limits.per_source_max {
            if *open == 0 {
                sources.remove(&source);
            }
            drop(sources);
            on_port.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refused(Refusal::SourceFull));
        }
        *open += 1;
        Ok(Permit {
            gate: Arc::clone(self),
            port,
            source,
            peer: None,
        })
    }

    /// Counts the connection of `permit` against `peer` once, at its first
    /// authenticated request. False when the peer holds all it may: the request is
    /// refused (the caller records it) and the connection closes.
    pub fn attach_peer(&self, permit: &mut Permit, peer: &str) -> bool {
        if permit.peer.as_deref() == Some(peer) {
            return true;
        }
        let mut peers = lock(&self.open_by_peer);
        let open = peers.get(peer).copied().unwrap_or(0);
        if open >= self.limits.per_peer_max {
            return false;
        }
        let peer: Arc<str> = Arc::from(peer);
        peers.insert(Arc::clone(&peer), open + 1);
        // A connection that changes its token moves to the other peer.
        if let Some(previous) = permit.peer.replace(peer) {
            release(&mut peers, &previous);
        }
        true
    }

    /// Records a failed authentication from `source`; returns how long its answer
    /// should wait (zero while the source is within its allowance).
    pub fn auth_failed(&self, source: IpAddr, now: Instant) -> Duration {
        let source = source_key(source);
        let mut failures = lock(&self.auth_failures);
        if failures.len() >= AUTH_FAILURE_SOURCES_MAX && !failures.contains_key(&source) {
            failures
                .retain(|_, window| now.duration_since(window.started_at) < AUTH_FAILURE_WINDOW);
            if failures.len() >= AUTH_FAILURE_SOURCES_MAX {
                drop(failures);
                return self.slowed();
            }
        }
        let window = failures.entry(source).or_insert(FailureWindow {
            started_at: now,
            failures: 0,
        });
        if now.duration_since(window.started_at) >= AUTH_FAILURE_WINDOW {
            *window = FailureWindow {
                started_at: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        if window.failures <= self.limits.auth_failures_per_source_max {
            return Duration::ZERO;
        }
        drop(failures);
        self.slowed()
    }

    fn slowed(&self) -> Duration {
        self.refused(Refusal::AuthSlowed);
        Duration::from_millis(self.limits.auth_failure_delay_ms)
    }

    /// Counts a refusal decided elsewhere (a peer past `per_peer_max`).
    pub fn record(&self, refusal: Refusal) {
        self.refused(refusal);
    }

    fn refused(&self, refusal: Refusal) -> Refusal {
        self.refusals[refusal as usize].fetch_add(1, Ordering::Relaxed);
        refusal
    }

    /// Connections open on `port` now.
    pub fn open_on(&self, port: Port) -> u32 {
        self.open_by_port[port as usize].load(Ordering::Relaxed)
    }

    /// How often `refusal` happened since start.
    pub fn refusals(&self, refusal: Refusal) -> u64 {
        self.refusals[refusal as usize].load(Ordering::Relaxed)
    }
}

/// What counts as one source: an IPv4 address (also when written as IPv6), or an
/// IPv6 /64, the block one host or site gets: an attacker with a /64 holds one
/// source's share, not 2^64 of them.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// A connection's place at the gate.
pub struct Permit {
    gate: Arc<ConnectionGate>,
    port: Port,
    source: IpAddr,
    peer: Option<Arc<str>>,
}

impl Permit {
    pub fn source(&self) -> IpAddr {
        self.source
    }

    pub fn gate(&self) -> &ConnectionGate {
        &self.gate
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let gate = &self.gate;
        gate.open_by_port[self.port as usize].fetch_sub(1, Ordering::AcqRel);
        let mut sources = lock(&gate.open_by_source);
        if let Some(open) = sources.get_mut(&self.source) {
            *open -= 1;
            if *open == 0 {
                sources.remove(&self.source);
            }
        }
        drop(sources);
        if let Some(peer) = self.peer.take() {
            release(&mut lock(&gate.open_by_peer), &peer);
        }
    }
}

fn release(peers: &mut HashMap<Arc<str>, u32>, peer: &Arc<str>) {
    if let Some(open) = peers.get_mut(peer) {
        *open -= 1;
        if *open == 0 {
            peers.remove(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limits: ConnectionsConfig) -> Arc<ConnectionGate> {
        Arc::new(ConnectionGate::new(limits))
    }

    fn source(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_source_holds_at_most_its_share_and_gets_it_back() {
        let gate = gate(ConnectionsConfig {
            per_port_max: 10,
            per_source_max: 3,
            ..ConnectionsConfig::default()
        });
        let held: Vec<_> = (0..3)
            .map(|_| gate.admit(Port::Packets, source(2)).expect("admitted"))
            .collect();
        assert_eq!(
            gate.admit(Port::Public, source(2)).err(),
            Some(Refusal::SourceFull)
        );
        assert!(gate.admit(Port::Packets, source(3)).is_ok());
        drop(held);
        assert!(gate.admit(Port::Packets, source(2)).is_ok());
        assert_eq!(gate.refusals(Refusal::SourceFull), 1);
        assert!(lock(&gate.open_by_source).is_empty());
        assert_eq!(gate.open_on(Port::Packets), 0);
    }

    #[test]
    fn an_ipv6_64_is_one_source_and_mapped_ipv4_is_ipv4() {
        let gate = gate(ConnectionsConfig {
            per_source_max: 1,
            ..ConnectionsConfig::default()
        });
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other_64: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        let _held = gate.admit(Port::Packets, one).expect("admitted");
        assert_eq!(
            gate.admit(Port::Packets, same_64).err(),
            Some(Refusal::SourceFull)
        );
        assert!(gate.admit(Port::Packets, other_64).is_ok());
        let _v4 = gate.admit(Port::Packets, source(9)).expect("admitted");
        let mapped: IpAddr = "::ffff:127.0.0.9".parse().expect("ip");
        assert_eq!(
            gate.admit(Port::Packets, mapped).err(),
            Some(Refusal::SourceFull)
        );
    }

    #[test]
    fn a_full_port_refuses_every_source() {
        let gate = gate(ConnectionsConfig {
            per_port_max: 2,
            per_source_max: 2,
            ..ConnectionsConfig::default()
        });
        let _a = gate.admit(Port::Packets, source(2)).expect("admitted");
        let _b = gate.admit(Port::Packets, source(3)).expect("admitted");
        assert_eq!(
            gate.admit(Port::Packets, source(4)).err(),
            Some(Refusal::PortFull)
        );
        assert!(gate.admit(Port::Admin, source(4)).is_ok());
    }

    #[test]
    fn a_peer_holds_at_most_its_connections() {
        let gate = gate(ConnectionsConfig {
            per_peer_max: 1,
            ..ConnectionsConfig::default()
        });
        let (alice, bob) = ("alice", "bob");
        let mut first = gate.admit(Port::Packets, source(2)).expect("admitted");
        let mut second = gate.admit(Port::Packets, source(2)).expect("admitted");
        assert!(gate.attach_peer(&mut first, alice));
        assert!(gate.attach_peer(&mut first, alice), "counted once");
        assert!(!gate.attach_peer(&mut second, alice));
        assert!(gate.attach_peer(&mut second, bob));
        drop(first);
        assert!(gate.attach_peer(&mut second, alice), "moves to alice");
        assert_eq!(lock(&gate.open_by_peer).get("bob"), None);
    }

    #[test]
    fn failed_authentications_past_the_allowance_are_slowed_per_source() {
        let gate = gate(ConnectionsConfig {
            auth_failures_per_source_max: 2,
            auth_failure_delay_ms: 700,
            ..ConnectionsConfig::default()
        });
        let now = Instant::now();
        assert_eq!(gate.auth_failed(source(2), now), Duration::ZERO);
        assert_eq!(gate.auth_failed(source(2), now), Duration::ZERO);
        assert_eq!(gate.auth_failed(source(2), now), Duration::from_millis(700));
        assert_eq!(gate.auth_failed(source(3), now), Duration::ZERO);
        let later = now + AUTH_FAILURE_WINDOW;
        assert_eq!(gate.auth_failed(source(2), later), Duration::ZERO);
    }
}
