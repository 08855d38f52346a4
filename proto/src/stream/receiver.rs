//! The STREAM receiver's decisions for one Prepare, sans-IO: the caller brings the
//! connection's keys, the amount that arrived (already in the receiving asset), the
//! state of the payment target and a fresh IV; the receiver answers with a reply, or
//! with a [`Credit`] to carry out (ledger, then receipt store) before [`settle`]
//! turns its outcome into the reply.
//!
//! Rules (RFC 0029 §6.7, and what `@interledger/stream-receiver` does):
//! * STREAM data that does not decrypt or parse: F06 with no data, so that nothing
//!   tells an unauthenticated sender what answered.
//! * A STREAM packet that is not a Prepare: F00 with no data.
//! * Authentic but not payable (rate probe with an unfulfillable condition, amount
//!   below the sender's minimum, client close, closed target): F99 with an
//!   encrypted reply that tells the sender how much arrived.
//! * Zero amount: fulfilled at once; nothing to credit.
//! * Otherwise a credit; the Fulfill carries `StreamMaxMoney` for each paying stream
//!   and, when the verifier asked for receipts, a `StreamReceipt` with the
//!   connection-wide total (as `@interledger/stream-receiver` does).

use super::crypto::{StreamKeys, IV_SIZE};
use super::frame::{CloseCode, Frame};
use super::packet::{StreamPacket, StreamPacketBuilder};
use super::receipt::{Receipt, ReceiptKey, RECEIPT_NONCE_SIZE, RECEIPT_SIZE};
use super::token::ReceiptSetup;
use crate::limits::{MONEY_STREAMS_MAX, REPLY_FRAMES_MAX};
use crate::packet::ilp::{TYPE_FULFILL, TYPE_PREPARE, TYPE_REJECT};
use crate::packet::ErrorCode;

/// Receipt parameters of a connection, with the secret ready for HMAC.
#[derive(Debug, Clone)]
pub struct ReceiptSigner {
    nonce: [u8; RECEIPT_NONCE_SIZE],
    key: ReceiptKey,
}

impl ReceiptSigner {
    pub fn new(setup: &ReceiptSetup) -> ReceiptSigner {
        ReceiptSigner {
            nonce: setup.nonce,
            key: ReceiptKey::new(&setup.secret),
        }
    }
}

/// What the receiver knows of one connection; the IO layer derives it once per
/// connection and keeps it.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub keys: StreamKeys,
    /// The receiving account's asset, announced in `ConnectionAssetDetails`.
    pub asset_code: String,
    pub asset_scale: u8,
    pub receipts: Option<ReceiptSigner>,
}

/// Whether the payment target still takes money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Open,
    /// A completed or expired incoming payment: the connection is told to close.
    Closed,
}

/// The ILP reply the receiver chose, without the ILP envelope: the IO layer adds it
/// (and its own address as `triggeredBy` on a Reject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Fulfill {
        fulfillment: [u8; 32],
        data: Vec<u8>,
    },
    /// The message is always empty: details would help only fingerprinting.
    Reject { code: ErrorCode, data: Vec<u8> },
}

/// What to do with a Prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Reply(Reply),
    /// Credit `amount` to the target, then [`settle`] with the outcome.
    Credit(Credit),
}

/// A payable packet waiting for the ledger and the receipt store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub amount: u64,
    fulfillment: [u8; 32],
    request: Request,
}

/// How the credit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOutcome {
    /// The money is counted. `remaining` is what the target still takes after this
    /// packet, `None` when it has no cap.
    Credited {
        connection_total: u64,
        remaining: Option<u64>,
    },
    /// The packet would go past the target's amount; nothing was counted.
    Exceeds {
        connection_total: u64,
        remaining: u64,
    },
    /// The target was completed or expired in the meantime.
    Closed,
}

/// The parts of the request that shape the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    sequence: u64,
    amount_arrived: u64,
    asks_asset_details: bool,
    money_streams: [u64; MONEY_STREAMS_MAX],
    money_stream_count: usize,
}

impl Request {
    fn money_streams(&self) -> &[u64] {
        &self.money_streams[..self.money_stream_count]
    }
}

/// The parts of a Prepare the receiver reads.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// The Prepare's amount converted into the receiving asset.
    pub amount: u64,
    pub execution_condition: &'a [u8; 32],
    /// The Prepare's data: the encrypted STREAM packet.
    pub data: &'a [u8],
}

/// What the connection last learnt from the store, reported in the reply to a
/// packet that moves no money.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    pub connection_total: u64,
    /// What the target still takes; `None` when it has no cap.
    pub remaining: Option<u64>,
}

