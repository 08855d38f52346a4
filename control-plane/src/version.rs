//! State versions. A data plane applies a push only if its version is higher than the
//! one in force, so a new version must exceed every version any data plane may hold.
//! Unless the file names one, a version is the current time in milliseconds, or one
//! more than the highest version seen if that is higher: it grows across runs of
//! `riptidectl` without keeping a counter anywhere.

use riptide_proto::state::StateDocument;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A version above `highest_known`, the current time in ms when that is higher.
pub fn next_version(now_ms: u64, highest_known: Option<u64>) -> u64 {
    match highest_known {
        Some(highest) => now_ms.max(highest.saturating_add(1)),
        None => now_ms.max(1),
    }
}

/// The version `serve` gives a new desired state: the file's when it is above every
/// version known (so an operator can pin one), else [`next_version`].
pub fn serve_version(file_version: Option<u64>, highest_known: Option<u64>, now_ms: u64) -> u64 {
    match file_version {
        Some(version) if highest_known.is_none_or(|known| version > known) => version,
        _ => next_version(now_ms, highest_known),
    }
}

/// Whether two documents hold the same state, whatever their versions.
pub fn same_content(a: &StateDocument, b: &StateDocument) -> bool {
    a.assets == b.assets && a.peers == b.peers && a.wallets == b.wallets && a.rates == b.rates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_versions_pass_every_known_one() {
        assert_eq!(next_version(1_000, None), 1_000);
        assert_eq!(next_version(1_000, Some(5)), 1_000);
        assert_eq!(next_version(1_000, Some(1_000)), 1_001);
        assert_eq!(next_version(1_000, Some(50_000)), 50_001);
        assert_eq!(next_version(0, None), 1);
        assert_eq!(next_version(0, Some(u64::MAX)), u64::MAX);
    }

    #[test]
    fn serve_keeps_a_pinned_version_only_while_it_moves_forward() {
        assert_eq!(serve_version(Some(7), None, 1_000), 7);
        assert_eq!(serve_version(Some(7), Some(6), 1_000), 7);
        assert_eq!(serve_version(Some(7), Some(7), 1_000), 1_000);
        assert_eq!(serve_version(None, Some(2_000), 1_000), 2_001);
    }

    #[test]
    fn content_ignores_the_version() {
        let a = StateDocument::default();
        let b = StateDocument {
            version: 9,
            ..StateDocument::default()
        };
        assert!(same_content(&a, &b));
    }
}
