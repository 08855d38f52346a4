//! `riptidectl liquidity deposit|withdraw`: money between a peer's, an asset's or a
//! wallet's account and its settlement account, through one data plane's admin API.
//! The idempotency key names the transfer, so a retried command moves money once.

use crate::cli::{AccountArg, LiquidityArgs};
use crate::error::CtlError;
use crate::fleet::Fleet;
use crate::version::now_unix_ms;
use crate::views::first_answer;
use serde_json::json;

/// `peer:<id>`, `asset:<code>` or `wallet:<id>`, as the admin API names accounts.
fn account_name(account: &AccountArg) -> Result<String, CtlError> {
    match (&account.peer, &account.asset, &account.wallet) {
        (Some(peer), None, None) => Ok(format!("peer:{peer}")),
        (None, Some(asset), None) => Ok(format!("asset:{asset}")),
        (None, None, Some(wallet)) => Ok(format!("wallet:{wallet}")),
        _ => Err(CtlError::Invalid(
            "give exactly one of --peer, --asset and --wallet".into(),
        )),
    }
}

pub fn run(
    fleet: &Fleet,
    direction: &str,
    args: &LiquidityArgs,
    json: bool,
) -> Result<(), CtlError> {
    let account = account_name(&args.account)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_named_as_the_admin_api_names_them() {
        let account = |peer: Option<&str>, asset: Option<&str>, wallet: Option<&str>| AccountArg {
            peer: peer.map(str::to_owned),
            asset: asset.map(str::to_owned),
            wallet: wallet.map(str::to_owned),
        };
        assert_eq!(
            account_name(&account(Some("alice"), None, None)).ok(),
            Some("peer:alice".to_owned())
        );
        assert_eq!(
            account_name(&account(None, Some("USD"), None)).ok(),
            Some("asset:USD".to_owned())
        );
        assert_eq!(
            account_name(&account(None, None, Some("payer"))).ok(),
            Some("wallet:payer".to_owned())
        );
        let error = account_name(&account(Some("a"), None, Some("w"))).expect_err("two");
        assert_eq!(error.exit_code(), 2);
        assert!(account_name(&account(None, None, None)).is_err());
    }
}
