//! Any bytes fed to the ILP decoder give a typed result, never a panic; what decodes
//! re-encodes to a packet that decodes to the same value, and the in-place rewrite
//! keeps a valid Prepare valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_proto::packet::{rewrite_prepare, Packet, Timestamp};

fuzz_target!(|input: &[u8]| {
    let Ok(packet) = Packet::parse(input) else {
        return;
    };
    let encoded = match packet {
        Packet::Prepare(prepare) => prepare.to_bytes(),
        Packet::Fulfill(fulfill) => fulfill.to_bytes(),
        Packet::Reject(reject) => reject.to_bytes(),
    };
    assert_eq!(Packet::parse(&encoded), Ok(packet));
    if let Packet::Prepare(prepare) = packet {
        let mut rewritten = input.to_vec();
        let expiry = Timestamp::from_unix_ms_saturating(prepare.expires_at.unix_ms() / 2);
        let size =
            rewrite_prepare(&mut rewritten, prepare.amount / 3, expiry).expect("valid Prepare");
        // The envelope holds at least the fields (and may carry extension bytes after
        // them, which a reader ignores); bytes after the envelope are not the packet.
        assert!(encoded.len() <= size && size <= input.len());
        assert_eq!(&rewritten[size..], &input[size..]);
        let after = riptide_proto::packet::Prepare::parse(&rewritten).expect("still valid");
        assert_eq!(after.amount, prepare.amount / 3);
        assert_eq!(after.expires_at, expiry);
        assert_eq!(after.destination, prepare.destination);
        assert_eq!(after.data, prepare.data);
    }
});