/// Decides on one Prepare addressed to a connection of this receiver.
///
/// `scratch` is a reusable buffer for the plaintext.
pub fn receive(
    connection: &ConnectionContext,
    arrival: Arrival<'_>,
    target: TargetState,
    known: Known,
    iv: [u8; IV_SIZE],
    scratch: &mut Vec<u8>,
) -> Step {
    let Arrival {
        amount: amount_arrived,
        execution_condition,
        data,
    } = arrival;
    let reject_bare = |code| {
        Step::Reply(Reply::Reject {
            code,
            data: Vec::new(),
        })
    };
    if connection.keys.decrypt_into(data, scratch).is_err() {
        return reject_bare(ErrorCode::F06);
    }
    let Ok(packet) = StreamPacket::parse(scratch) else {
        return reject_bare(ErrorCode::F06);
    };
    let header = packet.header();
    if header.ilp_packet_type != TYPE_PREPARE {
        return reject_bare(ErrorCode::F00);
    }
    let (request, closes) = summarize(&packet, header.sequence, amount_arrived);
    let Some(fulfillment) = connection.keys.fulfillment_for(data, execution_condition) else {
        return Step::Reply(decline(connection, &request, Closing::No, iv));
    };
    // A sender's own close is acknowledged as such even once the target closed:
    // `ilp-protocol-stream` ends a finished payment with one, and takes an error
    // there for a failed payment.
    if closes {
        return Step::Reply(decline(connection, &request, Closing::BySender, iv));
    }
    if target == TargetState::Closed {
        return Step::Reply(decline(connection, &request, Closing::TargetClosed, iv));
    }
    if amount_arrived < header.prepare_amount {
        return Step::Reply(decline(connection, &request, Closing::No, iv));
    }
    if amount_arrived == 0 {
        return Step::Reply(fulfill(
            connection,
            &request,
            fulfillment,
            known.connection_total,
            known.remaining,
            iv,
        ));
    }
    Step::Credit(Credit {
        amount: amount_arrived,
        fulfillment,
        request,
    })
}

/// The reply once the credit has been carried out (or refused by the store).
pub fn settle(
    connection: &ConnectionContext,
    credit: &Credit,
    outcome: CreditOutcome,
    iv: [u8; IV_SIZE],
) -> Reply {
    match outcome {
        CreditOutcome::Credited {
            connection_total,
            remaining,
        } => fulfill(
            connection,
            &credit.request,
            credit.fulfillment,
            connection_total,
            remaining,
            iv,
        ),
        CreditOutcome::Exceeds {
            connection_total,
            remaining,
        } => {
            let mut frames = FrameList::new();
            asset_details(connection, &credit.request, &mut frames);
            for &stream_id in credit.request.money_streams() {
                frames.push(Frame::StreamMaxMoney {
                    stream_id,
                    receive_max: connection_total.saturating_add(remaining),
                    total_received: connection_total,
                });
            }
            reject_f99(connection, &credit.request, &frames, iv)
        }
        CreditOutcome::Closed => decline(connection, &credit.request, Closing::TargetClosed, iv),
    }
}

/// The request's sequence and paying streams, and whether the client closes.
fn summarize(packet: &StreamPacket<'_>, sequence: u64, amount_arrived: u64) -> (Request, bool) {
    let mut request = Request {
        sequence,
        amount_arrived,
        asks_asset_details: false,
        money_streams: [0; MONEY_STREAMS_MAX],
        money_stream_count: 0,
    };
    let mut closes = false;
    for frame in packet.frames() {
        match frame {
            Frame::ConnectionNewAddress { .. } => request.asks_asset_details = true,
            Frame::ConnectionClose { .. } => closes = true,
            Frame::StreamMoney { stream_id, .. }
                if request.money_stream_count < MONEY_STREAMS_MAX
                    && !request.money_streams().contains(&stream_id) =>
            {
                request.money_streams[request.money_stream_count] = stream_id;
                request.money_stream_count += 1;
            }
            _ => {}
        }
    }
    (request, closes)
}

