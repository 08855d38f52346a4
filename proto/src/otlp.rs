//! OpenTelemetry metrics as OTLP/HTTP JSON (`POST <collector>/v1/metrics`), built
//! sans-IO from what the data plane counts. Names are Rafiki's where it has one:
//! `packet_count_prepare`, `packet_count_fulfill`, `packet_count_reject` (sums)
//! and `ilp_prepare_packet_processing_ms` (a histogram), so that dashboards made
//! for Rafiki's connector keep working.

use serde_json::{json, Value};

/// Upper bounds of the processing-time histogram's buckets, in milliseconds.
pub const PROCESSING_MS_BOUNDS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

/// A monotonic counter's value for one set of attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterPoint {
    pub attributes: Vec<(&'static str, String)>,
    pub value: u64,
}

/// A cumulative histogram: one count per bucket of [`PROCESSING_MS_BOUNDS`] and
/// one past the last, with the sum of the values (ms).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPoint {
    pub bucket_counts: Vec<u64>,
    pub sum_ms: f64,
}

/// What one export carries.
pub struct Export<'a> {
    pub service_name: &'a str,
    pub start_unix_nanos: u64,
    pub now_unix_nanos: u64,
    pub counters: Vec<(&'static str, &'static str, Vec<CounterPoint>)>,
    pub processing: HistogramPoint,
}

impl Export<'_> {
    /// The `ExportMetricsServiceRequest`, in OTLP's JSON mapping (64-bit integers
    /// as strings, times in Unix nanoseconds).
    pub fn to_json(&self) -> Value {
        let (start, now) = (
            self.start_unix_nanos.to_string(),
            self.now_unix_nanos.to_string(),
        );
        let mut metrics: Vec<Value> = self
            .counters
            .iter()
            .map(|(name, description, points)| {
                let points: Vec<Value> = points
                    .iter()
                    .map(|point| {
                        json!({
                            "attributes": attributes(&point.attributes),
                            "startTimeUnixNano": start,
                            "timeUnixNano": now,
                            "asInt": point.value.to_string(),
                        })
                    })
                    .collect();
                json!({
                    "name": name,
                    "description": description,
                    "unit": "1",
                    "sum": {
                        "dataPoints": points,
                        "aggregationTemporality": 2,
                        "isMonotonic": true,
                    },
                })
            })
            .collect();
        let count: u64 = self.processing.bucket_counts.iter().sum();
        metrics.push(json!({
            "name": "ilp_prepare_packet_processing_ms",
            "description": "Time to process an ILP Prepare, from arrival to reply",
            "unit": "ms",
            "histogram": {
                "dataPoints": [{
                    "startTimeUnixNano": start,
                    "timeUnixNano": now,
                    "count": count.to_string(),
                    "sum": self.processing.sum_ms,
                    "bucketCounts": self.processing.bucket_counts.iter().map(u64::to_string).collect::<Vec<_>>(),
                    "explicitBounds": PROCESSING_MS_BOUNDS,
                }],
                "aggregationTemporality": 2,
            },
        }));
        json!({
            "resourceMetrics": [{
                "resource": {"attributes": attributes(&[("service.name", self.service_name.to_owned())])},
                "scopeMetrics": [{
                    "scope": {"name": "riptide"},
                    "metrics": metrics,
                }],
            }],
        })
    }
}

fn attributes(pairs: &[(&'static str, String)]) -> Value {
    pairs
        .iter()
        .map(|(key, value)| json!({"key": key, "value": {"stringValue": value}}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_has_otlps_json_shape() {
        let export = Export {
            service_name: "riptide",
            start_unix_nanos: 1,
            now_unix_nanos: 2,
            counters: vec![(
                "packet_count_fulfill",
                "Fulfilled packets",
                vec![CounterPoint {
                    attributes: vec![("peer", "alice".into())],
                    value: 3,
                }],
            )],
            processing: HistogramPoint {
                bucket_counts: vec![2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                sum_ms: 2.5,
            },
        };
        let json = export.to_json();
        let metrics = &json["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        assert_eq!(metrics[0]["name"], "packet_count_fulfill");
        assert_eq!(metrics[0]["sum"]["dataPoints"][0]["asInt"], "3");
        assert_eq!(
            metrics[0]["sum"]["dataPoints"][0]["attributes"][0]["key"],
            "peer"
        );
        assert_eq!(metrics[1]["histogram"]["dataPoints"][0]["count"], "3");
        assert_eq!(
            metrics[1]["histogram"]["dataPoints"][0]["explicitBounds"]
                .as_array()
                .map(Vec::len),
            Some(PROCESSING_MS_BOUNDS.len())
        );
        assert_eq!(
            json["resourceMetrics"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "riptide"
        );
    }
}
