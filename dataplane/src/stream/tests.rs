//! Reference vectors (`../shared/reference/ilp-protocols.md` §6-9, §13) and
//! property tests for the STREAM core.

use super::crypto::{aes_key, hmac_sha256, open, sha256};
use super::frame::{CloseCode, Frame};
use super::packet::{StreamPacket, StreamPacketBuilder};
use super::receipt::{Receipt, ReceiptError};
use super::token::{
    connection_id, token_segment, ReceiptSetup, ServerSecret, TokenDetails, TokenError,
    TokenVariant,
};
use super::StreamKeys;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;

fn bytes(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).expect("test hex")
}

fn array32(text: &str) -> [u8; 32] {
    bytes(text).try_into().expect("32 bytes")
}

#[test]
fn key_derivation_vector_foo() {
    assert_eq!(
        STANDARD.encode(hmac_sha256(b"foo", b"ilp_stream_encryption")),
        "zfOGMU/uY+EOUCE6tN3WhE77bF/N6pS0wSOmMgEAMEA="
    );
    assert_eq!(
        STANDARD.encode(hmac_sha256(b"foo", b"ilp_stream_fulfillment")),
        "lh8nGJCJosvfUePaU0uxxXK3jNvV2Y+5ivt1GH1Muhs="
    );
    assert_eq!(
        STANDARD.encode(hmac_sha256(&[0u8; 32], b"foo")),
        "DA2Y9+PZ1F5y6Id7wbEEMn77nAexjy/+ztdtgTB/H/8="
    );
}

#[test]
fn aes_gcm_decrypt_vector() {
    let key = aes_key(&array32(
        "00e4adca806fa0af7f38585d99fd93cd046b26c0a4c47fdc8f8f586bb4453847",
    ));
    let mut plaintext = Vec::new();
    open(
        &key,
        &bytes("6355225e90c0d46c00bfe87de4212febb3b8f4c380250ae760440cace16c6efeabae51"),
        &mut plaintext,
    )
    .expect("authentic");
    assert_eq!(plaintext, b"foo bar");
}

#[test]
fn interledger_rs_encrypt_and_fulfillment_vector() {
    let secret = bytes("7edb755d76f8f9d314d3416eed50fdb35192e543e7315c7ffee6906667a69624");
    assert_eq!(
        hex::encode(hmac_sha256(&secret, b"ilp_stream_encryption")),
        "3f8f12c9f2be99d32bd615fdf212e96f47911242556f4f32c75241ba1149cc57"
    );
    assert_eq!(
        hex::encode(hmac_sha256(&secret, b"ilp_stream_fulfillment")),
        "aa044d1508fde0fbff6956f1daf210235dc396810be76ad27bab497f5707f31d"
    );
    let keys = StreamKeys::new(&secret);
    let iv: [u8; 12] = bytes("77f8d5ea3fc8e08cd4de699f")
        .try_into()
        .expect("12 bytes");
    let mut encrypted = Vec::new();
    keys.encrypt_into(iv, &bytes("63000cff4d1f"), &mut encrypted);
    assert_eq!(
        encrypted,
        bytes("77f8d5ea3fc8e08cd4de699f f6cb429b97ac44184ce85a0aed92bd49 f8c4b16c73df")
    );
    assert_eq!(
        hex::encode(keys.fulfillment(&encrypted)),
        "18063849e5ec58e3527098319849b6b7c607e97c77410d44366c78c13be26b27"
    );
    assert_eq!(
        hex::encode(keys.condition(&encrypted)),
        "8c1e5999a50fbe1afb92f0a39485cac876f45b5499c8fb8268aa14e5b50b90bb"
    );
    let mut decrypted = Vec::new();
    keys.decrypt_into(&encrypted, &mut decrypted)
        .expect("authentic");
    assert_eq!(decrypted, bytes("63000cff4d1f"));
    encrypted[20] ^= 1;
    assert!(
        keys.decrypt_into(&encrypted, &mut decrypted).is_err(),
        "a flipped tag bit fails"
    );
}

