//! The data plane's own poll of Rafiki's rates feed (`rates.url`, env
//! `EXCHANGE_RATES_URL`): every `rates.lifetime_ms`, shard 0 asks the feed for its
//! base's rates and swaps in a snapshot with them merged over the state's (the
//! state's version unchanged). A failed fetch keeps the last good rates, retried
//! after [`FEED_RETRY_AFTER_FAILURE`], until they are older than
//! `rates.stale_ms_max`; a state push keeps them too while its feed is the same. So cross-currency packets convert without `riptidectl serve`; with it,
//! both read the same feed the same way (`riptide_proto::rates_feed`).

use crate::clock::{lock, sleep_unless, unix_now_ms, within};
use crate::limits::{
    FEED_RETRY_AFTER_FAILURE, FEED_SIZE_MAX, FEED_TIMEOUT, SHUTDOWN_CHECK_INTERVAL,
};
use crate::shard::Shard;
use riptide_proto::connector::snapshot::Snapshot;
use riptide_proto::rates_feed::{merge, parse_answer, FeedSource, FetchedRates};
use riptide_proto::state::StateDocument;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The feed's last good rates and how fetching went, shared with the admin API.
#[derive(Default)]
pub struct FeedState {
    last_good: Mutex<Option<(FeedSource, FetchedRates)>>,
    fetched: AtomicU64,
    failed: AtomicU64,
}

impl FeedState {
    /// `state` with the last good rates merged in, when they came from its feed.
    pub fn merged_into(&self, state: &StateDocument) -> Option<StateDocument> {
        let source = FeedSource::of(state)?;
        let last_good = lock(&self.last_good);
        let (fetched_from, rates) = last_good.as_ref()?;
        (fetched_from.url == source.url && fetched_from.base == source.base)
            .then(|| merge(state, rates))
    }

    /// Fetches that succeeded and failed since start, and the age of the rates in
    /// force in milliseconds.
    pub fn counts(&self) -> (u64, u64, Option<u64>) {
        let age_ms = lock(&self.last_good)
            .as_ref()
            .map(|(_, rates)| unix_now_ms().saturating_sub(rates.fetched_unix_ms));
        (
            self.fetched.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            age_ms,
        )
    }
}

/// Polls the feed of the state in force until shutdown; runs on shard 0, where the
/// admin API applies state pushes.
pub async fn poll(shard: Rc<Shard>, document: Arc<Mutex<StateDocument>>) {
    // Bounded by shutdown: each turn waits at least the shutdown check interval.
    while !shard.shutting_down() {
        let state = lock(&document).clone();
        let wait = match FeedSource::of(&state) {
            None => SHUTDOWN_CHECK_INTERVAL * 10,
            Some(source) => match fetch(&shard, &source).await {
                Ok(rates) => {
                    shard
                        .shared
                        .rates_feed
                        .fetched
                        .fetch_add(1, Ordering::Relaxed);
                    apply(&shard, &document, source.clone(), rates);
                    source.lifetime
                }
                Err(error) => {
                    shard
                        .shared
                        .rates_feed
                        .failed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %source.url, %error, "rates feed failed; the last good rates stay");
                    drop_stale(&shard, &document, &source);
                    FEED_RETRY_AFTER_FAILURE.min(source.lifetime)
                }
            },
        };
        sleep_unless(|| shard.shutting_down(), wait).await;
    }
}

async fn fetch(shard: &Shard, source: &FeedSource) -> Result<FetchedRates, String> {
    let url = source.request_url();
    let get = crate::http::client::get(&shard.shared, &url, "application/json", FEED_SIZE_MAX);
    let (status, body) = within(FEED_TIMEOUT, get)
        .await
        .ok_or("no answer in time")?
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    let rates = parse_answer(&body, &source.base).map_err(|e| e.to_string())?;
    Ok(FetchedRates {
        base: source.base.clone(),
        rates,
        fetched_unix_ms: unix_now_ms(),
    })
}

/// Drops the last good rates once they are older than `rates.stale_ms_max`, and
/// swaps in a snapshot of the state without them: its own rates apply again, and a
/// rate neither has gets T00 while the feed stays away.
fn drop_stale(shard: &Shard, document: &Mutex<StateDocument>, source: &FeedSource) {
    let shared = &shard.shared;
    let stale_ms = u64::try_from(source.stale_max.as_millis()).unwrap_or(u64::MAX);
    {
        let mut last_good = lock(&shared.rates_feed.last_good);
        let age_ms = match last_good.as_ref() {
            Some((_, rates)) => unix_now_ms().saturating_sub(rates.fetched_unix_ms),
            None => return,
        };
        if age_ms <= stale_ms {
            return;
        }
        *last_good = None;
        tracing::warn!(url = %source.url, age_ms, "rates feed: the last good rates are too old; dropped");
    }
    let state = lock(document);
    let in_force = shared.snapshot.load();
    if in_force.version != state.version {
        return;
    }
    match Snapshot::build(&in_force.own_address, &state) {
        Ok(snapshot) => shared.snapshot.store(Arc::new(snapshot)),
        Err(error) => {
            tracing::warn!(%error, "rates feed: the state without its rates does not build")
        }
    }
}

/// Keeps the rates and swaps in a snapshot of the state in force with them, unless
/// a push has moved the snapshot past that state (the push's own snapshot then
/// stands; the next fetch merges into it). No await in here: on shard 0 a push
/// cannot interleave.
fn apply(shard: &Shard, document: &Mutex<StateDocument>, source: FeedSource, rates: FetchedRates) {
    let shared = &shard.shared;
    *lock(&shared.rates_feed.last_good) = Some((source, rates));
    let state = lock(document);
    let in_force = shared.snapshot.load();
    if in_force.version != state.version {
        return;
    }
    let Some(merged) = shared.rates_feed.merged_into(&state) else {
        return;
    };
    match Snapshot::build(&in_force.own_address, &merged) {
        Ok(snapshot) => shared.snapshot.store(Arc::new(snapshot)),
        Err(error) => tracing::warn!(%error, "rates feed: the state with its rates does not build"),
    }
}
