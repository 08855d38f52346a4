//! What a run measured: packets by outcome and the latency distribution.

use crate::cpu::CpuReport;
use crate::limits::LATENCY_US_MAX;
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone)]
pub struct Report {
    pub fulfilled: u64,
    /// Sum of the amounts of fulfilled packets (in the sender's units), to reconcile
    /// with balances.
    pub amount_fulfilled: u128,
    pub rejects: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub latency_us: Histogram<u64>,
    /// The measured window (after the warm-up).
    pub elapsed: Duration,
    /// Unmeasured warm-up before the window.
    pub warmup: Duration,
    /// CPU used in the window by the processes given with `--cpu-pid`.
    pub cpu: Option<CpuReport>,
}

impl Report {
    pub fn new() -> Report {
        Report {
            fulfilled: 0,
            amount_fulfilled: 0,
            rejects: BTreeMap::new(),
            errors: BTreeMap::new(),
            latency_us: Histogram::new_with_max(LATENCY_US_MAX, 3)
                .expect("constant histogram bounds are valid"),
            elapsed: Duration::ZERO,
            warmup: Duration::ZERO,
            cpu: None,
        }
    }

    pub fn record_fulfilled(&mut self, amount: u64, latency_us: u64) {
        self.fulfilled += 1;
        self.amount_fulfilled += u128::from(amount);
        let _ = self.latency_us.record(latency_us.min(LATENCY_US_MAX));
    }

    pub fn record_reject(&mut self, code: &str, latency_us: u64) {
        *self.rejects.entry(code.to_owned()).or_default() += 1;
        let _ = self.latency_us.record(latency_us.min(LATENCY_US_MAX));
    }

    pub fn record_error(&mut self, what: &str) {
        *self.errors.entry(what.to_owned()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Report) {
        self.fulfilled += other.fulfilled;
        self.amount_fulfilled += other.amount_fulfilled;
        for (code, count) in &other.rejects {
            *self.rejects.entry(code.clone()).or_default() += count;
        }
        for (what, count) in &other.errors {
            *self.errors.entry(what.clone()).or_default() += count;
        }
        let _ = self.latency_us.add(&other.latency_us);
    }

    pub fn answered(&self) -> u64 {
        self.fulfilled + self.rejects.values().sum::<u64>()
    }

    fn per_second(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU microseconds the watched processes spent per fulfilled packet.
    fn cpu_us_per_fulfilled(&self, seconds: f64) -> Option<f64> {
        (self.fulfilled > 0).then(|| seconds * 1e6 / self.fulfilled as f64)
    }

    fn cpu_json(&self) -> serde_json::Value {
        let Some(cpu) = &self.cpu else {
            return serde_json::Value::Null;
        };
        let total: f64 = cpu.processes.iter().map(|p| p.seconds).sum();
        json!({
            "seconds": total,
            "us_per_fulfilled": self.cpu_us_per_fulfilled(total),
            "processes": cpu.processes.iter().map(|p| json!({
                "pid": p.pid,
                "seconds": p.seconds,
                "us_per_fulfilled": self.cpu_us_per_fulfilled(p.seconds),
            })).collect::<Vec<_>>(),
            "loader_seconds": cpu.loader_seconds,
        })
    }

    fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "seconds": self.elapsed.as_secs_f64(),
            "warmup_seconds": self.warmup.as_secs_f64(),
            "answered_per_second": self.per_second(self.answered()),
            "fulfilled_per_second": self.per_second(self.fulfilled),
            "answered": self.answered(),
            "fulfilled": self.fulfilled,
            "amount_fulfilled": self.amount_fulfilled.to_string(),
            "rejects": self.rejects,
            "errors": self.errors,
            "latency_ms": {
                "p50": self.quantile_ms(0.5),
                "p90": self.quantile_ms(0.9),
                "p99": self.quantile_ms(0.99),
                "p99.9": self.quantile_ms(0.999),
                "max": self.latency_us.max() as f64 / 1000.0,
            },
            "cpu": self.cpu_json(),
        })
    }

    pub fn to_table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "seconds             {:>12.1}   (after {:.1} s warm-up)\n",
            self.elapsed.as_secs_f64(),
            self.warmup.as_secs_f64()
        ));
        out.push_str(&format!(
            "answered/s          {:>12.0}\n",
            self.per_second(self.answered())
        ));
        out.push_str(&format!(
            "fulfilled/s         {:>12.0}\n",
            self.per_second(self.fulfilled)
        ));
        out.push_str(&format!(
            "amount fulfilled    {:>12}\n",
            self.amount_fulfilled
        ));
        for (code, count) in &self.rejects {
            out.push_str(&format!("reject {code:<12} {count:>12}\n"));
        }
        for (what, count) in &self.errors {
            out.push_str(&format!("error {what:<13} {count:>12}\n"));
        }
        for (label, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
            out.push_str(&format!(
                "latency {label:<6} ms   {:>12.3}\n",
                self.quantile_ms(quantile)
            ));
        }
        out.push_str(&format!(
            "latency max    ms   {:>12.3}\n",
            self.latency_us.max() as f64 / 1000.0
        ));
        if let Some(cpu) = &self.cpu {
            let per_packet = |seconds: f64| {
                self.cpu_us_per_fulfilled(seconds)
                    .map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"))
            };
            for process in &cpu.processes {
                out.push_str(&format!(
                    "cpu pid {:<8} s  {:>12.2}   {:>10} us/fulfilled\n",
                    process.pid,
                    process.seconds,
                    per_packet(process.seconds)
                ));
            }
            if cpu.processes.len() > 1 {
                let total: f64 = cpu.processes.iter().map(|p| p.seconds).sum();
                out.push_str(&format!(
                    "cpu total       s   {:>12.2}   {:>10} us/fulfilled\n",
                    total,
                    per_packet(total)
                ));
            }
            if let Some(seconds) = cpu.loader_seconds {
                out.push_str(&format!("cpu loader      s   {seconds:>12.2}\n"));
            }
        }
        out
    }
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}
