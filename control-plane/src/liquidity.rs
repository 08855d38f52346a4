//! `riptidectl liquidity deposit|withdraw`: money between a peer's or an asset's
//! liquidity account and its settlement account, through one data plane's admin API.
//! The idempotency key names the transfer, so a retried command moves money once.

use crate::cli::LiquidityArgs;
use crate::error::CtlError;
use crate::fleet::Fleet;
use crate::version::now_unix_ms;
use crate::views::first_answer;
use serde_json::json;

pub fn run(
    fleet: &Fleet,
    direction: &str,
    args: &LiquidityArgs,
    json: bool,
) -> Result<(), CtlError> {
    let account = match (&args.account.peer, &args.account.asset) {
        (Some(peer), None) => format!("peer:{peer}"),
        (None, Some(asset)) => format!("asset:{asset}"),
        _ => {
            return Err(CtlError::Invalid(
                "give exactly one of --peer and --asset".into(),
            ))
        }
    };
    let key = match &args.key {
        Some(key) => key.clone(),
        None => {
            let key = format!("riptidectl-{}-{}", now_unix_ms(), std::process::id());
            // Printed before anything is sent, so that even a crash leaves the key to
            // retry with.
            eprintln!("riptidectl: idempotency key {key} (retry with --key {key})");
            key
        }
    };
    let request = json!({
        "account": account,
        "direction": direction,
        "amount": args.amount.to_string(),
        "idempotency_key": key,
    });
    let (url, created) = first_answer(fleet, |client| client.move_liquidity(&request))?;
    if json {
        let answer = json!({
            "dataplane": url,
            "account": account,
            "direction": direction,
            "amount": args.amount.to_string(),
            "idempotency_key": key,
            "created": created,
        });
        println!("{answer:#}");
    } else if created {
        println!(
            "{direction} of {} on {account}: done (key {key}, via {url})",
            args.amount
        );
    } else {
        println!(
            "{direction} of {} on {account}: already done earlier with key {key}",
            args.amount
        );
    }
    Ok(())
}
