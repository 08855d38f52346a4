//! Counters and latency histograms. Each shard records into its own instance without
//! locks, and publishes a copy every second into a shared slot that the admin API
//! merges; the per-packet path never takes a lock.

use crate::http::gate::{ConnectionGate, Port, Refusal};
use crate::http::peer::OutgoingCounts;
use crate::ledger::batcher::BatchStats;
use crate::limits::LATENCY_US_MAX;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// What happened to a packet. `Copy`, so counting it on the packet path allocates
/// nothing; it becomes a label only when metrics are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Fulfilled,
    Rejected([u8; 3]),
    Invalid,
}

impl Outcome {
    pub fn of_reply(reply: &[u8]) -> Outcome {
        match reply.first() {
            Some(13) => Outcome::Fulfilled,
            Some(14) => riptide_proto::packet::Reject::parse(reply)
                .map(|r| Outcome::Rejected(r.code.to_bytes()))
                .unwrap_or(Outcome::Invalid),
            _ => Outcome::Invalid,
        }
    }

    pub fn label(self) -> String {
        match self {
            Outcome::Fulfilled => "fulfilled".to_owned(),
            Outcome::Rejected(code) => {
                riptide_proto::packet::ErrorCode::from_bytes(code).to_string()
            }
            Outcome::Invalid => "invalid".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ShardMetrics {
    /// Packets by incoming peer id, then outcome.
    pub packets: BTreeMap<String, BTreeMap<Outcome, u64>>,
    /// What fulfilled Prepares carried in, by incoming peer, in its asset's units.
    pub fulfilled_amounts: BTreeMap<String, u64>,
    /// Time from a Prepare's arrival to its reply, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Ledger hold/post/void failures by kind.
    pub ledger_failures: BTreeMap<&'static str, u64>,
    /// Counts the journal's sweep settled, by how: `posted` or `taken_back`.
    pub journal_swept: BTreeMap<&'static str, u64>,
    /// Requests refused before the pipeline, by HTTP status.
    pub http_refusals: BTreeMap<u16, u64>,
    /// Ledger requests: events per batch and latency.
    pub ledger_batches: BatchStats,
    /// Prepares written to peers over HTTP, and the writes that carried them.
    pub outgoing: OutgoingCounts,
    /// Redis pipelines sent, and the operations they carried.
    pub store_pipelines: (u64, u64),
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            packets: BTreeMap::new(),
            fulfilled_amounts: BTreeMap::new(),
            // Three significant digits: 0.1% resolution, enough for percentiles.
            latency_us: Histogram::new_with_max(LATENCY_US_MAX, 3)
                .expect("constant histogram bounds are valid"),
            ledger_failures: BTreeMap::new(),
            journal_swept: BTreeMap::new(),
            http_refusals: BTreeMap::new(),
            ledger_batches: BatchStats::default(),
            outgoing: OutgoingCounts::default(),
            store_pipelines: (0, 0),
        }
    }
}

impl ShardMetrics {
    /// A packet's outcome and latency; `amount` counts when it was fulfilled.
    pub fn record_packet(&mut self, peer_id: &str, outcome: Outcome, amount: u64, latency_us: u64) {
        if outcome == Outcome::Fulfilled {
            match self.fulfilled_amounts.get_mut(peer_id) {
                Some(total) => *total = total.saturating_add(amount),
                None => {
                    self.fulfilled_amounts.insert(peer_id.to_owned(), amount);
                }
            }
        }
        // The peer's map exists after its first packet: no allocation from then on.
        match self.packets.get_mut(peer_id) {
            Some(by_outcome) => *by_outcome.entry(outcome).or_default() += 1,
            None => {
                self.packets
                    .insert(peer_id.to_owned(), BTreeMap::from([(outcome, 1)]));
            }
        }
        // Saturate rather than fail: a value over the maximum is still "slow".
        let _ = self.latency_us.record(latency_us.min(LATENCY_US_MAX));
    }

    pub fn record_ledger_failure(&mut self, kind: &'static str) {
        *self.ledger_failures.entry(kind).or_default() += 1;
    }

    pub fn record_http_refusal(&mut self, status: u16) {
        *self.http_refusals.entry(status).or_default() += 1;
    }

