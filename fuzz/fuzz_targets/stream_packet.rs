//! Any bytes fed to the STREAM decoder give a typed result, never a panic; what
//! decodes re-encodes to the same packet; and decryption of arbitrary data under a
//! fixed key fails cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_proto::stream::{Frame, StreamKeys, StreamPacket, StreamPacketBuilder};

fuzz_target!(|input: &[u8]| {
    if let Ok(packet) = StreamPacket::parse(input) {
        let frames: Vec<Frame> = packet.frames().collect();
        assert_eq!(frames.len() as u64, packet.frame_count());
        let builder = StreamPacketBuilder {
            ilp_packet_type: packet.ilp_packet_type,
            sequence: packet.sequence,
            prepare_amount: packet.prepare_amount,
            frames: &frames,
        };
        let encoded = builder.to_bytes();
        let again = StreamPacket::parse(&encoded).expect("own encoding decodes");
        assert_eq!(again.frames().collect::<Vec<_>>(), frames);
    }
    let keys = StreamKeys::new(b"fuzzing shared secret");
    let mut plaintext = Vec::new();
    let _ = keys.decrypt_into(input, &mut plaintext);
    let _ = riptide_proto::stream::ServerSecret::new(&[3; 32])
        .decode_segment(std::str::from_utf8(input).unwrap_or(""));
});
