//! Time for the data plane: the one place it reads the wall clock (the protocol core
//! never does: callers read `now` here and pass it in), and bounded waits.

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
