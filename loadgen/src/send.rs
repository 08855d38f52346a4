//! `send`: an upstream peer. Closed loop (each connection sends its next Prepare when
//! the last reply arrives) or open loop at a fixed rate, where latency counts from
//! the moment a packet was due, so a stalled connector cannot hide its stall
//! (coordinated omission).

use crate::http::PacketClient;
use crate::report::Report;
use crate::stream::StreamSender;
use riptide_dataplane::packet::{condition_of, Address, Packet, Prepare, Timestamp};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct SendOptions {
    pub target: std::net::SocketAddr,
    pub path: String,
    pub token: String,
    pub payload: Payload,
    pub connections: u32,
    pub duration: Duration,
    /// Packets per second in all, open loop; `None` for closed loop.
    pub rate: Option<u64>,
    pub amount: u64,
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

pub fn run(options: SendOptions, progress: bool) -> Report {
    let report = Arc::new(Mutex::new(Report::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let options = Arc::new(options);
    let threads: Vec<_> = (0..options.connections)
        .map(|connection| {
            let (options, report, stop, sent) = (
                Arc::clone(&options),
                Arc::clone(&report),
                Arc::clone(&stop),
                Arc::clone(&sent),
            );
            std::thread::spawn(move || {
                connection_loop(&options, connection, &report, &stop, &sent, started)
            })
        })
        .collect();
    let mut last = 0;
    while started.elapsed() < options.duration {
        std::thread::sleep(
            Duration::from_secs(1).min(options.duration.saturating_sub(started.elapsed())),
        );
        if progress {
            let now = sent.load(Ordering::Relaxed);
            eprintln!(
                "{:>4.0} s  {:>8} packets/s",
                started.elapsed().as_secs_f64(),
                now - last
            );
            last = now;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    let mut report = report
        .lock()
        .map(|r| r.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    report.elapsed = started.elapsed();
    report
}

fn connection_loop(
    options: &SendOptions,
    connection: u32,
    report: &Mutex<Report>,
    stop: &AtomicBool,
    sent: &AtomicU64,
    started: Instant,
) {
    let mut client = PacketClient::new(options.target, &options.path, &options.token);
    let mut local = Report::new();
    let mut stream = match &options.payload {
        Payload::Stream { spsp, path } => match StreamSender::connect(*spsp, path) {
            Ok(sender) => Some(sender),
            Err(error) => {
                local.record_error(&error);
                if let Ok(mut shared) = report.lock() {
                    shared.merge(&local);
                }
                return;
            }
        },
        Payload::Sink { .. } => None,
    };
    // Open loop: this connection's share of the rate, as a fixed interval.
    let interval = options
        .rate
        .map(|rate| Duration::from_secs_f64(f64::from(options.connections) / rate.max(1) as f64));
    let mut due = started;
    let mut sequence = u64::from(connection) << 40;
    while !stop.load(Ordering::Relaxed) {
        if let Some(interval) = interval {
            due += interval;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        } else {
            due = Instant::now();
        }
        sequence += 1;
        let prepare = match (&mut stream, &options.payload) {
            (Some(stream), _) => stream.prepare(options.amount),
            (
                None,
                Payload::Sink {
                    destination,
                    reject_percent,
                },
            ) => {
                let reject = (sequence % 100) < u64::from(*reject_percent);
                make_prepare(destination, options.amount, sequence, reject)
            }
            (None, Payload::Stream { .. }) => unreachable!("stream connections connect first"),
        };
        let result = client.send(&prepare);
        let latency_us = due.elapsed().as_micros() as u64;
        sent.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok((200, body)) => match Packet::parse(&body) {
                Ok(Packet::Fulfill(_)) => local.record_fulfilled(latency_us),
                Ok(Packet::Reject(reject)) => {
                    local.record_reject(&reject.code.to_string(), latency_us)
                }
                _ => local.record_error("invalid reply"),
            },
            Ok((status, _)) => local.record_error(&format!("HTTP {status}")),
            Err(error) => local.record_error(&format!("{:?}", error.kind())),
        }
    }
    if let Ok(mut shared) = report.lock() {
        shared.merge(&local);
    }
}
