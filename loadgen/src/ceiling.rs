//! `tb-ceiling`: TigerBeetle's own two-phase rate on this machine, the ceiling that
//! forwarding with TigerBeetle accounting is compared with: pending transfers in
//! batches, each batch then posted, from several requests in flight at once, over
//! one client session or several (TigerBeetle takes one request at a time from a
//! session; the client merges what queues behind it).

use std::time::{Duration, Instant};
use tigerbeetle_unofficial as tb;

pub struct CeilingOptions {
    pub address: String,
    pub batch: u32,
    pub in_flight: u32,
    /// Client sessions the requests in flight are spread over.
    pub clients: u32,
    pub duration: Duration,
}

/// Completed (pending + posted) transfers per second.
pub fn run(options: &CeilingOptions) -> Result<f64, String> {
    let clients = (0..options.clients.max(1))
        .map(|_| tb::Client::new(0, options.address.as_str()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let client = &clients[0];
    let ledger = 900_000 + (std::process::id() % 90_000);
    let (debit, credit) = (tb::id(), tb::id());
    let accounts = vec![
        tb::Account::new(debit, ledger, 1),
        tb::Account::new(credit, ledger, 1),
    ];
    futures::executor::block_on(client.create_accounts(accounts)).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let clients = &clients;
    let loops = (0..options.in_flight).map(|index| async move {
        let client = &clients[index as usize % clients.len()];
        let mut completed = 0u64;
        while started.elapsed() < options.duration {
            let pending: Vec<tb::Transfer> = (0..options.batch)
                .map(|_| {
                    tb::Transfer::new(tb::id())
                        .with_debit_account_id(debit)
                        .with_credit_account_id(credit)
                        .with_amount(1)
                        .with_ledger(ledger)
                        .with_code(1)
                        .with_timeout(60)
                        .with_flags(tb::transfer::Flags::PENDING)
                })
                .collect();
            let posts: Vec<tb::Transfer> = pending
                .iter()
                .map(|p| {
                    tb::Transfer::new(tb::id())
                        .with_pending_id(p.id())
                        .with_amount(u128::MAX)
                        .with_flags(tb::transfer::Flags::POST_PENDING_TRANSFER)
                })
                .collect();
            if client.create_transfers(pending).await.is_err()
                || client.create_transfers(posts).await.is_err()
            {
                return Err("a transfer failed".to_owned());
            }
            completed += u64::from(options.batch);
        }
        Ok(completed)
    });
    let results = futures::executor::block_on(futures::future::join_all(loops));
    let mut completed = 0u64;
    for result in results {
        completed += result?;
    }
    Ok(completed as f64 / started.elapsed().as_secs_f64())
}
