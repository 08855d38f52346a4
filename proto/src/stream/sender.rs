//! The STREAM sender, sans-IO: the caller passes `now` and fresh IVs in, sends the
//! Prepares it is handed, and brings each reply back. Two machines:
//!
//! * [`RateProbe`]: unfulfillable Prepares of 0, then 10^12 units down to 1, as
//!   `@interledger/pay` sends them. The replies tell the path's exchange rate (the
//!   receiver reports what arrived), its max packet amount (F08 data, and the
//!   largest probe that got through) and the receiver's asset
//!   (`ConnectionAssetDetails`, asked for with `ConnectionNewAddress`).
//! * [`StreamSender`]: pays a fixed source amount or a fixed delivery, in packets no
//!   larger than the path allows, each asking the receiver for at least the minimum
//!   rate; a window of packets in flight; T-class rejects retried with backoff, an
//!   F08 narrows the packet size, other F-class rejects stop; `StreamMaxMoney`
//!   bounds what is sent; a `ConnectionClose` from the receiver ends the payment.

use super::crypto::{StreamKeys, IV_SIZE};
use super::frame::{CloseCode, Frame};
use super::packet::{StreamPacket, StreamPacketBuilder};
use crate::limits::{BACKOFF_MS_MAX, BACKOFF_MS_MIN, PACKET_EXPIRY_MS};
use crate::packet::ilp::TYPE_PREPARE;
use crate::packet::{
    Address, AmountTooLargeData, ErrorClass, ErrorCode, Packet, Prepare, Timestamp,
};
use thiserror::Error;

/// Probe amounts: 0 (which asks for the asset and passes any limit), then 10^12
/// down to 1.
pub const PROBE_AMOUNTS: [u64; 14] = [
    0,
    1_000_000_000_000,
    100_000_000_000,
    10_000_000_000,
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// An exact exchange rate: destination units per source unit, `numerator /
/// denominator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Ratio {
    /// `floor(amount x self)`, saturating.
    pub fn floor_mul(self, amount: u64) -> u64 {
        if self.denominator == 0 {
            return 0;
        }
        let product =
            u128::from(amount) * u128::from(self.numerator) / u128::from(self.denominator);
        u64::try_from(product).unwrap_or(u64::MAX)
    }

    /// The least source amount `a` with `floor(a x self) >= destination`, saturating.
    pub fn ceil_source_for(self, destination: u64) -> u64 {
        if self.numerator == 0 {
            return u64::MAX;
        }
        let source = (u128::from(destination) * u128::from(self.denominator))
            .div_ceil(u128::from(self.numerator));
        u64::try_from(source).unwrap_or(u64::MAX)
    }

    /// `self x (1 - slippage)`, with slippage in parts per million.
    pub fn reduced_by_ppm(self, slippage_ppm: u32) -> Ratio {
        let keep = 1_000_000u128.saturating_sub(u128::from(slippage_ppm));
        let numerator = u128::from(self.numerator) * keep;
        let denominator = u128::from(self.denominator) * 1_000_000;
        reduce(numerator, denominator)
    }

    pub fn as_f64(self) -> f64 {
        if self.denominator == 0 {
            return 0.0;
        }
        self.numerator as f64 / self.denominator as f64
    }
}

/// A ratio of u128s brought into u64s, rounding down by dropping low bits of both.
fn reduce(mut numerator: u128, mut denominator: u128) -> Ratio {
    while numerator > u128::from(u64::MAX) || denominator > u128::from(u64::MAX) {
        numerator >>= 1;
        denominator >>= 1;
    }
    Ratio {
        numerator: numerator as u64,
        denominator: denominator.max(1) as u64,
    }
}

/// A reply, as the sender needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    Fulfill {
        data: &'a [u8],
    },
    Reject {
        code: ErrorCode,
        message: &'a [u8],
        data: &'a [u8],
    },
}

impl<'a> Answer<'a> {
    /// Reads ILP reply bytes; `None` if they are not a Fulfill or Reject.
    pub fn parse(reply: &'a [u8]) -> Option<Answer<'a>> {
        match Packet::parse(reply).ok()? {
            Packet::Fulfill(fulfill) => Some(Answer::Fulfill { data: fulfill.data }),
            Packet::Reject(reject) => Some(Answer::Reject {
                code: reject.code,
                message: reject.message,
                data: reject.data,
            }),
            Packet::Prepare(_) => None,
        }
    }
}

/// What the receiver said inside a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ReplyFrames {
    amount_arrived: Option<u64>,
    asset: Option<(String, u8)>,
    /// What the receiver still takes: `receive_max - total_received`.
    receivable: Option<u64>,
    /// What the receiver counted on the connection in all (the least its
    /// streams report).
    total_received: Option<u64>,
    closed: bool,
}

