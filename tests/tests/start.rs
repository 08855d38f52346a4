//! The start of a node: riptide says it started only once every shard listens,
//! and a port it cannot listen on ends the process with the port and the reason,
//! even when only one shard needed it and the others had started (the admin port
//! is shard 0's alone). Before, the other shards ran on and the node stayed half
//! up, its admin API never answering.

use riptide_tests::dataplane::{node_section, run_riptide_to_exit};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use std::net::TcpListener;
use std::time::Duration;

/// Starts two shards with the port `taken` of the node's ports held by another
/// listener; returns riptide's exit code and stderr.
fn start_with_port_taken(taken: fn((u16, u16, u16)) -> u16) -> (u16, Option<i32>, String) {
    let ports = free_node_ports();
    let port = taken(ports);
    let _holder = TcpListener::bind(("127.0.0.1", port)).expect("hold the port");
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("riptide.toml");
    let text = node_section("test.riptide", ports, ADMIN_TOKEN);
    std::fs::write(&config_path, text).expect("write config");
    let (status, stderr) =
        run_riptide_to_exit(&config_path, &["--shards", "2"], Duration::from_secs(20));
    (port, status, stderr)
}

#[test]
fn an_admin_port_in_use_stops_every_shard_with_the_reason() {
    let (port, status, stderr) = start_with_port_taken(|(_, admin, _)| admin);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("shard 0: cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("riptide started"), "{stderr}");
}

#[test]
fn a_connector_port_in_use_stops_the_start_with_the_reason() {
    let (port, status, stderr) = start_with_port_taken(|(connector, _, _)| connector);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("riptide started"), "{stderr}");
}
