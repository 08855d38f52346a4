//! Quotes and outgoing payments: the IO side of the STREAM sender. Packets enter the
//! pipeline through [`Shard::send_as`], never through a socket.
//!
//! * A quote resolves the destination (SPSP, or an address and shared secret), sends
//!   the rate probe, and states the source amount, the minimum delivery (after
//!   slippage), the rates, the path's max packet amount and an expiry. It is kept
//!   in the receipt store, so any data plane sharing it can pay it.
//! * Paying a quote makes the outgoing payment (with the quote's id) once, in the
//!   store, owned by the data plane that made it under a lease; [`run`] drives it
//!   from its own ledger account. A payment whose owner stopped renewing is taken
//!   over by a data plane that finds its lease lapsed ([`resume`]), and finished
//!   from what the ledger says is left. `GET /v1/outgoing-payments/{id}` answers on
//!   any data plane. Failures end in a state with a reason, never a crash.

pub mod record;
pub mod resume;
pub mod run;

use crate::clock::{unix_now_ms, within};
use crate::http::spsp;
use crate::limits::{
    PAYMENTS_ACTIVE_MAX, PAYMENT_LEASE_MS, PROBE_TIMEOUT, QUOTE_LIFETIME_MS, SPSP_TIMEOUT,
};
use crate::shard::Shard;
use crate::store::{is_payment_id, Opened, StoreAnswer, StoreError, StoreOp};
use futures::stream::{FuturesUnordered, StreamExt};
use record::{PaymentRecord, QuoteRecord, Terms};
use ring::rand::{SecureRandom, SystemRandom};
use riptide_proto::admin_api::{AssetView, OutgoingPaymentState, OutgoingPaymentView, QuoteView};
use riptide_proto::stream::sender::{Answer, RateProbe, SendError, Target};
use riptide_proto::stream::IV_SIZE;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
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
    #[error("the quote could not be kept: {0}")]
    Store(String),
}

/// A priced payment, ready to pay until `expires_at_ms`.
#[derive(Debug, Clone)]
pub struct Quote {
    pub view: QuoteView,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayError {
    #[error("no such quote")]
    UnknownQuote,
    #[error("the quote expired")]
    QuoteExpired,
    #[error(transparent)]
    Store(StoreError),
}

/// The outgoing payments this data plane drives, served by its admin shard.
pub struct Payments {
    /// This process, as the owner of payment leases: new at every start.
    owner: String,
    /// The payments it drives now, with their latest progress.
    active: RefCell<HashMap<String, OutgoingPaymentView>>,
}

impl Default for Payments {
    fn default() -> Payments {
        let owner =
            random_id().unwrap_or_else(|| format!("{}-{}", std::process::id(), unix_now_ms()));
        Payments {
            owner,
            active: RefCell::new(HashMap::new()),
        }
    }
}

impl Payments {
    /// The payment as the data plane driving it sees it, or as the store has it.
    pub async fn payment(
        &self,
        shard: &Shard,
        id: &str,
    ) -> Result<Option<OutgoingPaymentView>, StoreError> {
        if let Some(view) = self.active.borrow().get(id) {
            return Ok(Some(view.clone()));
        }
        if !is_payment_id(id) {
            return Ok(None);
        }
        match shard
            .store()
            .execute(StoreOp::GetOutgoing { id: id.to_owned() })
            .await?
        {
            StoreAnswer::Outgoing(record) => Ok(record
                .as_deref()
                .and_then(PaymentRecord::from_json)
                .map(|record| record.view)),
            other => Err(StoreError::Protocol(format!("{other:?}"))),
        }
    }

    fn track(&self, view: &OutgoingPaymentView) {
        self.active
            .borrow_mut()
            .insert(view.id.clone(), view.clone());
    }

    /// A driven payment's latest totals, in place: once per reply, no copy.
    fn note_totals(&self, view: &OutgoingPaymentView) {
        if let Some(seen) = self.active.borrow_mut().get_mut(&view.id) {
            seen.sent = view.sent;
            seen.delivered = view.delivered;
            seen.packets_fulfilled = view.packets_fulfilled;
            seen.packets_rejected = view.packets_rejected;
        }
    }

    fn forget(&self, id: &str) {
        self.active.borrow_mut().remove(id);
    }

