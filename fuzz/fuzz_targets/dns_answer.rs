//! Any bytes read as a DNS answer give addresses or a typed error, never a panic;
//! what is read back is bounded by the input. The id is taken from the input so
//! that the fuzzer reaches past the id check, and the seed's question is the one
//! asked here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_proto::dns::{parse_answer, RecordType};

fuzz_target!(|input: &[u8]| {
    let id = match input {
        [high, low, ..] => u16::from_be_bytes([*high, *low]),
        _ => 0,
    };
    for record in [RecordType::A, RecordType::Aaaa] {
        if let Ok(answer) = parse_answer(input, id, "peer.example.com", record) {
            // Each address took at least 14 bytes of record (a pointer and fields).
            assert!(answer.addresses.len() * 14 <= input.len());
        }
    }
});
