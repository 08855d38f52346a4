//! Every data plane at once: read their states, push one document to all of them
//! (each in its own thread, with bounded retries and backoff), and report per data
//! plane. A data plane that does not answer is reported, never skipped.

use crate::dataplane_client::{ClientError, DataplaneClient};
use crate::error::CtlError;
use crate::limits::{RETRY_BACKOFF_FIRST, RETRY_BACKOFF_MAX};
use crate::table::{or_dash, Table};
use crate::targets::Target;
use riptide_proto::admin_api::StateApplied;
use riptide_proto::state::StateDocument;
use serde_json::json;
use std::time::Duration;

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff_first: Duration,
    pub backoff_max: Duration,
}

impl RetryPolicy {
    pub fn new(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts: attempts.max(1),
            backoff_first: RETRY_BACKOFF_FIRST,
            backoff_max: RETRY_BACKOFF_MAX,
        }
    }

    /// The wait after the `failures`-th failure: doubling from the first, capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.backoff_first
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

/// Runs `operation` until it succeeds, fails in a way a retry cannot fix, or uses
/// up its attempts. Returns the last result and the attempts made.
pub fn with_retries<T>(
    policy: &RetryPolicy,
    url: &str,
    mut operation: impl FnMut() -> Result<T, ClientError>,
    sleep: &dyn Fn(Duration),
) -> (Result<T, ClientError>, u32) {
    let mut attempt = 1;
    loop {
        let result = operation();
        match &result {
            Err(error) if error.is_retryable() && attempt < policy.attempts => {
                let wait = policy.backoff(attempt);
                eprintln!(
                    "riptidectl: {url}: {error}; retrying in {} ms (attempt {attempt} of {})",
                    wait.as_millis(),
                    policy.attempts
                );
                sleep(wait);
                attempt += 1;
            }
            _ => return (result, attempt),
        }
    }
}

/// What one data plane did with a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    pub url: String,
    pub result: Result<StateApplied, ClientError>,
    pub attempts: u32,
}

/// The data planes of one command, with one retry policy.
pub struct Fleet {
    pub clients: Vec<DataplaneClient>,
    pub policy: RetryPolicy,
}

impl Fleet {
    pub fn new(targets: Vec<Target>, timeout: Duration, attempts: u32) -> Fleet {
        Fleet {
            clients: targets
                .into_iter()
                .map(|target| DataplaneClient::new(target, timeout))
                .collect(),
            policy: RetryPolicy::new(attempts),
        }
    }

    /// Runs `operation` against every data plane in parallel, with retries when
    /// `retry` is set; results in the order of the data planes.
    pub fn each<T: Send>(
        &self,
        retry: bool,
        operation: impl Fn(&DataplaneClient) -> Result<T, ClientError> + Sync,
    ) -> Vec<(Result<T, ClientError>, u32)> {
        let policy = if retry {
            self.policy
        } else {
            RetryPolicy::new(1)
        };
        let operation = &operation;
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .clients
                .iter()
                .map(|client| {
                    scope.spawn(move || {
                        with_retries(&policy, client.url(), || operation(client), &|d| {
                            std::thread::sleep(d)
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        (Err(ClientError::Protocol("worker panicked".into())), 0)
                    })
                })
                .collect()
        })
    }

    /// Pushes `document` to every data plane.
    pub fn push(&self, document: &StateDocument) -> Vec<PushReport> {
        let results = self.each(true, |client| client.put_state(document));
        self.clients
            .iter()
            .zip(results)
            .map(|(client, (result, attempts))| PushReport {
                url: client.url().to_owned(),
                result,
                attempts,
            })
            .collect()
    }

    /// Every data plane's state document (with retries).
    pub fn states(&self, retry: bool) -> Vec<Result<StateDocument, ClientError>> {
        self.each(retry, DataplaneClient::state)
            .into_iter()
            .map(|(result, _)| result)
            .collect()
    }
}

