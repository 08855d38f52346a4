//! `POST /v1/incoming-payments` and `GET /v1/incoming-payments/{id}`: incoming
//! payments live in the receipt store, so every data plane sharing it sees them; the
//! answer to a creation carries the STREAM credentials a sender pays with.

use super::{error, json_response, read_body, too_large, Admin};
use crate::clock::unix_now_ms;
use crate::limits::INCOMING_AMOUNT_MAX;
use crate::limits::{EXPIRY_MS_DEFAULT, EXPIRY_MS_MAX};
use crate::store::{IncomingPayment, StoreAnswer, StoreOp};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use riptide_proto::admin_api::{
    AssetView, CreateIncomingPayment, IncomingPaymentState, IncomingPaymentView, StreamCredentials,
};
use riptide_proto::limits::REQUEST_SIZE_MAX;
use riptide_proto::stream::{ServerSecret, TokenDetails, IV_SIZE};

pub async fn create(admin: &Admin, request: Request<Bytes>) -> Response<Full<Bytes>> {
    let Some(body) = read_body(request, REQUEST_SIZE_MAX) else {
        return too_large();
    };
    let now_ms = unix_now_ms();
    let payment = match parse_create(&body, now_ms) {
        Ok(payment) => payment,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let credentials = match mint_credentials(admin, &payment) {
        Ok(credentials) => credentials,
        Err(refusal) => return refusal.response(),
    };
    let op = StoreOp::CreatePayment {
        payment: payment.clone(),
        watch: admin.shard.shared.webhooks.enabled(),
    };
    match admin.shard.store().execute(op).await {
        Ok(StoreAnswer::Created) => {}
        Ok(other) => return error(StatusCode::BAD_GATEWAY, &format!("store: {other:?}")),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    announce(admin, &payment, now_ms);
    let mut view = describe(&payment, now_ms);
    view.credentials = Some(credentials);
    json_response(StatusCode::CREATED, &view)
}

/// The `incoming_payment.created` event (the store watches for its completion or
/// expiry: [`StoreOp::CreatePayment`]'s `watch`).
fn announce(admin: &Admin, payment: &IncomingPayment, now_ms: u64) {
    let webhooks = &admin.shard.shared.webhooks;
    if !webhooks.enabled() {
        return;
    }
    let snapshot = admin.shard.shared.snapshot.load();
    let data = crate::webhooks::watch::incoming_payment_data(payment, &snapshot, now_ms);
    webhooks.emit("incoming_payment.created", data);
}

/// Fresh credentials for an existing pending payment: one more connection to pay
/// it through, as Open Payments hands one to each client that asks.
pub async fn credentials(admin: &Admin, id: &str) -> Response<Full<Bytes>> {
    let payment = match lookup(admin, id).await {
        Ok(payment) => payment,
        Err(refusal) => return refusal.response(),
    };
    let now_ms = unix_now_ms();
    if payment.state(now_ms) != IncomingPaymentState::Pending {
        return error(
            StatusCode::CONFLICT,
            "incoming payment is no longer pending",
        );
    }
    match mint_credentials(admin, &payment) {
        Ok(credentials) => {
            let mut view = describe(&payment, now_ms);
            view.credentials = Some(credentials);
            json_response(StatusCode::OK, &view)
        }
        Err(refusal) => refusal.response(),
    }
}

/// Why an admin request is refused: the status and the message for the body.
struct Refusal(StatusCode, String);

impl Refusal {
    fn new(status: StatusCode, message: &str) -> Refusal {
        Refusal(status, message.to_owned())
    }

    fn response(&self) -> Response<Full<Bytes>> {
        error(self.0, &self.1)
    }
}

/// The STREAM destination and shared secret (base64) that pay `payment`, with the
/// asset its wallet receives in.
fn mint_credentials(
    admin: &Admin,
    payment: &IncomingPayment,
) -> Result<StreamCredentials, Refusal> {
    let snapshot = admin.shard.shared.snapshot.load_full();
    let Some(wallet) = snapshot.wallet(&payment.wallet) else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "wallet: no such wallet in the state",
        ));
    };
    let asset = snapshot.asset(wallet.asset);
    let mut iv = [0u8; IV_SIZE];
    SystemRandom::new()
        .fill(&mut iv)
        .map_err(|_| Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "no randomness"))?;
    let details = TokenDetails {
        payment_tag: Some(payment.id.clone()),
        receipt: None,
        asset: Some((asset.code.clone(), asset.scale)),
    };
    let credentials = ServerSecret::new(&admin.node.stream_secret)
        .generate_credentials(&snapshot.own_address, iv, &details)
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    Ok(StreamCredentials {
        ilp_address: credentials.destination,
        shared_secret: STANDARD.encode(credentials.shared_secret),
        asset: AssetView {
            code: asset.code.clone(),
            scale: asset.scale,
        },
    })
}

