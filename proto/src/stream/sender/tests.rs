//! The sender against Riptide's own sans-IO receiver, over a simulated path that
//! converts amounts, caps packets (F08) and can run short of liquidity (T04).

use super::*;
use crate::packet::{Fulfill, Reject};
use crate::stream::receiver::{
    self, Arrival, ConnectionContext, CreditOutcome, Reply, Step, TargetState,
};

const SECRET: [u8; 32] = [9; 32];
const DESTINATION: &str = "test.receiver.connection";

/// A path to a receiver: rate `numerator/denominator`, an optional max packet
/// amount, a receiver cap, and a number of T04s to answer first.
struct Path {
    rate: Ratio,
    max_packet: Option<u64>,
    cap: Option<u64>,
    t04_first: u32,
    total: u64,
    context: ConnectionContext,
}

impl Path {
    fn new(rate: Ratio) -> Path {
        Path {
            rate,
            max_packet: None,
            cap: None,
            t04_first: 0,
            total: 0,
            context: ConnectionContext {
                keys: StreamKeys::new(&SECRET),
                asset_code: "EUR".into(),
                asset_scale: 2,
                receipts: None,
            },
        }
    }

    fn answer(&mut self, prepare_bytes: &[u8]) -> Vec<u8> {
        let prepare = Prepare::parse(prepare_bytes).expect("sender makes valid Prepares");
        let reject = |code: ErrorCode, data: &[u8]| {
            Reject {
                code,
                triggered_by: "test.connector",
                message: b"",
                data,
            }
            .to_bytes()
        };
        if let Some(max) = self.max_packet {
            if prepare.amount > max {
                let data = AmountTooLargeData {
                    amount_received: prepare.amount,
                    amount_max: max,
                }
                .to_bytes();
                return reject(ErrorCode::F08, &data);
            }
        }
        if self.t04_first > 0 && prepare.amount > 0 {
            self.t04_first -= 1;
            return reject(ErrorCode::T04, b"");
        }
        let arrived = self.rate.floor_mul(prepare.amount);
        let arrival = Arrival {
            amount: arrived,
            execution_condition: prepare.execution_condition,
            data: prepare.data,
        };
        let step = receiver::receive(
            &self.context,
            arrival,
            TargetState::Open,
            receiver::Known {
                connection_total: self.total,
                remaining: self.cap.map(|c| c - self.total),
            },
            [4; 12],
            &mut Vec::new(),
        );
        let reply = match step {
            Step::Reply(reply) => reply,
            Step::Credit(credit) => {
                let outcome = match self.cap {
                    Some(cap) if self.total + credit.amount > cap => CreditOutcome::Exceeds {
                        connection_total: self.total,
                        remaining: cap - self.total,
                    },
                    cap => {
                        self.total += credit.amount;
                        CreditOutcome::Credited {
                            connection_total: self.total,
                            remaining: cap.map(|c| c - self.total),
                        }
                    }
                };
                receiver::settle(&self.context, &credit, outcome, [5; 12])
            }
        };
        match reply {
            Reply::Fulfill { fulfillment, data } => Fulfill {
                fulfillment: &fulfillment,
                data: &data,
            }
            .to_bytes(),
            Reply::Reject { code, data } => reject(code, &data),
        }
    }
}

fn ivs() -> impl FnMut() -> [u8; IV_SIZE] {
    let mut counter = 0u32;
    move || {
        counter += 1;
        let mut iv = [0u8; IV_SIZE];
        iv[..4].copy_from_slice(&counter.to_be_bytes());
        iv
    }
}

fn probe(path: &mut Path) -> Result<ProbeResult, SendError> {
    let mut probe = RateProbe::new(DESTINATION, &SECRET).expect("valid destination");
    for (sequence, prepare) in probe.packets(0, ivs()) {
        let reply = path.answer(&prepare);
        probe.on_reply(sequence, Answer::parse(&reply));
    }
    probe.result()
}

