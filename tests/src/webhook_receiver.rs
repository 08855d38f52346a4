//! A webhook receiver for the end-to-end tests: records every POST (its
//! `Rafiki-Signature` and JSON body), answers 500 to the first few to make the
//! sender retry, then 200. The signature is checked here with `ring`'s HMAC
//! directly, not with the data plane's code.

use crate::dataplane::read_message;
use serde_json::Value;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: Option<String>,
    pub raw_body: Vec<u8>,
    pub body: Value,
    pub answered: u16,
}

pub struct WebhookReceiver {
    pub address: SocketAddr,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl WebhookReceiver {
    /// A receiver that answers 500 to its first `fail_first` deliveries.
    pub fn start(fail_first: usize) -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let address = listener.local_addr().expect("receiver address");
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&deliveries);
        let seen = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut buffer = Vec::new();
                let Ok(Some(request)) = read_message(&mut stream, &mut buffer) else {
                    continue;
                };
                let answered = if seen.fetch_add(1, Ordering::SeqCst) < fail_first {
                    500
                } else {
                    200
                };
                let signature = request
                    .headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("rafiki-signature"))
                    .map(|(_, value)| value.clone());
                log.lock().expect("log").push(Delivery {
                    signature,
                    body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
                    raw_body: request.body,
                    answered,
                });
                let mut response = Vec::new();
                riptide_proto::http1::write_response(
                    &mut response,
                    answered,
                    "text/plain",
                    b"",
                    Some("close"),
                );
                let _ = stream.write_all(&response);
            }
        });
        WebhookReceiver {
            address,
            deliveries,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/webhooks", self.address)
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().expect("log").clone()
    }

    /// The first accepted (200) delivery of an event of `kind` whose data matches
    /// `matches`, waiting for it at most `limit`.
    pub fn wait_for(
        &self,
        kind: &str,
        matches: impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> Delivery {
        let started = Instant::now();
        loop {
            let found = self.deliveries().into_iter().find(|delivery| {
                delivery.answered == 200
                    && delivery.body["type"] == kind
                    && matches(&delivery.body["data"])
            });
            if let Some(delivery) = found {
                return delivery;
            }
            assert!(
                started.elapsed() < limit,
                "no {kind} event within {limit:?}; received: {:#?}",
                self.deliveries()
                    .iter()
                    .map(|d| (d.answered, d.body["type"].clone()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether `delivery` carries a `t=..., v1=...` signature of its body with
/// `secret`, made within `tolerance` of now.
pub fn signed_with(delivery: &Delivery, secret: &[u8], tolerance: Duration) -> bool {
    let Some(header) = &delivery.signature else {
        return false;
    };
    let mut parts = header.split(", ");
    let (Some(t), Some(v1)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Some(timestamp), Some(digest)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else {
        return false;
    };
    let Ok(seconds) = timestamp.parse::<u64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if seconds.abs_diff(now) > tolerance.as_secs() {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let message = [timestamp.as_bytes(), b".", &delivery.raw_body].concat();
    let expected: String = ring::hmac::sign(&key, &message)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == digest
}
