//! Day-to-day changes to the running state: peers, routes, limits, rates. Each reads
//! the state from the data planes (the newest one wins), changes it in memory,
//! validates it with the data plane's rules, and pushes it with a new version to all.
//! The edits themselves are pure functions on a `StateDocument`.

use crate::cli::{Limit, LimitArgs, PeerAddArgs, PeerUpdateArgs};
use crate::error::CtlError;
use crate::fleet::{report_push, Fleet};
use crate::version::{next_version, now_unix_ms};
use riptide_proto::state::{LimitScope, PeerConfig, StateDocument};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    #[error("no peer {0:?}")]
    NoPeer(String),
    #[error("peer {0:?} already exists (use `peer update`)")]
    PeerExists(String),
    #[error("no route {0:?}")]
    NoRoute(String),
    #[error("nothing to change: give at least one option")]
    NothingGiven,
}

/// Whether an edit changed the state; an unchanged state is not pushed.
pub type Changed = bool;

/// Reads the newest state, applies `edit`, validates and pushes the result.
pub fn run(
    fleet: &Fleet,
    json: bool,
    edit: impl FnOnce(&mut StateDocument) -> Result<Changed, EditError>,
) -> Result<(), CtlError> {
    let (mut document, highest) = newest_state(fleet)?;
    let changed = edit(&mut document).map_err(|e| CtlError::Invalid(e.to_string()))?;
    if !changed {
        if json {
            println!(
                "{:#}",
                serde_json::json!({ "version": highest, "changed": false })
            );
        } else {
            println!("no change: the data planes already hold this (version {highest})");
        }
        return Ok(());
    }
    document
        .validate_rules()
        .map_err(|e| CtlError::Invalid(format!("{}: {}", e.path, e.message)))?;
    document.version = next_version(now_unix_ms(), Some(highest));
    let reports = fleet.push(&document);
    report_push(document.version, &reports, json)
}

/// The state of the data plane with the highest version, and that version. Data
/// planes that differ are named on stderr: the push brings them back in line.
pub fn newest_state(fleet: &Fleet) -> Result<(StateDocument, u64), CtlError> {
    let states = fleet.states(true);
    let mut newest: Option<StateDocument> = None;
    for (client, state) in fleet.clients.iter().zip(&states) {
        match state {
            Ok(state) if newest.as_ref().is_none_or(|n| state.version > n.version) => {
                newest = Some(state.clone());
            }
            Ok(_) => {}
            Err(error) => eprintln!("riptidectl: {}: {error}", client.url()),
        }
    }
    let newest = newest
        .ok_or_else(|| CtlError::Failed("no data plane answered with its state".to_owned()))?;
    for (client, state) in fleet.clients.iter().zip(&states) {
        if let Ok(state) = state {
            if state.version != newest.version {
                eprintln!(
                    "riptidectl: {} holds version {}, not {}: it gets the new state too",
                    client.url(),
                    state.version,
                    newest.version
                );
            }
        }
    }
    let version = newest.version;
    Ok((newest, version))
}

fn peer_mut<'a>(state: &'a mut StateDocument, id: &str) -> Result<&'a mut PeerConfig, EditError> {
    state
        .peers
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(|| EditError::NoPeer(id.to_owned()))
}

pub fn add_peer(state: &mut StateDocument, args: &PeerAddArgs) -> Result<Changed, EditError> {
    if state.peers.iter().any(|p| p.id == args.id) {
        return Err(EditError::PeerExists(args.id.clone()));
    }
    let mut peer = PeerConfig {
        id: args.id.clone(),
        asset: args.asset.clone(),
        incoming_tokens: args.incoming_tokens.clone(),
        outgoing_url: args.outgoing_url.clone(),
        outgoing_token: args.outgoing_token.clone(),
        outgoing_ca_pem: None,
        outgoing_pipeline_max: args.outgoing_pipeline_max,
        static_ilp_address: args.static_ilp_address.clone(),
        routes: args.routes.clone(),
        max_packet_amount: None,
        initial_liquidity: args.initial_liquidity,
        rate_limit_packets_per_second: None,
        throughput_limit_per_second: None,
        limit_scope: LimitScope::Dataplane,
        liquidity_threshold: None,
    };
    apply_limits(&mut peer, &args.limits);
    state.peers.push(peer);
    Ok(true)
}