async fn lookup(admin: &Admin, id: &str) -> Result<IncomingPayment, Refusal> {
    let not_found = || Refusal::new(StatusCode::NOT_FOUND, "no such incoming payment");
    if !crate::store::is_payment_id(id) {
        return Err(not_found());
    }
    let op = StoreOp::GetPayment { id: id.to_owned() };
    match admin.shard.store().execute(op).await {
        Ok(StoreAnswer::Payment(Some(payment))) => Ok(payment),
        Ok(_) => Err(not_found()),
        Err(e) => Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
        )),
    }
}

pub async fn get(admin: &Admin, id: &str) -> Response<Full<Bytes>> {
    match lookup(admin, id).await {
        Ok(payment) => json_response(StatusCode::OK, &describe(&payment, unix_now_ms())),
        Err(refusal) => refusal.response(),
    }
}

fn describe(payment: &IncomingPayment, now_ms: u64) -> IncomingPaymentView {
    IncomingPaymentView {
        id: payment.id.clone(),
        wallet: payment.wallet.clone(),
        incoming_amount: payment.incoming_amount,
        received: payment.received,
        expires_at_ms: payment.expires_at_ms,
        state: payment.state(now_ms),
        credentials: None,
    }
}

fn parse_create(body: &[u8], now_ms: u64) -> Result<IncomingPayment, String> {
    let request: CreateIncomingPayment =
        serde_json::from_slice(body).map_err(|e| format!("incoming payment: {e}"))?;
    let incoming_amount = request
        .incoming_amount
        .map(|amount| {
            Some(amount)
                .filter(|a| (1..=INCOMING_AMOUNT_MAX).contains(a))
                .ok_or(format!(
                    "incoming_amount: must be an integer from 1 to {INCOMING_AMOUNT_MAX}"
                ))
        })
        .transpose()?;
    let expires_at_ms = match (request.expires_at_ms, request.expires_in_ms) {
        (Some(_), Some(_)) => return Err("give expires_at_ms or expires_in_ms, not both".into()),
        (Some(at), None) => at,
        (None, Some(within)) => now_ms.saturating_add(within),
        (None, None) => now_ms + EXPIRY_MS_DEFAULT,
    };
    if expires_at_ms <= now_ms || expires_at_ms > now_ms + EXPIRY_MS_MAX {
        return Err("expiry: must be in the future and within a year".into());
    }
    Ok(IncomingPayment {
        id: crate::webhooks::random_uuid().ok_or("no randomness")?,
        wallet: request.wallet,
        incoming_amount,
        expires_at_ms,
        received: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_requests_are_checked() {
        let ok = parse_create(
            br#"{"wallet":"shop","incoming_amount":"500","expires_in_ms":1000}"#,
            10,
        )
        .expect("valid");
        assert_eq!((ok.incoming_amount, ok.expires_at_ms), (Some(500), 1010));
        assert!(crate::store::is_payment_id(&ok.id));
        for bad in [
            &br#"{"wallet":"shop","incoming_amount":0}"#[..],
            br#"{"wallet":"shop","incoming_amount":"9007199254740992"}"#,
            br#"{"wallet":"shop","incoming_amount":-3}"#,
            br#"{"wallet":"shop","expires_at_ms":5}"#,
            br#"{"wallet":"shop","expires_at_ms":50,"expires_in_ms":5}"#,
            br#"{"wallet":"shop","colour":"red"}"#,
            br#"not json"#,
        ] {
            assert!(
                parse_create(bad, 10).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
