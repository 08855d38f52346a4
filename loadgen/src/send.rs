//! `send`: an upstream peer. Closed loop (each connection sends its next Prepare when
//! the last reply arrives) or open loop at a fixed rate, where latency counts from
//! the moment a packet was due, so a stalled connector cannot hide its stall
//! (coordinated omission). A warm-up sends without recording, so connection set-up
//! does not count; the measured window follows it.

use crate::cpu::CpuWatch;
use crate::http::PacketClient;
use crate::report::Report;
use crate::stream::StreamSender;
use riptide_proto::packet::{condition_of, Address, Packet, Prepare, Timestamp};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct SendOptions {
    pub target: std::net::SocketAddr,
    pub path: String,
    /// TLS towards an `https://` target.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub token: String,
    pub payload: Payload,
    pub connections: u32,
    /// Sending but not recording, before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Packets per second in all, open loop; `None` for closed loop.
    pub rate: Option<u64>,
    pub amounts: Amounts,
    /// Processes whose CPU time over the measured window is reported.
    pub cpu_pids: Vec<u32>,
    /// Worker threads of the event-driven path (plain HTTP targets); 0 is one
    /// per core.
    pub threads: usize,
}

/// The amounts of the packets: fixed when `least == most`, else uniform in between.
#[derive(Debug, Clone, Copy)]
pub struct Amounts {
    pub least: u64,
    pub most: u64,
}

/// Draws packet amounts with xorshift64*: fast, and plenty for spreading amounts.
pub struct AmountSource {
    amounts: Amounts,
    state: u64,
}