    fn drives(&self, id: &str) -> bool {
        self.active.borrow().contains_key(id)
    }

    fn room(&self) -> usize {
        PAYMENTS_ACTIVE_MAX.saturating_sub(self.active.borrow().len())
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
        let terms = Terms::new(
            address,
            &shared_secret,
            request.target,
            (probed.rate, min_rate),
            probed.max_packet_amount,
        );
        let record = QuoteRecord {
            view: view.clone(),
            terms,
        };
        let put = StoreOp::PutQuote {
            id: view.id.clone(),
            record: serde_json::to_string(&record).map_err(|e| QuoteError::Store(e.to_string()))?,
            expires_at_ms: view.expires_at_ms,
        };
        match shard.store().execute(put).await {
            Ok(StoreAnswer::Created) => Ok(Quote { view }),
            other => Err(QuoteError::Store(format!("{other:?}"))),
        }
    }

    /// Pays a quote, once: the payment (with the quote's id) is made in the store
    /// and driven here. A quote paid already answers its payment.
    pub async fn pay(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        quote_id: &str,
    ) -> Result<OutgoingPaymentView, PayError> {
        if !is_payment_id(quote_id) {
            return Err(PayError::UnknownQuote);
        }
        let store = shard.store();
        let get = StoreOp::GetQuote {
            id: quote_id.to_owned(),
        };
        let quote = match store.execute(get).await.map_err(PayError::Store)? {
            StoreAnswer::Quote(Some(text)) => serde_json::from_str::<QuoteRecord>(&text)
                .map_err(|e| PayError::Store(StoreError::Protocol(e.to_string())))?,
            StoreAnswer::Quote(None) => {
                return match self
                    .payment(shard, quote_id)
                    .await
                    .map_err(PayError::Store)?
                {
                    Some(payment) => Ok(payment),
                    None => Err(PayError::UnknownQuote),
                }
            }
            other => return Err(PayError::Store(StoreError::Protocol(format!("{other:?}")))),
        };
        let (leased_at, now_ms) = (std::time::Instant::now(), unix_now_ms());
        if now_ms >= quote.view.expires_at_ms {
            return Err(PayError::QuoteExpired);
        }
        let record = PaymentRecord::of_quote(quote, now_ms);
        // With no room to drive it here, the payment is made with its lease lapsed,
        // for the next look (here or on another data plane) to take it.
        let drive_here = self.room() > 0;
        let lease_until_ms = if drive_here {
            now_ms + PAYMENT_LEASE_MS
        } else {
            now_ms
        };
        let list = StoreOp::ListOutgoing {
            id: record.view.id.clone(),
            until_ms: Some(lease_until_ms),
        };
        match store.execute(list).await.map_err(PayError::Store)? {
            StoreAnswer::Listed => {}
            other => return Err(PayError::Store(StoreError::Protocol(format!("{other:?}")))),
        }
        let open = StoreOp::OpenOutgoing {
            id: record.view.id.clone(),
            record: record.to_json(),
            owner: self.owner.clone(),
            lease_until_ms,
            now_ms,
        };
        match store.execute(open).await.map_err(PayError::Store)? {
            StoreAnswer::Opened(Opened::Fresh) => {}
            StoreAnswer::Opened(Opened::Existing(text)) => {
                return PaymentRecord::from_json(&text)
                    .map(|existing| existing.view)
                    .ok_or(PayError::Store(StoreError::Protocol(
                        "unreadable payment".into(),
                    )))
            }
            StoreAnswer::Opened(Opened::QuoteGone) => return Err(PayError::UnknownQuote),
            other => return Err(PayError::Store(StoreError::Protocol(format!("{other:?}")))),
        }
        announce(shard, "outgoing_payment.created", &record.view);
        let view = record.view.clone();
        if drive_here {
            let drive = run::run(Rc::clone(shard), Rc::clone(self), record, leased_at);
            glommio::spawn_local(drive).detach();
        }
        Ok(view)
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

pub(crate) fn random_iv() -> Option<[u8; IV_SIZE]> {
    let mut iv = [0u8; IV_SIZE];
    SystemRandom::new().fill(&mut iv).ok()?;
    Some(iv)
}

fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
