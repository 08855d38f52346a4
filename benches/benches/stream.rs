//! STREAM receive crypto for one packet: decrypt a ~200-byte Prepare's data, check
//! its condition, parse it, and encrypt the reply. Keys are derived once per
//! connection, as the receiver does.
#![allow(clippy::too_many_lines)] // test code

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use riptide_proto::stream::{
    Frame, ServerSecret, StreamKeys, StreamPacket, StreamPacketBuilder, TokenDetails,
};

fn typical_stream_data(keys: &StreamKeys) -> (Vec<u8>, [u8; 32]) {
    let padding = [0u8; 130];
    let frames = [
        Frame::StreamMoney {
            stream_id: 1,
            shares: 1,
        },
        Frame::StreamData {
            stream_id: 1,
            offset: 0,
            data: &padding,
        },
        Frame::ConnectionNewAddress {
            source_account: "g.sender.client.abc123",
        },
    ];
    let plaintext = StreamPacketBuilder {
        ilp_packet_type: 12,
        sequence: 42,
        prepare_amount: 990,
        frames: &frames,
    }
    .to_bytes();
    let mut data = Vec::new();
    keys.encrypt_into([7u8; 12], &plaintext, &mut data);
    let condition = keys.condition(&data);
    (data, condition)
}

fn receive(c: &mut Criterion) {
    let keys = StreamKeys::new(&[9u8; 32]);
    let (data, condition) = typical_stream_data(&keys);
    assert!(
        (190..=230).contains(&data.len()),
        "typical packet is about 200 bytes: {}",
        data.len()
    );
    let mut plaintext = Vec::with_capacity(512);
    let mut reply = Vec::with_capacity(512);
    let mut reply_plaintext = Vec::with_capacity(128);
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(1));
    group.bench_function("receive_decrypt_check_reply", |b| {
        b.iter(|| {
            keys.decrypt_into(black_box(&data), &mut plaintext)
                .expect("authentic");
            let packet = StreamPacket::parse(&plaintext).expect("valid");
            assert!(keys.condition(&data) == condition);
            let frames = [Frame::StreamMaxMoney {
                stream_id: 1,
                receive_max: u64::MAX,
                total_received: 990,
            }];
            reply_plaintext.clear();
            StreamPacketBuilder {
                ilp_packet_type: 13,
                sequence: packet.sequence,
                prepare_amount: 990,
                frames: &frames,
            }
            .write_to(&mut reply_plaintext);
            reply.clear();
            keys.encrypt_into([8u8; 12], &reply_plaintext, &mut reply);
            reply.len()
        })
    });
    group.bench_function("derive_connection_keys", |b| {
        b.iter(|| StreamKeys::new(black_box(&[3u8; 32])))
    });
    let server = ServerSecret::new(&[1u8; 32]);
    let details = TokenDetails {
        payment_tag: Some("wallet-42".into()),
        receipt: None,
        asset: Some(("USD".into(), 2)),
    };
    let segment = server.generate_segment([0u8; 12], &details).expect("token");
    group.bench_function("decode_token_c", |b| {
        b.iter(|| server.decode_segment(black_box(&segment)).expect("valid"))
    });
    group.finish();
}

criterion_group!(benches, receive);
criterion_main!(benches);
