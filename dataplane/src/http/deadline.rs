//! The deadlines of a served connection, the same on all three ports: a connection
//! waits at most `idle_timeout_ms` for the first byte of a request, then has
//! `head_timeout_ms` for the whole head and `body_timeout_ms` for the body. Bytes
//! trickling in extend nothing. While a request is being answered (a packet runs,
//! an admin call works) no deadline runs, so a packet that started always settles;
//! the answer is then written under the idle timeout of the next request.

use crate::config::ConnectionsConfig;
use crate::limits::DEADLINE_CHECK_MIN;
use std::cell::Cell;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: Duration,
    pub head: Duration,
    pub body: Duration,
}

impl Timeouts {
    pub fn of(config: &ConnectionsConfig) -> Timeouts {
        Timeouts {
            idle: Duration::from_millis(config.idle_timeout_ms),
            head: Duration::from_millis(config.head_timeout_ms),
            body: Duration::from_millis(config.body_timeout_ms),
        }
    }
}

/// Where a connection stands against its deadlines. One per connection, shared by
/// the task that serves it and the watchdog that closes it.
pub struct ConnectionClock {
    timeouts: Timeouts,
    deadline: Cell<Instant>,
    busy: Cell<bool>,
    awaiting_request: Cell<bool>,
}

impl ConnectionClock {
    /// A clock for a connection just accepted: waiting for its first request.
    pub fn new(timeouts: Timeouts) -> ConnectionClock {
        ConnectionClock {
            timeouts,
            deadline: Cell::new(Instant::now() + timeouts.idle),
            busy: Cell::new(false),
            awaiting_request: Cell::new(true),
        }
    }

    /// Waits for the next request (after answering one: the answer is written
    /// meanwhile); the idle timeout runs until its first byte.
    pub fn await_request(&self) {
        self.busy.set(false);
        self.awaiting_request.set(true);
        self.deadline.set(Instant::now() + self.timeouts.idle);
    }

    /// Bytes arrived: the first of a request starts its head's deadline.
    pub fn bytes_arrived(&self) {
        if self.awaiting_request.replace(false) {
            self.deadline.set(Instant::now() + self.timeouts.head);
        }
    }

    /// The head is whole: the body's deadline starts.
    pub fn head_complete(&self) {
        self.awaiting_request.set(false);
        self.deadline.set(Instant::now() + self.timeouts.body);
    }

    /// The request is being answered: no deadline runs until
    /// [`answer_ready`](Self::answer_ready) or
    /// [`await_request`](Self::await_request).
    pub fn answering(&self) {
        self.busy.set(true);
    }

    /// An answer is being written: the client must take it within the head
    /// timeout (a client that stops reading is closed).
    pub fn answer_ready(&self) {
        self.busy.set(false);
        self.deadline.set(Instant::now() + self.timeouts.head);
    }

    /// Returns once a deadline has passed while nothing was being answered.
    pub async fn expired(&self) {
        // A deadline can move earlier than the one slept towards (a head's starts
        // within an idle wait, an idle wait after a long answer), but never to less
        // than the shortest timeout from when it moves: sleeping no longer than
        // that wakes in time for it.
        let timeouts = &self.timeouts;
        let longest_sleep = timeouts.idle.min(timeouts.head).min(timeouts.body);
        loop {
            let now = Instant::now();
            let deadline = self.deadline.get();
            if now >= deadline && !self.busy.get() {
                return;
            }
            let next_check = deadline
                .saturating_duration_since(now)
                .min(longest_sleep)
                .max(DEADLINE_CHECK_MIN);
            glommio::timer::sleep(next_check).await;
        }
    }
}