pub fn update_peer(state: &mut StateDocument, args: &PeerUpdateArgs) -> Result<Changed, EditError> {
    let peer = peer_mut(state, &args.id)?;
    let before = peer.clone();
    if let Some(asset) = &args.asset {
        peer.asset = asset.clone();
    }
    for token in &args.add_incoming_tokens {
        if !peer.incoming_tokens.contains(token) {
            peer.incoming_tokens.push(token.clone());
        }
    }
    peer.incoming_tokens
        .retain(|token| !args.remove_incoming_tokens.contains(token));
    if let Some(url) = &args.outgoing_url {
        peer.outgoing_url = Some(url.clone());
    }
    if let Some(token) = &args.outgoing_token {
        peer.outgoing_token = Some(token.clone());
    }
    if let Some(count) = args.outgoing_pipeline_max {
        peer.outgoing_pipeline_max = count;
    }
    if let Some(address) = &args.static_ilp_address {
        peer.static_ilp_address = Some(address.clone());
    }
    apply_limits(peer, &args.limits);
    Ok(*peer != before)
}

pub fn remove_peer(state: &mut StateDocument, id: &str) -> Result<Changed, EditError> {
    let before = state.peers.len();
    state.peers.retain(|p| p.id != id);
    if state.peers.len() == before {
        return Err(EditError::NoPeer(id.to_owned()));
    }
    Ok(true)
}

fn apply_limits(peer: &mut PeerConfig, limits: &LimitArgs) {
    let set = |slot: &mut Option<u64>, limit: Option<Limit>| {
        if let Some(limit) = limit {
            *slot = limit.value();
        }
    };
    set(&mut peer.max_packet_amount, limits.max_packet);
    set(&mut peer.rate_limit_packets_per_second, limits.rate);
    set(&mut peer.throughput_limit_per_second, limits.throughput);
    set(&mut peer.liquidity_threshold, limits.liquidity_threshold);
    if let Some(scope) = limits.limit_scope {
        peer.limit_scope = scope;
    }
}

pub fn set_limits(
    state: &mut StateDocument,
    id: &str,
    limits: &LimitArgs,
) -> Result<Changed, EditError> {
    if limits.is_empty() {
        return Err(EditError::NothingGiven);
    }
    let peer = peer_mut(state, id)?;
    let before = peer.clone();
    apply_limits(peer, limits);
    Ok(*peer != before)
}

/// Routes `prefix` to peer `id` too. Several peers may share a prefix, as in Rafiki:
/// the data plane spreads its packets over them.
pub fn add_route(state: &mut StateDocument, prefix: &str, id: &str) -> Result<Changed, EditError> {
    let peer = peer_mut(state, id)?;
    if peer.routes.iter().any(|r| r == prefix) {
        return Ok(false);
    }
    peer.routes.push(prefix.to_owned());
    Ok(true)
}

pub fn remove_route(
    state: &mut StateDocument,
    prefix: &str,
    id: Option<&str>,
) -> Result<Changed, EditError> {
    let mut removed = false;
    for peer in &mut state.peers {
        if id.is_none_or(|id| peer.id == id) {
            let before = peer.routes.len();
            peer.routes.retain(|r| r != prefix);
            removed |= peer.routes.len() != before;
        }
    }
    if !removed {
        return Err(EditError::NoRoute(prefix.to_owned()));
    }
    Ok(true)
}

