//! Across the STREAM modules: the end-to-end JavaScript Prepare of the reference
//! (§13.1 item 7) and property tests. Per-module vectors sit beside their code.

use super::crypto::sha256;
use super::frame::{CloseCode, Frame};
use super::packet::{StreamHeader, StreamPacket, StreamPacketBuilder};
use super::receipt::{Receipt, ReceiptKey};
use super::token::{token_segment, ReceiptSetup, ServerSecret, TokenDetails, TokenVariant};
use super::StreamKeys;
use crate::packet::oer::Reader;
use proptest::prelude::*;

fn bytes(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).expect("test hex")
}

/// interledger-rs `fulfills_packets_sent_to_javascript_receiver`: a Prepare made by
/// ilp-protocol-stream for a legacy token under `test.peerB`, server secret 32×00.
const JS_PREPARE: &str = "0c819900000000000001f43230313931303238323134313533383338f31a96346c61\
    3011947f39a0f1f4e573c2fc3e7e53797672b01d2898e90c9a0723746573742e70656572422e4e6a584430\
    754a504275477a353653426d4933755836682d3b6cc484c0d4e9282275d4b37c6ae18f35b497ddbfcbce6d\
    9305b9451b4395c3158aa75e05bf27582a237109ec6ca0129d840da7abd96826c8147d0d";

/// The fields of a Prepare this test needs, read by hand so that it does not
/// depend on the ILP codec: type, length, amount, expiry, condition, destination,
/// data.
fn prepare_fields(packet: &[u8]) -> (u64, [u8; 32], &str, &[u8]) {
    let mut envelope = Reader::new(packet);
    assert_eq!(envelope.read_u8(), Ok(12));
    let mut reader = Reader::new(envelope.read_var_octet_string().expect("content"));
    let amount = reader.read_u64().expect("amount");
    reader.read_bytes(17).expect("expiry");
    let condition = *reader.read_array::<32>().expect("condition");
    let destination =
        std::str::from_utf8(reader.read_var_octet_string().expect("address")).expect("ASCII");
    let data = reader.read_var_octet_string().expect("data");
    (amount, condition, destination, data)
}

#[test]
fn javascript_prepare_end_to_end() {
    let packet = bytes(JS_PREPARE);
    let (amount, condition, destination, data) = prepare_fields(&packet);
    assert_eq!(
        (amount, destination, data.len()),
        (500, "test.peerB.NjXD0uJPBuGz56SBmI3uX6h-", 59)
    );

    let server = ServerSecret::new(&[0; 32]);
    let segment = token_segment("test.peerB", destination).expect("our address");
    let token = server.decode_segment(segment).expect("decodes");
    assert_eq!(token.variant, TokenVariant::Legacy);
    let shared_secret = "b7d09d2e16e6f83c55b60e42fcd7c2b8ed49624a1df73c59b383dbe2e8690309";
    assert_eq!(hex::encode(token.shared_secret), shared_secret);
    let encryption_key = super::crypto::hmac_sha256(&token.shared_secret, b"ilp_stream_encryption");
    assert_eq!(
        hex::encode(encryption_key),
        "34554048bc66e02d51691ea6f0e04cf183d86cb3a4d650884607b9ff7cf70cd6"
    );

    let keys = StreamKeys::new(&token.shared_secret);
    let mut plaintext = Vec::new();
    keys.decrypt_into(data, &mut plaintext).expect("authentic");
    assert_eq!(
        hex::encode(&plaintext),
        "010c01070201ef0103120601010100010015050101024000110501010203e8"
    );
    let stream = StreamPacket::parse(&plaintext).expect("STREAM packet");
    assert_eq!(
        (
            stream.ilp_packet_type,
            stream.sequence,
            stream.prepare_amount
        ),
        (12, 7, 495)
    );
    let frames: Vec<Frame> = stream.frames().collect();
    let expected = [
        Frame::StreamMaxMoney {
            stream_id: 1,
            receive_max: 0,
            total_received: 0,
        },
        Frame::StreamMaxData {
            stream_id: 1,
            max_offset: 16384,
        },
        Frame::StreamMoney {
            stream_id: 1,
            shares: 1000,
        },
    ];
    assert_eq!(frames, expected);

    let fulfillment = keys.fulfillment_for(data, &condition).expect("fulfillable");
    assert_eq!(
        hex::encode(fulfillment),
        "a3e45782fb678a420470409cedf27f03b5a1d8998ffeaeee4b38fa75219aea21"
    );
    assert_eq!(sha256(&fulfillment), condition);
}

