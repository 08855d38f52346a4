//! OpenTelemetry metrics over OTLP/HTTP from the real binary, under Rafiki's names:
//! a collector (here a recording HTTP server) receives `packet_count_*` sums and the
//! `ilp_prepare_packet_processing_ms` histogram with what the packets did.

use riptide_tests::dataplane::{
    node_section, prepare_for_sink, HttpClient, RiptideProcess, SinkBehaviour, SinkPeer,
};
use riptide_tests::fixtures::{assets_toml, free_node_ports, ADMIN_TOKEN};
use riptide_tests::webhook_receiver::WebhookReceiver;
use serde_json::Value;
use std::time::{Duration, Instant};

const ALICE_TOKEN: &str = "alice-token-0123456789";

/// The value of metric `name` for peer alice in an export, if it is there.
fn alice_count(export: &Value, name: &str) -> Option<String> {
    let metrics = export["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array()?;
    let metric = metrics.iter().find(|m| m["name"] == name)?;
    let points = metric["sum"]["dataPoints"].as_array()?;
    let point = points
        .iter()
        .find(|p| p["attributes"][0]["value"]["stringValue"] == "alice")?;
    point["asInt"].as_str().map(str::to_owned)
}

/// Checks the export with OpenTelemetry's own message definitions (the
/// `opentelemetry-proto` package, which scripts/setup.sh installs): protobuf's JSON
/// parser refuses unknown fields and wrong types.
fn parses_as_otlp(body: &[u8]) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let script = "import sys\n\
from google.protobuf import json_format\n\
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest\n\
request = json_format.Parse(sys.stdin.read(), ExportMetricsServiceRequest())\n\
names = sorted(m.name for r in request.resource_metrics for s in r.scope_metrics for m in s.metrics)\n\
print(','.join(names))\n";
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("export to python");
    let output = python.wait_with_output().expect("python ran");
    assert!(
        output.status.success(),
        "not a valid OTLP export: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ilp_prepare_packet_processing_ms,packet_amount_fulfill,packet_count_fulfill,packet_count_prepare,packet_count_reject"
    );
}

fn processing_count(export: &Value) -> Option<String> {
    let metrics = export["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array()?;
    let metric = metrics
        .iter()
        .find(|m| m["name"] == "ilp_prepare_packet_processing_ms")?;
    metric["histogram"]["dataPoints"][0]["count"]
        .as_str()
        .map(str::to_owned)
}

/// A riptide that exports to `collector` every 300 ms; alice pays bob (`sink`).
fn start(collector: &WebhookReceiver, sink: &SinkPeer) -> RiptideProcess {
    let ports = free_node_ports();
    let node = node_section("test.riptide", ports, ADMIN_TOKEN);
    let assets = assets_toml(&[("USD", 1, 1_000_000)]);
    let (collector_url, sink_url) = (format!("http://{}", collector.address), sink.url());
    let text = format!(
        r#"{node}
[telemetry]
otlp_urls = ["{collector_url}"]
export_interval_ms = 300
service_name = "riptide-under-test"

{assets}
[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["{ALICE_TOKEN}"]
initial_liquidity = 100000

[[peers]]
id = "bob"
asset = "USD"
outgoing_url = "{sink_url}"
outgoing_token = "riptide-to-bob-token"
routes = ["test.bob"]
"#
    );
    RiptideProcess::start_at(&text, ports, 2)
}

#[test]
fn metrics_reach_an_otlp_collector_under_rafikis_names() {
    let collector = WebhookReceiver::start(0);
    let sink = SinkPeer::start(SinkBehaviour::FulfillFromData);
    let riptide = start(&collector, &sink);
    let mut client = HttpClient::new(riptide.connector);
    for (seed, destination) in [
        (1u8, "test.bob.x"),
        (2, "test.bob.x"),
        (3, "test.bob.x"),
        (4, "test.nowhere"),
    ] {
        let packet = prepare_for_sink(10, destination, Duration::from_secs(20), [seed; 32]);
        assert_eq!(
            client
                .post_packet(ALICE_TOKEN, &packet)
                .expect("answer")
                .status,
            200
        );
    }
    let started = Instant::now();
    loop {
        let found = collector.deliveries().into_iter().find(|delivery| {
            let export = &delivery.body;
            alice_count(export, "packet_count_prepare").as_deref() == Some("4")
                && alice_count(export, "packet_count_fulfill").as_deref() == Some("3")
                && alice_count(export, "packet_count_reject").as_deref() == Some("1")
                && alice_count(export, "packet_amount_fulfill").as_deref() == Some("30")
                && processing_count(export).as_deref() == Some("4")
                && export["resourceMetrics"][0]["resource"]["attributes"][0]["value"]["stringValue"]
                    == "riptide-under-test"
        });
        if let Some(delivery) = found {
            parses_as_otlp(&delivery.raw_body);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no export with the packets' counts: {:#?}",
            collector.deliveries().last().map(|d| d.body.clone())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
