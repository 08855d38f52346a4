//! Exchange rates from a Rafiki-format feed: `GET <url>?base=CODE` answers
//! `{"base": "USD", "rates": {"EUR": 0.9}}`. Rates are kept for `rates.lifetime_ms`;
//! concurrent callers share one fetch (single flight); a failed fetch keeps the last
//! good rates, so a feed outage never empties the data planes' rate tables.

use crate::limits::{FEED_SIZE_MAX, FETCH_WAIT_MARGIN, RETRY_AFTER_FAILURE};
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RatesError {
    #[error("rates feed unreachable: {0}")]
    Unreachable(String),
    #[error("rates feed answered HTTP {0}")]
    Status(u16),
    #[error("rates feed answer: {0}")]
    Invalid(String),
}

pub use riptide_proto::rates_feed::{merge, FeedSource, FetchedRates};

/// Reads the feed's answer (see [`riptide_proto::rates_feed::parse_answer`]).
pub fn parse_response(body: &[u8], base: &str) -> Result<BTreeMap<String, f64>, RatesError> {
    riptide_proto::rates_feed::parse_answer(body, base).map_err(
        |riptide_proto::rates_feed::FeedError::Invalid(message)| RatesError::Invalid(message),
    )
}

/// One `GET <url>?base=CODE`, bounded by the agent's timeout.
pub fn fetch(
    agent: &ureq::Agent,
    url: &str,
    base: &str,
) -> Result<BTreeMap<String, f64>, RatesError> {
    let mut response = agent
        .get(url)
        .query("base", base)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| RatesError::Unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(RatesError::Status(status));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(FEED_SIZE_MAX)
        .read_to_vec()
        .map_err(|e| RatesError::Unreachable(e.to_string()))?;
    parse_response(&body, base)
}

/// An agent for feeds: bounded, following no redirects to other hosts' surprises.
pub fn feed_agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build();
    ureq::Agent::new_with_config(config)
}

type Fetcher = dyn Fn(&str, &str) -> Result<BTreeMap<String, f64>, RatesError> + Send + Sync;

#[derive(Default)]
struct FeedState {
    source: Option<(String, String)>,
    last_good: Option<(FetchedRates, Instant)>,
    last_error: Option<String>,
    last_attempt: Option<Instant>,
    fetching: bool,
}

/// What `serve`'s status shows about the feed.
#[derive(Debug, Clone, Default)]
pub struct FeedStatus {
    pub last_good: Option<FetchedRates>,
    pub age: Option<Duration>,
    pub last_error: Option<String>,
}

/// The feed's last good rates, refreshed once they are older than their lifetime.
pub struct RatesFeed {
    fetcher: Box<Fetcher>,
    /// Longest wait for another caller's fetch.
    wait_max: Duration,
    state: Mutex<FeedState>,
    fetched: Condvar,
}

impl RatesFeed {
    pub fn new(timeout: Duration) -> RatesFeed {
        let agent = feed_agent(timeout);
        RatesFeed::with_fetcher(Box::new(move |url, base| fetch(&agent, url, base)), timeout)
    }

    pub(crate) fn with_fetcher(fetcher: Box<Fetcher>, timeout: Duration) -> RatesFeed {
        RatesFeed {
            fetcher,
            wait_max: timeout + FETCH_WAIT_MARGIN,
            state: Mutex::new(FeedState::default()),
            fetched: Condvar::new(),
        }
    }

