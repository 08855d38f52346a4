//! Read-only views of the running state: peers, routes, rates, balances. Each reads
//! the newest state the data planes hold and prints a table or JSON.

use crate::edit::newest_state;
use crate::error::CtlError;
use crate::fleet::Fleet;
use crate::table::{or_dash, Table};
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
    let text = |value: &Value, key: &str| value[key].as_str().unwrap_or("-").to_owned();
    for account in answer["accounts"].as_array().into_iter().flatten() {
        table.push(vec![
            text(account, "kind"),
            text(account, "name"),
            text(account, "asset"),
            text(account, "balance"),
            text(account, "credits_posted"),
            text(account, "debits_posted"),
            text(account, "credits_pending"),
            text(account, "debits_pending"),
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
        "/v1/audit?idle=true"
    } else {
        "/v1/audit"
    };
    let (url, report) = first_answer(fleet, |client| client.get_json(path))?;
    let problems: Vec<String> = report["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    if json {
        println!("{:#}", json!({ "dataplane": url, "audit": report }));
    } else {
        let mut table = Table::new(&["LEDGER", "DEBITS", "CREDITS", "PENDING DR", "PENDING CR"]);
        let text = |value: &Value, key: &str| match &value[key] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        for ledger in report["ledgers"].as_array().into_iter().flatten() {
            table.push(vec![
                text(ledger, "ledger"),
                text(ledger, "debits_posted"),
                text(ledger, "credits_posted"),
                text(ledger, "debits_pending"),
                text(ledger, "credits_pending"),
            ]);
        }
        println!(
            "from {url}: {} accounts checked",
            text(&report, "accounts_checked")
        );
        print!("{}", table.render());
        for note in report["notes"].as_array().into_iter().flatten() {
            println!("note: {}", note.as_str().unwrap_or_default());
        }
        for problem in &problems {
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
    use riptide_proto::state::PeerConfig;

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
