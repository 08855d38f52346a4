//! Quotes and outgoing payments: the IO side of the STREAM sender. Packets enter the
//! pipeline through [`Shard::send_from_wallet`], never through a socket; the wallet's
//! account pays, the outgoing peer's account is credited.
//!
//! * A quote resolves the destination (SPSP, or an address and shared secret), sends
//!   the rate probe, and states the source amount, the minimum delivery (after
//!   slippage), the rates, the path's max packet amount and an expiry.
//! * An outgoing payment pays a quote in a task of its own; its state, totals and
//!   last error are kept for `GET /v1/outgoing-payments/{id}`. Failures end in a
//!   state with a reason, never a crash.
//!
//! Quotes and payments live in the memory of the data plane that made them.

use crate::clock::{unix_now_ms, within};
use crate::http::spsp;
use crate::limits::{
    PAYMENT_IN_FLIGHT_MAX, PAYMENT_RETRIES_MAX, PROBE_TIMEOUT, QUOTE_LIFETIME_MS, RECORDS_MAX,
    SPSP_TIMEOUT,
};
use crate::shard::Shard;
use futures::stream::{FuturesUnordered, StreamExt};
use ring::rand::{SecureRandom, SystemRandom};
use riptide_proto::admin_api::{AssetView, OutgoingPaymentState, OutgoingPaymentView, QuoteView};
use riptide_proto::stream::sender::{
    Action, Answer, Progress, RateProbe, Ratio, SendError, SenderOptions, StreamSender, Target,
};
use riptide_proto::stream::IV_SIZE;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Where a payment goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Spsp(String),
    Credentials {
        address: String,
        shared_secret: Vec<u8>,
    },
}

