//! OpenTelemetry export: every `telemetry.export_interval_ms`, shard 0 turns the
//! merged metrics into an OTLP/HTTP JSON request (`riptide_proto::otlp`, Rafiki's
//! metric names) and POSTs it to each collector. Cumulative, as Prometheus's
//! counters are; a collector that fails is tried again at the next interval.

use crate::clock::{sleep_unless, within};
use crate::config::TelemetryConfig;
use crate::limits::{OTLP_ANSWER_SIZE_MAX, OTLP_TIMEOUT};
use crate::metrics::{Outcome, ShardMetrics};
use crate::shard::Shard;
use riptide_proto::otlp::{CounterPoint, Export, HistogramPoint, PROCESSING_MS_BOUNDS};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs on shard 0 until shutdown; does nothing without collectors.
pub async fn export(shard: Rc<Shard>, config: TelemetryConfig) {
    if config.otlp_urls.is_empty() {
        return;
    }
    let interval = Duration::from_millis(config.export_interval_ms);
    let start_unix_nanos = unix_nanos();
    // Bounded by shutdown: each turn sleeps the interval.
    while !shard.shutting_down() {
        sleep_unless(|| shard.shutting_down(), interval).await;
        let merged = shard.shared.metrics.merged();
        let body = request(&merged, &config.service_name, start_unix_nanos);
        for url in &config.otlp_urls {
            let endpoint = format!("{}/v1/metrics", url.trim_end_matches('/'));
            let post = crate::http::client::post_json(
                &shard.shared,
                &endpoint,
                body.clone(),
                OTLP_ANSWER_SIZE_MAX,
            );
            match within(OTLP_TIMEOUT, post).await {
                Some(Ok((200, _))) => {}
                outcome => {
                    tracing::warn!(%endpoint, ?outcome, "OTLP export failed; tried again at the next interval")
                }
            }
        }
    }
}

/// The export of `metrics` as OTLP JSON bytes.
fn request(metrics: &ShardMetrics, service_name: &str, start_unix_nanos: u64) -> Vec<u8> {
    let per_peer = |keep: &dyn Fn(Outcome) -> bool| -> Vec<CounterPoint> {
        metrics
            .packets
            .iter()
            .map(|(peer, outcomes)| CounterPoint {
                attributes: vec![("peer", peer.clone())],
                value: outcomes
                    .iter()
                    .filter(|(outcome, _)| keep(**outcome))
                    .map(|(_, count)| count)
                    .sum(),
            })
            .collect()
    };
    let export = Export {
        service_name,
        start_unix_nanos,
        now_unix_nanos: unix_nanos(),
        counters: vec![
            (
                "packet_count_prepare",
                "ILP Prepares answered",
                per_peer(&|_| true),
            ),
            (
                "packet_count_fulfill",
                "ILP Prepares fulfilled",
                per_peer(&|outcome| outcome == Outcome::Fulfilled),
            ),
            (
                "packet_count_reject",
                "ILP Prepares rejected",
                per_peer(&|outcome| outcome != Outcome::Fulfilled),
            ),
            (
                "packet_amount_fulfill",
                "Amount of fulfilled ILP Prepares, in the incoming peer's asset units",
                metrics
                    .fulfilled_amounts
                    .iter()
                    .map(|(peer, amount)| CounterPoint {
                        attributes: vec![("peer", peer.clone())],
                        value: *amount,
                    })
                    .collect(),
            ),
        ],
        processing: processing_histogram(metrics),
    };
    serde_json::to_vec(&export.to_json()).unwrap_or_default()
}

/// The latency histogram (µs) in the export's millisecond buckets.
fn processing_histogram(metrics: &ShardMetrics) -> HistogramPoint {
    let histogram = &metrics.latency_us;
    let mut bucket_counts = Vec::with_capacity(PROCESSING_MS_BOUNDS.len() + 1);
    let mut counted = 0;
    let mut low_us = 0;
    for bound_ms in PROCESSING_MS_BOUNDS {
        let high_us = (bound_ms * 1_000.0) as u64;
        let count = histogram.count_between(low_us, high_us);
        bucket_counts.push(count);
        counted += count;
        low_us = high_us + 1;
    }
    bucket_counts.push(histogram.len().saturating_sub(counted));
    HistogramPoint {
        bucket_counts,
        sum_ms: histogram.mean() * histogram.len() as f64 / 1_000.0,
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_come_from_the_metrics() {
        let mut metrics = ShardMetrics::default();
        metrics.record_packet("alice", Outcome::Fulfilled, 7, 500);
        metrics.record_packet("alice", Outcome::Fulfilled, 8, 1_500);
        metrics.record_packet("alice", Outcome::Rejected(*b"F02"), 9, 40_000_000);
        let json: serde_json::Value =
            serde_json::from_slice(&request(&metrics, "riptide", 1)).expect("json");
        let metrics_json = &json["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        let value = |index: usize| metrics_json[index]["sum"]["dataPoints"][0]["asInt"].clone();
        assert_eq!(
            (value(0), value(1), value(2), value(3)),
            ("3".into(), "2".into(), "1".into(), "15".into()),
            "prepares, fulfills, rejects, and the fulfilled amount"
        );
        assert_eq!(metrics_json[3]["name"], "packet_amount_fulfill");
        let buckets = &metrics_json[4]["histogram"]["dataPoints"][0]["bucketCounts"];
        assert_eq!(buckets[0], "1", "0.5 ms in the first bucket");
        assert_eq!(buckets[1], "1", "1.5 ms in the second");
        assert_eq!(buckets[14], "1", "40 s past the last bound");
    }
}
