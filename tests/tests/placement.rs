//! Where the shards run: `node.cpus` pins one executor to each CPU it lists, and
//! without it the executors stay on the CPUs the process may run on (its
//! affinity, as `taskset` sets it), rather than on any online CPU. Checked from
//! the kernel's side: each shard thread's `Cpus_allowed_list`.

use riptide_tests::dataplane::{node_section, workspace_binary, RiptideProcess};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The highest CPU id this test may use, from its own affinity.
fn last_allowed_cpu() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("own status");
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list");
    list.trim()
        .rsplit([',', '-'])
        .next()
        .and_then(|id| id.parse().ok())
        .expect("a CPU id")
}

/// Each shard thread of `pid` with the CPUs it may run on.
fn shard_cpus(pid: u32) -> Vec<(String, String)> {
    let mut shards = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let path = task.expect("task").path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !name.starts_with("riptide-shard") {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        if let Some(cpus) = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        {
            shards.push((name.trim().to_owned(), cpus.trim().to_owned()));
        }
    }
    shards
}

fn config(ports: (u16, u16, u16), extra: &str) -> String {
    format!(
        "{}{extra}\n",
        node_section("test.riptide", ports, ADMIN_TOKEN)
    )
}

#[test]
fn node_cpus_pins_each_shard_to_a_listed_cpu() {
    let cpu = last_allowed_cpu();
    let ports = free_node_ports();
    let riptide = RiptideProcess::start_at(&config(ports, &format!("cpus = \"{cpu}\"")), ports, 1);
    let shards = shard_cpus(riptide.child.id());
    assert!(!shards.is_empty(), "no shard thread found");
    for (name, cpus) in shards {
        assert_eq!(cpus, cpu.to_string(), "{name}");
    }
}

#[test]
fn without_node_cpus_the_shards_stay_within_the_process_affinity() {
    let cpu = last_allowed_cpu();
    let ports = free_node_ports();
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("riptide.toml");
    std::fs::write(&config_path, config(ports, "")).expect("write config");
    // taskset execs riptide: the child's pid is riptide's.
    let mut child = Command::new("taskset")
        .args(["-c", &cpu.to_string()])
        .arg(workspace_binary("riptide"))
        .arg("--config")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("taskset runs riptide");
    let admin = SocketAddr::from(([127, 0, 0, 1], ports.1));
    let started = Instant::now();
    while TcpStream::connect(admin).is_err() {
        if started.elapsed() > Duration::from_secs(20) || child.try_wait().ok().flatten().is_some()
        {
            let _ = child.kill();
            panic!("riptide did not start under taskset");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let shards = shard_cpus(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(!shards.is_empty(), "no shard thread found");
    for (name, cpus) in shards {
        assert_eq!(
            cpus,
            cpu.to_string(),
            "{name} left the affinity taskset gave"
        );
    }
}

#[test]
fn more_shards_than_listed_cpus_stops_the_start_with_the_reason() {
    let ports = free_node_ports();
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("riptide.toml");
    std::fs::write(&config_path, config(ports, "cpus = \"0\"")).expect("write config");
    let output = Command::new(workspace_binary("riptide"))
        .arg("--config")
        .arg(&config_path)
        .args(["--shards", "2"])
        .output()
        .expect("run riptide");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("node.shards is 2, but node.cpus lists 1 CPU(s)"),
        "{stderr}"
    );

    let output = Command::new(workspace_binary("riptide"))
        .arg("--config")
        .arg(&config_path)
        .args(["--cpus", "3-1"])
        .output()
        .expect("run riptide");
    assert_eq!(output.status.code(), Some(2), "a CLI misuse prints usage");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--cpus"), "{stderr}");
}