/// What a quote asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteRequest {
    pub wallet: String,
    pub destination: Destination,
    pub target: Target,
    /// Parts per million below the probed rate that a packet may still deliver.
    pub slippage_ppm: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuoteError {
    #[error("unknown wallet {0:?}")]
    UnknownWallet(String),
    #[error(transparent)]
    Spsp(#[from] spsp::SpspError),
    #[error(transparent)]
    Probe(#[from] SendError),
    #[error("the quote would deliver nothing")]
    NothingDelivered,
    #[error("no randomness available")]
    Random,
}

/// A priced payment, ready to pay until `expires_at_ms`: what the admin API shows
/// of it, and what paying it needs.
#[derive(Debug, Clone)]
pub struct Quote {
    pub view: QuoteView,
    destination_address: String,
    shared_secret: Vec<u8>,
    target: Target,
    rate_exact: Ratio,
    min_rate_exact: Ratio,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayError {
    #[error("no such quote")]
    UnknownQuote,
    #[error("the quote expired")]
    QuoteExpired,
    #[error(transparent)]
    Sender(#[from] SendError),
    #[error("no randomness available")]
    Random,
}

/// Quotes and payments of one data plane, served by its admin shard.
#[derive(Default)]
pub struct Payments {
    quotes: RefCell<HashMap<String, Quote>>,
    payments: RefCell<HashMap<String, OutgoingPaymentView>>,
}

impl Payments {
    pub fn payment(&self, id: &str) -> Option<OutgoingPaymentView> {
        self.payments.borrow().get(id).cloned()
    }

    /// Resolves the destination, probes the path and keeps the quote.
    pub async fn quote(
        &self,
        shard: &Rc<Shard>,
        request: QuoteRequest,
    ) -> Result<Quote, QuoteError> {
        let snapshot = shard.shared.snapshot.load_full();
        if snapshot.wallet(&request.wallet).is_none() {
            return Err(QuoteError::UnknownWallet(request.wallet));
        }
        let (address, shared_secret) = match &request.destination {
            Destination::Spsp(url) => within(SPSP_TIMEOUT, spsp::query(&shard.shared, url))
                .await
                .unwrap_or_else(|| {
                    Err(spsp::SpspError::Transport(
                        url.clone(),
                        "no answer in time".into(),
                    ))
                })?,
            Destination::Credentials {
                address,
                shared_secret,
            } => (address.clone(), shared_secret.clone()),
        };
        let probed = probe(shard, &request.wallet, &address, &shared_secret).await?;
        let min_rate = probed.rate.reduced_by_ppm(request.slippage_ppm);
        let (source_amount, min_delivery_amount) = match request.target {
            Target::FixedSend(amount) => (amount, min_rate.floor_mul(amount)),
            Target::FixedDelivery(amount) => (min_rate.ceil_source_for(amount), amount),
        };
        if min_delivery_amount == 0 || source_amount == u64::MAX {
            return Err(QuoteError::NothingDelivered);
        }
        let view = QuoteView {
            id: random_id().ok_or(QuoteError::Random)?,
            wallet: request.wallet,
            destination: match &request.destination {
                Destination::Spsp(url) => url.clone(),
                Destination::Credentials { address, .. } => address.clone(),
            },
            source_amount,
            min_delivery_amount,
            rate: probed.rate.as_f64(),
            min_rate: min_rate.as_f64(),
            max_packet_amount: probed.max_packet_amount,
            destination_asset: probed.asset.map(|(code, scale)| AssetView { code, scale }),
            fixed: match request.target {
                Target::FixedSend(_) => "send",
                Target::FixedDelivery(_) => "delivery",
            }
            .to_owned(),
            expires_at_ms: unix_now_ms() + QUOTE_LIFETIME_MS,
        };
        let quote = Quote {
            view,
            destination_address: address,
            shared_secret,
            target: request.target,
            rate_exact: probed.rate,
            min_rate_exact: min_rate,
        };
        let mut quotes = self.quotes.borrow_mut();
        evict_oldest(&mut quotes, |q| q.view.expires_at_ms);
        quotes.insert(quote.view.id.clone(), quote.clone());
        Ok(quote)
    }

    /// Starts paying a quote; the payment goes on in its own task.
    pub fn pay(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        quote_id: &str,
    ) -> Result<OutgoingPaymentView, PayError> {
        let quote = self
            .quotes
            .borrow_mut()
            .remove(quote_id)
            .ok_or(PayError::UnknownQuote)?;
        if unix_now_ms() >= quote.view.expires_at_ms {
            return Err(PayError::QuoteExpired);
        }
        let options = SenderOptions {
            target: quote.target,
            min_rate: quote.min_rate_exact,
            rate: quote.rate_exact,
            max_packet_amount: quote.view.max_packet_amount,
            source_amount_max: quote.view.source_amount,
            in_flight_max: PAYMENT_IN_FLIGHT_MAX,
            retries_max: PAYMENT_RETRIES_MAX,
        };
        let sender = StreamSender::new(&quote.destination_address, &quote.shared_secret, options)?;
        let payment = OutgoingPaymentView {
            id: random_id().ok_or(PayError::Random)?,
            quote_id: quote.view.id.clone(),
            wallet: quote.view.wallet.clone(),
            destination: quote.view.destination.clone(),
            state: OutgoingPaymentState::Sending,
            source_amount: quote.view.source_amount,
            min_delivery_amount: quote.view.min_delivery_amount,
            sent: 0,
            delivered: 0,
            packets_fulfilled: 0,
            packets_rejected: 0,
            last_error: None,
            created_at_ms: unix_now_ms(),
            destination_asset: quote.view.destination_asset.clone(),
        };
        {
            let mut payments = self.payments.borrow_mut();
            // Payments still sending are never forgotten: they sort last.
            evict_oldest(&mut payments, |p| match p.state {
                OutgoingPaymentState::Sending => u64::MAX,
                _ => p.created_at_ms,
            });
            payments.insert(payment.id.clone(), payment.clone());
        }
        announce(shard, "outgoing_payment.created", &payment);
        let (payments, shard, id) = (Rc::clone(self), Rc::clone(shard), payment.id.clone());
        glommio::spawn_local(async move {
            let outcome = drive(&shard, &payments, &id, &quote.view.wallet, sender).await;
            payments.finish(&shard, &id, outcome);
        })
        .detach();
        Ok(payment)
    }

    fn update(&self, id: &str, progress: Progress) {
        if let Some(payment) = self.payments.borrow_mut().get_mut(id) {
            payment.sent = progress.sent;
            payment.delivered = progress.delivered;
            payment.packets_fulfilled = progress.packets_fulfilled;
            payment.packets_rejected = progress.packets_rejected;
        }
    }

    fn finish(&self, shard: &Shard, id: &str, outcome: Result<(), SendError>) {
        let mut payments = self.payments.borrow_mut();
        let Some(payment) = payments.get_mut(id) else {
            return;
        };
        let event = match outcome {
            Ok(()) => {
                payment.state = OutgoingPaymentState::Completed;
                "outgoing_payment.completed"
            }
            Err(error) => {
                tracing::info!(payment = id, %error, "outgoing payment failed");
                payment.state = OutgoingPaymentState::Failed;
                payment.last_error = Some(error.to_string());
                "outgoing_payment.failed"
            }
        };
        announce(shard, event, payment);
    }
}

/// An outgoing payment's webhook event, with the payment as Rafiki's carry it.
fn announce(shard: &Shard, event: &'static str, payment: &OutgoingPaymentView) {
    use crate::webhooks::{amount_json, time_json};
    let webhooks = &shard.shared.webhooks;
    if !webhooks.enabled() {
        return;
    }
    let snapshot = shard.shared.snapshot.load();
    let (code, scale) = crate::webhooks::wallet_asset(&snapshot, &payment.wallet);
    let receive_amount = payment
        .destination_asset
        .as_ref()
        .map(|asset| amount_json(payment.min_delivery_amount, &asset.code, asset.scale));
    let state = match payment.state {
        OutgoingPaymentState::Sending => "SENDING",
        OutgoingPaymentState::Completed => "COMPLETED",
        OutgoingPaymentState::Failed => "FAILED",
    };
    let data = serde_json::json!({
        "id": payment.id,
        "walletAddressId": payment.wallet,
        "quoteId": payment.quote_id,
        "receiver": payment.destination,
        "debitAmount": amount_json(payment.source_amount, &code, scale),
        "receiveAmount": receive_amount,
        "sentAmount": amount_json(payment.sent, &code, scale),
        "state": state,
        "error": payment.last_error,
        "createdAt": time_json(payment.created_at_ms),
    });
    webhooks.emit(event, data);
}

/// Sends every probe at once and reads what came back within the probe timeout.
async fn probe(
    shard: &Rc<Shard>,
    wallet: &str,
    address: &str,
    shared_secret: &[u8],
) -> Result<riptide_proto::stream::sender::ProbeResult, QuoteError> {
    let snapshot = shard.shared.snapshot.load_full();
    let mut probe = RateProbe::new(address, shared_secret)?;
    let mut iv_failed = false;
    let packets = probe.packets(unix_now_ms(), || {
        random_iv().unwrap_or_else(|| {
            iv_failed = true;
            [0; IV_SIZE]
        })
    });
    if iv_failed {
        return Err(QuoteError::Random);
    }
    let mut replies: FuturesUnordered<_> = packets
        .into_iter()
        .map(|(sequence, prepare)| {
            let (shard, snapshot) = (Rc::clone(shard), Arc::clone(&snapshot));
            async move {
                let reply = shard
                    .send_from_wallet(&snapshot, wallet, prepare, false)
                    .await;
                (sequence, reply)
            }
        })
        .collect();
    let collect = async {
        while let Some((sequence, reply)) = replies.next().await {
            probe.on_reply(sequence, Answer::parse(&reply));
        }
    };
    // Probes still out when the timer fires are dropped: their answers are not
    // needed to price the path.
    futures_lite::future::or(collect, glommio::timer::sleep(PROBE_TIMEOUT)).await;
    let result = probe.result();
    if let Some(iv) = random_iv() {
        let close = probe.close_prepare(unix_now_ms(), iv);
        let _ = shard
            .send_from_wallet(&snapshot, wallet, close, false)
            .await;
    }
    Ok(result?)
}

/// Runs the sender until it is done: a window of packets in flight, replies fed
/// back as they come, waits as the sender asks.
async fn drive(
    shard: &Rc<Shard>,
    payments: &Payments,
    id: &str,
    wallet: &str,
    mut sender: StreamSender,
) -> Result<(), SendError> {
    let mut in_flight = FuturesUnordered::new();
    loop {
        let Some(iv) = random_iv() else {
            return Err(SendError::Rejected("no randomness available".into()));
        };
        if shard.shutting_down() {
            // Nothing more goes out; what is in flight still comes back and counts.
            let next: Option<(u64, Vec<u8>)> = in_flight.next().await;
            let Some((sequence, reply)) = next else {
                return Err(SendError::Rejected("the data plane shut down".into()));
            };
            sender.on_reply(sequence, Answer::parse(&reply), unix_now_ms());
            payments.update(id, sender.progress());
            continue;
        }
        match sender.poll(unix_now_ms(), iv) {
            Action::Send {
                sequence, prepare, ..
            } => {
                let (shard, snapshot) = (Rc::clone(shard), shard.shared.snapshot.load_full());
                let wallet = wallet.to_owned();
                // The forward races the packet's own expiry (R00), so every packet
                // comes back: none is dropped with its hold in place.
                in_flight.push(async move {
                    let reply = shard
                        .send_from_wallet(&snapshot, &wallet, prepare, true)
                        .await;
                    (sequence, reply)
                });
            }
            Action::Wait { until_ms } => {
                let wait_ms = until_ms.map(|until| until.saturating_sub(unix_now_ms()));
                if in_flight.is_empty() {
                    // Backing off with nothing out: an empty set would answer at
                    // once and this loop would spin.
                    let wait = Duration::from_millis(wait_ms.unwrap_or(10).max(1));
                    glommio::timer::sleep(wait).await;
                    continue;
                }
                let next = async { in_flight.next().await };
                let timer = async {
                    match wait_ms {
                        Some(ms) => glommio::timer::sleep(Duration::from_millis(ms)).await,
                        None => futures::future::pending::<()>().await,
                    }
                    None
                };
                if let Some((sequence, reply)) = futures_lite::future::or(next, timer).await {
                    sender.on_reply(sequence, Answer::parse(&reply), unix_now_ms());
                    payments.update(id, sender.progress());
                }
            }
            Action::Done(outcome) => {
                if let Some(iv) = random_iv() {
                    let close = sender.close_prepare(unix_now_ms(), iv);
                    let snapshot = shard.shared.snapshot.load_full();
                    let _ = shard
                        .send_from_wallet(&snapshot, wallet, close, false)
                        .await;
                }
                payments.update(id, sender.progress());
                return outcome;
            }
        }
    }
}

fn random_iv() -> Option<[u8; IV_SIZE]> {
    let mut iv = [0u8; IV_SIZE];
    SystemRandom::new().fill(&mut iv).ok()?;
    Some(iv)
}

fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Keeps a map under [`RECORDS_MAX`] by dropping the entry with the smallest key.
fn evict_oldest<T>(map: &mut HashMap<String, T>, age: impl Fn(&T) -> u64) {
    if map.len() < RECORDS_MAX {
        return;
    }
    let oldest = map
        .iter()
        .min_by_key(|(_, value)| age(value))
        .map(|(key, _)| key.clone());
    if let Some(key) = oldest {
        map.remove(&key);
    }
}
