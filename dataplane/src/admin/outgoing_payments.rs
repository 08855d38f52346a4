//! `POST /v1/quotes`, `POST /v1/outgoing-payments`, `GET /v1/outgoing-payments/{id}`:
//! quotes by rate probe and outgoing payments over STREAM, from a wallet.
//!
//! A destination is `{"spsp": "http://host:port/path"}` or `{"ilp_address": "...",
//! "shared_secret": "<base64>"}`; the amount is `send_amount` (fixed send, source
//! units) or `receive_amount` (fixed delivery, destination units); `slippage` is a
//! fraction (default 0.01). A payment names a `quote_id`, or carries a quote request
//! and is quoted first. A quote is paid once: paying it again answers its payment,
//! whose id is the quote's.

use super::{error, json_response, read_body, too_large, Admin};
use crate::outgoing_payments::{Destination, PayError, QuoteError, QuoteRequest};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use riptide_proto::admin_api::{DestinationSpec, PaymentRequest, QuoteRequest as QuoteBody};
use riptide_proto::limits::REQUEST_SIZE_MAX;
use riptide_proto::stream::sender::Target;

const SLIPPAGE_DEFAULT: f64 = 0.01;

pub async fn quote(admin: &Admin, request: Request<Bytes>) -> Response<Full<Bytes>> {
    let Some(body) = read_body(request, REQUEST_SIZE_MAX) else {
        return too_large();
    };
    let request = match serde_json::from_slice::<QuoteBody>(&body)
        .map_err(|e| format!("quote: {e}"))
        .and_then(parse_quote)
    {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    match admin.payments.quote(&admin.shard, request).await {
        Ok(quote) => json_response(StatusCode::CREATED, &quote.view),
        Err(e) => quote_failure(&e),
    }
}

pub async fn pay(admin: &Admin, request: Request<Bytes>) -> Response<Full<Bytes>> {
    let Some(body) = read_body(request, REQUEST_SIZE_MAX) else {
        return too_large();
    };
    let quote_id = match PaymentRequest::from_json(&body) {
        Ok(PaymentRequest::Quoted { quote_id }) => quote_id,
        Ok(PaymentRequest::QuoteFirst(quote)) => {
            let request = match parse_quote(quote) {
                Ok(request) => request,
                Err(message) => return error(StatusCode::BAD_REQUEST, &message),
            };
            match admin.payments.quote(&admin.shard, request).await {
                Ok(quote) => quote.view.id,
                Err(e) => return quote_failure(&e),
            }
        }
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    match admin.payments.pay(&admin.shard, &quote_id).await {
        Ok(payment) => json_response(StatusCode::CREATED, &payment),
        Err(PayError::UnknownQuote) => error(StatusCode::NOT_FOUND, "no such quote"),
        Err(PayError::QuoteExpired) => error(StatusCode::CONFLICT, "the quote expired"),
        Err(e @ PayError::Store(_)) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

pub async fn get(admin: &Admin, id: &str) -> Response<Full<Bytes>> {
    match admin.payments.payment(&admin.shard, id).await {
        Ok(Some(payment)) => json_response(StatusCode::OK, &payment),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such outgoing payment"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn quote_failure(e: &QuoteError) -> Response<Full<Bytes>> {
    let status = match e {
        QuoteError::UnknownWallet(_) => StatusCode::NOT_FOUND,
        QuoteError::Random | QuoteError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        QuoteError::Spsp(_) | QuoteError::Probe(_) | QuoteError::NothingDelivered => {
            StatusCode::BAD_GATEWAY
        }
    };
    error(status, &e.to_string())
}

fn parse_quote(body: QuoteBody) -> Result<QuoteRequest, String> {
    let destination = match body.destination {
        DestinationSpec {
            spsp: Some(url),
            ilp_address: None,
            shared_secret: None,
        } => Destination::Spsp(url),
        DestinationSpec {
            spsp: None,
            ilp_address: Some(address),
            shared_secret: Some(secret),
        } => {
            let shared_secret = STANDARD
                .decode(&secret)
                .or_else(|_| URL_SAFE_NO_PAD.decode(secret.trim_end_matches('=')))
                .ok()
                .filter(|s| s.len() == 32)
                .ok_or("destination.shared_secret: must be 32 bytes in base64")?;
            Destination::Credentials {
                address,
                shared_secret,
            }
        }
        _ => return Err("destination: give spsp, or ilp_address and shared_secret".into()),
    };
    let target = match (body.send_amount, body.receive_amount) {
        (Some(amount), None) => Target::FixedSend(positive(amount, "send_amount")?),
        (None, Some(amount)) => Target::FixedDelivery(positive(amount, "receive_amount")?),
        _ => return Err("give send_amount or receive_amount, not both".into()),
    };
    let slippage = body.slippage.unwrap_or(SLIPPAGE_DEFAULT);
    if !(0.0..1.0).contains(&slippage) {
        return Err("slippage: must be at least 0 and below 1".into());
    }
    Ok(QuoteRequest {
        wallet: body.wallet,
        destination,
        target,
        slippage_ppm: (slippage * 1_000_000.0).round() as u32,
    })
}

fn positive(amount: u64, name: &str) -> Result<u64, String> {
    Some(amount).filter(|amount| *amount > 0).ok_or(format!(
        "{name}: must be a positive integer (a string for values over 2^53)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<QuoteRequest, String> {
        serde_json::from_str::<QuoteBody>(text)
            .map_err(|e| e.to_string())
            .and_then(parse_quote)
    }

    #[test]
    fn quote_requests_are_checked() {
        let ok = parse(r#"{"wallet":"w","destination":{"spsp":"http://127.0.0.1:1/w"},"receive_amount":"500"}"#)
            .expect("valid");
        assert_eq!(
            (ok.target, ok.slippage_ppm),
            (Target::FixedDelivery(500), 10_000)
        );
        for bad in [
            r#"{"wallet":"w","destination":{"spsp":"u"},"send_amount":1,"receive_amount":1}"#,
            r#"{"wallet":"w","destination":{"spsp":"u"}}"#,
            r#"{"wallet":"w","destination":{"spsp":"u"},"send_amount":0}"#,
            r#"{"wallet":"w","destination":{"ilp_address":"g.x"},"send_amount":5}"#,
            r#"{"wallet":"w","destination":{"ilp_address":"g.x","shared_secret":"AAAA"},"send_amount":5}"#,
            r#"{"wallet":"w","destination":{"spsp":"u"},"send_amount":5,"slippage":1.5}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
