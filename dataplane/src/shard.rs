//! One glommio executor per core, sharing nothing on the packet path. Each peer's
//! mutable state (rate and throughput buckets) belongs to shard `hash(peer id) % N`;
//! a packet of a peer with limits that arrives on another shard crosses once, over a
//! bounded channel, to its owner, which runs the whole pipeline and the forward, and
//! sends the reply back. A peer without limits has no state to own: its packets are
//! handled where they arrive.

use crate::clock::unix_now_ms;
use crate::drivers::{finish_forward, report_forward, sleep_until, Ports};
use crate::http::peer::{PeerCallError, PeerClient};
use crate::http::transport::TlsClients;
use crate::in_flight::InFlight;
use crate::leases;
use crate::ledger::batcher::TransferBatcher;
use crate::local::{LocalReceiver, Payer};
use crate::metrics::{Outcome, ShardMetrics};
use crate::shared::Shared;
use crate::store::batcher::StoreBatcher;
use crate::store::StoreError;
use futures::channel::oneshot;
use glommio::channels::channel_mesh::{Receivers, Senders};
use riptide_proto::connector::pipeline::{
    self, Decision, Forward, LeaseRequest, PeerLimiters, Verdict,
};
use riptide_proto::connector::reject::RejectReason;
use riptide_proto::connector::snapshot::{PeerIndex, Snapshot};
use riptide_proto::flow::forward::{ForwardCommand, ForwardFlow, PeerReply, ReplyTiming, Upstream};
use riptide_proto::flow::hold::{reply_deadline, Chain, HoldStep, NotHeld};
use riptide_proto::packet::{rewrite_prepare, Prepare};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a job asks of the shard it is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Run the whole pipeline for a packet of this peer: the receiving shard owns it.
    Pipeline(PeerIndex),
    /// Deliver locally, paid by this account: the receiving shard owns the STREAM
    /// connection.
    Deliver(Payer),
}

/// A packet handed to its owner shard.
pub struct Job {
    pub stage: Stage,
    pub snapshot: Arc<Snapshot>,
    pub prepare: Vec<u8>,
    pub arrived_at: Instant,
    pub reply: oneshot::Sender<Vec<u8>>,
}

/// The state of one shard, owned by its executor thread.
pub struct Shard {
    pub id: u32,
    pub shared: Arc<Shared>,
    limiters: Rc<RefCell<PeerLimiters>>,
    lease_waiters: leases::LeaseWaiters,
    client: PeerClient,
    /// The ledger, the store, the metrics and the in-flight count, as the money
    /// flows' drivers use them.
    ports: Ports,
    receiver: LocalReceiver,
    senders: Senders<Job>,
    /// Requests that arrived on this shard and wait for a reply, wherever their
    /// packet is processed: a shard may stop only when this and the in-flight
    /// count (packets this shard works on, its own and other shards', and ledger
    /// steps still finishing after a reply) are zero.
    requests_waiting: Rc<Cell<u32>>,
}

/// The shard that owns a peer's state.
pub fn owner_of(peer_id: &str, shard_count: u32) -> u32 {
    // FNV-1a: stable across processes and versions, unlike the std hasher.
    let hash = peer_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(shard_count.max(1))) as u32
}

/// This shard's share of `connections.outgoing_per_peer_max`: each shard opens its
/// own sockets, so the process stays within the limit.
fn sockets_per_endpoint(shared: &Shared) -> u32 {
    let limit = shared.gate.limits().outgoing_per_peer_max;
    limit.div_ceil(shared.shard_count).max(1)
}

impl Shard {
    pub fn new(shared: Arc<Shared>, senders: Senders<Job>) -> Result<Rc<Shard>, StoreError> {
        let id = senders.peer_id() as u32;
        assert!(id < shared.shard_count);
        let (store_backend, store_timeout) = shared.receipts.backend(id)?;
        let receiver = LocalReceiver::new(&shared.stream_secret);
        let ports = Ports {
            transfers: TransferBatcher::new(shared.ledger.backend()),
            store: StoreBatcher::new(store_backend, store_timeout),
            metrics: Rc::new(RefCell::new(ShardMetrics::default())),
            in_flight: Rc::new(Cell::new(0)),
            ids: Rc::new(crate::ledger::holds::IdBlock::default()),
            shared: Arc::clone(&shared),
        };
        Ok(Rc::new(Shard {
            id,
            limiters: Rc::new(RefCell::new(PeerLimiters::default())),
            lease_waiters: Rc::default(),
            client: PeerClient::new(
                sockets_per_endpoint(&shared),
                Arc::clone(&shared.resolver),
                Rc::new(TlsClients::new(&shared.tls_extra_roots)),
            ),
            ports,
            receiver,
            shared,
            senders,
            requests_waiting: Rc::new(Cell::new(0)),
        }))
    }

