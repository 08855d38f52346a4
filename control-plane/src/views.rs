//! Read-only views of the running state: peers, routes, rates, balances. Each reads
//! the newest state the data planes hold and prints a table or JSON.

use crate::edit::newest_state;
use crate::error::CtlError;
use crate::fleet::Fleet;
use crate::table::{or_dash, Table};
use riptide_proto::admin_api::PATH_AUDIT;
use riptide_proto::ledger::audit::AuditReport;
use riptide_proto::state::StateDocument;
use serde_json::{json, Value};

pub fn peers(fleet: &Fleet, json: bool) -> Result<(), CtlError> {
    let (state, _) = newest_state(fleet)?;
    if json {
        // Tokens are secrets: the listing shows how many there are, not what they are.
        let peers: Vec<Value> = state.peers.iter().map(peer_json).collect();
        println!("{:#}", json!({ "version": state.version, "peers": peers }));
        return Ok(());
    }
    let mut table = Table::new(&[
        "ID",
        "ASSET",
        "ROUTES",
        "MAX PACKET",
        "RATE/S",
        "THROUGHPUT/S",
        "OUTGOING",
        "TOKENS",
    ]);
    for peer in &state.peers {
        table.push(vec![
            peer.id.clone(),
            peer.asset.clone(),
            peer.routes.join(","),
            or_dash(peer.max_packet_amount),
            or_dash(peer.rate_limit_packets_per_second),
            or_dash(peer.throughput_limit_per_second),
            or_dash(peer.outgoing_url.clone()),
            peer.incoming_tokens.len().to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

fn peer_json(peer: &riptide_proto::state::PeerConfig) -> Value {
    json!({
        "id": peer.id,
        "asset": peer.asset,
        "routes": peer.routes,
        "max_packet_amount": peer.max_packet_amount,
        "rate_limit_packets_per_second": peer.rate_limit_packets_per_second,
        "throughput_limit_per_second": peer.throughput_limit_per_second,
        "limit_scope": peer.limit_scope,
        "outgoing_url": peer.outgoing_url,
        "outgoing_pipeline_max": peer.outgoing_pipeline_max,
        "static_ilp_address": peer.static_ilp_address,
        "incoming_tokens": peer.incoming_tokens.len(),
        "initial_liquidity": peer.initial_liquidity,
    })
}

/// Every route, longest prefix first, as the data plane matches them.
fn routes_of(state: &StateDocument) -> Vec<(String, String)> {
    let mut routes: Vec<(String, String)> = state
        .peers
        .iter()
        .flat_map(|peer| peer.routes.iter().map(|r| (r.clone(), peer.id.clone())))
        .collect();
    routes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    routes
}

pub fn routes(fleet: &Fleet, json: bool) -> Result<(), CtlError> {
    let (state, _) = newest_state(fleet)?;
    let routes = routes_of(&state);
    if json {
        let rows: Vec<Value> = routes
            .iter()
            .map(|(prefix, peer)| json!({ "prefix": prefix, "peer": peer }))
            .collect();
        println!("{:#}", json!({ "version": state.version, "routes": rows }));
        return Ok(());
    }
    let mut table = Table::new(&["PREFIX", "PEER"]);
    for (prefix, peer) in routes {
        table.push(vec![prefix, peer]);
    }
    print!("{}", table.render());
    Ok(())
}

pub fn rates(fleet: &Fleet, json: bool) -> Result<(), CtlError> {
    let (state, _) = newest_state(fleet)?;
    let base = state
        .rates
        .base
        .clone()
        .or_else(|| state.assets.first().map(|a| a.code.clone()));
    if json {
        let document = json!({
            "version": state.version,
            "base": base,
            "rates": state.rates.rates,
            "url": state.rates.url,
            "lifetime_ms": state.rates.lifetime_ms,
        });
        println!("{document:#}");
        return Ok(());
    }
    println!("base: {}", or_dash(base));
    if let Some(url) = &state.rates.url {
        println!("feed: {url} (lifetime {} ms)", state.rates.lifetime_ms);
    }
    let mut table = Table::new(&["CODE", "RATE"]);
    for (code, rate) in &state.rates.rates {
        table.push(vec![code.clone(), rate.to_string()]);
    }
    print!("{}", table.render());
    Ok(())
}

/// `GET /v1/balances` from the first data plane that answers: with TigerBeetle every
/// data plane reads the same ledger.
pub fn balances(fleet: &Fleet, json: bool) -> Result<(), CtlError> {
    let (url, answer) = first_answer(fleet, |client| client.balances())?;
    if json {
        println!("{:#}", json!({ "dataplane": url, "balances": answer }));
        return Ok(());
    }
    let mut table = Table::new(&[
        "KIND",
        "NAME",
        "ASSET",
        "BALANCE",
        "CREDITS",
        "DEBITS",
        "PENDING CR",
        "PENDING DR",
    ]);
    for account in &answer.accounts {
        table.push(vec![
            account.kind.clone(),
            account.name.clone(),
            account.asset.clone(),
            account.balance.to_string(),
            account.credits_posted.to_string(),
            account.debits_posted.to_string(),
            account.credits_pending.to_string(),
            account.debits_pending.to_string(),
        ]);
    }
    println!("from {url}");
    print!("{}", table.render());
    Ok(())
}

/// Prints the ledger audit of the first data plane that answers; fails when it
/// lists any problem.
pub fn audit(fleet: &Fleet, idle: bool, json: bool) -> Result<(), CtlError> {
    let path = if idle {
        format!("{PATH_AUDIT}?idle=true")
    } else {
        PATH_AUDIT.to_owned()
    };
    let (url, report) = first_answer(fleet, |client| client.get::<AuditReport>(&path))?;
    let problems = &report.problems;
    if json {
        println!("{:#}", json!({ "dataplane": url, "audit": report }));
    } else {
        let mut table = Table::new(&["LEDGER", "DEBITS", "CREDITS", "PENDING DR", "PENDING CR"]);
        for ledger in &report.ledgers {
            table.push(vec![
                ledger.ledger.to_string(),
                ledger.debits_posted.to_string(),
                ledger.credits_posted.to_string(),
                ledger.debits_pending.to_string(),
                ledger.credits_pending.to_string(),
            ]);
        }
        println!("from {url}: {} accounts checked", report.accounts_checked);
        print!("{}", table.render());
        for note in &report.notes {
            println!("note: {note}");
        }
        for problem in problems {
            println!("PROBLEM: {problem}");
        }
        if problems.is_empty() {
            println!("audit passed");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CtlError::Failed(format!(
            "audit found {} problem(s)",
            problems.len()
        )))
    }
}

/// Tries the data planes in order (each with retries) until one answers; a refusal
/// (not a connection problem) ends the search, since the others would refuse too.
pub fn first_answer<T>(
    fleet: &Fleet,
    operation: impl Fn(
        &crate::dataplane_client::DataplaneClient,
    ) -> Result<T, crate::dataplane_client::ClientError>,
) -> Result<(String, T), CtlError> {
    let mut errors = Vec::new();
    for client in &fleet.clients {
        let (result, _) =
            crate::fleet::with_retries(&fleet.policy, client.url(), || operation(client), &|d| {
                std::thread::sleep(d)
            });
        match result {
            Ok(value) => return Ok((client.url().to_owned(), value)),
            Err(error) if error.is_retryable() => errors.push(format!("{}: {error}", client.url())),
            Err(error) => return Err(CtlError::Failed(format!("{}: {error}", client.url()))),
        }
    }
    Err(CtlError::Failed(format!(
        "no data plane answered: {}",
        errors.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_proto::state::{LimitScope, PeerConfig};

    #[test]
    fn routes_list_longest_prefix_first() {
        let peer = |id: &str, routes: &[&str]| PeerConfig {
            id: id.into(),
            asset: "USD".into(),
            incoming_tokens: vec![],
            outgoing_url: None,
            outgoing_token: None,
            outgoing_pipeline_max: 1,
            static_ilp_address: None,
            routes: routes.iter().map(|r| (*r).to_owned()).collect(),
            max_packet_amount: None,
            initial_liquidity: 0,
            rate_limit_packets_per_second: None,
            throughput_limit_per_second: None,
            limit_scope: LimitScope::Dataplane,
            liquidity_threshold: None,
            outgoing_ca_pem: None,
        };
        let state = StateDocument {
            peers: vec![peer("a", &["test.a"]), peer("b", &["test.a.b", "g"])],
            ..StateDocument::default()
        };
        let routes = routes_of(&state);
        assert_eq!(routes[0], ("test.a.b".to_owned(), "b".to_owned()));
        assert_eq!(routes[2], ("g".to_owned(), "b".to_owned()));
    }
}