#[test]
fn javascript_prepare_end_to_end() {
    let prepare_bytes = bytes("0c819900000000000001f43230313931303238323134313533383338f31a96346c613011947f39a0f1f4e573c2fc3e7e53797672b01d2898e90c9a0723746573742e70656572422e4e6a584430754a504275477a353653426d4933755836682d3b6cc484c0d4e9282275d4b37c6ae18f35b497ddbfcbce6d9305b9451b4395c3158aa75e05bf27582a237109ec6ca0129d840da7abd96826c8147d0d");
    let prepare = crate::packet::Prepare::parse(&prepare_bytes).expect("valid Prepare");
    let server = ServerSecret::new(&[0u8; 32]);
    let segment = token_segment("test.peerB", prepare.destination.as_str()).expect("our address");
    assert_eq!(segment, "NjXD0uJPBuGz56SBmI3uX6h-");
    let token = server.decode_segment(segment).expect("decodes");
    assert_eq!(token.variant, TokenVariant::Legacy);
    assert_eq!(
        hex::encode(token.shared_secret),
        "b7d09d2e16e6f83c55b60e42fcd7c2b8ed49624a1df73c59b383dbe2e8690309"
    );
    let keys = StreamKeys::new(&token.shared_secret);
    let mut plaintext = Vec::new();
    keys.decrypt_into(prepare.data, &mut plaintext)
        .expect("authentic");
    assert_eq!(
        hex::encode(&plaintext),
        "010c01070201ef0103120601010100010015050101024000110501010203e8"
    );
    let packet = StreamPacket::parse(&plaintext).expect("STREAM packet");
    assert_eq!(
        (
            packet.ilp_packet_type,
            packet.sequence,
            packet.prepare_amount
        ),
        (12, 7, 495)
    );
    let frames: Vec<Frame> = packet.frames().collect();
    assert_eq!(
        frames,
        [
            Frame::StreamMaxMoney {
                stream_id: 1,
                receive_max: 0,
                total_received: 0
            },
            Frame::StreamMaxData {
                stream_id: 1,
                max_offset: 16384
            },
            Frame::StreamMoney {
                stream_id: 1,
                shares: 1000
            },
        ]
    );
    let fulfillment = keys.fulfillment(prepare.data);
    assert_eq!(
        hex::encode(fulfillment),
        "a3e45782fb678a420470409cedf27f03b5a1d8998ffeaeee4b38fa75219aea21"
    );
    assert_eq!(&sha256(&fulfillment), prepare.execution_condition);
}

const ALL_FRAMES: &str = "010c01010163010e010501036f6f70020d0c6578616d706c652e626c616803030203e804030207d00503020bb80603020fa007050358595a091008014c0204626c61681104015801631208010b0203db0201f413080142024e20021770140b01220223280568656c6c6f1505012302223e160602037802ad9c";

#[test]
fn all_frames_packet_decodes_and_reencodes() {
    let plaintext = bytes(ALL_FRAMES);
    let packet = StreamPacket::parse(&plaintext).expect("valid");
    assert_eq!((packet.sequence, packet.prepare_amount), (1, 99));
    let frames: Vec<Frame> = packet.frames().collect();
    assert_eq!(frames.len(), 14);
    assert_eq!(
        frames[0],
        Frame::ConnectionClose {
            code: CloseCode::NoError,
            message: "oop"
        }
    );
    assert_eq!(
        frames[1],
        Frame::ConnectionNewAddress {
            source_account: "example.blah"
        }
    );
    assert_eq!(
        frames[6],
        Frame::ConnectionAssetDetails {
            asset_code: "XYZ",
            asset_scale: 9
        }
    );
    assert_eq!(
        frames[7],
        Frame::StreamClose {
            stream_id: 76,
            code: CloseCode::InternalError,
            message: "blah"
        }
    );
    assert_eq!(
        frames[9],
        Frame::StreamMaxMoney {
            stream_id: 11,
            receive_max: 987,
            total_received: 500
        }
    );
    assert_eq!(
        frames[10],
        Frame::StreamMoneyBlocked {
            stream_id: 66,
            send_max: 20000,
            total_sent: 6000
        }
    );
    assert_eq!(
        frames[11],
        Frame::StreamData {
            stream_id: 34,
            offset: 9000,
            data: b"hello"
        }
    );
    let builder = StreamPacketBuilder {
        ilp_packet_type: 12,
        sequence: 1,
        prepare_amount: 99,
        frames: &frames,
    };
    assert_eq!(builder.to_bytes(), plaintext);
}

