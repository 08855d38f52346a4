//! The admin API: the contract between `riptidectl` and each data plane, typed once
//! here and used by both sides (the data plane serializes these answers and parses
//! these requests; `riptidectl` does the reverse). Every body is JSON.
//!
//! Amounts are decimal strings in answers, so that clients in JavaScript lose no
//! digits; requests may give them as strings or as JSON numbers. Unknown fields in a
//! request are refused, so a misspelt field is an error rather than a default.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `GET` and `PUT`: the state document in force (a
/// [`StateDocument`](crate::state::StateDocument)).
pub const PATH_STATE: &str = "/v1/state";
/// `GET`: a [`StatusReport`].
pub const PATH_STATUS: &str = "/v1/status";
/// `POST` a [`LiquidityRequest`]: a [`LiquidityAnswer`].
pub const PATH_LIQUIDITY: &str = "/v1/liquidity";
/// `GET`: a [`BalancesReport`].
pub const PATH_BALANCES: &str = "/v1/balances";
/// `GET` (`?idle=true` when no traffic flows): an
/// [`AuditReport`](crate::ledger::audit::AuditReport).
pub const PATH_AUDIT: &str = "/v1/audit";
/// `POST` a [`CreateIncomingPayment`]: an [`IncomingPaymentView`] with credentials;
/// `GET {PATH}/{id}`: the payment; `POST {PATH}/{id}/credentials`: fresh credentials.
pub const PATH_INCOMING_PAYMENTS: &str = "/v1/incoming-payments";
/// `POST` a [`QuoteRequest`]: a [`QuoteView`].
pub const PATH_QUOTES: &str = "/v1/quotes";
/// `POST` a [`PaymentRequest`]: an [`OutgoingPaymentView`]; `GET {PATH}/{id}`: it.
pub const PATH_OUTGOING_PAYMENTS: &str = "/v1/outgoing-payments";

/// Integers as decimal strings in answers; strings or JSON numbers in requests.
pub mod decimal {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Integer {
        Text(String),
        Number(u64),
        Negative(i64),
    }

    pub fn serialize<T: Display, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, T: FromStr, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let text = match Integer::deserialize(deserializer)? {
            Integer::Text(text) => text,
            Integer::Number(number) => number.to_string(),
            Integer::Negative(number) => number.to_string(),
        };
        text.parse()
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not an integer in range")))
    }

    /// The same for an optional integer; `null` or absent is `None`.
    pub mod option {
        use super::Integer;
        use serde::{Deserialize, Deserializer, Serializer};
        use std::fmt::Display;
        use std::str::FromStr;

        pub fn serialize<T: Display, S: Serializer>(
            value: &Option<T>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => serializer.collect_str(value),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, T: FromStr, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<T>, D::Error> {
            match Option::<Integer>::deserialize(deserializer)? {
                None => Ok(None),
                Some(Integer::Text(text)) => text.parse().map(Some).map_err(|_| {
                    serde::de::Error::custom(format!("{text:?} is not an integer in range"))
                }),
                Some(Integer::Number(number)) => number
                    .to_string()
                    .parse()
                    .map(Some)
                    .map_err(|_| serde::de::Error::custom("integer out of range")),
                Some(Integer::Negative(_)) => Err(serde::de::Error::custom("must not be negative")),
            }
        }
    }
}

/// The body of every refusal; `version` with a 409 on `PUT /v1/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// The answer to `PUT /v1/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateApplied {
    /// The version in force after the call.
    pub version: u64,
    /// False when the document had the version in force already.
    pub changed: bool,
    /// Applied, with something the operator must know (an initial liquidity changed
    /// after its deposit, which moves nothing by itself). Absent when there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// `GET /v1/status`: what a data plane runs and what it has done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: u64,
    // The rest defaults, so that `riptidectl` reads the version of a data plane
    // whose report has other fields.
    #[serde(default)]
    pub ilp_address: String,
    #[serde(default)]
    pub shards: u32,
    /// Each peer's packets by outcome: `fulfilled`, `invalid`, or a reject code.
    #[serde(default)]
    pub peers: BTreeMap<String, BTreeMap<String, u64>>,
    /// Ledger requests that failed for good, by kind (`post`, `void`, ...).
    #[serde(default)]
    pub ledger_failures: BTreeMap<String, u64>,
}

