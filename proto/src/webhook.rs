//! Rafiki's webhooks, sans-IO: an event is `{"id", "type", "data"}` posted as
//! canonical JSON (keys sorted, no spaces), signed in the `Rafiki-Signature` header
//! as `t=<unix seconds>, v1=<hex HMAC-SHA256 of "<t>.<body>">` with the shared
//! secret, and retried after `min(attempts, 6) x` the backoff until the receiver
//! answers 200. The data plane delivers them; this module only builds, signs and
//! checks them.

use ring::hmac;
use serde_json::{json, Value};
use std::time::Duration;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Rafiki-Signature";
/// Retries wait at most this many backoffs, as Rafiki's do.
pub const BACKOFF_STEPS_MAX: u32 = 6;

/// One event, as Rafiki names and shapes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: &'static str,
    pub data: Value,
}

impl Event {
    /// The body: canonical JSON, so that a receiver that re-serialises it (as
    /// Rafiki's own verifier does) signs the same bytes.
    pub fn body(&self) -> Vec<u8> {
        // serde_json's maps keep keys sorted, and to_vec writes no spaces.
        let body = json!({"id": self.id, "type": self.kind, "data": self.data});
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// The `Rafiki-Signature` value for `body` sent at `timestamp_s`.
pub fn signature(secret: &[u8], timestamp_s: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp_s.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let digest = context.sign();
    let hex: String = digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("t={timestamp_s}, v1={hex}")
}

/// Whether `header` signs `body` with `secret` at a time within `tolerance_s` of
/// `now_s` (a receiver's check, against replay).
pub fn verify(header: &str, secret: &[u8], body: &[u8], now_s: u64, tolerance_s: u64) -> bool {
    let mut timestamp = None;
    let mut digest = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<u64>().ok(),
            Some(("v1", value)) => digest = Some(value),
            _ => {}
        }
    }
    let (Some(timestamp), Some(digest)) = (timestamp, digest) else {
        return false;
    };
    if timestamp.abs_diff(now_s) > tolerance_s {
        return false;
    }
    let Some(tag) = decode_hex(digest) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    hmac::verify(&key, &message, &tag).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// How long to wait before the next try, after `attempts` failed ones.
pub fn retry_delay(attempts: u32, backoff: Duration) -> Duration {
    backoff * attempts.clamp(1, BACKOFF_STEPS_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_canonical_and_the_signature_checks() {
        let event = Event {
            id: "e1".into(),
            kind: "peer.liquidity_low",
            data: json!({"z": 1, "a": {"y": "2", "b": true}}),
        };
        let body = event.body();
        assert_eq!(
            String::from_utf8(body.clone()).expect("utf-8"),
            r#"{"data":{"a":{"b":true,"y":"2"},"z":1},"id":"e1","type":"peer.liquidity_low"}"#
        );
        let header = signature(b"secret", 1_700_000_000, &body);
        assert!(header.starts_with("t=1700000000, v1="));
        assert_eq!(header.len(), "t=1700000000, v1=".len() + 64);
        assert!(verify(&header, b"secret", &body, 1_700_000_100, 300));
        assert!(!verify(&header, b"other", &body, 1_700_000_100, 300));
        assert!(!verify(&header, b"secret", b"{}", 1_700_000_100, 300));
        assert!(
            !verify(&header, b"secret", &body, 1_700_001_000, 300),
            "replayed"
        );
        assert!(!verify("t=1, v1=zz", b"secret", &body, 1, 300));
    }

    #[test]
    fn retries_back_off_as_rafiki_does() {
        let backoff = Duration::from_secs(10);
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n, backoff).as_secs()).collect();
        assert_eq!(delays, [10, 20, 30, 40, 50, 60, 60, 60]);
    }
}