#[test]
fn rfc_fixtures() {
    let cases: [(&str, Vec<Frame>); 4] = [
        ("010c010001000100", vec![]),
        (
            "010c010001000101020e0d6578616d706c652e616c696365",
            vec![Frame::ConnectionNewAddress {
                source_account: "example.alice",
            }],
        ),
        (
            "010c010001000101070503414243ff",
            vec![Frame::ConnectionAssetDetails {
                asset_code: "ABC",
                asset_scale: 255,
            }],
        ),
        (
            "010c010001000101110b017b08ffffffffffffffff",
            vec![Frame::StreamMoney {
                stream_id: 123,
                shares: u64::MAX,
            }],
        ),
    ];
    for (text, expected) in cases {
        let plaintext = bytes(text);
        let packet = StreamPacket::parse(&plaintext).expect("valid");
        assert_eq!(packet.frames().collect::<Vec<_>>(), expected, "{text}");
        let builder = StreamPacketBuilder {
            ilp_packet_type: 12,
            sequence: 0,
            prepare_amount: 0,
            frames: &expected,
        };
        assert_eq!(hex::encode(builder.to_bytes()), text);
    }
    let too_big = bytes("010c010001000101120f017b090100000000000000000201c8");
    let packet = StreamPacket::parse(&too_big).expect("saturates");
    assert_eq!(
        packet.frames().next(),
        Some(Frame::StreamMaxMoney {
            stream_id: 123,
            receive_max: u64::MAX,
            total_received: 456
        })
    );
}

#[test]
fn unknown_frames_are_skipped_and_junk_ignored() {
    let mut plaintext = bytes("010c0100010001025903010203110401010102");
    plaintext.extend_from_slice(&[0, 0, 0]);
    let packet = StreamPacket::parse(&plaintext).expect("valid");
    let frames: Vec<Frame> = packet.frames().collect();
    assert_eq!(
        frames[0],
        Frame::Unknown {
            frame_type: 0x59,
            contents: &[1, 2, 3]
        }
    );
    assert_eq!(
        frames[1],
        Frame::StreamMoney {
            stream_id: 1,
            shares: 2
        }
    );
}

#[test]
fn malformed_packets_are_errors() {
    assert!(
        StreamPacket::parse(&bytes("020c010001000100")).is_err(),
        "version 2"
    );
    assert!(
        StreamPacket::parse(&bytes("010f010001000100")).is_err(),
        "ILP type 15"
    );
    assert!(
        StreamPacket::parse(&bytes("010c01000100017f")).is_err(),
        "frame count over the input"
    );
    assert!(
        StreamPacket::parse(&bytes("010c010001000101110b017b09ffffffffffffffffff")).is_err(),
        "9-byte shares"
    );
    assert!(
        StreamPacket::parse(&bytes("010c0100010001010103020268")).is_err(),
        "close message length past frame"
    );
}

