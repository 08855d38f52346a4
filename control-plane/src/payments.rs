//! `riptidectl incoming-payment`, `quote`, `pay` and `payment show`: payments through
//! the admin API of the first data plane given that can be reached. Quotes, outgoing
//! and incoming payments live in the receipt store that data planes share, so any
//! of them serves every step (with the embedded store there is one data plane).
//!
//! Reads, and creations that a repeat cannot harm (an incoming payment, fresh
//! credentials, a quote, paying a quote: a quote is paid once, and paid again it
//! answers its payment), are retried like every other command, and go to the next
//! data plane when one cannot be reached. A payment quoted on the way is asked once,
//! of the first data plane: retried after a lost answer it could pay twice. A failed
//! probe (HTTP 502) says why at once.

use crate::cli::{
    DestinationArgs, GlobalArgs, IncomingPaymentAction, PayArgs, PaymentAction, PaymentSpec,
    QuoteArgs,
};
use crate::dataplane_client::{ClientError, DataplaneClient};
use crate::error::CtlError;
use crate::fleet::{with_retries, RetryPolicy};
use crate::limits::{POLL_INTERVAL, PROBE_ANSWER_TIMEOUT_MIN};
use crate::table::{or_dash, render_fields};
use crate::targets::{self, TargetError};
use crate::version::now_unix_ms;
use riptide_proto::admin_api::{
    AssetView, CreateIncomingPayment, DestinationSpec, IncomingPaymentView, OutgoingPaymentState,
    OutgoingPaymentView, PaymentRequest, QuoteRequest, QuoteView, PATH_INCOMING_PAYMENTS,
    PATH_OUTGOING_PAYMENTS, PATH_QUOTES,
};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// One data plane of these commands.
struct Dataplane {
    url: String,
    /// Bounded by `--timeout-ms`.
    client: DataplaneClient,
    /// Bounded by `--timeout-ms`, or [`PROBE_ANSWER_TIMEOUT_MIN`] if that is longer.
    patient: DataplaneClient,
    policy: RetryPolicy,
}

/// The data planes given, in order.
struct Dataplanes {
    list: Vec<Dataplane>,
}

impl Dataplanes {
    fn all(global: &GlobalArgs) -> Result<Dataplanes, CtlError> {
        let targets = targets::resolve(&global.dataplanes, &crate::token_sources(global), None)?;
        if targets.is_empty() {
            return Err(TargetError::NoDataplane.into());
        }
        let timeout = Duration::from_millis(global.timeout_ms);
        let list = targets
            .into_iter()
            .map(|target| Dataplane {
                url: target.url.clone(),
                client: DataplaneClient::new(target.clone(), timeout),
                patient: DataplaneClient::new(target, timeout.max(PROBE_ANSWER_TIMEOUT_MIN)),
                policy: RetryPolicy::new(global.attempts),
            })
            .collect();
        Ok(Dataplanes { list })
    }

    fn first(&self) -> &Dataplane {
        &self.list[0]
    }

    /// `operation` on each data plane in turn until one can be reached: what a
    /// data plane answers, even a refusal, is the answer.
    fn any<T>(
        &self,
        operation: impl Fn(&Dataplane) -> Result<T, CtlError>,
    ) -> Result<(&Dataplane, T), CtlError> {
        let mut last = None;
        for dataplane in &self.list {
            match operation(dataplane) {
                Err(CtlError::Failed(message)) if message.contains("unreachable") => {
                    eprintln!("riptidectl: {message}; trying the next data plane");
                    last = Some(CtlError::Failed(message));
                }
                result => return result.map(|value| (dataplane, value)),
            }
        }
        Err(last.unwrap_or_else(|| TargetError::NoDataplane.into()))
    }

    /// A read on the first data plane that can be reached, each with retries.
    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<(&Dataplane, T), CtlError> {
        self.any(|dataplane| dataplane.retried(|c| c.get(path)))
    }
}

impl Dataplane {
    /// `operation` with the usual retries and backoff.
    fn retried<T>(
        &self,
        operation: impl Fn(&DataplaneClient) -> Result<T, ClientError>,
    ) -> Result<T, CtlError> {
        let (result, _) = with_retries(
            &self.policy,
            &self.url,
            || operation(&self.client),
            &std::thread::sleep,
        );
        result.map_err(|error| self.failure(&error))
    }

