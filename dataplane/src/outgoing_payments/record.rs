//! Quotes and outgoing payments as the receipt store keeps them: JSON records that
//! any data plane sharing the store reads back, so that a payment is shown, and
//! resumed, wherever it was made.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use riptide_proto::admin_api::{OutgoingPaymentState, OutgoingPaymentView, QuoteView};
/// How sending ended, kept before the payment settles: a data plane that takes
/// the payment over then settles it without sending again.
pub use riptide_proto::flow::payment::Outcome;
use riptide_proto::stream::sender::{Ratio, Target};
use serde::{Deserialize, Serialize};

/// What paying a quote needs beyond what the admin API shows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub destination_address: String,
    /// The STREAM shared secret, in base64.
    pub shared_secret: String,
    /// Fixed delivery (the quote's `min_delivery_amount` is the target) or fixed
    /// send (its `source_amount`).
    pub fixed_delivery: bool,
    pub rate: (u64, u64),
    pub min_rate: (u64, u64),
    pub max_packet_amount: u64,
}

impl Terms {
    pub fn new(
        destination_address: String,
        shared_secret: &[u8],
        target: Target,
        (rate, min_rate): (Ratio, Ratio),
        max_packet_amount: u64,
    ) -> Terms {
        Terms {
            destination_address,
            shared_secret: STANDARD.encode(shared_secret),
            fixed_delivery: matches!(target, Target::FixedDelivery(_)),
            rate: (rate.numerator, rate.denominator),
            min_rate: (min_rate.numerator, min_rate.denominator),
            max_packet_amount,
        }
    }

    pub fn shared_secret(&self) -> Option<Vec<u8>> {
        STANDARD.decode(&self.shared_secret).ok()
    }

    pub fn rate(&self) -> Ratio {
        ratio(self.rate)
    }

    pub fn min_rate(&self) -> Ratio {
        ratio(self.min_rate)
    }
}

fn ratio((numerator, denominator): (u64, u64)) -> Ratio {
    Ratio {
        numerator,
        denominator,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteRecord {
    pub view: QuoteView,
    pub terms: Terms,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub view: OutgoingPaymentView,
    pub terms: Terms,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// An upper bound on what the receiver had on the connection before the
    /// payment (the sender's `Progress::receiver_base`): a data plane taking a
    /// fixed delivery over counts the receiver's reports less this.
    #[serde(default)]
    pub receiver_base: Option<u64>,
}

impl PaymentRecord {
    /// The payment of `quote`, sending; it has the quote's id.
    pub fn of_quote(quote: QuoteRecord, now_ms: u64) -> PaymentRecord {
        let view = OutgoingPaymentView {
            id: quote.view.id.clone(),
            quote_id: quote.view.id,
            wallet: quote.view.wallet,
            destination: quote.view.destination,
            state: OutgoingPaymentState::Sending,
            source_amount: quote.view.source_amount,
            min_delivery_amount: quote.view.min_delivery_amount,
            sent: 0,
            delivered: 0,
            packets_fulfilled: 0,
            packets_rejected: 0,
            last_error: None,
            created_at_ms: now_ms,
            destination_asset: quote.view.destination_asset,
        };
        PaymentRecord {
            view,
            terms: quote.terms,
            outcome: None,
            receiver_base: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Option<PaymentRecord> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_exactly() {
        let terms = Terms::new(
            "test.b.x".into(),
            &[7; 32],
            Target::FixedDelivery(5),
            (
                Ratio {
                    numerator: u64::MAX,
                    denominator: 3,
                },
                Ratio {
                    numerator: 1,
                    denominator: 2,
                },
            ),
            u64::MAX,
        );
        let quote = QuoteRecord {
            view: QuoteView {
                id: "q1".into(),
                wallet: "w".into(),
                destination: "test.b.x".into(),
                source_amount: u64::MAX,
                min_delivery_amount: 5,
                rate: 0.5,
                min_rate: 0.5,
                max_packet_amount: u64::MAX,
                destination_asset: None,
                fixed: "delivery".into(),
                expires_at_ms: 9,
            },
            terms,
        };
        let mut record = PaymentRecord::of_quote(quote, 3);
        record.outcome = Some(Outcome::Failed("why".into()));
        let back = PaymentRecord::from_json(&record.to_json()).expect("reads back");
        assert_eq!(back, record);
        assert_eq!(back.view.source_amount, u64::MAX);
        assert_eq!(back.terms.rate().numerator, u64::MAX);
        assert_eq!(back.terms.shared_secret(), Some(vec![7; 32]));
        assert!(PaymentRecord::from_json("{}").is_none());
    }
}
