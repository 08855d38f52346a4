//! The receiver's decision on any STREAM plaintext that arrives authentic (encrypted
//! under the connection's key, with a matching condition): an answer, never a panic;
//! a credit only for the amount that arrived; and a reply the sender can decrypt.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_proto::stream::receiver::{
    receive, settle, Arrival, ConnectionContext, CreditOutcome, Known, Reply, Step, TargetState,
};
use riptide_proto::stream::{StreamKeys, StreamPacket};

fuzz_target!(|input: &[u8]| {
    let Some((&amount_byte, plaintext)) = input.split_first() else {
        return;
    };
    let keys = StreamKeys::new(b"fuzzing shared secret");
    let mut data = Vec::new();
    keys.encrypt_into([7; 12], plaintext, &mut data);
    let condition = keys.condition(&data);
    let connection = ConnectionContext {
        keys: keys.clone(),
        asset_code: "USD".into(),
        asset_scale: 2,
        receipts: None,
    };
    let amount = u64::from(amount_byte) * 1_000;
    let arrival = Arrival {
        amount,
        execution_condition: &condition,
        data: &data,
    };
    let known = Known {
        connection_total: 5,
        remaining: Some(7),
    };
    let reply = match receive(
        &connection,
        arrival,
        TargetState::Open,
        known,
        [1; 12],
        &mut Vec::new(),
    ) {
        Step::Reply(reply) => reply,
        Step::Credit(credit) => {
            assert_eq!(credit.amount, amount);
            let outcome = CreditOutcome::Credited {
                connection_total: amount,
                remaining: None,
            };
            settle(&connection, &credit, outcome, [2; 12])
        }
    };
    let reply_data = match &reply {
        Reply::Fulfill { data, .. } | Reply::Reject { data, .. } => data,
    };
    if !reply_data.is_empty() {
        let mut opened = Vec::new();
        keys.decrypt_into(reply_data, &mut opened)
            .expect("reply decrypts");
        StreamPacket::parse(&opened).expect("reply parses");
    }
});