    fn failure(&self, error: &ClientError) -> CtlError {
        CtlError::Failed(format!("{}: {error}", self.url))
    }
}

pub fn incoming_payment(
    global: &GlobalArgs,
    action: &IncomingPaymentAction,
) -> Result<(), CtlError> {
    let dataplanes = Dataplanes::all(global)?;
    let (dataplane, answer): (_, IncomingPaymentView) = match action {
        IncomingPaymentAction::Create {
            wallet,
            amount,
            expires_in_s,
        } => {
            let request = incoming_request(wallet, *amount, *expires_in_s);
            dataplanes.any(|d| d.retried(|c| c.post(PATH_INCOMING_PAYMENTS, &request, 201)))?
        }
        IncomingPaymentAction::Show { id } => {
            dataplanes.get(&format!("{PATH_INCOMING_PAYMENTS}/{id}"))?
        }
        IncomingPaymentAction::Credentials { id } => dataplanes.any(|d| {
            d.retried(|c| {
                let path = format!("{PATH_INCOMING_PAYMENTS}/{id}/credentials");
                c.post(&path, &json!({}), 200)
            })
        })?,
    };
    if global.json {
        print_json(&dataplane.url, &answer);
    } else {
        print!(
            "{}",
            render_fields(&incoming_fields(&answer, now_unix_ms()))
        );
    }
    Ok(())
}

/// The body of `POST /v1/incoming-payments`.
fn incoming_request(
    wallet: &str,
    amount: Option<u64>,
    expires_in_s: Option<u64>,
) -> CreateIncomingPayment {
    CreateIncomingPayment {
        wallet: wallet.to_owned(),
        incoming_amount: amount,
        expires_at_ms: None,
        expires_in_ms: expires_in_s.map(|seconds| seconds.saturating_mul(1000)),
    }
}

pub fn quote(global: &GlobalArgs, args: &QuoteArgs) -> Result<(), CtlError> {
    let request = quote_request(&args.wallet, &args.payment)?;
    let dataplanes = Dataplanes::all(global)?;
    let (dataplane, answer): (_, QuoteView) = dataplanes.any(|d| {
        d.patient
            .post(PATH_QUOTES, &request, 201)
            .map_err(|error| d.failure(&error))
    })?;
    if global.json {
        print_json(&dataplane.url, &answer);
    } else {
        print!("{}", render_fields(&quote_fields(&answer, now_unix_ms())));
    }
    Ok(())
}

/// The body of `POST /v1/quotes`, and of a payment quoted on the way. The command
/// line already holds one destination and one amount; this says so if it does not.
fn quote_request(wallet: &str, spec: &PaymentSpec) -> Result<QuoteRequest, CtlError> {
    let destination = match &spec.destination {
        DestinationArgs {
            spsp: Some(url),
            ilp_address: None,
            shared_secret: None,
        } => DestinationSpec {
            spsp: Some(url.clone()),
            ..DestinationSpec::default()
        },
        DestinationArgs {
            spsp: None,
            ilp_address: Some(address),
            shared_secret: Some(secret),
        } => DestinationSpec {
            spsp: None,
            ilp_address: Some(address.clone()),
            shared_secret: Some(secret.clone()),
        },
        _ => {
            return Err(CtlError::Invalid(
                "give --spsp URL, or --ilp-address and --shared-secret".into(),
            ))
        }
    };
    if spec.amount.send.is_some() == spec.amount.receive.is_some() {
        return Err(CtlError::Invalid("give --send N or --receive N".into()));
    }
    Ok(QuoteRequest {
        wallet: wallet.to_owned(),
        destination,
        send_amount: spec.amount.send,
        receive_amount: spec.amount.receive,
        slippage: spec.slippage,
    })
}

