//! `riptidectl serve -f state.toml`: the long-running control plane.
//!
//! Threads, each with a bounded wait so that it notices a stop within a second:
//! - the watcher (the calling thread) polls the file's modification time, reloads
//!   it, merges the feed's rates, and makes a new desired version when the content
//!   changes;
//! - the rates thread refreshes the feed's rates once they outlive their lifetime;
//! - one worker per data plane polls its version and pushes the desired state when
//!   the data plane is behind: after a push failed, or after it restarted on its own
//!   file's older state. A slow data plane delays no other;
//! - the status endpoint answers `GET /status` with what each of them last saw.
//!
//! The file is the source of truth while `serve` runs. A data plane ahead of the
//! desired version (changed by `riptidectl peer ...`, say) is reported, not
//! overwritten, until the file or the rates next change.

use crate::cli::{GlobalArgs, ServeArgs};
use crate::dataplane_client::{ClientError, DataplaneClient};
use crate::error::CtlError;
use crate::fleet::{Fleet, RetryPolicy};
use crate::limits::{
    FEED_CHECK_MAX, FEED_CHECK_MIN, RETRY_BACKOFF_MAX, SERVE_BACKOFF_FIRST, SLEEP_SLICE,
};
use crate::rates_feed::{self, FeedSource, RatesFeed};
use crate::state_file::StateFile;
use crate::version::{now_unix_ms, same_content, serve_version};
use riptide_proto::state::StateDocument;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

fn log(message: impl std::fmt::Display) {
    eprintln!("riptidectl serve: {message}");
}

struct Desired {
    document: Arc<StateDocument>,
    /// Bumped on every change, so that workers wake for it.
    generation: u64,
    since_unix_ms: u64,
}

/// What a worker last saw of its data plane.
#[derive(Debug, Clone, Default)]
struct DataplaneView {
    url: String,
    /// `in_sync`, `behind`, `ahead`, `unreachable`, `refused` (it answered no, see
    /// `last_error`), `failed` (it answered 5xx, e.g. its ledger is down), or
    /// `unknown`.
    state: &'static str,
    acknowledged_version: Option<u64>,
    seen_version: Option<u64>,
    last_error: Option<String>,
    last_contact_unix_ms: Option<u64>,
    pushes: u64,
    restarts_detected: u64,
}

#[derive(Debug, Clone, Default)]
struct FileView {
    path: String,
    loaded_unix_ms: u64,
    error: Option<String>,
}

struct Shared {
    desired: Mutex<Desired>,
    changed: Condvar,
    stop: Arc<AtomicBool>,
    views: Vec<Mutex<DataplaneView>>,
    file: Mutex<FileView>,
    feed: RatesFeed,
    feed_source: Mutex<Option<FeedSource>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn desired(&self) -> (Arc<StateDocument>, u64) {
        match self.desired.lock() {
            Ok(desired) => (Arc::clone(&desired.document), desired.generation),
            Err(poisoned) => {
                let desired = poisoned.into_inner();
                (Arc::clone(&desired.document), desired.generation)
            }
        }
    }

    /// Sleeps up to `timeout`, less if the desired state changes or a stop comes.
    fn wait_for_change(&self, generation: u64, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let Ok(mut desired) = self.desired.lock() else {
            return;
        };
        while desired.generation == generation && !self.stopped() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            desired = match self.changed.wait_timeout(desired, left.min(SLEEP_SLICE)) {
                Ok((guard, _)) => guard,
                Err(_) => return,
            };
        }
    }

    /// The highest version anyone holds: the desired one or one a data plane has.
    fn highest_known(&self) -> Option<u64> {
        let desired = self.desired().0.version;
        let seen = self
            .views
            .iter()
            .filter_map(|view| view.lock().ok().and_then(|v| v.seen_version))
            .max();
        Some(seen.map_or(desired, |seen| seen.max(desired)))
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, duration: Duration) {
    let deadline = std::time::Instant::now() + duration;
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(SLEEP_SLICE));
    }
}