/// A frame with owned fields, so that proptest can generate it.
#[derive(Debug, Clone)]
enum OwnedFrame {
    Close(u8, String),
    NewAddress(String),
    Number(u8, u64),
    Asset(String, u8),
    StreamClose(u64, u8, String),
    StreamPair(u8, u64, u64),
    StreamTriple(u8, u64, u64, u64),
    Data(u64, u64, Vec<u8>),
    Receipt(u64, Vec<u8>),
    Unknown(u8, Vec<u8>),
}

impl OwnedFrame {
    fn frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Close(code, message) => Frame::ConnectionClose {
                code: CloseCode::from_u8(*code),
                message,
            },
            OwnedFrame::NewAddress(address) => Frame::ConnectionNewAddress {
                source_account: address,
            },
            OwnedFrame::Number(kind, value) => match kind % 4 {
                0 => Frame::ConnectionMaxData { max_offset: *value },
                1 => Frame::ConnectionDataBlocked { max_offset: *value },
                2 => Frame::ConnectionMaxStreamId {
                    max_stream_id: *value,
                },
                _ => Frame::ConnectionStreamIdBlocked {
                    max_stream_id: *value,
                },
            },
            OwnedFrame::Asset(code, scale) => Frame::ConnectionAssetDetails {
                asset_code: code,
                asset_scale: *scale,
            },
            OwnedFrame::StreamClose(id, code, message) => Frame::StreamClose {
                stream_id: *id,
                code: CloseCode::from_u8(*code),
                message,
            },
            OwnedFrame::StreamPair(kind, id, value) => match kind % 3 {
                0 => Frame::StreamMoney {
                    stream_id: *id,
                    shares: *value,
                },
                1 => Frame::StreamMaxData {
                    stream_id: *id,
                    max_offset: *value,
                },
                _ => Frame::StreamDataBlocked {
                    stream_id: *id,
                    max_offset: *value,
                },
            },
            OwnedFrame::StreamTriple(kind, id, a, b) => match kind % 2 {
                0 => Frame::StreamMaxMoney {
                    stream_id: *id,
                    receive_max: *a,
                    total_received: *b,
                },
                _ => Frame::StreamMoneyBlocked {
                    stream_id: *id,
                    send_max: *a,
                    total_sent: *b,
                },
            },
            OwnedFrame::Data(id, offset, data) => Frame::StreamData {
                stream_id: *id,
                offset: *offset,
                data,
            },
            OwnedFrame::Receipt(id, receipt) => Frame::StreamReceipt {
                stream_id: *id,
                receipt,
            },
            // Types 0x08..=0x0f and 0x18..=0xff are unknown.
            OwnedFrame::Unknown(kind, contents) => {
                let frame_type = if kind % 2 == 0 {
                    0x08 + kind % 8
                } else {
                    (*kind).max(0x18)
                };
                Frame::Unknown {
                    frame_type,
                    contents,
                }
            }
        }
    }
}

/// Edge values weigh more than uniform ones: 0, the 1-byte limits, u64::MAX.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0),
        Just(127),
        Just(128),
        Just(255),
        Just(256),
        Just(u64::MAX)
    ]
}