    /// This shard's receipt store, for the admin API.
    pub fn store(&self) -> &Rc<StoreBatcher> {
        &self.ports.store
    }

    /// What the money flows' drivers use, for the admin API and the sweep.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// Packets and ledger steps this shard works on now.
    pub fn in_flight(&self) -> u32 {
        self.ports.in_flight.get()
    }

    /// Work that must finish before this shard stops.
    pub fn busy(&self) -> bool {
        self.in_flight() > 0 || self.requests_waiting.get() > 0
    }

    pub fn record_http_refusal(&self, status: u16) {
        self.ports.metrics.borrow_mut().record_http_refusal(status);
    }

    /// Serves packets that other shards send to this one, until the mesh closes.
    pub fn spawn_mesh_receivers(self: &Rc<Self>, mut receivers: Receivers<Job>) {
        for (_, receiver) in receivers.streams() {
            let shard = Rc::clone(self);
            glommio::spawn_local(async move {
                while let Some(job) = receiver.recv().await {
                    let shard = Rc::clone(&shard);
                    glommio::spawn_local(async move {
                        let reply = match job.stage {
                            Stage::Pipeline(from) => {
                                shard
                                    .process_owned(&job.snapshot, from, job.prepare, job.arrived_at)
                                    .await
                            }
                            Stage::Deliver(payer) => {
                                shard
                                    .deliver_owned(&job.snapshot, payer, &job.prepare)
                                    .await
                            }
                        };
                        // The asking shard may have given up (shutdown); nothing to do then.
                        let _ = job.reply.send(reply);
                    })
                    .detach();
                }
            })
            .detach();
        }
    }

    /// Publishes this shard's metrics every second, and closes peer connections idle
    /// for too long.
    pub fn spawn_metrics_publisher(self: &Rc<Self>) {
        let shard = Rc::clone(self);
        glommio::spawn_local(async move {
            loop {
                shard.client.sweep();
                {
                    let mut metrics = shard.ports.metrics.borrow_mut();
                    metrics.ledger_batches = shard.ports.transfers.stats();
                    metrics.outgoing = shard.client.outgoing_counts();
                    metrics.store_pipelines = shard.ports.store.pipeline_counts();
                    shard.shared.metrics.publish(shard.id as usize, &metrics);
                }
                glommio::timer::sleep(Duration::from_secs(1)).await;
            }
        })
        .detach();
    }

    /// Handles an authenticated Prepare from `from` and returns the reply bytes,
    /// sending it to the owner shard first when this shard does not own the peer.
    pub async fn handle(
        &self,
        snapshot: Arc<Snapshot>,
        from: PeerIndex,
        prepare: Vec<u8>,
    ) -> Vec<u8> {
        let _waiting = InFlight::enter(&self.requests_waiting);
        self.handle_here_or_at_owner(snapshot, from, prepare).await
    }

    async fn handle_here_or_at_owner(
        &self,
        snapshot: Arc<Snapshot>,
        from: PeerIndex,
        prepare: Vec<u8>,
    ) -> Vec<u8> {
        let arrived_at = Instant::now();
        let peer = snapshot.peer(from);
        let owner = owner_of(&peer.id, self.shared.shard_count);
        // Only a peer's limit buckets need their owner; a peer without limits has no
        // mutable state, so its packets stay on the shard they arrived on.
        let stateless = peer.rate_limit_packets_per_second.is_none()
            && peer.throughput_limit_per_second.is_none();
        if owner == self.id || stateless {
            return self
                .process_owned(&snapshot, from, prepare, arrived_at)
                .await;
        }
        self.send_to_owner(owner, Stage::Pipeline(from), snapshot, prepare, arrived_at)
            .await
    }