pub fn run(global: &GlobalArgs, args: &ServeArgs) -> Result<(), CtlError> {
    let state_file = StateFile::load(&args.file)?;
    let targets = crate::targets::resolve(
        &global.dataplanes,
        &crate::token_sources(global),
        Some(&state_file.control),
    )?;
    let timeout = Duration::from_millis(global.timeout_ms);
    let fleet = Fleet::new(targets, timeout, 1);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| CtlError::Failed(format!("cannot handle signals: {e}")))?;
    }
    let listener = match args.listen {
        Some(address) => Some(
            tiny_http::Server::http(address)
                .map_err(|e| CtlError::Failed(format!("cannot listen on {address}: {e}")))?,
        ),
        None => None,
    };
    let shared = Arc::new(start_state(&state_file, &args.file, &fleet, timeout, stop));
    log(format!(
        "desired version {} for {} data planes",
        shared.desired().0.version,
        fleet.clients.len()
    ));
    std::thread::scope(|scope| {
        if let Some(server) = listener {
            log(format!("status on http://{}/status", server.server_addr()));
            let shared = Arc::clone(&shared);
            scope.spawn(move || serve_status(&server, &shared));
        }
        let rates_shared = Arc::clone(&shared);
        scope.spawn(move || rates_loop(&rates_shared, args.watch_ms));
        for (index, client) in fleet.clients.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            let poll = Duration::from_millis(args.poll_ms);
            scope.spawn(move || worker(&shared, index, &client, poll));
        }
        watch_file(
            &shared,
            &args.file,
            state_file,
            Duration::from_millis(args.watch_ms),
        );
        shared.changed.notify_all();
    });
    log("stopped");
    Ok(())
}

/// The first desired state: the file with the feed's rates, at the version the data
/// planes already hold for it if the newest of them does (so a restarted `serve`
/// pushes nothing), else at a new version above theirs.
fn start_state(
    file: &StateFile,
    path: &Path,
    fleet: &Fleet,
    timeout: Duration,
    stop: Arc<AtomicBool>,
) -> Shared {
    let feed = RatesFeed::new(timeout);
    let source = FeedSource::of(&file.state);
    let composed = compose(&file.state, source.as_ref(), &feed, true);
    let states: Vec<StateDocument> = fleet.states(false).into_iter().flatten().collect();
    let highest = states.iter().map(|s| s.version).max();
    let adopted = states
        .iter()
        .find(|s| Some(s.version) == highest && same_content(s, &composed))
        .map(|s| s.version)
        .filter(|version| file.version.is_none_or(|pinned| pinned == *version));
    let mut document = composed;
    document.version =
        adopted.unwrap_or_else(|| serve_version(file.version, highest, now_unix_ms()));
    let views = fleet
        .clients
        .iter()
        .map(|client| {
            Mutex::new(DataplaneView {
                url: client.url().to_owned(),
                state: "unknown",
                ..DataplaneView::default()
            })
        })
        .collect();
    Shared {
        desired: Mutex::new(Desired {
            document: Arc::new(document),
            generation: 0,
            since_unix_ms: now_unix_ms(),
        }),
        changed: Condvar::new(),
        stop,
        views,
        file: Mutex::new(FileView {
            path: path.display().to_string(),
            loaded_unix_ms: now_unix_ms(),
            error: None,
        }),
        feed,
        feed_source: Mutex::new(source),
    }
}

/// The file's state with the feed's last good rates (fetched now if `refresh`),
/// unless they are too old.
fn compose(
    state: &StateDocument,
    source: Option<&FeedSource>,
    feed: &RatesFeed,
    refresh: bool,
) -> StateDocument {
    let Some(source) = source else {
        return state.clone();
    };
    let rates = if refresh {
        feed.refresh(source, now_unix_ms())
    } else {
        feed.status().last_good
    };
    // Rates older than `stale_ms_max` are not pushed, as the data plane drops them.
    let stale_ms = u64::try_from(source.stale_max.as_millis()).unwrap_or(u64::MAX);
    match rates {
        Some(rates)
            if rates.base == source.base
                && now_unix_ms().saturating_sub(rates.fetched_unix_ms) <= stale_ms =>
        {
            rates_feed::merge(state, &rates)
        }
        _ => state.clone(),
    }
}

/// A file's identity for change detection: modification time and length.
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

fn watch_file(shared: &Shared, path: &Path, mut file: StateFile, interval: Duration) {
    let mut stamp = file_stamp(path);
    while !shared.stopped() {
        sleep_unless_stopped(&shared.stop, interval);
        let now_stamp = file_stamp(path);
        if now_stamp != stamp {
            stamp = now_stamp;
            file = reload(shared, path, file);
        }
        let source = FeedSource::of(&file.state);
        if let Ok(mut slot) = shared.feed_source.lock() {
            slot.clone_from(&source);
        }
        let composed = compose(&file.state, source.as_ref(), &shared.feed, false);
        update_desired(shared, composed, file.version);
    }
}

