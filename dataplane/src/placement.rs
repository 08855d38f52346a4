//! Which CPUs the shards' executors are pinned to: `node.cpus` (or `--cpus`) when
//! given, else the CPUs this process may run on (its affinity, as `taskset` or a
//! container's cpuset leaves it), one executor per CPU. Without this, glommio
//! spreads the executors over every online CPU, outside such a set: under
//! `taskset -c 1` a shard ran on CPU 0, beside whatever the operator had kept
//! CPU 0 for (TigerBeetle, Redis, the load generator).

/// The highest CPU id a list may name: what the affinity calls can set.
pub const CPU_ID_MAX: u32 = 1_023;

/// A CPU list as `taskset -c` and cpusets write it: ids and inclusive ranges,
/// comma separated (`0-3,8,10-11`). Sorted, each id once.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (parse_cpu_id(first)?, parse_cpu_id(last)?),
            None => {
                let id = parse_cpu_id(part)?;
                (id, id)
            }
        };
        if first > last {
            return Err(format!("{part:?} is a range that ends before it starts"));
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    let listed = cpus.len();
    cpus.dedup();
    if cpus.len() != listed {
        return Err(format!("{text:?} names a CPU more than once"));
    }
    Ok(cpus)
}

fn parse_cpu_id(text: &str) -> Result<u32, String> {
    let id: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a CPU id (ids and ranges, as in 0-3,8)"))?;
    if id > CPU_ID_MAX {
        return Err(format!("CPU {id} is past the highest id, {CPU_ID_MAX}"));
    }
    Ok(id)
}

/// The CPUs this process may run on, from its affinity mask; None when the mask
/// cannot be read (then every online CPU is a candidate, as before).
pub fn allowed_cpus() -> Option<Vec<u32>> {
    let mask = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    let count = nix::sched::CpuSet::count().min(CPU_ID_MAX as usize + 1);
    let cpus: Vec<u32> = (0..count)
        .filter(|&id| mask.is_set(id).unwrap_or(false))
        .map(|id| id as u32)
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

/// Where the executors go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The candidate CPUs; None: every online CPU.
    pub cpus: Option<Vec<u32>>,
    pub shards: u32,
}