impl AmountSource {
    pub fn new(amounts: Amounts, seed: u64) -> AmountSource {
        assert!(amounts.least <= amounts.most);
        AmountSource {
            amounts,
            // Never zero, or xorshift stays at zero.
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    pub fn next_amount(&mut self) -> u64 {
        let Amounts { least, most } = self.amounts;
        if least == most {
            return least;
        }
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let random = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let span = u128::from(most - least) + 1;
        // Multiply-shift maps the 64 random bits onto the span without a modulo.
        least + ((u128::from(random) * span) >> 64) as u64
    }
}

/// What the packets carry.
pub enum Payload {
    /// Packets a sink fulfills; a share (0-100) asks the sink to reject.
    Sink {
        destination: String,
        reject_percent: u8,
    },
    /// STREAM payments to the wallet at an SPSP endpoint, one connection per
    /// loader connection.
    Stream {
        spsp: std::net::SocketAddr,
        path: String,
    },
}

/// A connection's next Prepare: its STREAM connection's when it pays a wallet
/// (`stream` is then given), else one for the sink.
pub(crate) fn next_prepare(
    stream: Option<&mut StreamSender>,
    payload: &Payload,
    sequence: u64,
    amount: u64,
) -> Vec<u8> {
    match (stream, payload) {
        (Some(stream), _) => stream.prepare(amount),
        (
            None,
            Payload::Sink {
                destination,
                reject_percent,
            },
        ) => {
            let reject = (sequence % 100) < u64::from(*reject_percent);
            make_prepare(destination, amount, sequence, reject)
        }
        (None, Payload::Stream { .. }) => unreachable!("stream connections connect first"),
    }
}

/// The Prepare a sink can fulfill: its data starts with the fulfillment, then one
/// byte the sink reads to reject a share.
pub fn make_prepare(destination: &str, amount: u64, sequence: u64, reject: bool) -> Vec<u8> {
    let mut fulfillment = [0u8; 32];
    fulfillment[..8].copy_from_slice(&sequence.to_be_bytes());
    fulfillment[8..16].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    let condition = condition_of(&fulfillment);
    let mut data = fulfillment.to_vec();
    data.push(if reject { 1 } else { 0 });
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    // The destination was validated once in main; this cannot fail here.
    let destination = Address::parse_str(destination).unwrap_or_else(|_| unreachable!());
    Prepare {
        amount,
        expires_at: Timestamp::from_unix_ms_saturating(now_ms + 30_000),
        execution_condition: &condition,
        destination,
        data: &data,
    }
    .to_bytes()
}

pub fn run(options: SendOptions, progress: bool) -> Result<Report, String> {
    CpuWatch::check(&options.cpu_pids)?;
    let report = Arc::new(Mutex::new(Report::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let end = measure_from + options.duration;
    let options = Arc::new(options);
    // Plain HTTP runs event-driven; TLS takes a thread per connection.
    let event_driven = options.tls.is_none();
    let threads: Vec<_> = if event_driven {
        let shared = crate::send_async::Shared {
            report: Arc::clone(&report),
            stop: Arc::clone(&stop),
            sent: Arc::clone(&sent),
            started,
            measure_from,
        };
        vec![crate::send_async::spawn(
            Arc::clone(&options),
            &shared,
            options.threads,
        )?]
    } else {
        (0..options.connections)
            .map(|connection| {
                let (options, report, stop, sent) = (
                    Arc::clone(&options),
                    Arc::clone(&report),
                    Arc::clone(&stop),
                    Arc::clone(&sent),
                );
                std::thread::spawn(move || {
                    connection_loop(
                        &options,
                        connection,
                        &report,
                        &stop,
                        &sent,
                        started,
                        measure_from,
                    )
                })
            })
            .collect()
    };
    let cpu = match watch_window(&options, &sent, started, measure_from, end, progress) {
        Ok(cpu) => cpu,
        Err(error) => {
            stop.store(true, Ordering::Relaxed);
            return Err(error);
        }
    };
    // The window as it was, before waiting for the connections' last replies.
    let elapsed = measure_from.elapsed();
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    let mut report = report
        .lock()
        .map(|r| r.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    report.elapsed = elapsed;
    report.warmup = options.warmup;
    report.cpu = cpu
        .filter(|_| !options.cpu_pids.is_empty())
        .map(|watch| watch.finish());
    Ok(report)
}

/// Waits out the warm-up and the measured window, printing packets per second each
/// second when `progress`; the CPU watch of the window.
fn watch_window(
    options: &SendOptions,
    sent: &AtomicU64,
    started: Instant,
    measure_from: Instant,
    end: Instant,
    progress: bool,
) -> Result<Option<CpuWatch>, String> {
    let mut last = 0;
    let mut tick = started;
    let mut cpu = None;
    loop {
        let now = Instant::now();
        if cpu.is_none() && now >= measure_from {
            // A process that ended in the warm-up is an error worth stopping for.
            cpu = Some(CpuWatch::start(&options.cpu_pids)?);
        }
        if now >= end {
            return Ok(cpu);
        }
        // Wake each second for progress, and exactly at the start and end of the window.
        let next = [tick + Duration::from_secs(1), measure_from, end]
            .into_iter()
            .filter(|&t| t > now)
            .min()
            .unwrap_or(end);
        std::thread::sleep(next - now);
        if Instant::now() < tick + Duration::from_secs(1) {
            continue;
        }
        tick += Duration::from_secs(1);
        if progress {
            let count = sent.load(Ordering::Relaxed);
            let phase = if tick <= measure_from {
                "  (warm-up)"
            } else {
                ""
            };
            eprintln!(
                "{:>4.0} s  {:>8} packets/s{phase}",
                (tick - started).as_secs_f64(),
                count - last
            );
            last = count;
        }
    }
}

fn connection_loop(
    options: &SendOptions,
    connection: u32,
    report: &Mutex<Report>,
    stop: &AtomicBool,
    sent: &AtomicU64,
    started: Instant,
    measure_from: Instant,
) {
    let mut client = PacketClient::new(
        options.target,
        &options.path,
        &options.token,
        options.tls.clone(),
    );
    let mut local = Report::new();
    let mut stream = match &options.payload {
        Payload::Stream { spsp, path } => match StreamSender::connect(*spsp, path) {
            Ok(sender) => Some(sender),
            Err(error) => {
                local.record_error(&error);
                return merge_into(report, &local);
            }
        },
        Payload::Sink { .. } => None,
    };
    let mut pace = Pace::new(options, connection, started);
    while !stop.load(Ordering::Relaxed) {
        let (wait, sequence, amount) = pace.next_packet(Instant::now());
        if let Some(wait) = wait {
            std::thread::sleep(wait);
        }
        let prepare = next_prepare(stream.as_mut(), &options.payload, sequence, amount);
        let result = client.send(&prepare);
        let latency_us = pace.due().elapsed().as_micros() as u64;
        sent.fetch_add(1, Ordering::Relaxed);
        // Packets due in the warm-up are sent but not recorded.
        if pace.due() < measure_from {
            continue;
        }
        record(&mut local, result, amount, latency_us);
    }
    merge_into(report, &local);
}

/// One connection's pacing: when each packet is due (latency counts from then),
/// its sequence number and its amount.
pub(crate) struct Pace {
    /// Open loop: this connection's share of the rate, as a fixed interval.
    interval: Option<Duration>,
    due: Instant,
    sequence: u64,
    amounts: AmountSource,
}

impl Pace {
    pub(crate) fn new(options: &SendOptions, connection: u32, started: Instant) -> Pace {
        let interval = options.rate.map(|rate| {
            Duration::from_secs_f64(f64::from(options.connections) / rate.max(1) as f64)
        });
        // Connections start a fraction of the interval apart, so the packets arrive
        // evenly spread rather than in bursts of one per connection.
        let offset = interval.map_or(Duration::ZERO, |interval| {
            interval.mul_f64(f64::from(connection) / f64::from(options.connections))
        });
        Pace {
            interval,
            due: started + offset,
            sequence: u64::from(connection) << 40,
            amounts: AmountSource::new(
                options.amounts,
                u64::from(connection) ^ (u64::from(std::process::id()) << 32),
            ),
        }
    }

    /// The next packet at `now`: how long to wait before sending it (open loop),
    /// its sequence number and its amount.
    pub(crate) fn next_packet(&mut self, now: Instant) -> (Option<Duration>, u64, u64) {
        let wait = match self.interval {
            Some(interval) => {
                self.due += interval;
                self.due.checked_duration_since(now)
            }
            None => {
                self.due = now;
                None
            }
        };
        self.sequence += 1;
        (wait, self.sequence, self.amounts.next_amount())
    }

    pub(crate) fn due(&self) -> Instant {
        self.due
    }
}

pub(crate) fn merge_into(report: &Mutex<Report>, local: &Report) {
    if let Ok(mut shared) = report.lock() {
        shared.merge(local);
    }
}

/// Counts one packet's answer.
pub(crate) fn record(
    local: &mut Report,
    result: std::io::Result<(u16, Vec<u8>)>,
    amount: u64,
    latency_us: u64,
) {
    match result {
        Ok((200, body)) => match Packet::parse(&body) {
            Ok(Packet::Fulfill(_)) => local.record_fulfilled(amount, latency_us),
            Ok(Packet::Reject(reject)) => local.record_reject(&reject.code.to_string(), latency_us),
            _ => local.record_error("invalid reply"),
        },
        Ok((status, _)) => local.record_error(&format!("HTTP {status}")),
        Err(error) => local.record_error(&format!("{:?}", error.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn amounts_are_fixed_or_spread_over_the_whole_range() {
        let mut fixed = AmountSource::new(Amounts { least: 7, most: 7 }, 1);
        assert!((0..100).all(|_| fixed.next_amount() == 7));
        let mut spread = AmountSource::new(
            Amounts {
                least: 10,
                most: 19,
            },
            2,
        );
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let amount = spread.next_amount();
            assert!((10..=19).contains(&amount));
            seen[(amount - 10) as usize] += 1;
        }
        // Each of the 10 values near its expected 1,000.
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        let mut full = AmountSource::new(
            Amounts {
                least: 0,
                most: u64::MAX,
            },
            3,
        );
        assert!((0..100)
            .map(|_| full.next_amount())
            .any(|a| a > u64::MAX / 2));
    }

    /// Every packet of a run is distinct (a connector may answer a repeated Prepare from
    /// a cache): the sequence, unique per connection and packet, is in the fulfillment,
    /// so in the condition and the data.
    #[test]
    fn prepares_are_distinct_across_packets_and_connections() {
        let mut conditions = HashSet::new();
        for connection in 0..4u64 {
            for n in 1..=1000u64 {
                let bytes = make_prepare("test.sink.bench", 1, (connection << 40) + n, false);
                let Ok(Packet::Prepare(prepare)) = Packet::parse(&bytes) else {
                    panic!("make_prepare makes a valid Prepare");
                };
                let fulfillment: [u8; 32] = prepare.data[..32].try_into().expect("32 bytes");
                assert_eq!(condition_of(&fulfillment), *prepare.execution_condition);
                assert!(conditions.insert(*prepare.execution_condition));
            }
        }
        assert_eq!(conditions.len(), 4000);
    }
}