/// The file as it is now, or the last good one if it became invalid.
fn reload(shared: &Shared, path: &Path, previous: StateFile) -> StateFile {
    let loaded = StateFile::load(path);
    let Ok(mut view) = shared.file.lock() else {
        return previous;
    };
    match loaded {
        Ok(file) => {
            if file.control != previous.control {
                log("[control] changed: restart serve for it to take effect");
            }
            log(format!("reloaded {}", path.display()));
            view.loaded_unix_ms = now_unix_ms();
            view.error = None;
            file
        }
        Err(error) => {
            log(format!("{error}; keeping the last valid state"));
            view.error = Some(error.to_string());
            previous
        }
    }
}

fn update_desired(shared: &Shared, composed: StateDocument, file_version: Option<u64>) {
    if same_content(&shared.desired().0, &composed) {
        return;
    }
    let highest = shared.highest_known();
    let Ok(mut desired) = shared.desired.lock() else {
        return;
    };
    let mut document = composed;
    document.version = serve_version(file_version, highest, now_unix_ms());
    log(format!(
        "desired state changed: version {}",
        document.version
    ));
    desired.document = Arc::new(document);
    desired.generation += 1;
    desired.since_unix_ms = now_unix_ms();
    shared.changed.notify_all();
}

fn rates_loop(shared: &Shared, watch_ms: u64) {
    while !shared.stopped() {
        let source = shared.feed_source.lock().ok().and_then(|s| s.clone());
        let pause = match source {
            Some(source) => {
                let before = shared.feed.status().last_error;
                shared.feed.refresh(&source, now_unix_ms());
                let after = shared.feed.status().last_error;
                if after.is_some() && after != before {
                    log(format!(
                        "{}; keeping the last good rates",
                        after.unwrap_or_default()
                    ));
                }
                source.lifetime.clamp(FEED_CHECK_MIN, FEED_CHECK_MAX)
            }
            None => Duration::from_millis(watch_ms),
        };
        sleep_unless_stopped(&shared.stop, pause);
    }
}

fn worker(shared: &Shared, index: usize, client: &DataplaneClient, poll: Duration) {
    let backoff = RetryPolicy {
        attempts: u32::MAX,
        backoff_first: SERVE_BACKOFF_FIRST,
        backoff_max: RETRY_BACKOFF_MAX.max(poll),
    };
    let mut failures = 0;
    while !shared.stopped() {
        let (document, generation) = shared.desired();
        let Some(slot) = shared.views.get(index) else {
            return;
        };
        let mut view = slot.lock().map(|v| v.clone()).unwrap_or_default();
        let wait = match reconcile(client, &document, &mut view) {
            Ok(()) => {
                failures = 0;
                view.last_error = None;
                poll
            }
            Err(error) => {
                failures += 1;
                if view.last_error.as_deref() != Some(&error.to_string()) {
                    log(format!("{}: {error}", client.url()));
                }
                // Only a data plane that cannot be reached reads as unreachable: one
                // that answered with a refusal or a failure says why.
                view.state = match &error {
                    ClientError::Unreachable(_) => "unreachable",
                    ClientError::Server { .. } => "failed",
                    _ => "refused",
                };
                view.last_error = Some(error.to_string());
                backoff.backoff(failures)
            }
        };
        if let Ok(mut slot) = slot.lock() {
            *slot = view;
        }
        shared.wait_for_change(generation, wait);
    }
}

/// One look at a data plane: push the desired state if it is behind.
fn reconcile(
    client: &DataplaneClient,
    desired: &StateDocument,
    view: &mut DataplaneView,
) -> Result<(), ClientError> {
    let version = client.version()?;
    view.last_contact_unix_ms = Some(now_unix_ms());
    if view
        .acknowledged_version
        .is_some_and(|acked| version < acked)
    {
        view.restarts_detected += 1;
        log(format!(
            "{} went back to version {version} (restarted?): pushing version {}",
            client.url(),
            desired.version
        ));
    }
    view.seen_version = Some(version);
    if version > desired.version {
        if view.state != "ahead" {
            log(format!(
                "{} holds version {version}, ahead of the desired {}: left alone until the next change",
                client.url(),
                desired.version
            ));
        }
        view.state = "ahead";
        return Ok(());
    }
    if version == desired.version {
        view.state = "in_sync";
        view.acknowledged_version = Some(version);
        return Ok(());
    }
    view.state = "behind";
    match client.put_state(desired) {
        Ok(ack) => {
            view.pushes += 1;
            view.acknowledged_version = Some(ack.version);
            view.seen_version = Some(ack.version);
            view.state = "in_sync";
            log(format!(
                "{} acknowledged version {}",
                client.url(),
                ack.version
            ));
            Ok(())
        }
        Err(ClientError::Conflict { current, .. }) => {
            view.seen_version = Some(current);
            view.state = "ahead";
            Ok(())
        }
        Err(error) => Err(error),
    }
}

