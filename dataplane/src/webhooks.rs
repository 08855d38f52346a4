//! Webhook delivery, off the packet path: events (Rafiki's names and fields) go
//! into a bounded channel without waiting, and one thread of their own POSTs them,
//! signed (`riptide_proto::webhook`), retrying each with Rafiki's backoff until the
//! receiver answers 200. At most `queue_max` events wait; past it the oldest is
//! dropped and counted. What produces events: the admin API (incoming payments
//! created), outgoing payments, and the [watch](watch) task of shard 0 (incoming
//! payments completed or expired, liquidity below its threshold).

pub mod watch;

use crate::config::WebhooksConfig;
use crate::limits::{WEBHOOK_ANSWER_SIZE_MAX, WEBHOOK_IDLE_WAIT};
use crate::resolver::Resolver;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use riptide_proto::connector::snapshot::Snapshot;
use riptide_proto::http1::split_url;
use riptide_proto::packet::Timestamp;
use riptide_proto::webhook::{retry_delay, signature, Event, SIGNATURE_HEADER};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Delivery counts since start, for `/metrics`.
#[derive(Default)]
pub struct WebhookCounts {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dropped: AtomicU64,
    pub waiting: AtomicU64,
}

/// Where shards send events; a no-op without `webhooks.url`.
pub struct Webhooks {
    sender: Option<Sender<Event>>,
    pub counts: Arc<WebhookCounts>,
    /// How often shard 0 looks for payment and liquidity events.
    pub check_interval: Duration,
}

impl Webhooks {
    pub fn disabled() -> Webhooks {
        Webhooks {
            sender: None,
            counts: Arc::default(),
            check_interval: WEBHOOK_IDLE_WAIT,
        }
    }