fn owned_frame() -> impl Strategy<Value = OwnedFrame> {
    let data = |size_max| proptest::collection::vec(any::<u8>(), 0..size_max);
    prop_oneof![
        (any::<u8>(), ".{0,20}").prop_map(|(c, m)| OwnedFrame::Close(c, m)),
        "[a-z.]{0,30}".prop_map(OwnedFrame::NewAddress),
        (any::<u8>(), number()).prop_map(|(k, v)| OwnedFrame::Number(k, v)),
        (".{0,5}", any::<u8>()).prop_map(|(c, s)| OwnedFrame::Asset(c, s)),
        (number(), any::<u8>(), ".{0,10}").prop_map(|(i, c, m)| OwnedFrame::StreamClose(i, c, m)),
        (any::<u8>(), number(), number()).prop_map(|(k, i, v)| OwnedFrame::StreamPair(k, i, v)),
        (any::<u8>(), number(), number(), number())
            .prop_map(|(k, i, a, b)| OwnedFrame::StreamTriple(k, i, a, b)),
        (number(), number(), data(300)).prop_map(|(i, o, d)| OwnedFrame::Data(i, o, d)),
        (number(), data(60)).prop_map(|(i, r)| OwnedFrame::Receipt(i, r)),
        (any::<u8>(), data(20)).prop_map(|(k, c)| OwnedFrame::Unknown(k, c)),
    ]
}

/// Decodes, re-encodes and decodes again: the frames must survive. (The bytes may
/// differ: extra bytes inside frame contents and junk are dropped, oversize
/// saturating values shrink to 8 bytes.)
fn reencodes_to_the_same_frames(plaintext: &[u8]) -> Result<(), TestCaseError> {
    let Ok(packet) = StreamPacket::parse(plaintext) else {
        return Ok(());
    };
    let frames: Vec<Frame> = packet.frames().collect();
    prop_assert_eq!(frames.len() as u64, packet.frame_count());
    let (_, lazy) = StreamHeader::parse(plaintext).expect("a parsed packet's header parses");
    prop_assert_eq!(lazy.collect::<Result<Vec<_>, _>>(), Ok(frames.clone()));
    let header = packet.header();
    let builder = StreamPacketBuilder {
        ilp_packet_type: header.ilp_packet_type,
        sequence: header.sequence,
        prepare_amount: header.prepare_amount,
        frames: &frames,
    };
    let encoded = builder.to_bytes();
    let again = StreamPacket::parse(&encoded).expect("own encoding decodes");
    prop_assert_eq!(again.header(), header);
    prop_assert_eq!(again.frames().collect::<Vec<_>>(), frames);
    Ok(())
}