pub fn pay(global: &GlobalArgs, args: &PayArgs) -> Result<(), CtlError> {
    let request = match (&args.quote_id, &args.wallet) {
        (Some(id), None) => PaymentRequest::Quoted {
            quote_id: id.clone(),
        },
        (None, Some(wallet)) => PaymentRequest::QuoteFirst(quote_request(wallet, &args.payment)?),
        _ => {
            return Err(CtlError::Invalid(
                "give --quote ID, or a quote request (--wallet, a destination, an amount)".into(),
            ))
        }
    };
    let dataplanes = Dataplanes::all(global)?;
    let post = |d: &Dataplane| {
        d.patient
            .post(PATH_OUTGOING_PAYMENTS, &request, 201)
            .map_err(|error| d.failure(&error))
    };
    let (dataplane, created): (_, OutgoingPaymentView) = match &request {
        // Paying a quote is idempotent: any data plane, with retries.
        PaymentRequest::Quoted { .. } => dataplanes.any(|d| {
            let attempt = || d.patient.post(PATH_OUTGOING_PAYMENTS, &request, 201);
            let (result, _) = with_retries(&d.policy, &d.url, attempt, &std::thread::sleep);
            result.map_err(|error| d.failure(&error))
        })?,
        PaymentRequest::QuoteFirst(_) => {
            let first = dataplanes.first();
            (first, post(first)?)
        }
    };
    let id = created.id.clone();
    if args.no_wait {
        print_payment(&dataplane.url, &created, global.json);
        return Ok(());
    }
    eprintln!(
        "riptidectl: payment {id} created on {}; waiting up to {} s for it to end",
        dataplane.url, args.wait_s
    );
    let path = format!("{PATH_OUTGOING_PAYMENTS}/{id}");
    let started = Instant::now();
    let waited = wait_for_end(
        || {
            let readers = std::iter::once(dataplane).chain(dataplanes.list.iter());
            let mut last = None;
            for reader in readers {
                match reader.client.get(&path) {
                    Err(error @ ClientError::Unreachable(_)) => last = Some(error),
                    answer => return answer,
                }
            }
            Err(last.unwrap_or(ClientError::Unreachable("no data plane".into())))
        },
        created,
        Duration::from_secs(args.wait_s),
        &|| started.elapsed(),
        &std::thread::sleep,
    );
    let (payment, poll_error) = match waited {
        Waited::Ended(payment) => (payment, None),
        Waited::Deadline { latest, poll_error } => (latest, poll_error),
        Waited::Lost(error) => {
            return Err(CtlError::Failed(format!(
                "{}: payment {id}: {error}",
                dataplane.url
            )))
        }
    };
    let verdict = verdict(&payment, args.wait_s, poll_error.as_ref());
    print_payment(&dataplane.url, &payment, global.json);
    verdict
}

/// How a wait for a payment ended.
#[derive(Debug, PartialEq)]
enum Waited {
    /// The payment is no longer sending: its last view.
    Ended(OutgoingPaymentView),
    /// Still sending at the deadline: the last view read, and the error of the last
    /// read if it failed.
    Deadline {
        latest: OutgoingPaymentView,
        poll_error: Option<ClientError>,
    },
    /// A read failed in a way a retry cannot fix (the payment is unknown, the token
    /// refused).
    Lost(ClientError),
}

/// Reads the payment every [`POLL_INTERVAL`] until it is no longer sending or `wait`
/// has passed; `created` is its view at creation.
fn wait_for_end(
    mut poll: impl FnMut() -> Result<OutgoingPaymentView, ClientError>,
    created: OutgoingPaymentView,
    wait: Duration,
    elapsed: &dyn Fn() -> Duration,
    sleep: &dyn Fn(Duration),
) -> Waited {
    let mut latest = created;
    let mut poll_error = None;
    loop {
        if latest.state != OutgoingPaymentState::Sending {
            return Waited::Ended(latest);
        }
        let spent = elapsed();
        if spent >= wait {
            return Waited::Deadline { latest, poll_error };
        }
        sleep(POLL_INTERVAL.min(wait - spent));
        match poll() {
            Ok(payment) => {
                latest = payment;
                poll_error = None;
            }
            Err(error) if error.is_retryable() => poll_error = Some(error),
            Err(error) => return Waited::Lost(error),
        }
    }
}