    /// The pipeline's decision, with the leases of shared limits: ahead, in the
    /// background; or, when the peer's allowance was empty, waited for (its own
    /// lease, or one already on its way; bounded by [`crate::limits::LEASE_WAIT`]),
    /// and the packet decided again, once.
    async fn decide(
        &self,
        snapshot: &Arc<Snapshot>,
        from: PeerIndex,
        prepare: &Prepare<'_>,
        now_ms: u64,
    ) -> Decision {
        let (decision, leases) = self.decide_now(snapshot, from, prepare, now_ms);
        let limited = matches!(
            decision,
            Decision::Reject(RejectReason::RateLimited | RejectReason::ThroughputLimited)
        );
        if !limited {
            self.lease_ahead(leases);
            return decision;
        }
        if !leases.is_empty() {
            leases::lease(
                Rc::clone(&self.limiters),
                Rc::clone(&self.ports.store),
                Rc::clone(&self.lease_waiters),
                leases,
            )
            .await;
        } else if self.limiters.borrow().leasing(from) {
            // Another packet's lease is on its way: wait for it rather than refuse.
            leases::wait_for_lease(&self.lease_waiters).await;
        } else {
            return decision;
        }
        let (decision, leases) = self.decide_now(snapshot, from, prepare, unix_now_ms());
        // Every request handed out is marked as on its way: it must go.
        self.lease_ahead(leases);
        decision
    }

    /// Sends leases in the background; their answers reach the limiters.
    fn lease_ahead(&self, leases: Vec<LeaseRequest>) {
        if leases.is_empty() {
            return;
        }
        let lease = leases::lease(
            Rc::clone(&self.limiters),
            Rc::clone(&self.ports.store),
            Rc::clone(&self.lease_waiters),
            leases,
        );
        glommio::spawn_local(lease).detach();
    }

    fn decide_now(
        &self,
        snapshot: &Arc<Snapshot>,
        from: PeerIndex,
        prepare: &Prepare<'_>,
        now_ms: u64,
    ) -> (Decision, Vec<LeaseRequest>) {
        let mut limiters = self.limiters.borrow_mut();
        limiters.sync(snapshot);
        let decision = pipeline::decide(
            snapshot,
            &mut limiters,
            &self.shared.options,
            from,
            prepare,
            now_ms,
        );
        let leases = limiters.lease_requests(from, now_ms);
        (decision, leases)
    }

    /// Hands a packet to the shard that owns its state and waits for the reply.
    /// A failure to hand over is recorded here for a whole pipeline's packet; a
    /// delivery's reply is recorded by whoever ran its pipeline.
    async fn send_to_owner(
        &self,
        owner: u32,
        stage: Stage,
        snapshot: Arc<Snapshot>,
        prepare: Vec<u8>,
        arrived_at: Instant,
    ) -> Vec<u8> {
        let (reply_sender, reply_receiver) = oneshot::channel();
        let job = Job {
            stage,
            snapshot: Arc::clone(&snapshot),
            prepare,
            arrived_at,
            reply: reply_sender,
        };
        let failed = |reason: RejectReason| match stage {
            Stage::Pipeline(from) => self.reject(&snapshot, from, &reason, arrived_at),
            Stage::Deliver(_) => reason.to_reject_bytes(&snapshot.own_address),
        };
        if self.senders.try_send_to(owner as usize, job).is_err() {
            return failed(RejectReason::Busy);
        }
        match reply_receiver.await {
            Ok(reply) => reply,
            Err(_) => failed(RejectReason::Internal(
                "owner shard dropped the packet".into(),
            )),
        }
    }

    fn reject(
        &self,
        snapshot: &Snapshot,
        from: PeerIndex,
        reason: &RejectReason,
        arrived_at: Instant,
    ) -> Vec<u8> {
        let reply = reason.to_reject_bytes(&snapshot.own_address);
        self.record(snapshot, from, &reply, 0, arrived_at);
        reply
    }

    /// The packet's outcome and latency, and its amount when fulfilled.
    fn record(
        &self,
        snapshot: &Snapshot,
        from: PeerIndex,
        reply: &[u8],
        amount: u64,
        arrived_at: Instant,
    ) {
        let latency_us = arrived_at.elapsed().as_micros() as u64;
        self.ports.metrics.borrow_mut().record_packet(
            &snapshot.peer(from).id,
            Outcome::of_reply(reply),
            amount,
            latency_us,
        );
    }