    /// Starts the delivery thread when `config` names a URL; `https://` receivers
    /// are checked against the web's roots and `extra_roots`.
    pub fn start(
        config: &WebhooksConfig,
        resolver: Arc<Resolver>,
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
    ) -> std::io::Result<Webhooks> {
        let Some(url) = config.url.clone() else {
            return Ok(Webhooks::disabled());
        };
        let (sender, receiver) = crossbeam_channel::bounded(config.queue_max);
        let counts = Arc::new(WebhookCounts::default());
        let delivery = Delivery {
            url,
            secret: config.secret.clone().map(String::into_bytes),
            timeout: Duration::from_millis(config.timeout_ms),
            backoff: Duration::from_millis(config.retry_backoff_ms),
            queue_max: config.queue_max,
            resolver,
            counts: Arc::clone(&counts),
            tls: crate::http::transport::client_config_with(extra_roots),
        };
        std::thread::Builder::new()
            .name("riptide-webhooks".into())
            .spawn(move || delivery.run(&receiver))?;
        Ok(Webhooks {
            sender: Some(sender),
            counts,
            check_interval: Duration::from_millis(config.check_interval_ms),
        })
    }

    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Queues an event without waiting; a full queue drops it (counted).
    pub fn emit(&self, kind: &'static str, data: Value) {
        let Some(sender) = &self.sender else {
            return;
        };
        let event = Event {
            id: event_id(),
            kind,
            data,
        };
        match sender.try_send(event) {
            Ok(()) => {
                self.counts.waiting.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// An event waiting for its next try.
struct Pending {
    body: Vec<u8>,
    attempts: u32,
    due: Instant,
}

struct Delivery {
    url: String,
    secret: Option<Vec<u8>>,
    timeout: Duration,
    backoff: Duration,
    queue_max: usize,
    resolver: Arc<Resolver>,
    counts: Arc<WebhookCounts>,
    tls: Arc<rustls::ClientConfig>,
}

impl Delivery {
    /// Takes events in and tries those due, until the sending side is gone.
    fn run(&self, events: &Receiver<Event>) {
        let mut queue: VecDeque<Pending> = VecDeque::new();
        loop {
            let now = Instant::now();
            let wait = queue
                .iter()
                .map(|pending| pending.due.saturating_duration_since(now))
                .min()
                .unwrap_or(WEBHOOK_IDLE_WAIT);
            match events.recv_timeout(wait) {
                Ok(event) => self.push(&mut queue, event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Bounded by the queue's size: whatever arrived meanwhile joins it.
            for _ in 0..self.queue_max {
                let Ok(event) = events.try_recv() else { break };
                self.push(&mut queue, event);
            }
            self.try_due(&mut queue);
        }
    }

    fn push(&self, queue: &mut VecDeque<Pending>, event: Event) {
        if queue.len() >= self.queue_max {
            queue.pop_front();
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            self.counts.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        queue.push_back(Pending {
            body: event.body(),
            attempts: 0,
            due: Instant::now(),
        });
    }

    /// Tries every event that is due, oldest first; each try is bounded by the
    /// timeout. Once a try fails, the rest of the turn is put off to that try's
    /// next time untried: a receiver that is down costs one timeout per turn, not
    /// one per waiting event, and new events keep coming in meanwhile.
    fn try_due(&self, queue: &mut VecDeque<Pending>) {
        let mut put_off_until: Option<Instant> = None;
        for _ in 0..queue.len() {
            let Some(mut pending) = queue.pop_front() else {
                break;
            };
            if pending.due > Instant::now() {
                queue.push_back(pending);
                continue;
            }
            if let Some(until) = put_off_until {
                pending.due = until;
                queue.push_back(pending);
                continue;
            }
            match self.post(&pending.body) {
                Ok(200) => {
                    self.counts.delivered.fetch_add(1, Ordering::Relaxed);
                    self.counts.waiting.fetch_sub(1, Ordering::Relaxed);
                }
                outcome => {
                    pending.attempts = pending.attempts.saturating_add(1);
                    pending.due = Instant::now() + retry_delay(pending.attempts, self.backoff);
                    put_off_until = Some(pending.due);
                    self.counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        attempts = pending.attempts,
                        ?outcome,
                        "webhook delivery failed; retrying"
                    );
                    queue.push_back(pending);
                }
            }
        }
    }

    /// One POST of `body` (over TLS for `https://`); the receiver's status.
    fn post(&self, body: &[u8]) -> Result<u16, String> {
        let parts = split_url(&self.url).ok_or("not an http:// or https:// URL")?;
        let address = self
            .resolver
            .resolve_blocking(&parts.authority)
            .map_err(|e| e.to_string())?;
        let stream =
            TcpStream::connect_timeout(&address, self.timeout).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| e.to_string())?;
        let request = self.request(&parts.path, parts.written_authority, body);
        if !parts.tls {
            return exchange(stream, &request);
        }
        let name = ServerName::try_from(parts.host.to_owned()).map_err(|e| e.to_string())?;
        let connection = rustls::ClientConnection::new(Arc::clone(&self.tls), name)
            .map_err(|e| e.to_string())?;
        exchange(rustls::StreamOwned::new(connection, stream), &request)
    }

    /// The request's bytes: head (signed when there is a secret) and body.
    fn request(&self, path: &str, authority: &str, body: &[u8]) -> Vec<u8> {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(secret) = &self.secret {
            let header = signature(secret, unix_now_s(), body);
            head.push_str(&format!("{SIGNATURE_HEADER}: {header}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }
}

/// Writes `request` and reads the answer's status.
fn exchange(mut stream: impl Read + Write, request: &[u8]) -> Result<u16, String> {
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut buffer = Vec::new();
    let answer =
        riptide_proto::http1::read_message(&mut stream, &mut buffer, WEBHOOK_ANSWER_SIZE_MAX)
            .map_err(|e| e.to_string())?
            .ok_or("closed without an answer")?;
    answer
        .status()
        .ok_or_else(|| "not an HTTP answer".to_owned())
}

fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A random UUID (version 4), as Rafiki's ids are (events, incoming payments);
/// `None` only when the system's random source fails.
pub fn random_uuid() -> Option<String> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).ok()?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let parts = [
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32],
    ];
    Some(parts.join("-"))
}

fn event_id() -> String {
    random_uuid().unwrap_or_default()
}

/// The code and scale of `wallet`'s asset (empty when the state no longer has it).
pub fn wallet_asset(snapshot: &Snapshot, wallet: &str) -> (String, u8) {
    snapshot
        .wallet(wallet)
        .map(|wallet| {
            let asset = snapshot.asset(wallet.asset);
            (asset.code.clone(), asset.scale)
        })
        .unwrap_or_default()
}

/// An amount as Rafiki writes one: `{"value": "<units>", "assetCode", "assetScale"}`.
pub fn amount_json(value: u64, code: &str, scale: u8) -> Value {
    json!({"value": value.to_string(), "assetCode": code, "assetScale": scale})
}

/// A time as Rafiki writes one (RFC 3339, UTC).
pub fn time_json(unix_ms: u64) -> Value {
    Timestamp::from_unix_ms(unix_ms)
        .map(|t| Value::String(t.to_rfc3339()))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let counts = Arc::new(WebhookCounts::default());
        let delivery = Delivery {
            url: "http://127.0.0.1:9/hooks".into(),
            secret: None,
            timeout: Duration::from_millis(10),
            backoff: Duration::from_millis(10),
            queue_max: 2,
            resolver: Resolver::addresses_only(),
            counts: Arc::clone(&counts),
            tls: crate::http::transport::client_config_with(&[]),
        };
        let mut queue = VecDeque::new();
        for n in 0..3 {
            counts.waiting.fetch_add(1, Ordering::Relaxed);
            let data = json!({ "n": n });
            delivery.push(
                &mut queue,
                Event {
                    id: n.to_string(),
                    kind: "test",
                    data,
                },
            );
        }
        assert_eq!(queue.len(), 2);
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(counts.waiting.load(Ordering::Relaxed), 2);
        assert!(String::from_utf8_lossy(&queue[0].body).contains(r#""n":1"#));
    }

    #[test]
    fn event_ids_are_version_4_uuids() {
        let id = event_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, event_id());
    }

    #[test]
    fn amounts_and_times_have_rafikis_shape() {
        assert_eq!(
            amount_json(1_500, "USD", 2),
            json!({"value": "1500", "assetCode": "USD", "assetScale": 2})
        );
        assert_eq!(time_json(0), json!("1970-01-01T00:00:00.000Z"));
    }
}
