//! Where the shards run: `node.cpus` pins one executor to each CPU it lists, and
//! without it the executors stay on the CPUs the process may run on (its
//! affinity, as `taskset` sets it), rather than on any online CPU. Checked from
//! the kernel's side: each shard thread's `Cpus_allowed_list`.

use riptide_tests::dataplane::{
    node_section, run_riptide_to_exit, workspace_binary, RiptideProcess,
};
use riptide_tests::fixtures::{free_node_ports, ADMIN_TOKEN};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The CPU ids this test may use, from its own affinity.
fn allowed_cpus() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").expect("own status");
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list");
    riptide_dataplane::placement::parse_cpu_list(list.trim()).expect("the kernel's list")
}

fn last_allowed_cpu() -> u32 {
    *allowed_cpus().last().expect("at least one CPU")
}

/// Polls the shard threads of `pid` until `settled` accepts their CPUs (glommio
/// starts a helper thread per shard, named as the shard, that pins itself a
/// moment later), within 10 s; the last reading either way.
fn settled_shard_cpus(
    pid: u32,
    settled: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let started = Instant::now();
    loop {
        let shards = shard_cpus(pid);
        if settled(&shards) || started.elapsed() > Duration::from_secs(10) {
            return shards;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let (_dir, config_path) = write_config(ports, &format!("cpus = \"{cpu}\""));
    let mut command = Command::new(workspace_binary("riptide"));
    command.arg("--config").arg(&config_path);
    let started = start_until_admin(command, ports);
    assert_every_shard_on(&started, cpu);
}

#[test]
fn two_shards_on_two_listed_cpus_take_one_each() {
    let allowed = allowed_cpus();
    let [.., first, second] = allowed[..] else {
        eprintln!("skipped: this machine lets the test use {allowed:?}, fewer than 2 CPUs");
        return;
    };
    let ports = free_node_ports();
    let listed = format!("cpus = \"{first},{second}\"");
    let riptide = RiptideProcess::start_at(&config(ports, &listed), ports, 2);
    let pinned = [first.to_string(), second.to_string()];
    let both_taken = |shards: &[(String, String)]| {
        shards.iter().all(|(_, cpus)| pinned.contains(cpus))
            && pinned
                .iter()
                .all(|cpu| shards.iter().any(|(_, cpus)| cpus == cpu))
    };
    let shards = settled_shard_cpus(riptide.child.id(), both_taken);
    assert!(
        both_taken(&shards),
        "each shard thread on one of {pinned:?}, and both taken: {shards:?}"
    );
}

/// A config file for `ports` with `extra` in `[node]`, in a folder of its own.
fn write_config(ports: (u16, u16, u16), extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("riptide.toml");
    std::fs::write(&path, config(ports, extra)).expect("write config");
    (dir, path)
}

/// A riptide started by `command`, killed on drop.
struct Started(std::process::Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` (riptide, or a wrapper that execs it, so that the child's pid
/// is riptide's) and waits until its admin port on `ports` answers, 20 s at most.
fn start_until_admin(mut command: Command, ports: (u16, u16, u16)) -> Started {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start riptide");
    let mut started = Started(child);
    let admin = SocketAddr::from(([127, 0, 0, 1], ports.1));
    let since = Instant::now();
    while TcpStream::connect(admin).is_err() {
        let exited = started.0.try_wait().ok().flatten().is_some();
        assert!(
            since.elapsed() < Duration::from_secs(20) && !exited,
            "riptide did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    started
}

/// Every shard thread of `started` settles on `cpu` alone.
fn assert_every_shard_on(started: &Started, cpu: u32) {
    let expected = cpu.to_string();
    let shards = settled_shard_cpus(started.0.id(), |shards| {
        !shards.is_empty() && shards.iter().all(|(_, cpus)| *cpus == expected)
    });
    assert!(!shards.is_empty(), "no shard thread found");
    for (name, cpus) in shards {
        assert_eq!(cpus, expected, "{name}");
    }
}

#[test]
fn without_node_cpus_the_shards_stay_within_the_process_affinity() {
    let cpu = last_allowed_cpu();
    let ports = free_node_ports();
    let (_dir, config_path) = write_config(ports, "");
    // taskset execs riptide: the child's pid is riptide's.
    let mut command = Command::new("taskset");
    command
        .args(["-c", &cpu.to_string()])
        .arg(workspace_binary("riptide"))
        .arg("--config")
        .arg(&config_path);
    let started = start_until_admin(command, ports);
    assert_every_shard_on(&started, cpu);
}

#[test]
fn the_cpus_option_pins_the_shards_as_the_readme_shows_it() {
    let cpu = last_allowed_cpu();
    let ports = free_node_ports();
    let (_dir, config_path) = write_config(ports, "");
    let mut command = Command::new(workspace_binary("riptide"));
    command
        .arg("--config")
        .arg(&config_path)
        .args(["--cpus", &format!("{cpu}-{cpu}")]);
    let started = start_until_admin(command, ports);
    assert_every_shard_on(&started, cpu);
}

/// Runs riptide with `args` after its config to its exit: its status and stderr.
fn run_to_exit(config_path: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    run_riptide_to_exit(config_path, args, Duration::from_secs(20))
}

#[test]
fn more_shards_than_listed_cpus_stops_the_start_with_the_reason() {
    let ports = free_node_ports();
    let cpu = last_allowed_cpu();
    let (_dir, config_path) = write_config(ports, &format!("cpus = \"{cpu}\""));
    let (status, stderr) = run_to_exit(&config_path, &["--shards", "2"]);
    assert_eq!(status, Some(1));
    assert!(
        stderr.contains("node.shards is 2, but node.cpus lists 1 CPU(s)"),
        "{stderr}"
    );

    let (status, stderr) = run_to_exit(&config_path, &["--cpus", "3-1"]);
    assert_eq!(status, Some(2), "a CLI misuse prints usage");
    assert!(stderr.contains("--cpus"), "{stderr}");
}
