//! The shards' start and end, watched from the main thread. The node says it has
//! started only once every shard listens on its ports; a shard that cannot start (a
//! port in use, an executor that cannot be built) or that ends early stops the
//! others, so the process exits with the reason instead of staying half up, with
//! some ports never answering.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a shard answers when it was stopped, while it waited for the others,
/// because another shard could not start: a consequence, never the cause.
pub const STOPPED_WHILE_STARTING: &str = "stopped while waiting for the other shards";

/// How the wait for the shards to listen ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// Every shard listens on its ports.
    Listening,
    /// A shard ended before all listened.
    ShardEnded,
    /// Some shard neither listened nor ended in time.
    TimedOut,
}

/// Waits until `listening` reaches `shard_count`, a shard has ended, or `timeout`
/// passes, looking every `check_interval`.
pub fn wait_until_listening(
    listening: &AtomicUsize,
    shard_count: usize,
    any_ended: impl Fn() -> bool,
    (timeout, check_interval): (Duration, Duration),
) -> StartOutcome {
    let deadline = Instant::now() + timeout;
    loop {
        let count = listening.load(Ordering::Acquire);
        assert!(count <= shard_count, "a shard counted itself twice");
        if count == shard_count {
            return StartOutcome::Listening;
        }
        if any_ended() {
            return StartOutcome::ShardEnded;
        }
        if Instant::now() >= deadline {
            return StartOutcome::TimedOut;
        }
        std::thread::sleep(check_interval);
    }
}

/// Waits until a shard ends, or the node is asked to stop. Without this, the main
/// thread would wait on the shards in order, and a dead shard behind a live one
/// would go unnoticed.
pub fn wait_until_any_ended(
    shutdown: &AtomicBool,
    any_ended: impl Fn() -> bool,
    check_interval: Duration,
) {
    // Bounded by the node's life: it ends when a shard ends or a signal stops it.
    while !any_ended() && !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(check_interval);
    }
}

/// Why the node stopped, from each shard's result (in shard order): the first
/// shard's own error, before the ones that only say another shard stopped them.
pub fn first_cause(
    results: Vec<Result<(), String>>,
    outcome: StartOutcome,
    timeout: Duration,
) -> Result<(), (usize, String)> {
    let mut consequence = None;
    for (shard, result) in results.into_iter().enumerate() {
        match result {
            Ok(()) => {}
            Err(message) if message == STOPPED_WHILE_STARTING => {
                consequence.get_or_insert((shard, message));
            }
            Err(message) => return Err((shard, message)),
        }
    }
    match (outcome, consequence) {
        (StartOutcome::TimedOut, Some((shard, _))) => Err((
            shard,
            format!("the shards did not all listen within {timeout:?}"),
        )),
        // Stopped by a signal during the start: nothing went wrong.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(1));

    #[test]
    fn every_shard_listening_is_a_start() {
        let listening = AtomicUsize::new(2);
        let outcome = wait_until_listening(&listening, 2, || false, QUICK);
        assert_eq!(outcome, StartOutcome::Listening);
    }

    #[test]
    fn a_shard_that_ended_ends_the_wait() {
        let listening = AtomicUsize::new(1);
        let outcome = wait_until_listening(&listening, 2, || true, QUICK);
        assert_eq!(outcome, StartOutcome::ShardEnded);
    }

    #[test]
    fn a_shard_that_never_listens_times_the_wait_out() {
        let listening = AtomicUsize::new(1);
        let outcome = wait_until_listening(&listening, 2, || false, QUICK);
        assert_eq!(outcome, StartOutcome::TimedOut);
    }

    #[test]
    fn the_cause_comes_before_its_consequences() {
        let results = vec![
            Err(STOPPED_WHILE_STARTING.to_owned()),
            Err("cannot listen on 127.0.0.1:1: in use".to_owned()),
        ];
        let cause = first_cause(results, StartOutcome::ShardEnded, QUICK.0);
        assert_eq!(
            cause,
            Err((1, "cannot listen on 127.0.0.1:1: in use".into()))
        );
    }

    #[test]
    fn a_timed_out_start_says_so() {
        let results = vec![Ok(()), Err(STOPPED_WHILE_STARTING.to_owned())];
        let cause = first_cause(results, StartOutcome::TimedOut, Duration::from_secs(30));
        assert_eq!(
            cause,
            Err((1, "the shards did not all listen within 30s".into()))
        );
    }

    #[test]
    fn a_signal_during_the_start_is_a_clean_stop() {
        let results = vec![Err(STOPPED_WHILE_STARTING.to_owned()), Ok(())];
        assert_eq!(
            first_cause(results, StartOutcome::ShardEnded, QUICK.0),
            Ok(())
        );
    }

    #[test]
    fn the_wait_for_an_end_stops_on_shutdown() {
        let shutdown = AtomicBool::new(true);
        wait_until_any_ended(&shutdown, || false, Duration::from_millis(1));
    }
}