#[test]
fn variant_c_derived_example() {
    let secret: [u8; 32] = std::array::from_fn(|i| i as u8);
    assert_eq!(
        hex::encode(hmac_sha256(&secret, b"ilp_stream_connection_token")),
        "8c3bade7714f312415f64b501f80eecca6781bf4cbbf479851219d46416d5588"
    );
    let server = ServerSecret::new(&secret);
    let details = TokenDetails {
        payment_tag: Some("pay-tag-1".into()),
        receipt: None,
        asset: Some(("USD".into(), 2)),
    };
    let segment = server.generate_segment([0u8; 12], &details).expect("token");
    assert_eq!(
        segment,
        "AAAAAAAAAAAAAAAAF7ZE9d2CwkmsbDvlyaBNjn4HdeCYkGMLMvuezVbuRfw"
    );
    let token = server.decode_segment(&segment).expect("decodes");
    assert_eq!(token.variant, TokenVariant::C);
    assert_eq!(token.details, details);
    assert_eq!(
        hex::encode(token.shared_secret),
        "03fcfaa9fcff5c643671e4cc3de9255dfe56bc9644e2d9492d4078677a751d1c"
    );
    let raw = bytes("000000000000000000000000 17b644f5dd82c249ac6c3be5c9a04d8e 7e0775e09890630b32fb9ecd56ee45fc");
    assert_eq!(server.shared_secret(&raw), token.shared_secret);
}

#[test]
fn variant_b_tokens_decode() {
    let secret = [7u8; 32];
    let server = ServerSecret::new(&secret);
    let mut plaintext = vec![9u8; 18];
    crate::packet::oer::write_var_octet_string(&mut plaintext, b"conn-tag");
    crate::packet::oer::write_var_octet_string(&mut plaintext, &[1u8; 16]);
    crate::packet::oer::write_var_octet_string(&mut plaintext, &[2u8; 32]);
    let mut token = Vec::new();
    super::crypto::seal(&aes_key(&secret), [3u8; 12], &plaintext, &mut token);
    let segment = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token);
    let decoded = server.decode_segment(&segment).expect("decodes");
    assert_eq!(decoded.variant, TokenVariant::B);
    assert_eq!(decoded.details.payment_tag.as_deref(), Some("conn-tag"));
    assert_eq!(
        decoded.details.receipt,
        Some(ReceiptSetup {
            nonce: [1; 16],
            secret: [2; 32]
        })
    );
    assert_eq!(decoded.shared_secret, server.shared_secret(&token));
}

#[test]
fn token_segments_and_connection_ids() {
    assert_eq!(token_segment("g.r", "g.r.abc"), Ok("abc"));
    assert_eq!(token_segment("g.r", "g.r.abc.extra"), Ok("abc"));
    assert_eq!(token_segment("g.r", "g.rx.abc"), Err(TokenError::NotOurs));
    assert_eq!(token_segment("g.r", "g.r"), Err(TokenError::NotOurs));
    assert_eq!(
        hex::encode(connection_id("g.r.abc")),
        hex::encode(sha256(b"g.r.abc"))
    );
    assert_eq!(
        ServerSecret::new(&[0; 32])
            .decode_segment("not base64!")
            .err(),
        Some(TokenError::NotBase64)
    );
}

#[test]
fn receipt_vector() {
    let receipt = Receipt {
        nonce: [0; 16],
        stream_id: 1,
        total_received: 500,
    };
    let encoded = receipt.to_bytes(&[0; 32]);
    assert_eq!(
        hex::encode(encoded),
        concat!(
            "01",
            "00000000000000000000000000000000",
            "01",
            "00000000000001f4",
            "c122fa0252debb672d591823f710e99516d67385cf397da87cc8f9e8c8bf5130"
        )
    );
    assert_eq!(Receipt::verify(&encoded, &[0; 32]), Ok(receipt));
    assert_eq!(
        Receipt::verify(&encoded, &[1; 32]),
        Err(ReceiptError::Signature)
    );
    assert_eq!(
        Receipt::verify(&encoded[..57], &[0; 32]),
        Err(ReceiptError::Size(57))
    );
}

#[derive(Debug, Clone)]
enum OwnedFrame {
    Close(u8, String),
    NewAddress(String),
    Numbers(u8, u64),
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
            OwnedFrame::Numbers(kind, value) => match kind % 4 {
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
            OwnedFrame::Unknown(kind, contents) => Frame::Unknown {
                frame_type: 0x20 + kind % 0x40,
                contents,
            },
        }
    }
}