/// The placement for `shards` executors on the `configured` CPUs, else on the
/// `allowed` ones (the affinity); `online` is the machine's CPU count, for when
/// the affinity cannot be read, and `parallelism` what the process may use at
/// once (its CPU quota included), which bounds the default shard count. A
/// configured CPU outside the affinity is refused here: pinning an executor to it
/// would fail in that executor's thread, after the others had started. One
/// executor per CPU: more shards than CPUs is refused, as two executors on one
/// core would only take turns.
pub fn plan(
    configured: Option<&[u32]>,
    allowed: Option<Vec<u32>>,
    shards: Option<u32>,
    (online, parallelism): (u32, u32),
) -> Result<Placement, String> {
    if let (Some(configured), Some(allowed)) = (configured, allowed.as_ref()) {
        let outside: Vec<u32> = configured
            .iter()
            .copied()
            .filter(|cpu| !allowed.contains(cpu))
            .collect();
        if !outside.is_empty() {
            return Err(format!(
                "node.cpus: CPU(s) {outside:?} are outside the CPUs this process may run on {allowed:?}"
            ));
        }
    }
    let from_config = configured.is_some();
    let cpus = configured.map(<[u32]>::to_vec).or(allowed);
    let available = cpus.as_ref().map_or(online, |cpus| cpus.len() as u32);
    let shards = match shards {
        Some(shards) => shards.max(1),
        None if from_config => available,
        None => available.min(parallelism).max(1),
    };
    if shards > available {
        let source = if from_config {
            "node.cpus lists"
        } else {
            "this process may run on"
        };
        return Err(format!(
            "node.shards is {shards}, but {source} {available} CPU(s): one executor per CPU"
        ));
    }
    Ok(Placement { cpus, shards })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_taskset_writes_them() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Ok(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("5"), Ok(vec![5]));
        assert_eq!(parse_cpu_list(" 2 , 0 "), Ok(vec![0, 2]));
        for bad in [
            "", "a", "3-1", "1,1", "0-2,2", "-1", "1-", "4096", "0-99999",
        ] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?} was accepted");
        }
    }

    /// `cpus` written as taskset would: runs of consecutive ids as ranges.
    fn write_list(cpus: &std::collections::BTreeSet<u32>) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut run: Option<(u32, u32)> = None;
        for &id in cpus {
            run = match run {
                Some((first, last)) if id == last + 1 => Some((first, id)),
                Some((first, last)) => {
                    parts.push(if first == last {
                        first.to_string()
                    } else {
                        format!("{first}-{last}")
                    });
                    Some((id, id))
                }
                None => Some((id, id)),
            };
        }
        if let Some((first, last)) = run {
            parts.push(if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            });
        }
        parts.join(",")
    }

    proptest::proptest! {
        #[test]
        fn a_written_list_reads_back_as_its_cpus(
            cpus in proptest::collection::btree_set(0..=CPU_ID_MAX, 1..64)
        ) {
            let parsed = parse_cpu_list(&write_list(&cpus)).expect("a written list");
            proptest::prop_assert_eq!(parsed, cpus.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn any_text_is_read_or_refused_without_a_panic(text in "[0-9,\\- ]{0,40}|\\PC{0,40}") {
            if let Ok(cpus) = parse_cpu_list(&text) {
                proptest::prop_assert!(cpus.windows(2).all(|pair| pair[0] < pair[1]));
                proptest::prop_assert!(cpus.iter().all(|&id| id <= CPU_ID_MAX));
            }
        }
    }

    #[test]
    fn the_configured_cpus_win_then_the_affinity_then_every_cpu() {
        let configured = [2, 3];
        assert_eq!(
            plan(Some(&configured), Some(vec![0, 1, 2, 3]), None, (8, 8)),
            Ok(Placement {
                cpus: Some(vec![2, 3]),
                shards: 2
            })
        );
        assert_eq!(
            plan(None, Some(vec![1]), None, (8, 8)),
            Ok(Placement {
                cpus: Some(vec![1]),
                shards: 1
            })
        );
        assert_eq!(
            plan(None, None, Some(3), (8, 8)),
            Ok(Placement {
                cpus: None,
                shards: 3
            })
        );
        assert_eq!(
            plan(None, Some(vec![0, 1]), Some(1), (8, 8)).map(|p| p.shards),
            Ok(1)
        );
    }

    #[test]
    fn by_default_a_cpu_quota_bounds_the_shards() {
        // A container allowed every CPU of a 64-core host but a quota of 2.
        let every_cpu: Vec<u32> = (0..64).collect();
        let placement = plan(None, Some(every_cpu), None, (64, 2)).expect("a placement");
        assert_eq!(placement.shards, 2);
    }

    #[test]
    fn a_listed_cpu_outside_the_affinity_is_refused() {
        let error = plan(Some(&[1, 5]), Some(vec![0, 1, 2, 3]), None, (8, 8))
            .expect_err("CPU 5 is outside");
        assert!(
            error.contains("[5]") && error.contains("node.cpus"),
            "{error}"
        );
    }

    #[test]
    fn more_shards_than_cpus_is_refused_with_where_the_cpus_came_from() {
        let error = plan(Some(&[0]), None, Some(2), (8, 8)).expect_err("2 shards on 1 CPU");
        assert!(error.contains("node.cpus lists 1 CPU"), "{error}");
        let error = plan(None, Some(vec![0, 1]), Some(4), (8, 8)).expect_err("4 shards on 2 CPUs");
        assert!(error.contains("this process may run on 2 CPU"), "{error}");
    }
}
