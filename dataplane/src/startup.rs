//! The shards' start and end, watched from the main thread. The node says it has
//! started only once every shard listens on its ports; a shard that cannot start (a
//! port in use, an executor that cannot be built) or that ends early stops the
//! others, so the process exits with the reason instead of staying half up, with
//! some ports never answering.

use glommio::{BuilderErrorKind, GlommioError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a shard answers when it was stopped, while it waited for the others,
/// because another shard could not start: a consequence, never the cause.
pub const STOPPED_WHILE_STARTING: &str = "stopped while waiting for the other shards";

/// How far the shards' start has got, shared by the shards and the main thread.
#[derive(Debug, Default)]
pub struct StartState {
    /// Shards that listen on all their ports.
    pub listening: AtomicUsize,
    /// Set by the main thread when the start failed: a shard still waiting for the
    /// others gives up. A signal during the start does not set it, so that the
    /// shards finish joining (leaving half-joined would make glommio panic in the
    /// last one to join) and then drain as usual.
    pub abandoned: AtomicBool,
}

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

/// How one shard's thread ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEnd {
    /// It drained and returned.
    Done,
    /// It gave up waiting for the others, which could not start.
    StoppedWhileStarting,
    /// It returned an error: a port, the store, the mesh.
    Failed(String),
    /// Its thread panicked (the panic's message is in the log before this).
    Panicked(String),
}

impl ShardEnd {
    /// A shard thread's result as glommio gives it back: what the shard returned,
    /// a panic (with its message), or an executor that could not be built.
    pub fn of(joined: Result<Result<(), String>, GlommioError<()>>) -> ShardEnd {
        match joined {
            Ok(Ok(())) => ShardEnd::Done,
            Ok(Err(message)) if message == STOPPED_WHILE_STARTING => ShardEnd::StoppedWhileStarting,
            Ok(Err(message)) => ShardEnd::Failed(message),
            Err(GlommioError::BuilderError(BuilderErrorKind::ThreadPanic(payload))) => {
                ShardEnd::Panicked(panic_message(payload.as_ref()))
            }
            Err(error) => ShardEnd::Failed(format!("its executor could not start: {error}")),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(message), _) => (*message).to_owned(),
        (None, Some(message)) => message.clone(),
        (None, None) => "without a message".to_owned(),
    }
}

/// Why the node stopped, when something went wrong.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// This shard's own error.
    Shard { shard: usize, message: String },
    /// The shards did not all listen within the start's timeout.
    StartTimedOut,
}