    fn merge(&mut self, other: &ShardMetrics) {
        for (peer, by_outcome) in &other.packets {
            let mine = self.packets.entry(peer.clone()).or_default();
            for (outcome, count) in by_outcome {
                *mine.entry(*outcome).or_default() += count;
            }
        }
        for (peer, amount) in &other.fulfilled_amounts {
            let mine = self.fulfilled_amounts.entry(peer.clone()).or_default();
            *mine = mine.saturating_add(*amount);
        }
        let _ = self.latency_us.add(&other.latency_us);
        for (key, count) in &other.ledger_failures {
            *self.ledger_failures.entry(key).or_default() += count;
        }
        for (key, count) in &other.journal_swept {
            *self.journal_swept.entry(key).or_default() += count;
        }
        for (key, count) in &other.http_refusals {
            *self.http_refusals.entry(*key).or_default() += count;
        }
        self.outgoing.prepares += other.outgoing.prepares;
        self.outgoing.sends += other.outgoing.sends;
        self.store_pipelines.0 += other.store_pipelines.0;
        self.store_pipelines.1 += other.store_pipelines.1;
        let _ = self.ledger_batches.events.add(&other.ledger_batches.events);
        let _ = self
            .ledger_batches
            .latency_us
            .add(&other.ledger_batches.latency_us);
    }
}

/// The published copies, one slot per shard.
pub struct MetricsRegistry {
    slots: Vec<Mutex<ShardMetrics>>,
}

impl MetricsRegistry {
    pub fn new(shard_count: usize) -> Self {
        MetricsRegistry {
            slots: (0..shard_count)
                .map(|_| Mutex::new(ShardMetrics::default()))
                .collect(),
        }
    }

    pub fn publish(&self, shard: usize, metrics: &ShardMetrics) {
        if let Some(slot) = self.slots.get(shard) {
            if let Ok(mut guard) = slot.lock() {
                *guard = metrics.clone();
            }
        }
    }