    async fn process_owned(
        &self,
        snapshot: &Arc<Snapshot>,
        from: PeerIndex,
        prepare: Vec<u8>,
        arrived_at: Instant,
    ) -> Vec<u8> {
        if self.in_flight() >= self.shared.in_flight_max {
            return self.reject(snapshot, from, &RejectReason::Busy, arrived_at);
        }
        let amount = Prepare::amount_of(&prepare).unwrap_or(0);
        let reply = {
            let _counted = self.ports.enter();
            self.run_pipeline(snapshot, from, prepare).await
        };
        self.record(snapshot, from, &reply, amount, arrived_at);
        reply
    }

    /// Local delivery on the shard that owns the connection; the packet has passed
    /// the pipeline on the shard that sent it here.
    async fn deliver_owned(&self, snapshot: &Snapshot, payer: Payer, prepare: &[u8]) -> Vec<u8> {
        // Counted and recorded by the shard where the packet arrived.
        if self.in_flight() >= self.shared.in_flight_max {
            return RejectReason::Busy.to_reject_bytes(&snapshot.own_address);
        }
        let _counted = self.ports.enter();
        self.deliver_here(snapshot, payer, prepare).await
    }

    /// Delivers a Prepare that arrived from another shard: parsed here, once.
    async fn deliver_here(&self, snapshot: &Snapshot, payer: Payer, prepare: &[u8]) -> Vec<u8> {
        let Ok(prepare) = Prepare::parse(prepare) else {
            return RejectReason::Internal("unparseable prepare".into())
                .to_reject_bytes(&snapshot.own_address);
        };
        self.receiver
            .deliver(&self.ports, snapshot, payer, &prepare, unix_now_ms())
            .await
    }

    /// The shard that owns a local packet's STREAM connection (this one when its
    /// destination names none: the receiver then rejects it here).
    fn local_owner(&self, snapshot: &Snapshot, prepare: &Prepare<'_>) -> u32 {
        LocalReceiver::segment(snapshot, prepare.destination.as_str()).map_or(self.id, |segment| {
            owner_of(segment, self.shared.shard_count)
        })
    }

    /// The shard a decision runs on: a local packet's connection owner, else this one.
    fn local_owner_of(
        &self,
        snapshot: &Snapshot,
        decision: &Decision,
        prepare: &Prepare<'_>,
    ) -> u32 {
        if matches!(decision, Decision::Local) {
            self.local_owner(snapshot, prepare)
        } else {
            self.id
        }
    }

    /// Delivers at the shard that owns the packet's STREAM connection: one shard
    /// serializes a connection's packets and keeps its keys.
    async fn deliver_at_owner(
        &self,
        snapshot: &Arc<Snapshot>,
        payer: Payer,
        prepare_bytes: Vec<u8>,
        owner: u32,
    ) -> Vec<u8> {
        debug_assert_ne!(owner, self.id);
        // The reply is recorded by the shard where the packet arrived.
        self.send_to_owner(
            owner,
            Stage::Deliver(payer),
            Arc::clone(snapshot),
            prepare_bytes,
            Instant::now(),
        )
        .await
    }

    async fn run_pipeline(
        &self,
        snapshot: &Arc<Snapshot>,
        from: PeerIndex,
        mut prepare_bytes: Vec<u8>,
    ) -> Vec<u8> {
        let now_ms = unix_now_ms();
        // The one parse on this shard: what a later step needs is read here, and a
        // packet delivered here is delivered from this parse.
        let Ok(prepare) = Prepare::parse(&prepare_bytes) else {
            return RejectReason::Internal("unparseable prepare".into())
                .to_reject_bytes(&snapshot.own_address);
        };
        let decision = self.decide(snapshot, from, &prepare, now_ms).await;
        let local_owner = self.local_owner_of(snapshot, &decision, &prepare);
        match decision {
            Decision::Fulfill(bytes) => bytes,
            Decision::Reject(reason) => reason.to_reject_bytes(&snapshot.own_address),
            Decision::Local if local_owner == self.id => {
                let payer = Payer::peer(snapshot, from);
                self.receiver
                    .deliver(&self.ports, snapshot, payer, &prepare, now_ms)
                    .await
            }
            Decision::Local => {
                let payer = Payer::peer(snapshot, from);
                self.deliver_at_owner(snapshot, payer, prepare_bytes, local_owner)
                    .await
            }
            Decision::Forward(forward) => self.forward(snapshot, forward, &mut prepare_bytes).await,
        }
    }