pub fn set_rates(
    state: &mut StateDocument,
    rates: &[(String, f64)],
    base: Option<&str>,
) -> Result<Changed, EditError> {
    let before = state.rates.clone();
    if let Some(base) = base {
        state.rates.base = Some(base.to_owned());
    }
    for (code, rate) in rates {
        state.rates.rates.insert(code.clone(), *rate);
    }
    Ok(state.rates != before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_proto::state::AssetConfig;

    fn state() -> StateDocument {
        let mut state = StateDocument {
            version: 3,
            assets: vec![AssetConfig {
                code: "USD".into(),
                scale: 2,
                ledger: 1,
                initial_liquidity: 0,
                liquidity_threshold: None,
            }],
            ..StateDocument::default()
        };
        let args = PeerAddArgs {
            id: "alice".into(),
            asset: "USD".into(),
            incoming_tokens: vec!["alice-token-0123456789".into()],
            outgoing_url: None,
            outgoing_token: None,
            outgoing_pipeline_max: 1,
            routes: vec!["test.alice".into()],
            static_ilp_address: None,
            initial_liquidity: 0,
            limits: LimitArgs {
                max_packet: Some(Limit::Set(100)),
                ..LimitArgs::default()
            },
        };
        assert_eq!(add_peer(&mut state, &args), Ok(true));
        assert_eq!(
            add_peer(&mut state, &args),
            Err(EditError::PeerExists("alice".into()))
        );
        state
    }

    #[test]
    fn limits_are_set_and_removed() {
        let mut state = state();
        let limits = LimitArgs {
            max_packet: Some(Limit::Remove),
            rate: Some(Limit::Set(50)),
            throughput: None,
            liquidity_threshold: Some(Limit::Set(500)),
            limit_scope: Some(LimitScope::Shared),
        };
        assert_eq!(set_limits(&mut state, "alice", &limits), Ok(true));
        let alice = &state.peers[0];
        assert_eq!(alice.max_packet_amount, None);
        assert_eq!(alice.rate_limit_packets_per_second, Some(50));
        assert_eq!(alice.limit_scope, LimitScope::Shared);
        assert_eq!(alice.liquidity_threshold, Some(500));
        assert_eq!(set_limits(&mut state, "alice", &limits), Ok(false));
        assert_eq!(
            set_limits(&mut state, "bob", &limits),
            Err(EditError::NoPeer("bob".into()))
        );
        assert_eq!(
            set_limits(&mut state, "alice", &LimitArgs::default()),
            Err(EditError::NothingGiven)
        );
    }

    #[test]
    fn peers_may_share_a_route() {
        let mut state = state();
        assert_eq!(add_route(&mut state, "test.alice", "alice"), Ok(false));
        assert_eq!(add_route(&mut state, "test.more", "alice"), Ok(true));
        state.peers.push(PeerConfig {
            id: "bob".into(),
            ..state.peers[0].clone()
        });
        state.peers[1].routes.clear();
        assert_eq!(add_route(&mut state, "test.more", "bob"), Ok(true));
        assert_eq!(add_route(&mut state, "test.more", "bob"), Ok(false));
        assert_eq!(remove_route(&mut state, "test.more", Some("bob")), Ok(true));
        assert_eq!(
            state.peers[0].routes.last().map(String::as_str),
            Some("test.more")
        );
        assert_eq!(remove_route(&mut state, "test.more", None), Ok(true));
        assert_eq!(
            remove_route(&mut state, "test.more", None),
            Err(EditError::NoRoute("test.more".into()))
        );
    }

    #[test]
    fn peers_update_and_leave() {
        let mut state = state();
        let update = PeerUpdateArgs {
            id: "alice".into(),
            asset: None,
            add_incoming_tokens: vec!["new-token-0123456789".into()],
            remove_incoming_tokens: vec!["alice-token-0123456789".into()],
            outgoing_url: None,
            outgoing_token: None,
            outgoing_pipeline_max: Some(4),
            static_ilp_address: None,
            limits: LimitArgs::default(),
        };
        assert_eq!(update_peer(&mut state, &update), Ok(true));
        assert_eq!(
            state.peers[0].incoming_tokens,
            vec!["new-token-0123456789".to_owned()]
        );
        assert_eq!(state.peers[0].outgoing_pipeline_max, 4);
        assert_eq!(update_peer(&mut state, &update), Ok(false));
        assert_eq!(remove_peer(&mut state, "alice"), Ok(true));
        assert_eq!(
            remove_peer(&mut state, "alice"),
            Err(EditError::NoPeer("alice".into()))
        );
    }

    #[test]
    fn rates_merge_into_the_table() {
        let mut state = state();
        let rates = vec![("EUR".to_owned(), 0.9)];
        assert_eq!(set_rates(&mut state, &rates, Some("USD")), Ok(true));
        assert_eq!(state.rates.rates.get("EUR"), Some(&0.9));
        assert_eq!(set_rates(&mut state, &rates, Some("USD")), Ok(false));
    }
}