/// Which account a liquidity move goes in or out of: `peer:<id>`, `asset:<code>` or
/// `wallet:<id>` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LiquidityAccount {
    Peer(String),
    Asset(String),
    /// A wallet's account: a deposit funds its outgoing payments.
    Wallet(String),
}

impl TryFrom<String> for LiquidityAccount {
    type Error = String;

    fn try_from(text: String) -> Result<LiquidityAccount, String> {
        match text.split_once(':') {
            Some(("peer", id)) => Ok(LiquidityAccount::Peer(id.to_owned())),
            Some(("asset", code)) => Ok(LiquidityAccount::Asset(code.to_owned())),
            Some(("wallet", id)) => Ok(LiquidityAccount::Wallet(id.to_owned())),
            _ => Err("account: must be peer:<id>, asset:<code> or wallet:<id>".into()),
        }
    }
}

impl From<LiquidityAccount> for String {
    fn from(account: LiquidityAccount) -> String {
        account.to_string()
    }
}

impl fmt::Display for LiquidityAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiquidityAccount::Peer(id) => write!(f, "peer:{id}"),
            LiquidityAccount::Asset(code) => write!(f, "asset:{code}"),
            LiquidityAccount::Wallet(id) => write!(f, "wallet:{id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiquidityDirection {
    Deposit,
    Withdraw,
}

impl fmt::Display for LiquidityDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LiquidityDirection::Deposit => "deposit",
            LiquidityDirection::Withdraw => "withdraw",
        })
    }
}

/// `POST /v1/liquidity`: moves `amount` between an account and its asset's
/// settlement account, once per `idempotency_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidityRequest {
    pub account: LiquidityAccount,
    pub direction: LiquidityDirection,
    #[serde(with = "decimal")]
    pub amount: u64,
    pub idempotency_key: String,
}

impl LiquidityRequest {
    /// Parses and checks a request body; the error names the field.
    pub fn from_json(body: &[u8]) -> Result<LiquidityRequest, String> {
        let request: LiquidityRequest =
            serde_json::from_slice(body).map_err(|e| format!("liquidity request: {e}"))?;
        if request.amount == 0 {
            return Err(
                "amount: must be a positive integer (a string for values over 2^53)".into(),
            );
        }
        Ok(request)
    }
}

/// The answer to `POST /v1/liquidity`: false when the key had moved it already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiquidityAnswer {
    pub created: bool,
}

/// `GET /v1/balances`: every account of the chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancesReport {
    pub version: u64,
    pub accounts: Vec<AccountBalance>,
}

/// One account's balances; amounts as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    pub kind: String,
    pub name: String,
    pub asset: String,
    /// 32 hex digits.
    pub account_id: String,
    /// False when the ledger has no such account (yet).
    pub exists: bool,
    #[serde(with = "decimal")]
    pub credits_posted: u128,
    #[serde(with = "decimal")]
    pub debits_posted: u128,
    #[serde(with = "decimal")]
    pub credits_pending: u128,
    #[serde(with = "decimal")]
    pub debits_pending: u128,
    /// Credits less debits, posted.
    #[serde(with = "decimal")]
    pub balance: i128,
}

/// `POST /v1/incoming-payments`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIncomingPayment {
    pub wallet: String,
    /// The amount it completes at; absent for any amount.
    #[serde(
        default,
        with = "decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub incoming_amount: Option<u64>,
    /// Absolute expiry (Unix ms); or `expires_in_ms` from now; by default one day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncomingPaymentState {
    Pending,
    Completed,
    Expired,
}

impl fmt::Display for IncomingPaymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IncomingPaymentState::Pending => "pending",
            IncomingPaymentState::Completed => "completed",
            IncomingPaymentState::Expired => "expired",
        })
    }
}

/// An asset as payments name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetView {
    pub code: String,
    pub scale: u8,
}