    /// The last good rates for `source`, fetched first if they are stale. Only one
    /// caller fetches at a time; the others wait for its result.
    pub fn refresh(&self, source: &FeedSource, now_unix_ms: u64) -> Option<FetchedRates> {
        let Ok(mut state) = self.state.lock() else {
            return None;
        };
        let key = (source.url.clone(), source.base.clone());
        if state.source.as_ref() != Some(&key) {
            // Rates of another feed or base say nothing about this one.
            *state = FeedState {
                source: Some(key.clone()),
                fetching: state.fetching,
                ..FeedState::default()
            };
        }
        let deadline = Instant::now() + self.wait_max;
        while state.fetching && Instant::now() < deadline {
            let wait = deadline.saturating_duration_since(Instant::now());
            state = match self.fetched.wait_timeout(state, wait) {
                Ok((guard, _)) => guard,
                Err(_) => return None,
            };
        }
        if state.fetching || !due(&state, source.lifetime, Instant::now()) {
            return state.last_good.as_ref().map(|(rates, _)| rates.clone());
        }
        state.fetching = true;
        state.last_attempt = Some(Instant::now());
        drop(state);
        let result = (self.fetcher)(&source.url, &source.base);
        let Ok(mut state) = self.state.lock() else {
            return None;
        };
        state.fetching = false;
        self.fetched.notify_all();
        if state.source.as_ref() != Some(&key) {
            // The source changed while this fetch ran: its answer is for the old one.
            return state.last_good.as_ref().map(|(rates, _)| rates.clone());
        }
        match result {
            Ok(rates) => {
                let fetched = FetchedRates {
                    base: source.base.clone(),
                    rates,
                    fetched_unix_ms: now_unix_ms,
                };
                state.last_good = Some((fetched, Instant::now()));
                state.last_error = None;
            }
            Err(error) => state.last_error = Some(error.to_string()),
        }
        state.last_good.as_ref().map(|(rates, _)| rates.clone())
    }

    pub fn status(&self) -> FeedStatus {
        let Ok(state) = self.state.lock() else {
            return FeedStatus::default();
        };
        FeedStatus {
            last_good: state.last_good.as_ref().map(|(rates, _)| rates.clone()),
            age: state.last_good.as_ref().map(|(_, at)| at.elapsed()),
            last_error: state.last_error.clone(),
        }
    }
}

/// Whether a fetch is due: no good rates yet or they outlived `lifetime`, and not
/// right after a failure.
fn due(state: &FeedState, lifetime: Duration, now: Instant) -> bool {
    let stale = state
        .last_good
        .as_ref()
        .is_none_or(|(_, at)| now.duration_since(*at) >= lifetime);
    let backing_off = state.last_error.is_some()
        && state
            .last_attempt
            .is_some_and(|at| now.duration_since(at) < RETRY_AFTER_FAILURE.min(lifetime));
    stale && !backing_off
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn source(lifetime_ms: u64) -> FeedSource {
        FeedSource {
            url: "http://feed".into(),
            base: "USD".into(),
            lifetime: Duration::from_millis(lifetime_ms),
            stale_max: Duration::from_secs(300),
        }
    }

    #[test]
    fn concurrent_callers_share_one_fetch() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&calls);
        let feed = RatesFeed::with_fetcher(
            Box::new(move |_, _| {
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
                Ok(BTreeMap::from([("EUR".to_owned(), 0.9)]))
            }),
            Duration::from_secs(2),
        );
        let source = source(60_000);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let rates = feed.refresh(&source, 1).expect("rates");
                    assert_eq!(rates.rates.get("EUR"), Some(&0.9));
                });
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        feed.refresh(&source, 2);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "fresh rates are not fetched again"
        );
    }

    #[test]
    fn a_failure_keeps_the_last_good_rates() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&calls);
        let feed = RatesFeed::with_fetcher(
            Box::new(move |_, _| match counter.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(BTreeMap::from([("EUR".to_owned(), 0.9)])),
                _ => Err(RatesError::Status(500)),
            }),
            Duration::from_secs(1),
        );
        let source = source(50);
        assert!(feed.refresh(&source, 1).is_some());
        std::thread::sleep(Duration::from_millis(60));
        let kept = feed.refresh(&source, 2).expect("last good rates");
        assert_eq!(kept.rates.get("EUR"), Some(&0.9));
        assert_eq!(kept.fetched_unix_ms, 1);
        let status = feed.status();
        assert_eq!(
            status.last_error.as_deref(),
            Some("rates feed answered HTTP 500")
        );
        // Right after a failure the feed is not asked again.
        feed.refresh(&source, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