/// Exit 0 when the payment completed; 1 with the reason otherwise.
fn verdict(
    payment: &OutgoingPaymentView,
    wait_s: u64,
    poll_error: Option<&ClientError>,
) -> Result<(), CtlError> {
    let id = &payment.id;
    let last_error = payment.last_error.as_deref().unwrap_or("none");
    match payment.state {
        OutgoingPaymentState::Completed => Ok(()),
        OutgoingPaymentState::Failed => Err(CtlError::Failed(format!(
            "payment {id} failed: {last_error}"
        ))),
        OutgoingPaymentState::Sending => {
            let unreadable = poll_error
                .map(|e| format!("; the last read failed: {e}"))
                .unwrap_or_default();
            Err(CtlError::Failed(format!(
                "payment {id} still sending after {wait_s} s (last error: {last_error}{unreadable}); \
                 it goes on: `riptidectl payment show {id}`"
            )))
        }
    }
}

pub fn payment(global: &GlobalArgs, action: &PaymentAction) -> Result<(), CtlError> {
    let PaymentAction::Show { id } = action;
    let dataplanes = Dataplanes::all(global)?;
    let (dataplane, answer): (_, OutgoingPaymentView) =
        dataplanes.get(&format!("{PATH_OUTGOING_PAYMENTS}/{id}"))?;
    print_payment(&dataplane.url, &answer, global.json);
    Ok(())
}

fn print_payment(url: &str, payment: &OutgoingPaymentView, json: bool) {
    if json {
        print_json(url, payment);
    } else {
        print!("{}", render_fields(&payment_fields(payment)));
    }
}

/// The data plane's answer with the data plane that gave it.
fn print_json<T: Serialize>(url: &str, answer: &T) {
    let mut answer = serde_json::to_value(answer).unwrap_or(Value::Null);
    if let Some(object) = answer.as_object_mut() {
        object.insert("dataplane".into(), json!(url));
    }
    println!("{answer:#}");
}

/// `1700000000000 (in 60 s)`, or `(expired)`.
fn expiry(at: u64, now_ms: u64) -> String {
    if at > now_ms {
        format!("{at} (in {} s)", (at - now_ms) / 1000)
    } else {
        format!("{at} (expired)")
    }
}

fn asset(asset: Option<&AssetView>) -> String {
    match asset {
        Some(AssetView { code, scale }) => format!("{code} (scale {scale})"),
        None => "-".to_owned(),
    }
}

fn incoming_fields(payment: &IncomingPaymentView, now_ms: u64) -> Vec<(&'static str, String)> {
    let amount = match payment.incoming_amount {
        None => "any".to_owned(),
        Some(amount) => amount.to_string(),
    };
    let mut fields = vec![
        ("id", payment.id.clone()),
        ("wallet", payment.wallet.clone()),
        ("state", payment.state.to_string()),
        ("amount", amount),
        ("received", payment.received.to_string()),
        ("expires_at_ms", expiry(payment.expires_at_ms, now_ms)),
    ];
    // Only a creation or a credentials request carries the credentials.
    if let Some(credentials) = &payment.credentials {
        fields.push(("ilp_address", credentials.ilp_address.clone()));
        fields.push(("shared_secret", credentials.shared_secret.clone()));
        fields.push(("asset", asset(Some(&credentials.asset))));
    }
    fields
}

fn quote_fields(quote: &QuoteView, now_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        ("id", quote.id.clone()),
        ("wallet", quote.wallet.clone()),
        ("destination", quote.destination.clone()),
        ("fixed", quote.fixed.clone()),
        ("source_amount", quote.source_amount.to_string()),
        ("min_delivery_amount", quote.min_delivery_amount.to_string()),
        // As JSON writes them (1.0, 1.2e-5), which the table showed before.
        ("rate", format!("{:?}", quote.rate)),
        ("min_rate", format!("{:?}", quote.min_rate)),
        ("max_packet_amount", quote.max_packet_amount.to_string()),
        ("destination_asset", asset(quote.destination_asset.as_ref())),
        ("expires_at_ms", expiry(quote.expires_at_ms, now_ms)),
    ]
}