/// The sending side of one STREAM connection: keys, destination, sequence. The
/// machines below use it; so can any client that sends its own packets.
#[derive(Debug)]
pub struct StreamConnection {
    keys: StreamKeys,
    destination: String,
    sequence: u64,
}

impl StreamConnection {
    pub fn new(destination: &str, shared_secret: &[u8]) -> Result<StreamConnection, SendError> {
        Address::parse_str(destination).map_err(|_| SendError::InvalidDestination)?;
        Ok(StreamConnection {
            keys: StreamKeys::new(shared_secret),
            destination: destination.to_owned(),
            sequence: 0,
        })
    }

    pub fn keys(&self) -> &StreamKeys {
        &self.keys
    }

    /// The next Prepare of `amount` carrying `frames`, asking for at least
    /// `minimum`, with its sequence; unfulfillable unless `fulfillable`.
    pub fn prepare(
        &mut self,
        amount: u64,
        minimum: u64,
        frames: &[Frame<'_>],
        fulfillable: bool,
        now_ms: u64,
        iv: [u8; IV_SIZE],
    ) -> (u64, Vec<u8>) {
        self.sequence += 1;
        let builder = StreamPacketBuilder {
            ilp_packet_type: TYPE_PREPARE,
            sequence: self.sequence,
            prepare_amount: minimum,
            frames,
        };
        let mut data = Vec::with_capacity(128);
        self.keys.encrypt_packet(iv, &builder, &mut data);
        let condition = if fulfillable {
            self.keys.condition(&data)
        } else {
            // Nobody knows a preimage of this: the receiver can only reject.
            let mut condition = self.keys.condition(&data);
            condition[0] ^= 0xff;
            condition
        };
        // Checked in `new`.
        let destination = Address::parse_str(&self.destination).unwrap_or_else(|_| unreachable!());
        let prepare = Prepare {
            amount,
            expires_at: Timestamp::from_unix_ms_saturating(now_ms.saturating_add(PACKET_EXPIRY_MS)),
            execution_condition: &condition,
            destination,
            data: &data,
        }
        .to_bytes();
        (self.sequence, prepare)
    }

    /// Decrypts a reply's STREAM data; empty when there is none, it is not ours,
    /// or it answers another request (a replayed reply must not steer the sender).
    fn read(&self, sequence: u64, data: &[u8]) -> ReplyFrames {
        let mut plaintext = Vec::new();
        if data.is_empty() || self.keys.decrypt_into(data, &mut plaintext).is_err() {
            return ReplyFrames::default();
        }
        let Ok(packet) = StreamPacket::parse(&plaintext) else {
            return ReplyFrames::default();
        };
        let header = packet.header();
        if header.sequence != sequence || header.ilp_packet_type == TYPE_PREPARE {
            return ReplyFrames::default();
        }
        let mut frames = ReplyFrames {
            amount_arrived: Some(packet.header().prepare_amount),
            ..ReplyFrames::default()
        };
        for frame in packet.frames() {
            match frame {
                Frame::ConnectionAssetDetails {
                    asset_code,
                    asset_scale,
                } => frames.asset = Some((asset_code.to_owned(), asset_scale)),
                Frame::StreamMaxMoney {
                    receive_max,
                    total_received,
                    ..
                } => {
                    let left = receive_max.saturating_sub(total_received);
                    frames.receivable = Some(frames.receivable.map_or(left, |r| r.min(left)));
                    frames.total_received = Some(
                        frames
                            .total_received
                            .map_or(total_received, |t| t.min(total_received)),
                    );
                }
                Frame::ConnectionClose { .. } | Frame::StreamClose { .. } => frames.closed = true,
                _ => {}
            }
        }
        frames
    }

    /// An unfulfillable Prepare that tells the receiver the connection is over.
    fn close_prepare(&mut self, now_ms: u64, iv: [u8; IV_SIZE]) -> Vec<u8> {
        let frames = [Frame::ConnectionClose {
            code: CloseCode::NoError,
            message: "",
        }];
        self.prepare(0, 0, &frames, false, now_ms, iv).1
    }
}

/// Why a quote or a payment stopped short.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("destination is not a valid ILP address")]
    InvalidDestination,
    #[error("no rate probe reached the receiver (last reject: {0})")]
    RateProbeFailed(String),
    #[error("the receiver closed the connection")]
    ClosedByReceiver,
    #[error("rejected with {0}")]
    Rejected(String),
    #[error("delivered less than the minimum exchange rate allows")]
    InsufficientExchangeRate,
    #[error("gave up after {0} temporary rejects in a row (last: {1})")]
    TooManyRetries(u32, String),
    #[error("the receiver takes no more, with {0} units still to deliver")]
    ReceiverFull(u64),
}

