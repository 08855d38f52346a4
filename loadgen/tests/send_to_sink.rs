//! The bundled tools against each other, as the README runs them: `sink` on a
//! free loopback port, and `send` (the event-driven path, `--threads`) in closed
//! and open loop, with a share of rejects; every answer is counted.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const LOADGEN: &str = env!("CARGO_BIN_EXE_riptide-loadgen");

struct Sink(Child, SocketAddr);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sink() -> Sink {
    let address = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let child = Command::new(LOADGEN)
        .args(["sink", "--listen", &address.to_string(), "--threads", "1"])
        .spawn()
        .expect("start the sink");
    let started = Instant::now();
    while TcpStream::connect(address).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sink never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Sink(child, address)
}

fn send(sink: &Sink, extra: &[&str]) -> serde_json::Value {
    let target = format!("http://{}/ilp", sink.1);
    let output = Command::new(LOADGEN)
        .args([
            "send",
            "--target",
            &target,
            "--token",
            "t",
            "--destination",
            "test.sink.x",
        ])
        .args(["--connections", "4", "--warmup-s", "0", "--duration-s", "1"])
        .args(["--threads", "1", "--json"])
        .args(extra)
        .output()
        .expect("run send");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

#[test]
fn send_event_driven_counts_every_answer_closed_and_open_loop() {
    let sink = start_sink();
    let closed = send(&sink, &["--reject-percent", "10"]);
    let fulfilled = closed["fulfilled"].as_u64().expect("fulfilled");
    assert!(fulfilled > 0, "{closed}");
    let rejects: u64 = closed["rejects"]
        .as_object()
        .expect("rejects")
        .values()
        .map(|n| n.as_u64().unwrap_or(0))
        .sum();
    assert!(
        rejects > 0,
        "the sink rejects what it is asked to: {closed}"
    );
    assert!(
        closed["errors"].as_object().is_some_and(|e| e.is_empty()),
        "{closed}"
    );
    let open = send(&sink, &["--rate", "200"]);
    let fulfilled = open["fulfilled"].as_u64().expect("fulfilled");
    assert!((100..=300).contains(&fulfilled), "about 200 in 1 s: {open}");
}
