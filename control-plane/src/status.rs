//! `riptidectl status`: every data plane's version and shards, packets per second from
//! two samples of `GET /v1/status`, and rejects by code. Data planes publish their
//! counters once a second, so the interval is best a whole number of seconds.

use crate::error::CtlError;
use crate::fleet::Fleet;
use crate::table::{or_dash, Table};
use riptide_proto::admin_api::StatusReport;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One reading of a data plane's counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    pub version: u64,
    pub shards: u64,
    pub fulfilled: u64,
    pub rejects: BTreeMap<String, u64>,
    pub invalid: u64,
}

impl Sample {
    pub fn total(&self) -> u64 {
        self.fulfilled + self.invalid + self.rejects.values().sum::<u64>()
    }

    /// From `GET /v1/status`: `peers` maps a peer to outcome labels (`fulfilled`,
    /// `invalid`, or a reject code) and counts.
    pub fn of(status: &StatusReport) -> Sample {
        let mut sample = Sample {
            version: status.version,
            shards: u64::from(status.shards),
            ..Sample::default()
        };
        for outcomes in status.peers.values() {
            for (label, &count) in outcomes {
                match label.as_str() {
                    "fulfilled" => sample.fulfilled += count,
                    "invalid" => sample.invalid += count,
                    code => *sample.rejects.entry(code.to_owned()).or_default() += count,
                }
            }
        }
        sample
    }
}

/// Packets per second between two samples; none if the counters went backwards (the
/// data plane restarted in between) or no time passed.
pub fn packets_per_second(first: &Sample, second: &Sample, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    let delta = second.total().checked_sub(first.total())?;
    (seconds > 0.0).then(|| delta as f64 / seconds)
}

struct Row {
    url: String,
    sample: Result<Sample, String>,
    rate: Option<f64>,
}

pub fn run(fleet: &Fleet, interval: Duration, json: bool) -> Result<(), CtlError> {
    let sample_all = || -> Vec<(Result<Sample, String>, Instant)> {
        fleet
            .each(false, |client| {
                client.status().map(|s| (Sample::of(&s), Instant::now()))
            })
            .into_iter()
            .map(|(result, _)| match result {
                Ok((sample, at)) => (Ok(sample), at),
                Err(error) => (Err(error.to_string()), Instant::now()),
            })
            .collect()
    };
    let first = sample_all();
    let second = if interval.is_zero() {
        None
    } else {
        std::thread::sleep(interval);
        Some(sample_all())
    };
    let rows: Vec<Row> = fleet
        .clients
        .iter()
        .enumerate()
        .map(|(index, client)| {
            let (before, before_at) = &first[index];
            let after = second.as_ref().map(|s| &s[index]);
            let rate = match (before, after) {
                (Ok(a), Some((Ok(b), at))) => {
                    packets_per_second(a, b, at.duration_since(*before_at))
                }
                _ => None,
            };
            let sample = match after {
                Some((after, _)) => after.clone(),
                None => before.clone(),
            };
            Row {
                url: client.url().to_owned(),
                sample,
                rate,
            }
        })
        .collect();
    print_rows(&rows, json);
    let failed = rows.iter().filter(|r| r.sample.is_err()).count();
    if failed > 0 {
        return Err(CtlError::Failed(format!(
            "{failed} of {} data planes did not answer",
            rows.len()
        )));
    }
    Ok(())
}

fn rejects_text(rejects: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = rejects
        .iter()
        .map(|(code, n)| format!("{code}:{n}"))
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
}

fn print_rows(rows: &[Row], json: bool) {
    if json {
        let dataplanes: Vec<Value> = rows.iter().map(row_json).collect();
        println!("{:#}", json!({ "dataplanes": dataplanes }));
        return;
    }
    let mut table = Table::new(&[
        "DATAPLANE",
        "VERSION",
        "SHARDS",
        "PACKETS/S",
        "FULFILLED",
        "REJECTED",
        "REJECTS BY CODE",
    ]);
    for row in rows {
        match &row.sample {
            Ok(sample) => table.push(vec![
                row.url.clone(),
                sample.version.to_string(),
                sample.shards.to_string(),
                or_dash(row.rate.map(|r| format!("{r:.1}"))),
                sample.fulfilled.to_string(),
                sample.rejects.values().sum::<u64>().to_string(),
                rejects_text(&sample.rejects),
            ]),
            Err(error) => table.push(vec![row.url.clone(), format!("error: {error}")]),
        }
    }
    print!("{}", table.render());
}

fn row_json(row: &Row) -> Value {
    match &row.sample {
        Ok(sample) => json!({
            "url": row.url,
            "ok": true,
            "version": sample.version,
            "shards": sample.shards,
            "packets_per_second": row.rate,
            "fulfilled": sample.fulfilled,
            "rejected": sample.rejects.values().sum::<u64>(),
            "rejects_by_code": sample.rejects,
            "invalid": sample.invalid,
        }),
        Err(error) => json!({ "url": row.url, "ok": false, "error": error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_sum_outcomes_across_peers() {
        let status: StatusReport = serde_json::from_value(json!({
            "version": 4, "shards": 2, "ilp_address": "test.riptide",
            "peers": {
                "alice": {"fulfilled": 10, "F08": 2, "T04": 1},
                "bob": {"fulfilled": 5, "F08": 1, "invalid": 1},
                "carol": {}
            }
        }))
        .expect("a status report");
        let sample = Sample::of(&status);
        assert_eq!((sample.version, sample.shards), (4, 2));
        assert_eq!(sample.fulfilled, 15);
        assert_eq!(sample.rejects.get("F08"), Some(&3));
        assert_eq!(sample.total(), 20);
        assert_eq!(rejects_text(&sample.rejects), "F08:3 T04:1");
    }

    #[test]
    fn rates_come_from_the_difference() {
        let first = Sample {
            fulfilled: 100,
            ..Sample::default()
        };
        let second = Sample {
            fulfilled: 300,
            ..Sample::default()
        };
        assert_eq!(
            packets_per_second(&first, &second, Duration::from_secs(2)),
            Some(100.0)
        );
        assert_eq!(
            packets_per_second(&second, &first, Duration::from_secs(2)),
            None
        );
        assert_eq!(packets_per_second(&first, &second, Duration::ZERO), None);
    }
}