/// What the rate probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// What arrived per unit sent, from the largest probe that reached the receiver.
    pub rate: Ratio,
    /// The largest packet the path takes.
    pub max_packet_amount: u64,
    /// The receiver's asset, when it told.
    pub asset: Option<(String, u8)>,
}

/// Unfulfillable probes that measure a path.
#[derive(Debug)]
pub struct RateProbe {
    connection: StreamConnection,
    /// (sequence, amount sent) of each probe.
    sent: Vec<(u64, u64)>,
    /// (amount sent, amount arrived) of each probe that reached the receiver.
    arrived: Vec<(u64, u64)>,
    f08_max: Option<u64>,
    asset: Option<(String, u8)>,
    last_reject: Option<String>,
}

impl RateProbe {
    pub fn new(destination: &str, shared_secret: &[u8]) -> Result<RateProbe, SendError> {
        Ok(RateProbe {
            connection: StreamConnection::new(destination, shared_secret)?,
            sent: Vec::new(),
            arrived: Vec::new(),
            f08_max: None,
            asset: None,
            last_reject: None,
        })
    }

    /// Every probe Prepare, with its sequence; the first (amount 0) asks for the
    /// receiver's asset.
    /// `ivs` gives one fresh IV per packet.
    pub fn packets(
        &mut self,
        now_ms: u64,
        mut ivs: impl FnMut() -> [u8; IV_SIZE],
    ) -> Vec<(u64, Vec<u8>)> {
        let ask = [Frame::ConnectionNewAddress { source_account: "" }];
        PROBE_AMOUNTS
            .iter()
            .enumerate()
            .map(|(index, &amount)| {
                let frames: &[Frame<'_>] = if index == 0 { &ask } else { &[] };
                let (sequence, prepare) =
                    self.connection
                        .prepare(amount, 0, frames, false, now_ms, ivs());
                self.sent.push((sequence, amount));
                (sequence, prepare)
            })
            .collect()
    }

    /// Takes the reply to probe `sequence` (or `None` when it never came).
    pub fn on_reply(&mut self, sequence: u64, reply: Option<Answer<'_>>) {
        let Some(&(_, amount)) = self.sent.iter().find(|(s, _)| *s == sequence) else {
            return;
        };
        let Some(Answer::Reject { code, data, .. }) = reply else {
            // A Fulfill of an unfulfillable packet is a broken path; no data either way.
            self.last_reject = Some("no reply".into());
            return;
        };
        let frames = self.connection.read(sequence, data);
        if let Some(asset) = frames.asset {
            self.asset = Some(asset);
        }
        if let Some(arrived) = frames.amount_arrived {
            self.arrived.push((amount, arrived));
            return;
        }
        if code == ErrorCode::F08 {
            if let Ok(f08) = AmountTooLargeData::parse(data) {
                let max = max_from_f08(amount, f08);
                self.f08_max = Some(self.f08_max.map_or(max, |m| m.min(max)));
            }
        }
        self.last_reject = Some(code.to_string());
    }

    pub fn result(&self) -> Result<ProbeResult, SendError> {
        let best = self
            .arrived
            .iter()
            .filter(|(sent, arrived)| *sent > 0 && *arrived > 0)
            .max_by_key(|(sent, _)| *sent)
            .ok_or_else(|| {
                SendError::RateProbeFailed(self.last_reject.clone().unwrap_or_default())
            })?;
        let largest_through = best.0;
        Ok(ProbeResult {
            rate: Ratio {
                numerator: best.1,
                denominator: best.0,
            },
            max_packet_amount: self
                .f08_max
                .map_or(largest_through, |m| m.max(largest_through)),
            asset: self.asset.clone(),
        })
    }

    /// The Prepare that closes the probe's connection.
    pub fn close_prepare(&mut self, now_ms: u64, iv: [u8; IV_SIZE]) -> Vec<u8> {
        self.connection.close_prepare(now_ms, iv)
    }
}

/// The most this hop takes, in the sender's units: F08 reports in the amounts the
/// rejecting connector saw, so scale its maximum by sent / received.
fn max_from_f08(sent: u64, f08: AmountTooLargeData) -> u64 {
    if f08.amount_received == 0 {
        return f08.amount_max;
    }
    let scaled = u128::from(f08.amount_max) * u128::from(sent) / u128::from(f08.amount_received);
    u64::try_from(scaled).unwrap_or(u64::MAX).max(1)
}

/// `T04 insufficient balance`: the code, and the message when it is short text.
fn describe_reject(code: ErrorCode, message: &[u8]) -> String {
    match std::str::from_utf8(message) {
        Ok(text) if !text.is_empty() && text.len() <= 100 => format!("{code} {text}"),
        _ => code.to_string(),
    }
}

/// What a payment aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Send exactly this much (source units), deliver what it buys.
    FixedSend(u64),
    /// Deliver exactly this much (destination units), spending at most the budget.
    FixedDelivery(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderOptions {
    pub target: Target,
    /// The least each packet must deliver per unit sent.
    pub min_rate: Ratio,
    /// The expected rate, for sizing the last packet of a fixed delivery.
    pub rate: Ratio,
    pub max_packet_amount: u64,
    /// Never send more than this in all (source units).
    pub source_amount_max: u64,
    pub in_flight_max: usize,
    /// Temporary rejects in a row before the payment fails.
    pub retries_max: u32,
    /// A payment taken over from another sender on the same connection: what it
    /// counted as delivered, and the receiver's total before the payment began
    /// (as the earlier sender bounded it, [`Progress::receiver_base`]). The
    /// receiver's reports, less that base, then count what the earlier sender
    /// delivered without recording it, so a fixed delivery is not paid twice.
    pub resumed: Option<Resumed>,
}

/// See [`SenderOptions::resumed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resumed {
    pub delivered_before: u64,
    pub receiver_base: Option<u64>,
}

/// What the caller should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this Prepare and bring its reply to [`StreamSender::on_reply`].
    Send {
        sequence: u64,
        amount: u64,
        prepare: Vec<u8>,
    },
    /// Nothing to send before `until_ms`, or before a reply comes in.
    Wait { until_ms: Option<u64> },
    /// The payment is over: send the closing Prepare, then stop.
    Done(Result<(), SendError>),
}