fn serve_status(server: &tiny_http::Server, shared: &Shared) {
    while !shared.stopped() {
        let request = match server.recv_timeout(SLEEP_SLICE) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(error) => {
                log(format!("status endpoint: {error}"));
                return;
            }
        };
        let get = *request.method() == tiny_http::Method::Get;
        let (code, body) = match request.url() {
            "/status" if get => (200, status_json(shared)),
            "/healthz" if get => (200, json!({ "status": "ok" })),
            _ => (404, json!({ "error": "GET /status or /healthz" })),
        };
        let mut response =
            tiny_http::Response::from_string(body.to_string()).with_status_code(code);
        if let Ok(header) =
            tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
        {
            response = response.with_header(header);
        }
        let _ = request.respond(response);
    }
}

fn status_json(shared: &Shared) -> Value {
    let (document, since) = match shared.desired.lock() {
        Ok(desired) => (Arc::clone(&desired.document), desired.since_unix_ms),
        Err(_) => return json!({ "error": "state lock poisoned" }),
    };
    let views: Vec<DataplaneView> = shared
        .views
        .iter()
        .filter_map(|view| view.lock().ok().map(|v| v.clone()))
        .collect();
    let in_sync = views.iter().all(|v| v.state == "in_sync");
    let dataplanes: Vec<Value> = views.iter().map(view_json).collect();
    let file = shared.file.lock().map(|f| f.clone()).unwrap_or_default();
    json!({
        "desired_version": document.version,
        "desired_since_unix_ms": since,
        "in_sync": in_sync,
        "file": { "path": file.path, "loaded_unix_ms": file.loaded_unix_ms, "error": file.error },
        "dataplanes": dataplanes,
        "rates": rates_json(shared),
    })
}

fn view_json(view: &DataplaneView) -> Value {
    json!({
        "url": view.url,
        "state": view.state,
        "acknowledged_version": view.acknowledged_version,
        "seen_version": view.seen_version,
        "last_error": view.last_error,
        "last_contact_unix_ms": view.last_contact_unix_ms,
        "pushes": view.pushes,
        "restarts_detected": view.restarts_detected,
    })
}

fn rates_json(shared: &Shared) -> Value {
    let Some(source) = shared.feed_source.lock().ok().and_then(|s| s.clone()) else {
        return Value::Null;
    };
    let status = shared.feed.status();
    json!({
        "url": source.url,
        "base": source.base,
        "lifetime_ms": u64::try_from(source.lifetime.as_millis()).unwrap_or(u64::MAX),
        "age_ms": status.age.map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
        "fetched_unix_ms": status.last_good.as_ref().map(|r| r.fetched_unix_ms),
        "rates": status.last_good.map(|r| r.rates),
        "last_error": status.last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn feed(eur: f64) -> RatesFeed {
        RatesFeed::with_fetcher(
            Box::new(move |_, _| Ok(BTreeMap::from([("EUR".to_owned(), eur)]))),
            Duration::from_secs(1),
        )
    }

    fn source(base: &str) -> FeedSource {
        FeedSource {
            url: "http://feed".into(),
            base: base.into(),
            lifetime: Duration::from_secs(60),
            stale_max: Duration::from_secs(300),
        }
    }

    #[test]
    fn the_desired_state_is_the_file_with_the_feeds_rates() {
        let mut state = StateDocument::default();
        state.rates.rates.insert("EUR".into(), 0.5);
        let feed = feed(0.9);
        let plain = compose(&state, None, &feed, true);
        assert_eq!(plain, state);
        let before_any_fetch = compose(&state, Some(&source("USD")), &feed, false);
        assert_eq!(before_any_fetch.rates.rates.get("EUR"), Some(&0.5));
        let merged = compose(&state, Some(&source("USD")), &feed, true);
        assert_eq!(merged.rates.rates.get("EUR"), Some(&0.9));
        // Rates for another base say nothing about this one.
        let other_base = compose(&state, Some(&source("GBP")), &feed, false);
        assert_eq!(other_base.rates.rates.get("EUR"), Some(&0.5));
        // Rates older than `stale_ms_max` are not pushed.
        std::thread::sleep(Duration::from_millis(5));
        let strict = FeedSource {
            stale_max: Duration::from_millis(1),
            ..source("USD")
        };
        let stale = compose(&state, Some(&strict), &feed, false);
        assert_eq!(stale.rates.rates.get("EUR"), Some(&0.5));
    }
}