    /// The flow of a forwarded packet, with the chain it holds (its ids reserved).
    fn forward_flow(&self, forward: &Forward, incoming_expiry_ms: u64) -> (ForwardFlow, Chain) {
        let ledger = &self.shared.ledger;
        let first_id = ledger.reserve_ids(&self.ports.ids, forward.legs.len());
        let chain = Chain::new(&forward.legs, first_id, ledger.pending_timeout_s());
        let hold_by_ms = forward.expires_at_outgoing.unix_ms();
        let reply_by_ms = reply_deadline(hold_by_ms, incoming_expiry_ms);
        let pending_timeout_ms = u64::from(ledger.pending_timeout_s()) * 1_000;
        let hold = HoldStep::new(chain, hold_by_ms, pending_timeout_ms);
        // A ledger in process answers at once: waiting for it costs nothing. One a
        // round trip away would add that trip to every packet's latency.
        let timing = if ledger.answers_in_process() {
            ReplyTiming::AfterSettle
        } else {
            ReplyTiming::AtFinish
        };
        (
            ForwardFlow::new(hold, hold_by_ms, reply_by_ms, timing),
            chain,
        )
    }

    /// Drives a forwarded packet's flow: hold, call the peer, post or void. The
    /// reply leaves once the ledger settled the hold, or at the flow's deadline;
    /// a ledger step still running then goes on in a task of its own.
    async fn forward(
        &self,
        snapshot: &Snapshot,
        forward: Forward,
        prepare_bytes: &mut [u8],
    ) -> Vec<u8> {
        let own_address = snapshot.own_address.as_str();
        let (condition, incoming_expiry_ms) = (
            forward.execution_condition,
            forward.expires_at_incoming.unix_ms(),
        );
        let (mut flow, chain) = self.forward_flow(&forward, incoming_expiry_ms);
        let mut peer_bytes = Vec::new();
        // Bounded: every request has a deadline, the peer call ends at the
        // outgoing expiry, and the flow replies by its deadline at the latest. The
        // clock is read once after each wait.
        let mut now = unix_now_ms();
        loop {
            match flow.poll(now) {
                ForwardCommand::Ledger(request) => {
                    let wait = self.ports.wait_for(flow.wake_at_ms(), now);
                    let answer = self.ports.ledger(request, wait).await;
                    now = unix_now_ms();
                    flow.on_ledger(&answer, now);
                }
                ForwardCommand::CallPeer => {
                    let reply = self
                        .call_peer(snapshot, &forward, prepare_bytes, &condition)
                        .await;
                    now = unix_now_ms();
                    flow.on_peer(match reply {
                        Ok((bytes, verdict)) => {
                            peer_bytes = bytes;
                            match verdict {
                                Verdict::Fulfilled => PeerReply::Fulfilled,
                                Verdict::Rejected => PeerReply::Rejected,
                                Verdict::Refused(reason) => PeerReply::Failed(reason),
                            }
                        }
                        Err(reason) => PeerReply::Failed(reason),
                    });
                }
                ForwardCommand::Reply(upstream) => {
                    let bytes = match upstream {
                        Upstream::Relay => std::mem::take(&mut peer_bytes),
                        Upstream::Reject(reason) => reason.to_reject_bytes(own_address),
                    };
                    flow.on_replied();
                    match flow.poll(now) {
                        ForwardCommand::Done(report) => {
                            self.report_forward(&report, &chain);
                        }
                        _ => {
                            let task =
                                finish_forward(self.ports.clone(), flow, chain, self.ports.enter());
                            glommio::spawn_local(task).detach();
                        }
                    }
                    return bytes;
                }
                ForwardCommand::Wait { until_ms } => now = sleep_until(until_ms).await,
                ForwardCommand::Done(report) => {
                    unreachable!("a forward replies before it is done: {report:?}")
                }
            }
        }
    }

    fn report_forward(&self, report: &riptide_proto::flow::forward::ForwardReport, chain: &Chain) {
        if let Some(NotHeld::Shortfall { leg }) = report.not_held {
            // Both shortfalls answer T04; the asset's own liquidity running dry
            // needs a deposit, so it is a warning.
            if leg > 0 {
                tracing::warn!(legs = ?chain.legs(), "asset liquidity exhausted");
            }
        }
        report_forward(&self.ports, report, chain);
    }