fn owned_frame() -> impl Strategy<Value = OwnedFrame> {
    prop_oneof![
        (any::<u8>(), ".{0,20}").prop_map(|(c, m)| OwnedFrame::Close(c, m)),
        "[a-z.]{0,30}".prop_map(OwnedFrame::NewAddress),
        (any::<u8>(), any::<u64>()).prop_map(|(k, v)| OwnedFrame::Numbers(k, v)),
        (".{0,5}", any::<u8>()).prop_map(|(c, s)| OwnedFrame::Asset(c, s)),
        (any::<u64>(), any::<u8>(), ".{0,10}")
            .prop_map(|(i, c, m)| OwnedFrame::StreamClose(i, c, m)),
        (any::<u8>(), any::<u64>(), any::<u64>())
            .prop_map(|(k, i, v)| OwnedFrame::StreamPair(k, i, v)),
        (any::<u8>(), any::<u64>(), any::<u64>(), any::<u64>())
            .prop_map(|(k, i, a, b)| OwnedFrame::StreamTriple(k, i, a, b)),
        (
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(i, o, d)| OwnedFrame::Data(i, o, d)),
        (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..60))
            .prop_map(|(i, r)| OwnedFrame::Receipt(i, r)),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(k, c)| OwnedFrame::Unknown(k, c)),
    ]
}

proptest! {
    #[test]
    fn packets_round_trip(
        ilp_packet_type in 12u8..=14,
        sequence: u64,
        prepare_amount: u64,
        owned in proptest::collection::vec(owned_frame(), 0..8),
    ) {
        let frames: Vec<Frame> = owned.iter().map(OwnedFrame::frame).collect();
        let builder = StreamPacketBuilder { ilp_packet_type, sequence, prepare_amount, frames: &frames };
        let plaintext = builder.to_bytes();
        let packet = StreamPacket::parse(&plaintext).expect("own encoding decodes");
        prop_assert_eq!((packet.ilp_packet_type, packet.sequence, packet.prepare_amount), (ilp_packet_type, sequence, prepare_amount));
        prop_assert_eq!(packet.frames().collect::<Vec<_>>(), frames);
    }

    #[test]
    fn decoder_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(packet) = StreamPacket::parse(&input) {
            prop_assert_eq!(packet.frames().count() as u64, packet.frame_count());
        }
    }

    #[test]
    fn encryption_round_trips(secret: [u8; 32], iv: [u8; 12], plaintext in proptest::collection::vec(any::<u8>(), 0..500)) {
        let keys = StreamKeys::new(&secret);
        let mut encrypted = Vec::new();
        keys.encrypt_into(iv, &plaintext, &mut encrypted);
        prop_assert_eq!(encrypted.len(), plaintext.len() + 28);
        let mut decrypted = Vec::new();
        keys.decrypt_into(&encrypted, &mut decrypted).expect("authentic");
        prop_assert_eq!(decrypted, plaintext);
    }

    #[test]
    fn variant_c_tokens_round_trip(
        secret: [u8; 32],
        iv: [u8; 12],
        tag in proptest::option::of("[ -~]{0,40}"),
        receipt in proptest::option::of((any::<[u8; 16]>(), any::<[u8; 32]>())),
        asset in proptest::option::of(("[A-Z]{3}", any::<u8>())),
    ) {
        let server = ServerSecret::new(&secret);
        let details = TokenDetails {
            payment_tag: tag,
            receipt: receipt.map(|(nonce, secret)| ReceiptSetup { nonce, secret }),
            asset,
        };
        let segment = server.generate_segment(iv, &details).expect("token");
        let decoded = server.decode_segment(&segment).expect("decodes");
        prop_assert_eq!(decoded.variant, TokenVariant::C);
        prop_assert_eq!(decoded.details, details);
    }

    #[test]
    fn token_decoding_never_panics(segment in "[A-Za-z0-9_-]{0,120}") {
        let _ = ServerSecret::new(&[5; 32]).decode_segment(&segment);
    }
}