fn payment_fields(payment: &OutgoingPaymentView) -> Vec<(&'static str, String)> {
    vec![
        ("id", payment.id.clone()),
        ("state", payment.state.to_string()),
        ("wallet", payment.wallet.clone()),
        ("destination", payment.destination.clone()),
        ("quote_id", payment.quote_id.clone()),
        ("source_amount", payment.source_amount.to_string()),
        (
            "min_delivery_amount",
            payment.min_delivery_amount.to_string(),
        ),
        ("sent", payment.sent.to_string()),
        ("delivered", payment.delivered.to_string()),
        (
            "packets",
            format!(
                "{} fulfilled, {} rejected",
                payment.packets_fulfilled, payment.packets_rejected
            ),
        ),
        ("last_error", or_dash(payment.last_error.clone())),
        ("created_at_ms", payment.created_at_ms.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::AmountArgs;
    use std::cell::{Cell, RefCell};

    fn spec(destination: DestinationArgs, send: Option<u64>, receive: Option<u64>) -> PaymentSpec {
        PaymentSpec {
            destination,
            amount: AmountArgs { send, receive },
            slippage: None,
        }
    }

    fn spsp() -> DestinationArgs {
        DestinationArgs {
            spsp: Some("http://b/shop".into()),
            ilp_address: None,
            shared_secret: None,
        }
    }

    #[test]
    fn requests_carry_amounts_as_strings() {
        assert_eq!(
            quote_request("payer", &spec(spsp(), Some(u64::MAX), None))
                .ok()
                .map(|r| serde_json::to_value(r).expect("encodes")),
            Some(json!({
                "wallet": "payer",
                "destination": { "spsp": "http://b/shop" },
                "send_amount": "18446744073709551615",
            }))
        );
        let credentials = DestinationArgs {
            spsp: None,
            ilp_address: Some("test.b.x".into()),
            shared_secret: Some("c2VjcmV0".into()),
        };
        let mut with_slippage = spec(credentials.clone(), None, Some(5000));
        with_slippage.slippage = Some(0.02);
        assert_eq!(
            quote_request("payer", &with_slippage)
                .ok()
                .map(|r| serde_json::to_value(r).expect("encodes")),
            Some(json!({
                "wallet": "payer",
                "destination": { "ilp_address": "test.b.x", "shared_secret": "c2VjcmV0" },
                "receive_amount": "5000",
                "slippage": 0.02,
            }))
        );
        for bad in [
            spec(spsp(), None, None),
            spec(spsp(), Some(1), Some(1)),
            spec(
                DestinationArgs {
                    shared_secret: None,
                    ..credentials.clone()
                },
                Some(1),
                None,
            ),
            spec(
                DestinationArgs {
                    spsp: Some("http://b/shop".into()),
                    ..credentials
                },
                Some(1),
                None,
            ),
        ] {
            let error = quote_request("payer", &bad).expect_err("invalid");
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
        assert_eq!(
            serde_json::to_value(incoming_request("shop", Some(5000), Some(60))).expect("encodes"),
            json!({ "wallet": "shop", "incoming_amount": "5000", "expires_in_ms": 60_000 })
        );
        assert_eq!(
            serde_json::to_value(incoming_request("shop", None, None)).expect("encodes"),
            json!({ "wallet": "shop" })
        );
    }

    fn view(state: OutgoingPaymentState, sent: u64) -> OutgoingPaymentView {
        OutgoingPaymentView {
            id: "p".into(),
            quote_id: "q".into(),
            wallet: "payer".into(),
            destination: "http://b/shop".into(),
            state,
            source_amount: 10,
            min_delivery_amount: 9,
            sent,
            delivered: sent,
            packets_fulfilled: 3,
            packets_rejected: 0,
            last_error: None,
            created_at_ms: 1,
            destination_asset: None,
        }
    }

    /// A clock that moves only when the wait sleeps.
    struct FakeTime {
        now: Cell<Duration>,
        sleeps: RefCell<Vec<Duration>>,
    }

    impl FakeTime {
        fn new() -> FakeTime {
            FakeTime {
                now: Cell::new(Duration::ZERO),
                sleeps: RefCell::new(Vec::new()),
            }
        }

        fn wait(
            &self,
            poll: impl FnMut() -> Result<OutgoingPaymentView, ClientError>,
            wait: Duration,
        ) -> Waited {
            wait_for_end(
                poll,
                view(OutgoingPaymentState::Sending, 0),
                wait,
                &|| self.now.get(),
                &|d| {
                    self.now.set(self.now.get() + d);
                    self.sleeps.borrow_mut().push(d);
                },
            )
        }
    }

    #[test]
    fn the_wait_ends_when_the_payment_does() {
        let time = FakeTime::new();
        let mut reads = 0;
        let waited = time.wait(
            || {
                reads += 1;
                let state = if reads < 3 {
                    OutgoingPaymentState::Sending
                } else {
                    OutgoingPaymentState::Completed
                };
                Ok(view(state, 0))
            },
            Duration::from_secs(60),
        );
        assert_eq!(
            waited,
            Waited::Ended(view(OutgoingPaymentState::Completed, 0))
        );
        assert_eq!(*time.sleeps.borrow(), vec![POLL_INTERVAL; 3]);
    }

    #[test]
    fn the_wait_is_bounded_and_keeps_the_last_view() {
        let time = FakeTime::new();
        let mut reads = 0u64;
        let waited = time.wait(
            || {
                reads += 1;
                if reads == 4 {
                    Err(ClientError::Unreachable("reset".into()))
                } else {
                    Ok(view(OutgoingPaymentState::Sending, reads))
                }
            },
            Duration::from_millis(700),
        );
        // Reads at 200, 400, 600 and 700 ms: the last one failed.
        assert_eq!(
            waited,
            Waited::Deadline {
                latest: view(OutgoingPaymentState::Sending, 3),
                poll_error: Some(ClientError::Unreachable("reset".into())),
            }
        );
        assert_eq!(time.now.get(), Duration::from_millis(700));
    }

    #[test]
    fn a_payment_that_cannot_be_read_ends_the_wait() {
        let time = FakeTime::new();
        let waited = time.wait(
            || {
                Err(ClientError::Refused {
                    status: 404,
                    message: "no such outgoing payment".into(),
                })
            },
            Duration::from_secs(60),
        );
        assert!(matches!(
            waited,
            Waited::Lost(ClientError::Refused { status: 404, .. })
        ));
    }

    #[test]
    fn only_a_completed_payment_exits_zero() {
        let completed = view(OutgoingPaymentState::Completed, 10);
        assert!(verdict(&completed, 60, None).is_ok());
        let failed = OutgoingPaymentView {
            last_error: Some("T04 insufficient balance".into()),
            ..view(OutgoingPaymentState::Failed, 0)
        };
        let error = verdict(&failed, 60, None).expect_err("failed");
        assert_eq!(error.exit_code(), 1);
        assert!(error.to_string().contains("T04 insufficient balance"));
        let sending = view(OutgoingPaymentState::Sending, 0);
        let unreachable = ClientError::Unreachable("reset".into());
        let error = verdict(&sending, 5, Some(&unreachable)).expect_err("sending");
        assert_eq!(error.exit_code(), 1);
        let message = error.to_string();
        assert!(message.contains("still sending after 5 s"), "{message}");
        assert!(message.contains("unreachable: reset"), "{message}");
    }

    #[test]
    fn records_print_as_fields() {
        let created: IncomingPaymentView = serde_json::from_value(json!({
            "id": "i1", "wallet": "shop", "incoming_amount": null, "received": "0",
            "expires_at_ms": 61_000, "state": "pending", "ilp_address": "test.b.x",
            "shared_secret": "c2VjcmV0", "asset": { "code": "USD", "scale": 2 },
        }))
        .expect("an incoming payment");
        let fields = incoming_fields(&created, 1_000);
        assert!(fields.contains(&("amount", "any".to_owned())));
        assert!(fields.contains(&("expires_at_ms", "61000 (in 60 s)".to_owned())));
        assert!(fields.contains(&("asset", "USD (scale 2)".to_owned())));
        let shown = IncomingPaymentView {
            received: 5000,
            incoming_amount: Some(5000),
            credentials: None,
            ..created
        };
        let fields = incoming_fields(&shown, 1_000);
        assert!(fields.iter().all(|(name, _)| *name != "shared_secret"));
        assert!(fields.contains(&("amount", "5000".to_owned())));
        let fields = payment_fields(&view(OutgoingPaymentState::Sending, 0));
        assert!(fields.contains(&("packets", "3 fulfilled, 0 rejected".to_owned())));
        assert!(fields.contains(&("last_error", "-".to_owned())));
    }
}