    async fn call_peer(
        &self,
        snapshot: &Snapshot,
        forward: &Forward,
        prepare_bytes: &mut [u8],
        condition: &[u8; 32],
    ) -> Result<(Vec<u8>, Verdict), RejectReason> {
        let peer = snapshot.peer(forward.to);
        let endpoint = peer.outgoing.as_ref().ok_or(RejectReason::NoRoute)?;
        // Bytes after the Prepare's envelope (which OER lets a reader ignore) are
        // not the sender's to pass on: the next hop gets the Prepare alone.
        let size = rewrite_prepare(
            prepare_bytes,
            forward.amount_outgoing,
            forward.expires_at_outgoing,
        )
        .map_err(|_| RejectReason::Internal("rewrite failed".into()))?;
        let prepare_bytes = &prepare_bytes[..size];
        let wait_ms = forward
            .expires_at_outgoing
            .unix_ms()
            .saturating_sub(unix_now_ms());
        let wait = Duration::from_millis(wait_ms);
        let message = (prepare_bytes, forward.sender_account);
        let call = async { Some(self.client.send(endpoint, message, wait).await) };
        let deadline = async {
            glommio::timer::sleep(wait).await;
            None
        };
        match futures_lite::future::or(call, deadline).await {
            None => Err(RejectReason::TimedOut),
            Some(Err(error)) => Err(peer_error_reason(&peer.id, error)),
            Some(Ok(body)) => {
                let verdict = pipeline::judge_reply(condition, &body);
                Ok((body, verdict))
            }
        }
    }

    /// Sends a Prepare made inside this process from a wallet's account: the
    /// pipeline and the forward of a peer's packet, with the wallet paying. Probes
    /// (`hold` false) move nothing on this side.
    /// A Prepare from one of this data plane's wallets (a quote's probe), paid
    /// from the wallet's account.
    pub async fn send_from_wallet(
        &self,
        snapshot: &Arc<Snapshot>,
        wallet_id: &str,
        prepare_bytes: Vec<u8>,
        hold: bool,
    ) -> Vec<u8> {
        let Some(wallet) = snapshot.wallet(wallet_id) else {
            return RejectReason::NoRoute.to_reject_bytes(snapshot.own_address.as_str());
        };
        let payer = Payer {
            account_id: wallet.account_id,
            asset: wallet.asset,
        };
        self.send_as(snapshot, payer, prepare_bytes, hold).await
    }

    /// A Prepare made in this process (quotes, outgoing payments), paid from
    /// `payer`'s account: a wallet's, or an outgoing payment's.
    pub async fn send_as(
        &self,
        snapshot: &Arc<Snapshot>,
        payer: Payer,
        mut prepare_bytes: Vec<u8>,
        hold: bool,
    ) -> Vec<u8> {
        let own_address = snapshot.own_address.as_str();
        let (decision, local_owner) = match Prepare::parse(&prepare_bytes) {
            Ok(prepare) => {
                let decision = pipeline::decide_from_account(
                    snapshot,
                    &self.shared.options,
                    (payer.account_id, payer.asset),
                    &prepare,
                    unix_now_ms(),
                    hold,
                );
                let owner = self.local_owner_of(snapshot, &decision, &prepare);
                (decision, owner)
            }
            Err(_) => (
                Decision::Reject(RejectReason::Internal("unparseable prepare".into())),
                self.id,
            ),
        };
        // Counted until this future ends or is dropped (a quote stops waiting for
        // its last probes).
        let _counted = InFlight::enter(&self.ports.in_flight);
        // A wallet paying a wallet of this data plane is paid by Riptide's own
        // receiver from the payer's account (one transfer in the one ledger).
        match decision {
            Decision::Forward(forward) => self.forward(snapshot, forward, &mut prepare_bytes).await,
            Decision::Reject(reason) => reason.to_reject_bytes(own_address),
            Decision::Local if local_owner == self.id => {
                self.deliver_here(snapshot, payer, &prepare_bytes).await
            }
            Decision::Local => {
                self.deliver_at_owner(snapshot, payer, prepare_bytes, local_owner)
                    .await
            }
            Decision::Fulfill(_) => RejectReason::NoRoute.to_reject_bytes(own_address),
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shared.shutdown.load(Ordering::Relaxed)
    }
}

fn peer_error_reason(peer_id: &str, error: PeerCallError) -> RejectReason {
    tracing::debug!(peer = peer_id, %error, "next hop call failed");
    RejectReason::PeerUnreachable(error.to_string())
}