/// What a sender pays an incoming payment with: a STREAM destination and secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCredentials {
    pub ilp_address: String,
    /// 32 bytes, standard base64.
    pub shared_secret: String,
    /// What the wallet receives in.
    pub asset: AssetView,
}

/// An incoming payment; a creation and a credentials request carry credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingPaymentView {
    pub id: String,
    pub wallet: String,
    #[serde(with = "decimal::option")]
    pub incoming_amount: Option<u64>,
    #[serde(with = "decimal")]
    pub received: u64,
    pub expires_at_ms: u64,
    pub state: IncomingPaymentState,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<StreamCredentials>,
}

/// Where a quoted payment goes: `{"spsp": URL}`, or an ILP address with a shared
/// secret (base64).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spsp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ilp_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_secret: Option<String>,
}

/// `POST /v1/quotes`: `send_amount` (fixed send, source units) or `receive_amount`
/// (fixed delivery, destination units); `slippage` a fraction (default 0.01).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub wallet: String,
    pub destination: DestinationSpec,
    #[serde(
        default,
        with = "decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub send_amount: Option<u64>,
    #[serde(
        default,
        with = "decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub receive_amount: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slippage: Option<f64>,
}

/// `POST /v1/outgoing-payments`: a quote made earlier, or a quote to make first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PaymentRequest {
    Quoted { quote_id: String },
    QuoteFirst(QuoteRequest),
}

impl PaymentRequest {
    /// Parses a body: `quote_id` alone, or the fields of a [`QuoteRequest`] (unknown
    /// fields refused). serde cannot deny unknown fields beside a flatten, so the two
    /// shapes are told apart here.
    pub fn from_json(body: &[u8]) -> Result<PaymentRequest, String> {
        let mut fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(body).map_err(|e| format!("payment: {e}"))?;
        let quote_id = fields.remove("quote_id");
        match (quote_id, fields.is_empty()) {
            (Some(serde_json::Value::String(quote_id)), true) => {
                Ok(PaymentRequest::Quoted { quote_id })
            }
            (None, false) => serde_json::from_value::<QuoteRequest>(fields.into())
                .map(PaymentRequest::QuoteFirst)
                .map_err(|e| format!("payment: {e}")),
            (Some(other), true) if !other.is_string() => {
                Err("payment: quote_id must be a string".into())
            }
            _ => Err(
                "payment: give quote_id, or a quote request (wallet, destination, amount), not both"
                    .into(),
            ),
        }
    }
}

/// A priced payment, payable until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteView {
    pub id: String,
    pub wallet: String,
    pub destination: String,
    #[serde(with = "decimal")]
    pub source_amount: u64,
    #[serde(with = "decimal")]
    pub min_delivery_amount: u64,
    /// Destination units per source unit, as probed and after slippage.
    pub rate: f64,
    pub min_rate: f64,
    #[serde(with = "decimal")]
    pub max_packet_amount: u64,
    pub destination_asset: Option<AssetView>,
    /// `send` or `delivery`: which amount the quote holds fixed.
    pub fixed: String,
    pub expires_at_ms: u64,
}

/// Where an outgoing payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutgoingPaymentState {
    Sending,
    Completed,
    Failed,
}

impl fmt::Display for OutgoingPaymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutgoingPaymentState::Sending => "sending",
            OutgoingPaymentState::Completed => "completed",
            OutgoingPaymentState::Failed => "failed",
        })
    }
}

