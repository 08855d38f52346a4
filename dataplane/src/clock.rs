//! Time for the data plane: the one place it reads the wall clock (the protocol core
//! never does: callers read `now` here and pass it in), bounded waits, and the lock
//! helper the shared tables use.

use crate::limits::SHUTDOWN_CHECK_INTERVAL;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 on a clock set before it.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `future`'s output if it comes within `wait`; `None` when the wait ran out first
/// (the future is dropped then).
pub async fn within<T>(wait: Duration, future: impl Future<Output = T>) -> Option<T> {
    let output = async { Some(future.await) };
    let deadline = async {
        glommio::timer::sleep(wait).await;
        None
    };
    futures_lite::future::or(output, deadline).await
}

thread_local! {
    /// Whether this thread runs a shard's executor, where glommio's timers work.
    static ON_EXECUTOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as a shard's executor thread (for [`within_anywhere`]).
pub fn mark_executor_thread() {
    ON_EXECUTOR.with(|on| on.set(true));
}

/// [`within`] for code that also runs off the executors (the ledger's client, also
/// called at start under `block_on`): on an executor it takes the executor's own
/// timer; elsewhere a timer thread's, whose every deadline costs that thread a
/// wake-up and a lock, which on the packet path came to about a microsecond per
/// packet.
pub async fn within_anywhere<T>(wait: Duration, future: impl Future<Output = T>) -> Option<T> {
    if ON_EXECUTOR.with(std::cell::Cell::get) {
        return within(wait, future).await;
    }
    let output = async { Some(future.await) };
    let deadline = async {
        futures_timer::Delay::new(wait).await;
        None
    };
    futures_lite::future::or(output, deadline).await
}

/// Sleeps `wait`, waking early once `stopping` says so (asked at least every
/// [`SHUTDOWN_CHECK_INTERVAL`]): for the periodic tasks of a shard.
pub async fn sleep_unless(stopping: impl Fn() -> bool, wait: Duration) {
    let until = std::time::Instant::now() + wait;
    while !stopping() {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        glommio::timer::sleep(left.min(SHUTDOWN_CHECK_INTERVAL)).await;
    }
}

/// A mutex's guard, poisoned or not: for state each update leaves consistent in
/// one step, so a panic elsewhere cannot have left it half done.
pub fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