    pub fn merged(&self) -> ShardMetrics {
        let mut total = ShardMetrics::default();
        for slot in &self.slots {
            if let Ok(guard) = slot.lock() {
                total.merge(&guard);
            }
        }
        total
    }
}

/// Prometheus text exposition of the merged metrics.
pub fn render_prometheus(metrics: &ShardMetrics, state_version: u64, shard_count: usize) -> String {
    let mut out = String::with_capacity(4096);
    render_packets(&mut out, metrics);
    render_failures(&mut out, metrics);
    render_ledger_batches(&mut out, &metrics.ledger_batches);
    let _ = writeln!(
        out,
        "# HELP riptide_outgoing_prepares_total Prepares written to peers over HTTP.\n\
         # TYPE riptide_outgoing_prepares_total counter\n\
         riptide_outgoing_prepares_total {}\n\
         # HELP riptide_outgoing_sends_total Writes that carried them (one per burst).\n\
         # TYPE riptide_outgoing_sends_total counter\n\
         riptide_outgoing_sends_total {}",
        metrics.outgoing.prepares, metrics.outgoing.sends
    );
    let _ = writeln!(
        out,
        "# HELP riptide_store_pipelines_total Redis pipelines sent (one round trip per node).\n\
         # TYPE riptide_store_pipelines_total counter\n\
         riptide_store_pipelines_total {}\n\
         # HELP riptide_store_pipeline_ops_total Store operations they carried.\n\
         # TYPE riptide_store_pipeline_ops_total counter\n\
         riptide_store_pipeline_ops_total {}",
        metrics.store_pipelines.0, metrics.store_pipelines.1
    );
    let _ = writeln!(
        out,
        "# TYPE riptide_state_version gauge\nriptide_state_version {state_version}"
    );
    let _ = writeln!(
        out,
        "# TYPE riptide_shards gauge\nriptide_shards {shard_count}"
    );
    out
}

/// Connections open by port, and what the gate turned away.
pub fn render_gate(out: &mut String, gate: &ConnectionGate) {
    let _ = writeln!(
        out,
        "# HELP riptide_connections_open Connections open now, by port.\n\
         # TYPE riptide_connections_open gauge"
    );
    for port in Port::ALL {
        let (name, open) = (port.name(), gate.open_on(port));
        let _ = writeln!(out, "riptide_connections_open{{port=\"{name}\"}} {open}");
    }
    let _ = writeln!(
        out,
        "# HELP riptide_connections_refused_total Connections and requests turned away by the connection limits, by reason.\n\
         # TYPE riptide_connections_refused_total counter"
    );
    for refusal in Refusal::ALL {
        let (name, count) = (refusal.name(), gate.refusals(refusal));
        let _ = writeln!(
            out,
            "riptide_connections_refused_total{{reason=\"{name}\"}} {count}"
        );
    }
}

/// The rates feed: fetches by result, and the age of the rates in force.
pub fn render_rates_feed(out: &mut String, (fetched, failed, age_ms): (u64, u64, Option<u64>)) {
    let _ = writeln!(
        out,
        "# HELP riptide_rates_feed_fetches_total Fetches of the rates feed, by result.\n\
         # TYPE riptide_rates_feed_fetches_total counter\n\
         riptide_rates_feed_fetches_total{{result=\"ok\"}} {fetched}\n\
         riptide_rates_feed_fetches_total{{result=\"failed\"}} {failed}"
    );
    if let Some(age_ms) = age_ms {
        let _ = writeln!(
            out,
            "# HELP riptide_rates_feed_age_seconds Age of the feed's rates in force.\n\
             # TYPE riptide_rates_feed_age_seconds gauge\n\
             riptide_rates_feed_age_seconds {:.3}",
            age_ms as f64 / 1000.0
        );
    }
}

/// Webhook deliveries: delivered, failed tries, dropped, and waiting now.
pub fn render_webhooks(out: &mut String, counts: &crate::webhooks::WebhookCounts) {
    use std::sync::atomic::Ordering::Relaxed;
    let _ = writeln!(
        out,
        "# HELP riptide_webhooks_total Webhook events by what became of them; failed counts tries, each retried.\n\
         # TYPE riptide_webhooks_total counter\n\
         riptide_webhooks_total{{result=\"delivered\"}} {}\n\
         riptide_webhooks_total{{result=\"failed\"}} {}\n\
         riptide_webhooks_total{{result=\"dropped\"}} {}\n\
         # HELP riptide_webhooks_waiting Webhook events waiting for delivery.\n\
         # TYPE riptide_webhooks_waiting gauge\n\
         riptide_webhooks_waiting {}",
        counts.delivered.load(Relaxed),
        counts.failed_attempts.load(Relaxed),
        counts.dropped.load(Relaxed),
        counts.waiting.load(Relaxed),
    );
}

/// Packets by peer and outcome, and their latency.
fn render_packets(out: &mut String, metrics: &ShardMetrics) {
    let _ = writeln!(
        out,
        "# HELP riptide_packets_total ILP Prepares answered, by incoming peer and outcome."
    );
    let _ = writeln!(out, "# TYPE riptide_packets_total counter");
    for (peer, outcome, count) in metrics.packets.iter().flat_map(|(peer, by_outcome)| {
        by_outcome
            .iter()
            .map(move |(outcome, count)| (peer, outcome.label(), count))
    }) {
        let _ = writeln!(
            out,
            "riptide_packets_total{{peer=\"{peer}\",outcome=\"{outcome}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP riptide_fulfilled_amount_total What fulfilled Prepares carried in, by incoming peer, in its asset's units."
    );
    let _ = writeln!(out, "# TYPE riptide_fulfilled_amount_total counter");
    for (peer, amount) in &metrics.fulfilled_amounts {
        let _ = writeln!(
            out,
            "riptide_fulfilled_amount_total{{peer=\"{peer}\"}} {amount}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP riptide_packet_latency_seconds Time from Prepare to reply."
    );
    let _ = writeln!(out, "# TYPE riptide_packet_latency_seconds summary");
    for quantile in [0.5, 0.9, 0.99, 0.999] {
        let seconds = metrics.latency_us.value_at_quantile(quantile) as f64 / 1e6;
        let _ = writeln!(
            out,
            "riptide_packet_latency_seconds{{quantile=\"{quantile}\"}} {seconds}"
        );
    }
    let _ = writeln!(
        out,
        "riptide_packet_latency_seconds_count {}",
        metrics.latency_us.len()
    );
}

/// What failed or was repaired: ledger requests, journal sweeps, HTTP refusals.
fn render_failures(out: &mut String, metrics: &ShardMetrics) {
    let _ = writeln!(out, "# TYPE riptide_ledger_failures_total counter");
    for (kind, count) in &metrics.ledger_failures {
        let _ = writeln!(
            out,
            "riptide_ledger_failures_total{{kind=\"{kind}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP riptide_journal_swept_total Local credits whose post was never confirmed, settled by the sweep.\n\
         # TYPE riptide_journal_swept_total counter"
    );
    for (how, count) in &metrics.journal_swept {
        let _ = writeln!(out, "riptide_journal_swept_total{{how=\"{how}\"}} {count}");
    }
    let _ = writeln!(out, "# TYPE riptide_http_refusals_total counter");
    for (status, count) in &metrics.http_refusals {
        let _ = writeln!(
            out,
            "riptide_http_refusals_total{{status=\"{status}\"}} {count}"
        );
    }
}

fn render_ledger_batches(out: &mut String, batches: &BatchStats) {
    let _ = writeln!(
        out,
        "# HELP riptide_ledger_batch_events Transfers per ledger request."
    );
    let _ = writeln!(out, "# TYPE riptide_ledger_batch_events summary");
    for quantile in [0.5, 0.9, 0.99] {
        let events = batches.events.value_at_quantile(quantile);
        let _ = writeln!(
            out,
            "riptide_ledger_batch_events{{quantile=\"{quantile}\"}} {events}"
        );
    }
    let _ = writeln!(
        out,
        "riptide_ledger_batch_events_count {}",
        batches.events.len()
    );
    let _ = writeln!(
        out,
        "# HELP riptide_ledger_request_seconds Time of one ledger request."
    );
    let _ = writeln!(out, "# TYPE riptide_ledger_request_seconds summary");
    for quantile in [0.5, 0.9, 0.99] {
        let seconds = batches.latency_us.value_at_quantile(quantile) as f64 / 1e6;
        let _ = writeln!(
            out,
            "riptide_ledger_request_seconds{{quantile=\"{quantile}\"}} {seconds}"
        );
    }
}
