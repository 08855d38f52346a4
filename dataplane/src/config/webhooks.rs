//! `[webhooks]`: where Rafiki-style events go (env `WEBHOOK_URL`, `WEBHOOK_TIMEOUT`,
//! `SIGNATURE_SECRET`, as Rafiki names them), and how delivery is bounded.

use super::{FieldError, FieldPath};
use serde::Deserialize;

/// Longest `timeout_ms`: delivery is one thread, so one slow receiver delays the
/// rest by at most this much per try.
const TIMEOUT_MS_MAX: u64 = 60_000;
/// Largest `queue_max`: events are a few hundred bytes each.
const QUEUE_MAX_MAX: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Where events are POSTed (`http://` or `https://`); none sends no events.
    pub url: Option<String>,
    /// HMAC-SHA256 key of the `Rafiki-Signature` header; none sends unsigned events.
    pub secret: Option<String>,
    /// Longest wait for one delivery's answer.
    pub timeout_ms: u64,
    /// The n-th retry waits min(n, 6) x this, as Rafiki's do.
    pub retry_backoff_ms: u64,
    /// Events waiting for delivery at most; past it the oldest is dropped (and
    /// counted), so that a receiver that is down cannot exhaust memory.
    pub queue_max: usize,
    /// How often incoming payments (completed, expired) and liquidity (against the
    /// thresholds of `[[peers]]` and `[[assets]]`) are looked at.
    pub check_interval_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            url: None,
            secret: None,
            timeout_ms: 2_000,
            retry_backoff_ms: 10_000,
            queue_max: 10_000,
            check_interval_ms: 1_000,
        }
    }
}

impl WebhooksConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        let path = FieldPath::root("webhooks");
        if let Some(url) = &self.url {
            let authority = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .map(|rest| rest.split('/').next());
            if !matches!(authority, Some(Some(host)) if !host.is_empty()) {
                return Err(FieldError::new(
                    path.key("url"),
                    "must be http[s]://host[:port]/path",
                ));
            }
        }
        if !(1..=TIMEOUT_MS_MAX).contains(&self.timeout_ms) {
            return Err(FieldError::new(
                path.key("timeout_ms"),
                format!("must be from 1 to {TIMEOUT_MS_MAX}"),
            ));
        }
        if !(1..=QUEUE_MAX_MAX).contains(&self.queue_max) {
            return Err(FieldError::new(
                path.key("queue_max"),
                format!("must be from 1 to {QUEUE_MAX_MAX}"),
            ));
        }
        if self.retry_backoff_ms == 0 || self.check_interval_ms == 0 {
            return Err(FieldError::new(
                path.key("retry_backoff_ms"),
                "retry_backoff_ms and check_interval_ms must be at least 1",
            ));
        }
        Ok(())
    }
}
