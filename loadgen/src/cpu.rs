//! CPU time of other processes (the connector under test) over the measured window,
//! from `/proc/PID/stat`: utime + stime cover every thread of the process, including
//! threads that have already exited.

/// Clock ticks per second of the times in `/proc/PID/stat` (USER_HZ). It is 100 on
/// every architecture Linux runs these benchmarks on; `getconf` confirms it when present.
fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// utime + stime in clock ticks, from the text of a `/proc/PID/stat` file. The second
/// field (the command name) is in parentheses and may itself hold spaces and
/// parentheses, so the fields are counted from the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3 (state); utime is field 14, stime 15.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `Some(pid)` reads that process, `None` this one.
fn read_ticks(pid: Option<u32>) -> Result<u64, String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat_ticks(&text).ok_or_else(|| format!("{path}: unexpected format"))
}

/// CPU counters of the watched processes and of the loader itself, taken at the start
/// of the measured window.
pub struct CpuWatch {
    ticks_per_second: u64,
    pids: Vec<u32>,
    start: Vec<u64>,
    own_start: u64,
}

/// CPU time one process used in the measured window.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuUsage {
    pub pid: u32,
    pub seconds: f64,
}

/// What the window cost in CPU: each watched process, and the loader.
#[derive(Clone, Debug, Default)]
pub struct CpuReport {
    pub processes: Vec<CpuUsage>,
    pub loader_seconds: Option<f64>,
}

impl CpuWatch {
    /// Fails if a process cannot be read now (wrong PID, gone, not Linux).
    pub fn check(pids: &[u32]) -> Result<(), String> {
        for &pid in pids {
            read_ticks(Some(pid))?;
        }
        Ok(())
    }

    pub fn start(pids: &[u32]) -> Result<CpuWatch, String> {
        let start = pids
            .iter()
            .map(|&pid| read_ticks(Some(pid)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CpuWatch {
            ticks_per_second: ticks_per_second(),
            pids: pids.to_vec(),
            start,
            own_start: read_ticks(None).unwrap_or(0),
        })
    }

    /// The CPU used since `start`. A process that is gone by now is left out (and
    /// named on standard error), not counted as zero.
    pub fn finish(&self) -> CpuReport {
        let seconds = |ticks: u64| ticks as f64 / self.ticks_per_second as f64;
        let processes = self
            .pids
            .iter()
            .zip(&self.start)
            .filter_map(|(&pid, &start)| match read_ticks(Some(pid)) {
                Ok(end) => Some(CpuUsage {
                    pid,
                    seconds: seconds(end.saturating_sub(start)),
                }),
                Err(error) => {
                    eprintln!("riptide-loadgen: --cpu-pid {pid}: {error}");
                    None
                }
            })
            .collect();
        CpuReport {
            processes,
            loader_seconds: read_ticks(None)
                .ok()
                .map(|end| seconds(end.saturating_sub(self.own_start))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_the_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let stat =
            "4242 (node (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 1234 567 0 0 20 0 7 0 99";
        assert_eq!(parse_stat_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_ticks("4242 (node) S 1 2"), None);
        assert_eq!(parse_stat_ticks("no name here"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(read_ticks(None).is_ok());
        assert!(CpuWatch::check(&[std::process::id()]).is_ok());
        assert!(CpuWatch::check(&[u32::MAX]).is_err());
        let watch = CpuWatch::start(&[std::process::id()]).expect("own stat is readable");
        let report = watch.finish();
        assert_eq!(report.processes.len(), 1);
        assert!(report.processes[0].seconds >= 0.0);
    }
}
