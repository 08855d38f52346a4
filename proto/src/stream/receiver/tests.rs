use super::*;
use crate::stream::crypto::sha256;
use crate::stream::packet::StreamPacket;

const SECRET: [u8; 32] = [7; 32];
const IV: [u8; IV_SIZE] = [1; IV_SIZE];

fn connection(receipts: bool) -> ConnectionContext {
    ConnectionContext {
        keys: StreamKeys::new(&SECRET),
        asset_code: "USD".into(),
        asset_scale: 2,
        receipts: receipts.then(|| {
            ReceiptSigner::new(&ReceiptSetup {
                nonce: [3; 16],
                secret: [4; 32],
            })
        }),
    }
}

/// A sender's Prepare data and its condition (fulfillable unless `probe`).
fn sender_packet(
    minimum: u64,
    frames: &[Frame<'_>],
    ilp_type: u8,
    probe: bool,
) -> (Vec<u8>, [u8; 32]) {
    let keys = StreamKeys::new(&SECRET);
    let builder = StreamPacketBuilder {
        ilp_packet_type: ilp_type,
        sequence: 9,
        prepare_amount: minimum,
        frames,
    };
    let mut data = Vec::new();
    keys.encrypt_packet([2; IV_SIZE], &builder, &mut data);
    let condition = if probe {
        [0xab; 32]
    } else {
        keys.condition(&data)
    };
    (data, condition)
}

fn money(stream_id: u64) -> Frame<'static> {
    Frame::StreamMoney {
        stream_id,
        shares: 1,
    }
}

fn run(
    connection: &ConnectionContext,
    amount: u64,
    data: &[u8],
    condition: &[u8; 32],
    target: TargetState,
) -> Step {
    let arrival = Arrival {
        amount,
        execution_condition: condition,
        data,
    };
    receive(
        connection,
        arrival,
        target,
        Known {
            connection_total: 40,
            remaining: None,
        },
        IV,
        &mut Vec::new(),
    )
}

/// Decrypts a reply and returns (ILP type, sequence, prepare amount, frames as text).
fn open_reply(data: &[u8]) -> (u8, u64, u64, Vec<String>) {
    let mut plaintext = Vec::new();
    StreamKeys::new(&SECRET)
        .decrypt_into(data, &mut plaintext)
        .expect("reply decrypts");
    let packet = StreamPacket::parse(&plaintext).expect("reply parses");
    let header = packet.header();
    let frames = packet.frames().map(|f| format!("{f:?}")).collect();
    (
        header.ilp_packet_type,
        header.sequence,
        header.prepare_amount,
        frames,
    )
}

fn expect_credit(step: Step) -> Credit {
    match step {
        Step::Credit(credit) => credit,
        other => panic!("expected a credit, got {other:?}"),
    }
}

#[test]
fn payable_packet_becomes_a_credit_then_a_fulfill_with_max_money() {
    let connection = connection(false);
    let (data, condition) = sender_packet(90, &[money(1)], TYPE_PREPARE, false);
    let credit = expect_credit(run(&connection, 100, &data, &condition, TargetState::Open));
    assert_eq!(credit.amount, 100);
    let outcome = CreditOutcome::Credited {
        connection_total: 140,
        remaining: None,
    };
    let Reply::Fulfill { fulfillment, data } = settle(&connection, &credit, outcome, IV) else {
        panic!("expected a Fulfill");
    };
    assert_eq!(sha256(&fulfillment), condition);
    let (ilp_type, sequence, amount, frames) = open_reply(&data);
    assert_eq!((ilp_type, sequence, amount), (TYPE_FULFILL, 9, 100));
    assert_eq!(
        frames,
        vec![format!(
            "{:?}",
            Frame::StreamMaxMoney {
                stream_id: 1,
                receive_max: u64::MAX,
                total_received: 140
            }
        )]
    );
}