fn pay(path: &mut Path, options: SenderOptions) -> (Result<(), SendError>, Progress) {
    let mut sender = StreamSender::new(DESTINATION, &SECRET, options).expect("valid destination");
    let mut next_iv = ivs();
    let mut now_ms = 0;
    for _ in 0..10_000 {
        match sender.poll(now_ms, next_iv()) {
            Action::Send {
                sequence, prepare, ..
            } => {
                let reply = path.answer(&prepare);
                sender.on_reply(sequence, Answer::parse(&reply), now_ms);
            }
            Action::Wait { until_ms } => now_ms = until_ms.unwrap_or(now_ms + 1).max(now_ms + 1),
            Action::Done(outcome) => return (outcome, sender.progress()),
        }
    }
    panic!("the payment did not end in 10,000 steps");
}

fn options(target: Target, rate: Ratio, max_packet_amount: u64) -> SenderOptions {
    SenderOptions {
        target,
        min_rate: rate.reduced_by_ppm(10_000),
        rate,
        max_packet_amount,
        source_amount_max: u64::MAX,
        in_flight_max: 1,
        retries_max: 5,
        resumed: None,
    }
}

const HALF: Ratio = Ratio {
    numerator: 1,
    denominator: 2,
};

#[test]
fn probe_finds_rate_max_packet_and_asset() {
    let mut path = Path::new(HALF);
    path.max_packet = Some(50_000);
    let result = probe(&mut path).expect("probe reaches the receiver");
    assert_eq!(result.rate.as_f64(), 0.5);
    assert_eq!(result.max_packet_amount, 50_000);
    assert_eq!(result.asset, Some(("EUR".into(), 2)));
    assert_eq!(path.total, 0, "probes move nothing");
}

#[test]
fn probe_without_a_receiver_fails_with_the_last_reject() {
    let mut probe = RateProbe::new(DESTINATION, &SECRET).expect("valid");
    for (sequence, _) in probe.packets(0, ivs()) {
        let reject = Reject {
            code: ErrorCode::F02,
            triggered_by: "x",
            message: b"",
            data: b"",
        }
        .to_bytes();
        probe.on_reply(sequence, Answer::parse(&reject));
    }
    assert_eq!(
        probe.result(),
        Err(SendError::RateProbeFailed("F02".into()))
    );
}

#[test]
fn fixed_send_pays_exactly_in_path_sized_packets() {
    let mut path = Path::new(HALF);
    path.max_packet = Some(1_000);
    // The quote did not know the limit: the first packet learns it from F08.
    let (outcome, progress) = pay(&mut path, options(Target::FixedSend(10_001), HALF, 5_000));
    assert_eq!(outcome, Ok(()));
    assert_eq!(progress.sent, 10_001);
    assert_eq!(progress.delivered, path.total);
    assert_eq!(progress.packets_fulfilled, 11);
}

#[test]
fn fixed_delivery_delivers_exactly() {
    let mut path = Path::new(HALF);
    let (outcome, progress) = pay(&mut path, options(Target::FixedDelivery(777), HALF, 100));
    assert_eq!(outcome, Ok(()));
    assert_eq!((progress.delivered, path.total), (777, 777));
    assert_eq!(progress.sent, 1_554);
}

#[test]
fn temporary_rejects_are_retried_then_given_up() {
    let mut path = Path::new(HALF);
    path.t04_first = 3;
    let (outcome, progress) = pay(&mut path, options(Target::FixedSend(400), HALF, 1_000));
    assert_eq!((outcome, progress.sent), (Ok(()), 400));

    let mut dry = Path::new(HALF);
    dry.t04_first = u32::MAX;
    let (outcome, progress) = pay(&mut dry, options(Target::FixedSend(400), HALF, 1_000));
    assert_eq!(
        outcome,
        Err(SendError::TooManyRetries(5, "T04".into())),
        "no message, code alone"
    );
    assert_eq!((progress.sent, dry.total), (0, 0));
}

#[test]
fn a_worse_rate_than_the_minimum_stops_the_payment() {
    let mut path = Path::new(Ratio {
        numerator: 1,
        denominator: 3,
    });
    let (outcome, progress) = pay(&mut path, options(Target::FixedSend(900), HALF, 300));
    assert_eq!(outcome, Err(SendError::InsufficientExchangeRate));
    assert_eq!(progress.delivered, 0);
}

