//! The start of a node: riptide says it started only once every shard listens,
//! and a port it cannot listen on ends the process with the port and the reason,
//! even when only one shard needed it and the others had started (the admin port
//! is shard 0's alone). Before, the other shards ran on and the node stayed half
//! up, its admin API never answering. And a port that another server has just
//! left, its connections still in TIME_WAIT, is taken as any server takes it.

use riptide_tests::dataplane::{node_section, run_riptide_to_exit, RiptideProcess};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
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

/// Leaves a connection in TIME_WAIT on `port`, on the side of a server that set
/// `SO_REUSEADDR` (as Rust's, Redis's and Node's listeners do) and closed first.
fn leave_time_wait_on(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    drop(accepted);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("the server's close");
}

#[test]
fn a_port_another_server_just_left_is_taken() {
    let ports = free_node_ports();
    for port in [ports.0, ports.1, ports.2] {
        leave_time_wait_on(port);
    }
    let text = node_section("test.riptide", ports, ADMIN_TOKEN);
    let mut riptide = RiptideProcess::start_at(&text, ports, 2);
    let status = riptide.admin_request("GET", "/healthz", b"").status;
    assert_eq!(status, 200);
    let exit = riptide.terminate(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}\n{}",
        riptide.log()
    );
}
