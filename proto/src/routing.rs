//! Longest-prefix routing on dot-separated address segments: `g.a` matches `g.a`
//! and `g.a.x`, never `g.ab`; the empty prefix is a default route.

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

    /// Adds a route; a prefix may lead to several targets (the first added wins).
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

    /// The target of the longest prefix of `destination` in the table, skipping
    /// targets for which `exclude` is true. When every target of the longest
    /// matching prefix is excluded, there is no route: falling back to a shorter
    /// prefix would send a packet somewhere its address never pointed (a packet
    /// from a peer to that peer's own address space is a loop, not a detour).
    pub fn lookup(&self, destination: &str, exclude: impl Fn(&T) -> bool) -> Option<&T> {
        let mut candidate = destination;
        for _ in 0..SEGMENTS_MAX {
            if let Some(targets) = self.by_prefix.get(candidate) {
                return targets.iter().find(|target| !exclude(target));
            }
            match candidate.rfind('.') {
                Some(dot) => candidate = &candidate[..dot],
                None => break,
            }
        }
        self.by_prefix
            .get("")
            .and_then(|targets| targets.iter().find(|target| !exclude(target)))
    }
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
        assert_eq!(table.lookup("g.a.b.c", |_| false), Some(&"ab"));
        assert_eq!(table.lookup("g.a.x", |_| false), Some(&"a"));
        assert_eq!(table.lookup("g.ab", |_| false), Some(&"default"));
        assert_eq!(table.lookup("g.a", |_| false), Some(&"a"));
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn exclusion_picks_another_target_of_the_same_prefix_only() {
        let table = table();
        assert_eq!(table.lookup("g.a.b.c", |t| *t == "ab"), Some(&"ab2"));
        assert_eq!(table.lookup("g.a.x", |t| *t == "a"), None);
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
            proptest::prop_assert_eq!(table.lookup(&destination, |_| false), expected);
        }
    }
}