/// Waits until `done`, looking every `check_interval`, `timeout` at most (`None`:
/// no bound of its own); whether it is done.
fn wait_until(
    done: impl Fn() -> bool,
    timeout: Option<Duration>,
    check_interval: Duration,
) -> bool {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    loop {
        if done() {
            return true;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        std::thread::sleep(check_interval);
    }
}

/// Waits until `listening` reaches `shard_count`, a shard has ended, or `timeout`
/// passes, looking every `check_interval`.
pub fn wait_until_listening(
    listening: &AtomicUsize,
    shard_count: usize,
    any_ended: impl Fn() -> bool,
    (timeout, check_interval): (Duration, Duration),
) -> StartOutcome {
    let all_listening = || {
        let count = listening.load(Ordering::Acquire);
        assert!(count <= shard_count, "a shard counted itself twice");
        count == shard_count
    };
    wait_until(
        || all_listening() || any_ended(),
        Some(timeout),
        check_interval,
    );
    if all_listening() {
        StartOutcome::Listening
    } else if any_ended() {
        StartOutcome::ShardEnded
    } else {
        StartOutcome::TimedOut
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
    let stopping = || any_ended() || shutdown.load(Ordering::Relaxed);
    wait_until(stopping, None, check_interval);
}

/// Waits until every shard has ended, `timeout` at most; whether they all did.
/// Joining a shard that never ends would hang the process instead of exiting.
pub fn wait_until_all_ended(
    all_ended: impl Fn() -> bool,
    (timeout, check_interval): (Duration, Duration),
) -> bool {
    wait_until(all_ended, Some(timeout), check_interval)
}

/// Why the node stopped, from each shard's end (in shard order): the first
/// shard's own error, then the first panic (which a failed start can set off in
/// glommio), then a start that timed out. Shards that only stopped because of
/// another say nothing; a start stopped by a signal is a clean stop.
pub fn first_cause(ends: &[ShardEnd], outcome: StartOutcome) -> Result<(), Stopped> {
    let failed = ends.iter().enumerate().find_map(|(shard, end)| match end {
        ShardEnd::Failed(message) => Some((shard, message.clone())),
        _ => None,
    });
    let panicked = ends.iter().enumerate().find_map(|(shard, end)| match end {
        ShardEnd::Panicked(message) => Some((shard, format!("panicked: {message}"))),
        _ => None,
    });
    match (failed.or(panicked), outcome) {
        (Some((shard, message)), _) => Err(Stopped::Shard { shard, message }),
        (None, StartOutcome::TimedOut) => Err(Stopped::StartTimedOut),
        (None, _) => Ok(()),
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
        let ends = [
            ShardEnd::StoppedWhileStarting,
            ShardEnd::Panicked("mesh".into()),
            ShardEnd::Failed("cannot listen on 127.0.0.1:1: in use".into()),
        ];
        assert_eq!(
            first_cause(&ends, StartOutcome::ShardEnded),
            Err(Stopped::Shard {
                shard: 2,
                message: "cannot listen on 127.0.0.1:1: in use".into()
            })
        );
        let ends = [
            ShardEnd::Done,
            ShardEnd::Panicked("index out of bounds".into()),
        ];
        assert_eq!(
            first_cause(&ends, StartOutcome::Listening),
            Err(Stopped::Shard {
                shard: 1,
                message: "panicked: index out of bounds".into()
            })
        );
    }

    #[test]
    fn a_timed_out_start_is_an_error_even_when_every_shard_drained() {
        for ends in [
            [ShardEnd::Done, ShardEnd::StoppedWhileStarting],
            [ShardEnd::Done, ShardEnd::Done],
        ] {
            assert_eq!(
                first_cause(&ends, StartOutcome::TimedOut),
                Err(Stopped::StartTimedOut)
            );
        }
    }

    #[test]
    fn a_signal_is_a_clean_stop() {
        let ends = [ShardEnd::Done, ShardEnd::Done];
        assert_eq!(first_cause(&ends, StartOutcome::ShardEnded), Ok(()));
        assert_eq!(first_cause(&ends, StartOutcome::Listening), Ok(()));
    }

    #[test]
    fn a_thread_result_is_read_as_its_end() {
        assert_eq!(ShardEnd::of(Ok(Ok(()))), ShardEnd::Done);
        assert_eq!(
            ShardEnd::of(Ok(Err(STOPPED_WHILE_STARTING.into()))),
            ShardEnd::StoppedWhileStarting
        );
        assert_eq!(
            ShardEnd::of(Ok(Err("x".into()))),
            ShardEnd::Failed("x".into())
        );
        for payload in [
            Box::new("boom") as Box<dyn std::any::Any + Send>,
            Box::new(String::from("boom")),
        ] {
            let panic = GlommioError::BuilderError(BuilderErrorKind::ThreadPanic(payload));
            assert_eq!(ShardEnd::of(Err(panic)), ShardEnd::Panicked("boom".into()));
        }
        let unbuilt = GlommioError::BuilderError(BuilderErrorKind::NonExistentCpus { cpu: 9 });
        assert!(
            matches!(ShardEnd::of(Err(unbuilt)), ShardEnd::Failed(m) if m.starts_with("its executor could not start"))
        );
    }

    #[test]
    fn the_waits_for_an_end_are_bounded() {
        let shutdown = AtomicBool::new(true);
        wait_until_any_ended(&shutdown, || false, Duration::from_millis(1));
        assert!(!wait_until_all_ended(|| false, QUICK));
        assert!(wait_until_all_ended(|| true, QUICK));
    }
}