/// Prints what each data plane acknowledged, as a table or JSON, and fails (exit 1)
/// if any did not acknowledge `version`.
pub fn report_push(version: u64, reports: &[PushReport], json: bool) -> Result<(), CtlError> {
    let failed = reports
        .iter()
        .filter(|r| !matches!(&r.result, Ok(ack) if ack.version == version))
        .count();
    if json {
        let dataplanes: Vec<_> = reports.iter().map(push_json).collect();
        let document = json!({ "version": version, "ok": failed == 0, "dataplanes": dataplanes });
        println!("{document:#}");
    } else {
        let mut table = Table::new(&["DATAPLANE", "ACKNOWLEDGED", "RESULT"]);
        for report in reports {
            let acknowledged = report.result.as_ref().ok().map(|ack| ack.version);
            table.push(vec![
                report.url.clone(),
                or_dash(acknowledged),
                push_outcome(report),
            ]);
        }
        print!("{}", table.render());
    }
    if failed == 0 {
        return Ok(());
    }
    Err(CtlError::Failed(format!(
        "{failed} of {} data planes did not acknowledge version {version}",
        reports.len()
    )))
}

fn push_outcome(report: &PushReport) -> String {
    match &report.result {
        Ok(ack) if ack.changed => "applied".to_owned(),
        Ok(_) => "unchanged".to_owned(),
        Err(error) if report.attempts > 1 => {
            format!("failed after {} attempts: {error}", report.attempts)
        }
        Err(error) => format!("failed: {error}"),
    }
}

fn push_json(report: &PushReport) -> serde_json::Value {
    let (acknowledged, changed, error) = match &report.result {
        Ok(ack) => (Some(ack.version), ack.changed, None),
        Err(error) => (None, false, Some(error.to_string())),
    };
    json!({
        "url": report.url,
        "acknowledged_version": acknowledged,
        "changed": changed,
        "attempts": report.attempts,
        "error": error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy::new(10);
        assert_eq!(policy.backoff(1), Duration::from_millis(200));
        assert_eq!(policy.backoff(2), Duration::from_millis(400));
        assert_eq!(policy.backoff(4), Duration::from_millis(1600));
        assert_eq!(policy.backoff(30), Duration::from_secs(5));
    }

    #[test]
    fn retries_are_bounded_and_only_for_retryable_errors() {
        let waits = RefCell::new(Vec::new());
        let sleep = |d: Duration| waits.borrow_mut().push(d);
        let policy = RetryPolicy::new(3);
        let (result, attempts) = with_retries(
            &policy,
            "http://x",
            || Err::<(), _>(ClientError::Unreachable("refused".into())),
            &sleep,
        );
        assert!(result.is_err());
        assert_eq!(attempts, 3);
        assert_eq!(waits.borrow().len(), 2);

        let (result, attempts) = with_retries(
            &policy,
            "http://x",
            || Err::<(), _>(ClientError::Unauthorized),
            &sleep,
        );
        assert_eq!((result, attempts), (Err(ClientError::Unauthorized), 1));

        let mut calls = 0;
        let (result, attempts) = with_retries(
            &policy,
            "http://x",
            || {
                calls += 1;
                if calls < 2 {
                    Err(ClientError::Unreachable("refused".into()))
                } else {
                    Ok(7)
                }
            },
            &sleep,
        );
        assert_eq!((result, attempts), (Ok(7), 2));
    }

    #[test]
    fn a_push_not_acknowledged_everywhere_fails() {
        let ok = PushReport {
            url: "http://a".into(),
            result: Ok(StateApplied {
                version: 5,
                changed: true,
                notices: Vec::new(),
            }),
            attempts: 1,
        };
        let down = PushReport {
            url: "http://b".into(),
            result: Err(ClientError::Unreachable("refused".into())),
            attempts: 3,
        };
        assert!(report_push(5, std::slice::from_ref(&ok), true).is_ok());
        let error = report_push(5, &[ok, down.clone()], true).expect_err("one failed");
        assert_eq!(error.exit_code(), 1);
        assert_eq!(
            push_outcome(&down),
            "failed after 3 attempts: unreachable: refused"
        );
    }
}
