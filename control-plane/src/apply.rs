//! `riptidectl apply -f state.toml`: validate the file, give it a version, push it to
//! every data plane, report what each acknowledged.

use crate::cli::GlobalArgs;
use crate::error::CtlError;
use crate::fleet::{report_push, Fleet, PushReport};
use crate::rates_feed::{self, FeedSource, FetchedRates};
use crate::state_file::StateFile;
use crate::version::{next_version, now_unix_ms, same_content};
use riptide_proto::state::StateDocument;
use std::path::Path;
use std::time::Duration;

pub fn run(global: &GlobalArgs, file: &Path) -> Result<(), CtlError> {
    let state_file = StateFile::load(file)?;
    let targets = crate::targets::resolve(
        &global.dataplanes,
        &crate::token_sources(global),
        Some(&state_file.control),
    )?;
    let timeout = Duration::from_millis(global.timeout_ms);
    let fleet = Fleet::new(targets, timeout, global.attempts);
    let document = with_feed_rates(&state_file.state, timeout);
    // One look at what the data planes hold, to pick a version above theirs and to
    // leave them alone when they already hold this state.
    let current = fleet.states(false);
    if state_file.version.is_none() {
        if let Some(version) = already_applied(&document, &current) {
            let reports = unchanged_reports(&fleet, version);
            return report_push(version, &reports, global.json);
        }
    }
    let highest = current
        .iter()
        .filter_map(|state| state.as_ref().ok().map(|s| s.version))
        .max();
    let mut document = document;
    document.version = state_file
        .version
        .unwrap_or_else(|| next_version(now_unix_ms(), highest));
    let reports = fleet.push(&document);
    report_push(document.version, &reports, global.json)
}

/// The file's state with the feed's rates when it names a feed. A feed that does not
/// answer is reported and the file's own rates are pushed: `serve` keeps polling it.
fn with_feed_rates(state: &StateDocument, timeout: Duration) -> StateDocument {
    let Some(source) = FeedSource::of(state) else {
        return state.clone();
    };
    let agent = rates_feed::feed_agent(timeout);
    match rates_feed::fetch(&agent, &source.url, &source.base) {
        Ok(rates) => rates_feed::merge(
            state,
            &FetchedRates {
                base: source.base,
                rates,
                fetched_unix_ms: now_unix_ms(),
            },
        ),
        Err(error) => {
            eprintln!("riptidectl: {error}; pushing the file's rates only");
            state.clone()
        }
    }
}

/// The version every data plane holds, if all answered with this very state.
fn already_applied(
    document: &StateDocument,
    current: &[Result<StateDocument, crate::dataplane_client::ClientError>],
) -> Option<u64> {
    let first = current.first()?.as_ref().ok()?;
    let all_same = current.iter().all(|state| {
        state
            .as_ref()
            .is_ok_and(|s| s.version == first.version && same_content(s, document))
    });
    all_same.then_some(first.version)
}

fn unchanged_reports(fleet: &Fleet, version: u64) -> Vec<PushReport> {
    fleet
        .clients
        .iter()
        .map(|client| PushReport {
            url: client.url().to_owned(),
            result: Ok(riptide_proto::admin_api::StateApplied {
                version,
                changed: false,
                notices: Vec::new(),
            }),
            attempts: 1,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane_client::ClientError;

    #[test]
    fn applied_only_when_every_data_plane_holds_the_state() {
        let document = StateDocument::default();
        let at = |version| {
            Ok(StateDocument {
                version,
                ..StateDocument::default()
            })
        };
        assert_eq!(already_applied(&document, &[at(4), at(4)]), Some(4));
        assert_eq!(already_applied(&document, &[at(4), at(3)]), None);
        let down = Err(ClientError::Unreachable("refused".into()));
        assert_eq!(already_applied(&document, &[at(4), down]), None);
        let mut other = StateDocument::default();
        other.rates.lifetime_ms = 1;
        assert_eq!(already_applied(&other, &[at(4)]), None);
    }
}