fn fulfill(
    connection: &ConnectionContext,
    request: &Request,
    fulfillment: [u8; 32],
    connection_total: u64,
    remaining: Option<u64>,
    iv: [u8; IV_SIZE],
) -> Reply {
    let receive_max = remaining.map_or(u64::MAX, |r| connection_total.saturating_add(r));
    let mut frames = FrameList::new();
    asset_details(connection, request, &mut frames);
    for &stream_id in request.money_streams() {
        frames.push(Frame::StreamMaxMoney {
            stream_id,
            receive_max,
            total_received: connection_total,
        });
    }
    let mut receipts = [[0u8; RECEIPT_SIZE]; MONEY_STREAMS_MAX];
    let mut receipt_stream_ids = [0u64; MONEY_STREAMS_MAX];
    let mut receipt_count = 0;
    if let Some(signer) = &connection.receipts {
        for &stream_id in request.money_streams() {
            // Receipts cannot name streams above 255.
            let Ok(stream_id_byte) = u8::try_from(stream_id) else {
                continue;
            };
            receipts[receipt_count] = signer.key.sign(&Receipt {
                nonce: signer.nonce,
                stream_id: stream_id_byte,
                total_received: connection_total,
            });
            receipt_stream_ids[receipt_count] = stream_id;
            receipt_count += 1;
        }
    }
    for (stream_id, receipt) in receipt_stream_ids.iter().zip(&receipts).take(receipt_count) {
        frames.push(Frame::StreamReceipt {
            stream_id: *stream_id,
            receipt,
        });
    }
    let data = encrypt_reply(connection, request, TYPE_FULFILL, frames.as_slice(), iv);
    Reply::Fulfill { fulfillment, data }
}

/// Why a declined packet's reply closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// It does not: the sender may go on.
    No,
    /// The sender closed: acknowledged with `NoError`.
    BySender,
    /// The payment target takes no more money (completed, expired, gone). Not
    /// `NoError`: `ilp-protocol-stream` answers a `NoError` close by finishing its
    /// streams first, which it never can, and so goes on sending until its own
    /// timeout; an error ends its payment at once (`@interledger/pay` stops on any
    /// close).
    TargetClosed,
}

/// What a closed target tells the sender, in the close frame.
pub const TARGET_CLOSED_MESSAGE: &str = "the payment is closed (completed or expired)";

/// F99 with an encrypted reply; with a closing, a `ConnectionClose` tells the
/// sender to stop.
fn decline(
    connection: &ConnectionContext,
    request: &Request,
    closing: Closing,
    iv: [u8; IV_SIZE],
) -> Reply {
    let mut frames = FrameList::new();
    asset_details(connection, request, &mut frames);
    let close = match closing {
        Closing::No => None,
        Closing::BySender => Some((CloseCode::NoError, "")),
        Closing::TargetClosed => Some((CloseCode::ApplicationError, TARGET_CLOSED_MESSAGE)),
    };
    if let Some((code, message)) = close {
        frames.push(Frame::ConnectionClose { code, message });
    }
    reject_f99(connection, request, &frames, iv)
}

fn reject_f99(
    connection: &ConnectionContext,
    request: &Request,
    frames: &FrameList<'_>,
    iv: [u8; IV_SIZE],
) -> Reply {
    let data = encrypt_reply(connection, request, TYPE_REJECT, frames.as_slice(), iv);
    Reply::Reject {
        code: ErrorCode::F99,
        data,
    }
}

fn asset_details<'a>(
    connection: &'a ConnectionContext,
    request: &Request,
    frames: &mut FrameList<'a>,
) {
    if request.asks_asset_details {
        frames.push(Frame::ConnectionAssetDetails {
            asset_code: &connection.asset_code,
            asset_scale: connection.asset_scale,
        });
    }
}

fn encrypt_reply(
    connection: &ConnectionContext,
    request: &Request,
    ilp_packet_type: u8,
    frames: &[Frame<'_>],
    iv: [u8; IV_SIZE],
) -> Vec<u8> {
    let builder = StreamPacketBuilder {
        ilp_packet_type,
        sequence: request.sequence,
        prepare_amount: request.amount_arrived,
        frames,
    };
    let mut data = Vec::new();
    connection.keys.encrypt_packet(iv, &builder, &mut data);
    data
}

/// A bounded list of reply frames on the stack.
struct FrameList<'a> {
    frames: [Frame<'a>; REPLY_FRAMES_MAX],
    len: usize,
}

impl<'a> FrameList<'a> {
    fn new() -> FrameList<'a> {
        FrameList {
            frames: [Frame::ConnectionMaxData { max_offset: 0 }; REPLY_FRAMES_MAX],
            len: 0,
        }
    }

    fn push(&mut self, frame: Frame<'a>) {
        assert!(self.len < REPLY_FRAMES_MAX, "reply frame list is full");
        self.frames[self.len] = frame;
        self.len += 1;
    }

    fn as_slice(&self) -> &[Frame<'a>] {
        &self.frames[..self.len]
    }
}

#[cfg(test)]
mod tests;