/// Totals of a payment so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub sent: u64,
    pub delivered: u64,
    pub in_flight: u64,
    pub packets_fulfilled: u64,
    pub packets_rejected: u64,
    /// An upper bound on the receiver's total before the payment began: the least
    /// `total_received - delivered` its Fulfills reported (a Fulfill may report
    /// packets whose own Fulfills are still on their way, so each bound is high).
    pub receiver_base: Option<u64>,
}

/// Pays over one STREAM connection.
#[derive(Debug)]
pub struct StreamSender {
    connection: StreamConnection,
    options: SenderOptions,
    max_packet_amount: u64,
    progress: Progress,
    /// (sequence, amount, minimum) of each packet in flight.
    in_flight: Vec<(u64, u64, u64)>,
    receivable: Option<u64>,
    retries: u32,
    backoff_until_ms: u64,
    backoff_ms: u64,
    outcome: Option<Result<(), SendError>>,
}

impl StreamSender {
    pub fn new(
        destination: &str,
        shared_secret: &[u8],
        options: SenderOptions,
    ) -> Result<StreamSender, SendError> {
        if options.in_flight_max == 0 || options.max_packet_amount == 0 {
            return Err(SendError::Rejected("the path takes no packet".into()));
        }
        Ok(StreamSender {
            connection: StreamConnection::new(destination, shared_secret)?,
            max_packet_amount: options.max_packet_amount,
            options,
            progress: Progress::default(),
            in_flight: Vec::new(),
            receivable: None,
            retries: 0,
            backoff_until_ms: 0,
            backoff_ms: BACKOFF_MS_MIN,
            outcome: None,
        })
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// The next thing to do at `now_ms`; `iv` is used only when a packet is made.
    pub fn poll(&mut self, now_ms: u64, iv: [u8; IV_SIZE]) -> Action {
        if let Some(outcome) = &self.outcome {
            if self.in_flight.is_empty() {
                return Action::Done(outcome.clone());
            }
            return Action::Wait { until_ms: None };
        }
        if self.target_reached() {
            self.outcome = Some(Ok(()));
            return self.poll(now_ms, iv);
        }
        if now_ms < self.backoff_until_ms {
            return Action::Wait {
                until_ms: Some(self.backoff_until_ms),
            };
        }
        if self.in_flight.len() >= self.options.in_flight_max {
            return Action::Wait { until_ms: None };
        }
        let amount = self.next_amount();
        if amount == 0 {
            if self.in_flight.is_empty() {
                self.outcome = Some(Err(self.shortfall_error()));
                return self.poll(now_ms, iv);
            }
            return Action::Wait { until_ms: None };
        }
        let minimum = self.options.min_rate.floor_mul(amount);
        let frames = [Frame::StreamMoney {
            stream_id: 1,
            shares: 1,
        }];
        let (sequence, prepare) = self
            .connection
            .prepare(amount, minimum, &frames, true, now_ms, iv);
        self.in_flight.push((sequence, amount, minimum));
        self.progress.in_flight += amount;
        Action::Send {
            sequence,
            amount,
            prepare,
        }
    }

    /// Takes the reply to `sequence`; `None` when the packet got no reply at all
    /// (treated as a temporary failure).
    pub fn on_reply(&mut self, sequence: u64, reply: Option<Answer<'_>>, now_ms: u64) {
        let Some(index) = self.in_flight.iter().position(|(s, _, _)| *s == sequence) else {
            return;
        };
        let (_, amount, minimum) = self.in_flight.swap_remove(index);
        self.progress.in_flight -= amount;
        match reply {
            Some(Answer::Fulfill { data }) => self.fulfilled(sequence, amount, minimum, data),
            Some(Answer::Reject {
                code,
                message,
                data,
            }) => self.rejected(sequence, amount, (code, message, data), now_ms),
            None => self.temporary("no reply".into(), now_ms),
        }
    }

    /// The Prepare that closes the connection, once the payment is done.
    pub fn close_prepare(&mut self, now_ms: u64, iv: [u8; IV_SIZE]) -> Vec<u8> {
        self.connection.close_prepare(now_ms, iv)
    }

    fn fulfilled(&mut self, sequence: u64, amount: u64, minimum: u64, data: &[u8]) {
        let frames = self.connection.read(sequence, data);
        // A receiver that does not say what arrived is credited the minimum it
        // accepted by fulfilling.
        let delivered = frames.amount_arrived.unwrap_or(minimum);
        self.progress.sent = self.progress.sent.saturating_add(amount);
        self.progress.delivered = self.progress.delivered.saturating_add(delivered);
        self.note_receiver_total(&frames);
        self.progress.packets_fulfilled += 1;
        self.retries = 0;
        self.backoff_ms = BACKOFF_MS_MIN;
        self.note_receivable(&frames);
        if frames.closed {
            self.finish_if_open(Err(SendError::ClosedByReceiver));
        }
    }

    fn rejected(
        &mut self,
        sequence: u64,
        amount: u64,
        (code, message, data): (ErrorCode, &[u8], &[u8]),
        now_ms: u64,
    ) {
        self.progress.packets_rejected += 1;
        let frames = self.connection.read(sequence, data);
        self.note_receivable(&frames);
        if frames.closed {
            return self.finish_if_open(Err(SendError::ClosedByReceiver));
        }
        let reason = describe_reject(code, message);
        if code == ErrorCode::F08 {
            let max = AmountTooLargeData::parse(data)
                .map(|f08| max_from_f08(amount, f08))
                .unwrap_or(amount / 2)
                .min(amount.saturating_sub(1));
            if max == 0 {
                // Not even one unit passes: nothing left to try.
                return self.finish_if_open(Err(SendError::Rejected(reason)));
            }
            self.max_packet_amount = max;
            return;
        }
        if code == ErrorCode::F99 {
            if let Some(arrived) = frames.amount_arrived {
                if arrived < self.options.min_rate.floor_mul(amount) {
                    return self.finish_if_open(Err(SendError::InsufficientExchangeRate));
                }
                if frames.receivable.is_some() {
                    // Declined for going past what the receiver takes: the next
                    // packet is sized to fit. Counted as a retry, so that a receiver
                    // that keeps declining cannot hold the sender in a loop.
                    return self.temporary(reason, now_ms);
                }
            }
        }
        match code.class() {
            ErrorClass::Temporary => self.temporary(reason, now_ms),
            _ => self.finish_if_open(Err(SendError::Rejected(reason))),
        }
    }

    fn temporary(&mut self, reason: String, now_ms: u64) {
        self.retries += 1;
        if self.retries > self.options.retries_max {
            return self.finish_if_open(Err(SendError::TooManyRetries(self.retries - 1, reason)));
        }
        self.backoff_until_ms = now_ms.saturating_add(self.backoff_ms);
        self.backoff_ms = (self.backoff_ms * 2).min(BACKOFF_MS_MAX);
    }

    /// Bounds the receiver's base from a Fulfill's report and, for a payment taken
    /// over, counts what the earlier sender delivered unrecorded.
    fn note_receiver_total(&mut self, frames: &ReplyFrames) {
        let Some(total) = frames.total_received else {
            return;
        };
        let resumed = self.options.resumed.unwrap_or_default();
        let delivered_in_all = resumed
            .delivered_before
            .saturating_add(self.progress.delivered);
        if let Some(base) = resumed.receiver_base {
            let mine = total
                .saturating_sub(base)
                .saturating_sub(resumed.delivered_before);
            self.progress.delivered = self.progress.delivered.max(mine);
        }
        let bound = total.saturating_sub(delivered_in_all);
        let base = resumed.receiver_base.unwrap_or(u64::MAX);
        let known = self.progress.receiver_base.unwrap_or(u64::MAX);
        self.progress.receiver_base = Some(bound.min(base).min(known));
    }

    fn note_receivable(&mut self, frames: &ReplyFrames) {
        if let Some(receivable) = frames.receivable {
            self.receivable = Some(receivable);
        }
    }

    fn finish_if_open(&mut self, outcome: Result<(), SendError>) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
    }

