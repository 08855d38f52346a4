//! `riptidectl liquidity deposit|withdraw`: money between a peer's, an asset's or a
//! wallet's account and its settlement account, through one data plane's admin API.
//! The idempotency key names the transfer, so a retried command moves money once.

use crate::cli::{AccountArg, LiquidityArgs};
use crate::error::CtlError;
use crate::fleet::Fleet;
use crate::version::now_unix_ms;
use crate::views::first_answer;
use riptide_proto::admin_api::{LiquidityAccount, LiquidityDirection, LiquidityRequest};
use serde_json::json;

/// The one account the arguments name.
fn account_name(account: &AccountArg) -> Result<LiquidityAccount, CtlError> {
    match (&account.peer, &account.asset, &account.wallet) {
        (Some(peer), None, None) => Ok(LiquidityAccount::Peer(peer.clone())),
        (None, Some(asset), None) => Ok(LiquidityAccount::Asset(asset.clone())),
        (None, None, Some(wallet)) => Ok(LiquidityAccount::Wallet(wallet.clone())),
        _ => Err(CtlError::Invalid(
            "give exactly one of --peer, --asset and --wallet".into(),
        )),
    }
}

pub fn run(
    fleet: &Fleet,
    direction: LiquidityDirection,
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
    let request = LiquidityRequest {
        account: account.clone(),
        direction,
        amount: args.amount,
        idempotency_key: key.clone(),
    };
    let (url, created) = first_answer(fleet, |client| client.move_liquidity(&request))?;
    if json {
        let answer = json!({
            "dataplane": url,
            "account": account.to_string(),
            "direction": direction.to_string(),
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
            Some(LiquidityAccount::Peer("alice".into()))
        );
        assert_eq!(
            account_name(&account(None, Some("USD"), None)).ok(),
            Some(LiquidityAccount::Asset("USD".into()))
        );
        assert_eq!(
            account_name(&account(None, None, Some("payer")))
                .ok()
                .map(|a| a.to_string()),
            Some("wallet:payer".to_owned())
        );
        let error = account_name(&account(Some("a"), None, Some("w"))).expect_err("two");
        assert_eq!(error.exit_code(), 2);
        assert!(account_name(&account(None, None, None)).is_err());
    }
}
