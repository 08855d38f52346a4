//! ILP codec on the per-packet path: parse + validate a Prepare, rewrite its amount
//! and expiry in place, build a Fulfill and a Reject.
#![allow(clippy::too_many_lines)] // test code

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use riptide_proto::packet::{
    rewrite_prepare, Address, ErrorCode, Fulfill, Prepare, Reject, Timestamp,
};

/// A Prepare shaped like a STREAM packet on the wire: a 60-byte address with a
/// connection token and about 200 bytes of encrypted data.
fn typical_prepare() -> Vec<u8> {
    let condition = [7u8; 32];
    let data = [0x5au8; 200];
    let destination = "g.riptide.node1.AAAAAAAAAAAAAAAAF7ZE9d2CwkmsbDvlyaBNjn4HdeCYkGMLMvuezVbuRfw";
    Prepare {
        amount: 1_000_000,
        expires_at: Timestamp::from_unix_ms(1_800_000_000_000).expect("in range"),
        execution_condition: &condition,
        destination: Address::parse_str(destination).expect("valid"),
        data: &data,
    }
    .to_bytes()
}

fn prepare_benches(c: &mut Criterion) {
    let buffer = typical_prepare();
    let mut group = c.benchmark_group("prepare");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_validate", |b| {
        b.iter(|| Prepare::parse(black_box(&buffer)).expect("valid"))
    });
    let mut scratch = buffer.clone();
    let expiry = Timestamp::from_unix_ms(1_799_999_999_000).expect("in range");
    group.bench_function("rewrite_amount_expiry", |b| {
        b.iter(|| rewrite_prepare(black_box(&mut scratch), black_box(999_000), expiry))
    });
    group.finish();
}

fn reply_benches(c: &mut Criterion) {
    let fulfillment = [9u8; 32];
    let data = [0x33u8; 200];
    let mut out = Vec::with_capacity(512);
    let mut group = c.benchmark_group("reply");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_fulfill", |b| {
        b.iter(|| {
            out.clear();
            Fulfill {
                fulfillment: &fulfillment,
                data: black_box(&data),
            }
            .write_to(&mut out);
            out.len()
        })
    });
    group.bench_function("build_reject", |b| {
        b.iter(|| {
            out.clear();
            let reject = Reject {
                code: ErrorCode::T04,
                triggered_by: "g.riptide.node1",
                message: b"",
                data: black_box(&[]),
            };
            reject.write_to(&mut out);
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, prepare_benches, reply_benches);
criterion_main!(benches);