/// An outgoing payment as `GET /v1/outgoing-payments/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingPaymentView {
    pub id: String,
    pub quote_id: String,
    pub wallet: String,
    pub destination: String,
    pub state: OutgoingPaymentState,
    #[serde(with = "decimal")]
    pub source_amount: u64,
    #[serde(with = "decimal")]
    pub min_delivery_amount: u64,
    #[serde(with = "decimal")]
    pub sent: u64,
    #[serde(with = "decimal")]
    pub delivered: u64,
    pub packets_fulfilled: u64,
    pub packets_rejected: u64,
    pub last_error: Option<String>,
    pub created_at_ms: u64,
    /// The receiver's asset, when its SPSP answer or the probes named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_asset: Option<AssetView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_strings_out_and_strings_or_numbers_in() {
        let request: LiquidityRequest = serde_json::from_str(
            r#"{"account":"peer:alice","direction":"deposit","amount":"18446744073709551615","idempotency_key":"k"}"#,
        )
        .expect("valid");
        assert_eq!(request.amount, u64::MAX);
        assert_eq!(request.account, LiquidityAccount::Peer("alice".into()));
        let number: LiquidityRequest = serde_json::from_str(
            r#"{"account":"asset:USD","direction":"withdraw","amount":5,"idempotency_key":"k"}"#,
        )
        .expect("valid");
        assert_eq!(number.amount, 5);
        let text = serde_json::to_string(&number).expect("encodes");
        assert!(text.contains(r#""amount":"5""#) && text.contains(r#""account":"asset:USD""#));
        assert_eq!(
            serde_json::from_str::<LiquidityRequest>(&text).expect("round trip"),
            number
        );
    }

    #[test]
    fn liquidity_requests_are_checked_field_by_field() {
        let error = |body: &str| LiquidityRequest::from_json(body.as_bytes()).expect_err("bad");
        assert!(
            error(r#"{"account":"x","direction":"deposit","amount":1,"idempotency_key":"k"}"#)
                .contains("peer:<id>")
        );
        assert!(
            error(r#"{"account":"peer:a","direction":"up","amount":1,"idempotency_key":"k"}"#)
                .contains("`deposit` or `withdraw`")
        );
        assert!(error(
            r#"{"account":"peer:a","direction":"deposit","amount":0,"idempotency_key":"k"}"#
        )
        .contains("positive"));
        assert!(error(
            r#"{"account":"peer:a","direction":"deposit","amount":-1,"idempotency_key":"k"}"#
        )
        .contains("integer"));
        assert!(error(
            r#"{"account":"peer:a","direction":"deposit","amount":1,"idempotency_key":"k","x":1}"#
        )
        .contains("unknown field"));
    }

    #[test]
    fn payment_requests_name_a_quote_or_carry_one() {
        assert_eq!(
            PaymentRequest::from_json(br#"{"quote_id":"q"}"#),
            Ok(PaymentRequest::Quoted {
                quote_id: "q".into()
            })
        );
        let quoted = PaymentRequest::from_json(
            br#"{"wallet":"w","destination":{"spsp":"http://h/p"},"send_amount":"5"}"#,
        )
        .expect("valid");
        let PaymentRequest::QuoteFirst(request) = &quoted else {
            panic!("a quote request")
        };
        assert_eq!(request.send_amount, Some(5));
        let text = serde_json::to_vec(&quoted).expect("encodes");
        assert_eq!(PaymentRequest::from_json(&text), Ok(quoted));
        for body in [
            r#"{"quote_id":"q","wallet":"w"}"#,
            r#"{}"#,
            r#"{"quote_id":5}"#,
            r#"{"wallet":"w","destination":{},"send_amount":"5","tip":1}"#,
            r#"[1]"#,
        ] {
            assert!(
                PaymentRequest::from_json(body.as_bytes()).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn incoming_payments_carry_credentials_only_when_minted() {
        let view = IncomingPaymentView {
            id: "i".into(),
            wallet: "w".into(),
            incoming_amount: None,
            received: 7,
            expires_at_ms: 1,
            state: IncomingPaymentState::Pending,
            credentials: None,
        };
        let text = serde_json::to_string(&view).expect("encodes");
        assert!(text.contains(r#""incoming_amount":null"#) && !text.contains("ilp_address"));
        assert_eq!(
            serde_json::from_str::<IncomingPaymentView>(&text).expect("round trip"),
            view
        );
        let with = IncomingPaymentView {
            credentials: Some(StreamCredentials {
                ilp_address: "g.x".into(),
                shared_secret: "AAAA".into(),
                asset: AssetView {
                    code: "USD".into(),
                    scale: 2,
                },
            }),
            ..view
        };
        let text = serde_json::to_string(&with).expect("encodes");
        assert!(text.contains(r#""ilp_address":"g.x""#));
        assert_eq!(
            serde_json::from_str::<IncomingPaymentView>(&text).expect("round trip"),
            with
        );
    }
}
