//! Rafiki's exchange rates feed, sans-IO: `GET <url>?base=CODE` answers
//! `{"base": "USD", "rates": {"EUR": 0.9}}`, and rates live `rates.lifetime_ms`.
//! Both planes read it: the data plane polls it itself, `riptidectl serve` pushes
//! what it read; each merges the answer into the state the same way.

use crate::state::StateDocument;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeedError {
    #[error("rates feed answer: {0}")]
    Invalid(String),
}

/// Where rates come from: the state's `rates.url`, its base, and how long rates live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSource {
    pub url: String,
    pub base: String,
    pub lifetime: Duration,
    /// How old the last good rates may grow while the feed fails.
    pub stale_max: Duration,
}

impl FeedSource {
    /// The state's feed, if it names one; the base is `rates.base` or the first asset.
    pub fn of(state: &StateDocument) -> Option<FeedSource> {
        let url = state.rates.url.clone()?;
        let base = state
            .rates
            .base
            .clone()
            .or_else(|| state.assets.first().map(|a| a.code.clone()))?;
        Some(FeedSource {
            url,
            base,
            lifetime: Duration::from_millis(state.rates.lifetime_ms.max(1)),
            // Rates are never dropped before they would be fetched again.
            stale_max: Duration::from_millis(
                state.rates.stale_ms_max.max(state.rates.lifetime_ms).max(1),
            ),
        })
    }

    /// The URL to ask: the feed's, with `base` added to its query.
    pub fn request_url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}base={}", self.url, self.base)
    }
}

/// Rates from the feed, with when they came.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedRates {
    pub base: String,
    pub rates: BTreeMap<String, f64>,
    pub fetched_unix_ms: u64,
}

/// Reads the feed's answer: the base must be the one asked for, every rate a
/// positive number. Unknown fields are ignored.
pub fn parse_answer(body: &[u8], base: &str) -> Result<BTreeMap<String, f64>, FeedError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| FeedError::Invalid(format!("not JSON: {e}")))?;
    let answered = value["base"]
        .as_str()
        .ok_or_else(|| FeedError::Invalid("no `base`".into()))?;
    if answered != base {
        return Err(FeedError::Invalid(format!(
            "asked for base {base}, got {answered}"
        )));
    }
    let listed = value["rates"]
        .as_object()
        .ok_or_else(|| FeedError::Invalid("no `rates` object".into()))?;
    let mut rates = BTreeMap::new();
    for (code, rate) in listed {
        let number = rate
            .as_f64()
            .filter(|r| r.is_finite() && *r > 0.0)
            .ok_or_else(|| FeedError::Invalid(format!("rates.{code} is not a positive number")))?;
        rates.insert(code.clone(), number);
    }
    Ok(rates)
}

/// The state with the feed's rates in it: the feed's base, and its rates over the
/// file's (a rate the feed does not list keeps the file's value).
pub fn merge(state: &StateDocument, fetched: &FetchedRates) -> StateDocument {
    let mut merged = state.clone();
    merged.rates.base = Some(fetched.base.clone());
    for (code, rate) in &fetched.rates {
        merged.rates.rates.insert(code.clone(), *rate);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rafiki_answers_are_parsed_and_checked() {
        let rates =
            parse_answer(br#"{"base":"USD","rates":{"EUR":0.9,"JPY":150}}"#, "USD").expect("valid");
        assert_eq!(rates.get("EUR"), Some(&0.9));
        assert_eq!(rates.get("JPY"), Some(&150.0));
        let extra = br#"{"base":"USD","rates":{},"timestamp":1}"#;
        assert!(parse_answer(extra, "USD").expect("valid").is_empty());
        let wrong_base = parse_answer(br#"{"base":"EUR","rates":{}}"#, "USD");
        assert_eq!(
            wrong_base,
            Err(FeedError::Invalid("asked for base USD, got EUR".into()))
        );
        for bad in [
            &br#"{"base":"USD","rates":{"EUR":"0.9"}}"#[..],
            br#"{"base":"USD","rates":{"EUR":-1}}"#,
            br#"{"base":"USD"}"#,
            br#"not json"#,
        ] {
            assert!(parse_answer(bad, "USD").is_err());
        }
    }

    #[test]
    fn fetched_rates_override_the_files() {
        let mut state = StateDocument::default();
        state.rates.rates.insert("EUR".into(), 0.5);
        state.rates.rates.insert("GBP".into(), 0.7);
        let fetched = FetchedRates {
            base: "USD".into(),
            rates: BTreeMap::from([("EUR".to_owned(), 0.9)]),
            fetched_unix_ms: 1,
        };
        let merged = merge(&state, &fetched);
        assert_eq!(merged.rates.base.as_deref(), Some("USD"));
        assert_eq!(merged.rates.rates.get("EUR"), Some(&0.9));
        assert_eq!(merged.rates.rates.get("GBP"), Some(&0.7));
    }

    #[test]
    fn the_base_joins_the_query() {
        let mut source = FeedSource {
            url: "http://feed/rates".into(),
            base: "USD".into(),
            lifetime: Duration::from_secs(15),
            stale_max: Duration::from_secs(300),
        };
        assert_eq!(source.request_url(), "http://feed/rates?base=USD");
        source.url = "http://feed/rates?key=k".into();
        assert_eq!(source.request_url(), "http://feed/rates?key=k&base=USD");
    }
}
