//! Longest-prefix routing on dot-separated address segments: `g.a` matches `g.a`
//! and `g.a.x`, never `g.ab`; `g` matches every global address; the empty prefix is
//! a default route. As Rafiki's connector routes: targets a caller excludes (the
//! sender) are skipped, and a prefix none of whose targets remains gives way to the
//! next shorter one; among several targets of one prefix, `pick` chooses.

use crate::limits::SEGMENTS_MAX;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct RoutingTable<T> {
    by_prefix: HashMap<String, Vec<T>>,
    route_count: usize,
}

impl<T> Default for RoutingTable<T> {
    fn default() -> Self {
        RoutingTable {
            by_prefix: HashMap::new(),
            route_count: 0,
        }
    }
}

impl<T> RoutingTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route; a prefix may lead to several targets, among which a lookup picks.
    pub fn insert(&mut self, prefix: &str, target: T) {
        self.by_prefix
            .entry(prefix.to_owned())
            .or_default()
            .push(target);
        self.route_count += 1;
    }

    pub fn len(&self) -> usize {
        self.route_count
    }

    pub fn is_empty(&self) -> bool {
        self.route_count == 0
    }

    /// The target of the longest prefix of `destination` in the table that has one
    /// `exclude` does not refuse: a prefix whose every target is excluded (the
    /// route back to the sender) gives way to a shorter one, as in Rafiki. Among
    /// the targets left at that prefix, `pick` chooses (modulo their count), so
    /// that a caller passing something random per packet spreads packets over them.
    pub fn lookup(&self, destination: &str, pick: u64, exclude: impl Fn(&T) -> bool) -> Option<&T> {
        let mut candidate = destination;
        for _ in 0..=SEGMENTS_MAX {
            if let Some(target) = self
                .by_prefix
                .get(candidate)
                .and_then(|targets| choose(targets, pick, &exclude))
            {
                return Some(target);
            }
            match candidate.rfind('.') {
                Some(dot) => candidate = &candidate[..dot],
                None if candidate.is_empty() => return None,
                None => candidate = "",
            }
        }
        None
    }
}

/// The target `pick` chooses among those `exclude` leaves, if any.
fn choose<'t, T>(targets: &'t [T], pick: u64, exclude: &impl Fn(&T) -> bool) -> Option<&'t T> {
    let allowed = targets.iter().filter(|target| !exclude(target)).count();
    let index = usize::try_from(pick % allowed.max(1) as u64).unwrap_or(0);
    targets.iter().filter(|target| !exclude(target)).nth(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RoutingTable<&'static str> {
        let mut table = RoutingTable::new();
        table.insert("g.a", "a");
        table.insert("g.a.b", "ab");
        table.insert("g.a.b", "ab2");
        table.insert("", "default");
        table
    }

    #[test]
    fn longest_segment_prefix_wins() {
        let table = table();
        assert_eq!(table.lookup("g.a.b.c", 0, |_| false), Some(&"ab"));
        assert_eq!(table.lookup("g.a.x", 0, |_| false), Some(&"a"));
        assert_eq!(table.lookup("g.ab", 0, |_| false), Some(&"default"));
        assert_eq!(table.lookup("g.a", 0, |_| false), Some(&"a"));
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn exclusion_takes_another_target_then_a_shorter_prefix() {
        let table = table();
        assert_eq!(table.lookup("g.a.b.c", 0, |t| *t == "ab"), Some(&"ab2"));
        assert_eq!(
            table.lookup("g.a.b.c", 0, |t| t.starts_with("ab")),
            Some(&"a")
        );
        assert_eq!(table.lookup("g.a.x", 0, |t| *t == "a"), Some(&"default"));
        assert_eq!(table.lookup("g.a.x", 0, |_| true), None);
        let mut no_default = RoutingTable::new();
        no_default.insert("g.a", "a");
        assert_eq!(no_default.lookup("g.a.x", 0, |t| *t == "a"), None);
    }

    #[test]
    fn pick_spreads_over_the_targets_of_a_prefix() {
        let table = table();
        assert_eq!(table.lookup("g.a.b", 0, |_| false), Some(&"ab"));
        assert_eq!(table.lookup("g.a.b", 1, |_| false), Some(&"ab2"));
        assert_eq!(table.lookup("g.a.b", 2, |_| false), Some(&"ab"));
        assert_eq!(table.lookup("g.a.b", 7, |t| *t == "ab"), Some(&"ab2"));
    }

    #[test]
    fn a_bare_scheme_is_a_prefix() {
        let mut table = RoutingTable::new();
        table.insert("g", "global");
        table.insert("test", "test");
        assert_eq!(table.lookup("g.x.y", 0, |_| false), Some(&"global"));
        assert_eq!(table.lookup("test.x", 0, |_| false), Some(&"test"));
        assert_eq!(table.lookup("example.x", 0, |_| false), None);
    }

    proptest::proptest! {
        #[test]
        fn result_is_the_longest_ancestor(destination in "g(\\.[ab]{1,2}){1,4}", prefixes in proptest::collection::vec("g(\\.[ab]{1,2}){0,3}", 0..8)) {
            let mut table = RoutingTable::new();
            for prefix in &prefixes {
                table.insert(prefix, prefix.clone());
            }
            let is_ancestor = |p: &str| destination == p || destination.starts_with(&format!("{p}."));
            let expected = prefixes.iter().filter(|p| is_ancestor(p)).max_by_key(|p| p.len());
            proptest::prop_assert_eq!(table.lookup(&destination, 0, |_| false), expected);
        }
    }
}