    fn target_reached(&self) -> bool {
        match self.options.target {
            Target::FixedSend(amount) => self.progress.sent >= amount,
            Target::FixedDelivery(amount) => self.progress.delivered >= amount,
        }
    }

    /// The next packet's size: no more than the path, the budget, the target and
    /// what the receiver still takes allow, counting packets in flight.
    fn next_amount(&self) -> u64 {
        let committed = self.progress.sent + self.progress.in_flight;
        let budget = self.options.source_amount_max.saturating_sub(committed);
        let for_target = match self.options.target {
            Target::FixedSend(amount) => amount.saturating_sub(committed),
            Target::FixedDelivery(amount) => {
                let expected_in_flight = self.options.rate.floor_mul(self.progress.in_flight);
                let left = amount
                    .saturating_sub(self.progress.delivered)
                    .saturating_sub(expected_in_flight);
                self.options.rate.ceil_source_for(left)
            }
        };
        let for_receiver = match self.receivable {
            Some(receivable) => {
                let in_flight_delivery = self.options.rate.floor_mul(self.progress.in_flight);
                let left = receivable.saturating_sub(in_flight_delivery);
                // The largest amount that still delivers no more than `left`.
                if left == 0 {
                    0
                } else {
                    self.options
                        .rate
                        .ceil_source_for(left.saturating_add(1))
                        .saturating_sub(1)
                }
            }
            None => u64::MAX,
        };
        budget
            .min(for_target)
            .min(for_receiver)
            .min(self.max_packet_amount)
    }

    fn shortfall_error(&self) -> SendError {
        match self.options.target {
            Target::FixedDelivery(amount) if self.receivable == Some(0) => {
                SendError::ReceiverFull(amount.saturating_sub(self.progress.delivered))
            }
            Target::FixedSend(amount) if self.receivable == Some(0) => {
                SendError::ReceiverFull(amount.saturating_sub(self.progress.sent))
            }
            _ => SendError::Rejected("budget exhausted before the target".into()),
        }
    }
}

#[cfg(test)]
mod tests;