#[test]
fn a_receiver_cap_is_followed_and_reported() {
    let mut path = Path::new(HALF);
    path.cap = Some(300);
    let (outcome, progress) = pay(&mut path, options(Target::FixedDelivery(500), HALF, 250));
    assert_eq!(outcome, Err(SendError::ReceiverFull(200)));
    assert_eq!((progress.delivered, path.total), (300, 300));
}

#[test]
fn a_window_of_packets_stays_within_the_target() {
    let mut path = Path::new(HALF);
    let mut wide = options(Target::FixedSend(1_000), HALF, 64);
    wide.in_flight_max = 8;
    let mut sender = StreamSender::new(DESTINATION, &SECRET, wide).expect("valid");
    let mut queued = Vec::new();
    let mut iv = ivs();
    while let Action::Send {
        sequence, prepare, ..
    } = sender.poll(0, iv())
    {
        queued.push((sequence, prepare));
    }
    assert_eq!(queued.len(), 8, "a full window goes out before any reply");
    for (sequence, prepare) in queued {
        let reply = path.answer(&prepare);
        sender.on_reply(sequence, Answer::parse(&reply), 0);
    }
    let (outcome, progress) = loop {
        match sender.poll(0, iv()) {
            Action::Send {
                sequence, prepare, ..
            } => {
                let reply = path.answer(&prepare);
                sender.on_reply(sequence, Answer::parse(&reply), 0);
            }
            Action::Done(outcome) => break (outcome, sender.progress()),
            Action::Wait { .. } => panic!("nothing is in flight"),
        }
    };
    assert_eq!((outcome, progress.sent), (Ok(()), 1_000));
}

#[test]
fn ratio_arithmetic_is_exact() {
    let third = Ratio {
        numerator: 1,
        denominator: 3,
    };
    assert_eq!(third.floor_mul(10), 3);
    assert_eq!(third.ceil_source_for(4), 12);
    assert_eq!(HALF.reduced_by_ppm(10_000).floor_mul(1_000), 495);
    assert_eq!(
        Ratio {
            numerator: u64::MAX,
            denominator: 1
        }
        .floor_mul(2),
        u64::MAX
    );
}

#[test]
fn a_path_that_takes_nothing_ends_the_payment() {
    let mut path = Path::new(HALF);
    path.max_packet = Some(0);
    let (outcome, progress) = pay(&mut path, options(Target::FixedSend(10), HALF, 8));
    assert_eq!(outcome, Err(SendError::Rejected("F08".into())));
    assert_eq!(
        progress.packets_rejected, 2,
        "8, then 1, then nothing smaller to try"
    );
    assert!(
        StreamSender::new(DESTINATION, &SECRET, options(Target::FixedSend(1), HALF, 0)).is_err()
    );
}

/// A fixed delivery taken over from a sender that delivered 700 of 1,000 but
/// recorded only 300: the receiver's reports, less its total before the payment,
/// count the rest, so the receiver gets the payment's 1,000 and not 1,400.
#[test]
fn a_taken_over_fixed_delivery_counts_what_the_receiver_got_unrecorded() {
    let mut path = Path::new(HALF);
    path.total = 50 + 700;
    let mut options = options(Target::FixedDelivery(1_000 - 300), HALF, 100);
    options.resumed = Some(Resumed {
        delivered_before: 300,
        receiver_base: Some(50),
    });
    let (outcome, progress) = pay(&mut path, options);
    assert_eq!(outcome, Ok(()));
    assert_eq!(path.total, 50 + 1_000, "{progress:?}");
    assert_eq!(progress.delivered, 1_000 - 300);
    assert_eq!(progress.receiver_base, Some(50));
}

/// A payment on a connection that received 50 before it learns that bound.
#[test]
fn a_payment_bounds_what_the_receiver_had_before_it() {
    let mut path = Path::new(HALF);
    path.total = 50;
    let (outcome, progress) = pay(&mut path, options(Target::FixedDelivery(500), HALF, 100));
    assert_eq!(outcome, Ok(()));
    assert_eq!(progress.receiver_base, Some(50));
    assert_eq!(path.total, 550);
}