proptest! {
    #[test]
    fn packets_round_trip_byte_for_byte(
        ilp_packet_type in 12u8..=14,
        sequence in number(),
        prepare_amount in number(),
        owned in proptest::collection::vec(owned_frame(), 0..8),
        junk in proptest::collection::vec(Just(0u8), 0..4),
    ) {
        let frames: Vec<Frame> = owned.iter().map(OwnedFrame::frame).collect();
        let builder =
            StreamPacketBuilder { ilp_packet_type, sequence, prepare_amount, frames: &frames };
        let mut plaintext = builder.to_bytes();
        prop_assert_eq!(plaintext.len(), builder.encoded_size());
        plaintext.extend_from_slice(&junk);
        let packet = StreamPacket::parse(&plaintext).expect("own encoding decodes");
        let header = StreamHeader { ilp_packet_type, sequence, prepare_amount };
        prop_assert_eq!(packet.header(), header);
        let decoded: Vec<Frame> = packet.frames().collect();
        prop_assert_eq!(&decoded, &frames);
        let again =
            StreamPacketBuilder { ilp_packet_type, sequence, prepare_amount, frames: &decoded };
        prop_assert_eq!(again.to_bytes(), &plaintext[..plaintext.len() - junk.len()]);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(
        input in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        reencodes_to_the_same_frames(&input)?;
        if let Ok((_, lazy)) = StreamHeader::parse(&input) {
            prop_assert!(lazy.count() <= input.len());
        }
    }

    /// Arbitrary bytes rarely get past the header; these start from a valid packet
    /// and damage it.
    #[test]
    fn decoders_never_panic_on_damaged_packets(
        owned in proptest::collection::vec(owned_frame(), 1..5),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let frames: Vec<Frame> = owned.iter().map(OwnedFrame::frame).collect();
        let builder = StreamPacketBuilder {
            ilp_packet_type: 12,
            sequence: 1,
            prepare_amount: 2,
            frames: &frames,
        };
        let mut plaintext = builder.to_bytes();
        for (index, byte) in flips {
            let index = index.index(plaintext.len());
            plaintext[index] = byte;
        }
        reencodes_to_the_same_frames(&plaintext)?;
        reencodes_to_the_same_frames(&plaintext[..cut.index(plaintext.len())])?;
    }

    #[test]
    fn frame_decode_never_panics(
        frame_type: u8,
        contents in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        if let Ok(frame) = Frame::decode(frame_type, &contents) {
            prop_assert_eq!(frame.frame_type(), frame_type);
            let mut encoded = Vec::new();
            frame.write_to(&mut encoded);
            prop_assert_eq!(encoded.len(), frame.encoded_size());
            prop_assert_eq!(Frame::read(&mut Reader::new(&encoded)), Ok(frame));
        }
    }

    #[test]
    fn encryption_round_trips(
        secret in proptest::collection::vec(any::<u8>(), 0..64),
        iv: [u8; 12],
        plaintext in proptest::collection::vec(any::<u8>(), 0..500),
    ) {
        let keys = StreamKeys::new(&secret);
        let mut encrypted = Vec::new();
        keys.encrypt_into(iv, &plaintext, &mut encrypted);
        prop_assert_eq!(encrypted.len(), plaintext.len() + 28);
        prop_assert_eq!(&encrypted[..12], &iv);
        let mut decrypted = Vec::new();
        keys.decrypt_into(&encrypted, &mut decrypted).expect("authentic");
        prop_assert_eq!(&decrypted, &plaintext);
        let condition = keys.condition(&encrypted);
        let fulfillment = keys.fulfillment(&encrypted);
        prop_assert_eq!(keys.fulfillment_for(&encrypted, &condition), Some(fulfillment));
    }

    #[test]
    fn decryption_of_arbitrary_data_fails_cleanly(
        data in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut out = Vec::new();
        prop_assert!(StreamKeys::new(b"k").decrypt_into(&data, &mut out).is_err());
        prop_assert!(out.is_empty());
    }

    #[test]
    fn variant_c_tokens_round_trip(
        secret: [u8; 32],
        iv: [u8; 12],
        tag in proptest::option::of("[ -~]{0,40}"),
        receipt in proptest::option::of((any::<[u8; 16]>(), any::<[u8; 32]>())),
        asset in proptest::option::of((".{0,8}", any::<u8>())),
    ) {
        let server = ServerSecret::new(&secret);
        let details = TokenDetails {
            payment_tag: tag,
            receipt: receipt.map(|(nonce, secret)| ReceiptSetup { nonce, secret }),
            asset,
        };
        let segment = server.generate_segment(iv, &details).expect("token");
        let decoded = server.decode_sealed_segment(&segment).expect("decodes");
        prop_assert_eq!(decoded.variant, TokenVariant::C);
        prop_assert_eq!(&decoded.details, &details);
        let credentials = server.generate_credentials("g.x", iv, &details).expect("fits");
        prop_assert_eq!(credentials.destination, format!("g.x.{segment}"));
        prop_assert_eq!(decoded.shared_secret, credentials.shared_secret);
        let other = ServerSecret::new(&[secret[0].wrapping_add(1); 32]);
        prop_assert!(other.decode_sealed_segment(&segment).is_err());
    }

    #[test]
    fn token_decoding_never_panics(segment in "[A-Za-z0-9_~-]{0,120}|\\PC{0,40}") {
        let server = ServerSecret::new(&[5; 32]);
        if let Ok(token) = server.decode_segment(&segment) {
            prop_assert_eq!(token.variant, TokenVariant::Legacy);
        }
        let _ = token_segment("g.x", &segment);
    }

    #[test]
    fn receipts_round_trip(nonce: [u8; 16], stream_id: u8, total_received: u64, secret: [u8; 32]) {
        let receipt = Receipt { nonce, stream_id, total_received };
        let key = ReceiptKey::new(&secret);
        let encoded = key.sign(&receipt);
        prop_assert_eq!(key.verify(&encoded), Ok(receipt));
        prop_assert_eq!(Receipt::parse_unverified(&encoded), Ok(receipt));
    }

    #[test]
    fn receipt_verification_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..70)) {
        prop_assert!(ReceiptKey::new(&[0; 32]).verify(&bytes).is_err());
    }
}
