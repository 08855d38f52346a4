//! What every shard of a data plane shares, read-mostly behind `Arc`: the state
//! snapshot, the pipeline's options, the ledger port, the metrics registry, and how
//! each shard reaches its store. Its own module so that the shard and the drivers
//! both use it without using each other.

use crate::http::gate::ConnectionGate;
use crate::ledger::holds::LedgerPort;
use crate::limits::{MEMORY_STORE_TIMEOUT, REDIS_WAIT_MARGIN};
use crate::metrics::MetricsRegistry;
use crate::rates_feed::FeedState;
use crate::resolver::Resolver;
use crate::store::batcher::StoreBackend;
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisOptions, RedisWorker};
use crate::store::StoreError;
use crate::webhooks::Webhooks;
use arc_swap::ArcSwap;
use riptide_proto::connector::pipeline::PipelineOptions;
use riptide_proto::connector::snapshot::Snapshot;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// What all shards share: read-mostly, behind `Arc`.
pub struct Shared {
    /// What clients may hold: connections per port, source and peer.
    pub gate: Arc<ConnectionGate>,
    /// Host names to addresses, off the shards' threads.
    pub resolver: Arc<Resolver>,
    /// The rates feed's last good rates, polled by shard 0.
    pub rates_feed: FeedState,
    /// Where events go (a no-op without `webhooks.url`).
    pub webhooks: Webhooks,
    /// CAs trusted for `https://` peers besides the web's roots (`[tls] ca_files`).
    pub tls_extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The TLS served on the packet and public ports, where `[tls]` asks for it.
    pub tls_ports: crate::http::tls_server::TlsPorts,
    pub snapshot: ArcSwap<Snapshot>,
    pub options: PipelineOptions,
    pub ledger: LedgerPort,
    pub metrics: MetricsRegistry,
    pub shutdown: Arc<AtomicBool>,
    /// How far the shards' start has got.
    pub start: crate::startup::StartState,
    pub shard_count: u32,
    pub http_body_size_max: usize,
    /// Packets a shard works on at once; past it, T03 at once.
    pub in_flight_max: u32,
    pub receipts: ReceiptStoreSetup,
    pub stream_secret: [u8; 32],
}

/// Where the shards keep connection totals and incoming payments.
pub enum ReceiptStoreSetup {
    /// One in-process store for every shard.
    Memory(Arc<MemoryStore>),
    /// One Redis connection and worker thread per shard.
    Redis(RedisOptions),
}

impl ReceiptStoreSetup {
    pub(crate) fn backend(&self, shard: u32) -> Result<(StoreBackend, Duration), StoreError> {
        match self {
            ReceiptStoreSetup::Memory(store) => Ok((
                StoreBackend::Memory(Arc::clone(store)),
                MEMORY_STORE_TIMEOUT,
            )),
            ReceiptStoreSetup::Redis(options) => {
                let worker = RedisWorker::spawn(options.clone(), format!("riptide-redis-{shard}"))?;
                let wait = options.request_timeout * 2 + REDIS_WAIT_MARGIN;
                Ok((StoreBackend::Redis(worker), wait))
            }
        }
    }
}