#[test]
fn receipts_carry_the_connection_total_and_verify() {
    let connection = connection(true);
    let (data, condition) = sender_packet(0, &[money(1), money(300)], TYPE_PREPARE, false);
    let credit = expect_credit(run(&connection, 5, &data, &condition, TargetState::Open));
    let outcome = CreditOutcome::Credited {
        connection_total: 500,
        remaining: Some(20),
    };
    let Reply::Fulfill { data, .. } = settle(&connection, &credit, outcome, IV) else {
        panic!("expected a Fulfill");
    };
    let mut plaintext = Vec::new();
    StreamKeys::new(&SECRET)
        .decrypt_into(&data, &mut plaintext)
        .expect("decrypts");
    let packet = StreamPacket::parse(&plaintext).expect("parses");
    let mut receipts = Vec::new();
    let mut max_money = Vec::new();
    for frame in packet.frames() {
        match frame {
            Frame::StreamReceipt { stream_id, receipt } => receipts.push((stream_id, receipt)),
            Frame::StreamMaxMoney {
                stream_id,
                receive_max,
                total_received,
            } => max_money.push((stream_id, receive_max, total_received)),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(max_money, vec![(1, 520, 500), (300, 520, 500)]);
    // Stream 300 cannot be named in a receipt.
    assert_eq!(receipts.len(), 1);
    let receipt = Receipt::verify(receipts[0].1, &[4; 32]).expect("receipt verifies");
    assert_eq!(
        (receipt.nonce, receipt.stream_id, receipt.total_received),
        ([3; 16], 1, 500)
    );
}

#[test]
fn rate_probe_gets_f99_with_the_amount_that_arrived() {
    let connection = connection(false);
    let (data, condition) = sender_packet(0, &[money(1)], TYPE_PREPARE, true);
    let Step::Reply(Reply::Reject { code, data }) =
        run(&connection, 1_000_000, &data, &condition, TargetState::Open)
    else {
        panic!("expected a Reject");
    };
    assert_eq!(code, ErrorCode::F99);
    let (ilp_type, sequence, amount, frames) = open_reply(&data);
    assert_eq!((ilp_type, sequence, amount), (TYPE_REJECT, 9, 1_000_000));
    assert!(frames.is_empty());
}

#[test]
fn asset_details_answer_a_new_address() {
    let connection = connection(false);
    let frames = [Frame::ConnectionNewAddress { source_account: "" }];
    let (data, condition) = sender_packet(0, &frames, TYPE_PREPARE, true);
    let Step::Reply(Reply::Reject { data, .. }) =
        run(&connection, 0, &data, &condition, TargetState::Open)
    else {
        panic!("expected a Reject");
    };
    let (_, _, _, frames) = open_reply(&data);
    let expected = Frame::ConnectionAssetDetails {
        asset_code: "USD",
        asset_scale: 2,
    };
    assert_eq!(frames, vec![format!("{expected:?}")]);
}

#[test]
fn amount_below_the_minimum_is_declined() {
    let connection = connection(false);
    let (data, condition) = sender_packet(101, &[money(1)], TYPE_PREPARE, false);
    let Step::Reply(Reply::Reject { code, data }) =
        run(&connection, 100, &data, &condition, TargetState::Open)
    else {
        panic!("expected a Reject");
    };
    assert_eq!(code, ErrorCode::F99);
    assert_eq!(open_reply(&data).2, 100);
}

/// A client's close is acknowledged without error, also once the target closed
/// (a finished payment ends so); a closed target closes with an application error,
/// so that the sender ends its payment at once (see `Closing::TargetClosed`).
#[test]
fn closed_target_and_client_close_get_a_connection_close() {
    let connection = connection(false);
    let close = Frame::ConnectionClose {
        code: CloseCode::NoError,
        message: "",
    };
    let target_closed = Frame::ConnectionClose {
        code: CloseCode::ApplicationError,
        message: TARGET_CLOSED_MESSAGE,
    };
    let (data, condition) = sender_packet(0, &[money(1)], TYPE_PREPARE, false);
    let (closing_data, closing_condition) = sender_packet(0, &[close], TYPE_PREPARE, false);
    for (data, condition, target, expected) in [
        (&data, &condition, TargetState::Closed, &target_closed),
        (&closing_data, &closing_condition, TargetState::Open, &close),
        (
            &closing_data,
            &closing_condition,
            TargetState::Closed,
            &close,
        ),
    ] {
        let Step::Reply(Reply::Reject { code, data }) =
            run(&connection, 10, data, condition, target)
        else {
            panic!("expected a Reject");
        };
        assert_eq!(code, ErrorCode::F99);
        assert_eq!(open_reply(&data).3, vec![format!("{expected:?}")]);
    }
}

#[test]
fn zero_amount_is_fulfilled_with_the_known_total() {
    let connection = connection(false);
    let (data, condition) = sender_packet(0, &[money(1)], TYPE_PREPARE, false);
    let Step::Reply(Reply::Fulfill { data, .. }) =
        run(&connection, 0, &data, &condition, TargetState::Open)
    else {
        panic!("expected a Fulfill");
    };
    let expected = Frame::StreamMaxMoney {
        stream_id: 1,
        receive_max: u64::MAX,
        total_received: 40,
    };
    assert_eq!(open_reply(&data).3, vec![format!("{expected:?}")]);
}

#[test]
fn exceeding_the_target_tells_what_is_left() {
    let connection = connection(false);
    let (data, condition) = sender_packet(0, &[money(2)], TYPE_PREPARE, false);
    let credit = expect_credit(run(&connection, 50, &data, &condition, TargetState::Open));
    let outcome = CreditOutcome::Exceeds {
        connection_total: 70,
        remaining: 30,
    };
    let Reply::Reject { code, data } = settle(&connection, &credit, outcome, IV) else {
        panic!("expected a Reject");
    };
    assert_eq!(code, ErrorCode::F99);
    let expected = Frame::StreamMaxMoney {
        stream_id: 2,
        receive_max: 100,
        total_received: 70,
    };
    assert_eq!(open_reply(&data).3, vec![format!("{expected:?}")]);
}

#[test]
fn unauthentic_or_misdirected_data_gets_bare_rejects() {
    let connection = connection(false);
    let condition = [0; 32];
    for garbage in [&b""[..], &[0u8; 40][..]] {
        assert_eq!(
            run(&connection, 1, garbage, &condition, TargetState::Open),
            Step::Reply(Reply::Reject {
                code: ErrorCode::F06,
                data: Vec::new()
            })
        );
    }
    let (data, condition) = sender_packet(0, &[], TYPE_FULFILL, false);
    assert_eq!(
        run(&connection, 1, &data, &condition, TargetState::Open),
        Step::Reply(Reply::Reject {
            code: ErrorCode::F00,
            data: Vec::new()
        })
    );
}

proptest::proptest! {
    /// Whatever the data, the receiver answers without panicking, and a credit is
    /// only ever asked for the amount that arrived.
    #[test]
    fn any_data_gets_an_answer(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200), amount in 0u64..u64::MAX) {
        let connection = connection(true);
        if let Step::Credit(credit) = run(&connection, amount, &data, &[0; 32], TargetState::Open) {
            proptest::prop_assert_eq!(credit.amount, amount);
        }
    }
}
