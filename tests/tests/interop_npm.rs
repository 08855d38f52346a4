//! Riptide's codec against independent implementations, the npm packages
//! `ilp-packet` and `ilp-protocol-stream`: packets made in JavaScript decode here
//! with the same fields and re-encode byte for byte; packets made here decode there.
#![allow(clippy::too_many_lines)] // test code

use riptide_proto::packet::{Address, ErrorCode, Fulfill, Packet, Prepare, Reject, Timestamp};
use riptide_proto::stream::{Frame, StreamKeys, StreamPacket, StreamPacketBuilder};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const NODE_TIME_MAX: Duration = Duration::from_secs(60);

const SEEDS: [u64; 3] = [1, 20_260_101, 987_654_321];

fn interop_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop");
    assert!(
        dir.join("node_modules/ilp-packet").exists(),
        "npm packages missing: run scripts/setup-npm.sh (or scripts/setup.sh)"
    );
    dir
}

/// Runs the Node script with `stdin`, bounded in time.
fn node(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut child = Command::new("node")
        .arg("interop.js")
        .args(args)
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write to node");
    let pid = child.id();
    // Read the output on another thread while this one keeps the time: a child that
    // fills its stdout pipe waits for a reader.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = match receiver.recv_timeout(NODE_TIME_MAX) {
        Ok(output) => output.expect("node output"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("node took over {NODE_TIME_MAX:?}");
        }
    };
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn text<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} missing: {vector}"))
}

fn unhex(vector: &Value, key: &str) -> Vec<u8> {
    hex::decode(text(vector, key)).expect("hex from node")
}

fn check_ilp(vector: &Value) {
    let bytes = unhex(vector, "hex");
    let packet = Packet::parse(&bytes)
        .unwrap_or_else(|e| panic!("Riptide cannot decode a JS packet ({e}): {vector}"));
    let reencoded = match packet {
        Packet::Prepare(prepare) => {
            assert_eq!(prepare.amount.to_string(), text(vector, "amount"));
            assert_eq!(prepare.expires_at.to_rfc3339(), text(vector, "expiresAt"));
            assert_eq!(
                hex::encode(prepare.execution_condition),
                text(vector, "condition")
            );
            assert_eq!(prepare.destination.as_str(), text(vector, "destination"));
            assert_eq!(hex::encode(prepare.data), text(vector, "data"));
            prepare.to_bytes()
        }
        Packet::Fulfill(fulfill) => {
            assert_eq!(
                hex::encode(fulfill.fulfillment),
                text(vector, "fulfillment")
            );
            assert_eq!(hex::encode(fulfill.data), text(vector, "data"));
            fulfill.to_bytes()
        }
        Packet::Reject(reject) => {
            assert_eq!(reject.code.to_string(), text(vector, "code"));
            assert_eq!(reject.triggered_by, text(vector, "triggeredBy"));
            assert_eq!(reject.message, text(vector, "message").as_bytes());
            assert_eq!(hex::encode(reject.data), text(vector, "data"));
            reject.to_bytes()
        }
    };
    assert_eq!(reencoded, bytes, "re-encoding differs from the JS bytes");
}

fn check_stream(vector: &Value) {
    let keys = StreamKeys::new(&unhex(vector, "secret"));
    let data = unhex(vector, "data");
    let mut plaintext = Vec::new();
    keys.decrypt_into(&data, &mut plaintext)
        .expect("JS-encrypted data decrypts in Riptide");
    assert_eq!(hex::encode(&plaintext), text(vector, "plaintext"));
    let packet = StreamPacket::parse(&plaintext).expect("JS STREAM packet decodes");
    assert_eq!(packet.sequence.to_string(), text(vector, "sequence"));
    assert_eq!(
        packet.prepare_amount.to_string(),
        text(vector, "prepareAmount")
    );
    assert_eq!(
        packet.frame_count(),
        vector["frameCount"].as_u64().expect("frameCount")
    );
    let frames: Vec<Frame> = packet.frames().collect();
    let builder = StreamPacketBuilder {
        ilp_packet_type: packet.ilp_packet_type,
        sequence: packet.sequence,
        prepare_amount: packet.prepare_amount,
        frames: &frames,
    };
    assert_eq!(builder.to_bytes(), plaintext, "STREAM re-encoding differs");
    assert_eq!(
        hex::encode(keys.fulfillment(&data)),
        text(vector, "fulfillment")
    );
}

#[test]
fn javascript_packets_decode_in_riptide() {
    for seed in SEEDS {
        let (ok, stdout, stderr) = node(&["generate", &seed.to_string()], b"");
        assert!(ok, "node generate failed: {stderr}");
        let vectors: Vec<Value> = serde_json::from_str(&stdout).expect("JSON from node");
        assert!(
            vectors.len() >= 100,
            "seed {seed}: only {} vectors",
            vectors.len()
        );
        for vector in &vectors {
            match text(vector, "kind") {
                "stream" => check_stream(vector),
                _ => check_ilp(vector),
            }
        }
    }
}

/// A deterministic byte source, so a failure is reproducible.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next() as u8).collect()
    }
}

fn riptide_vectors(source: &mut Bytes) -> Vec<Value> {
    let mut vectors = Vec::new();
    for round in 0..40u64 {
        let condition: [u8; 32] = source.fill(32).try_into().expect("32");
        let data = source.fill([0, 1, 127, 128, 256, 1000][round as usize % 6]);
        let destination = format!("g.riptide.round{round}.x-{}", source.next() % 1000);
        let expires_at =
            Timestamp::from_unix_ms(1_500_000_000_000 + source.next() % 2_000_000_000_000)
                .expect("in range");
        let amount = [0, u64::MAX, source.next()][round as usize % 3];
        let prepare = Prepare {
            amount,
            expires_at,
            execution_condition: &condition,
            destination: Address::parse_str(&destination).expect("valid"),
            data: &data,
        };
        vectors.push(json!({"kind": "prepare", "hex": hex::encode(prepare.to_bytes()), "amount": amount.to_string(), "expiresAt": expires_at.to_rfc3339(), "condition": hex::encode(condition), "destination": destination, "data": hex::encode(&data)}));
        let fulfillment: [u8; 32] = source.fill(32).try_into().expect("32");
        let fulfill = Fulfill {
            fulfillment: &fulfillment,
            data: &data,
        };
        vectors.push(json!({"kind": "fulfill", "hex": hex::encode(fulfill.to_bytes()), "fulfillment": hex::encode(fulfillment), "data": hex::encode(&data)}));
        let code = ErrorCode::STANDARD[round as usize % ErrorCode::STANDARD.len()];
        let message = format!("riptide says {round}");
        let reject = Reject {
            code,
            triggered_by: "g.riptide",
            message: message.as_bytes(),
            data: &data,
        };
        vectors.push(json!({"kind": "reject", "hex": hex::encode(reject.to_bytes()), "code": code.to_string(), "triggeredBy": "g.riptide", "message": message, "data": hex::encode(&data)}));
    }
    for round in 0..30u64 {
        let secret = source.fill(32);
        let keys = StreamKeys::new(&secret);
        let payload = source.fill((round * 37 % 400) as usize);
        let frames = [
            Frame::ConnectionNewAddress {
                source_account: "g.riptide.sender",
            },
            Frame::ConnectionAssetDetails {
                asset_code: "EUR",
                asset_scale: 2,
            },
            Frame::StreamMoney {
                stream_id: 1,
                shares: source.next(),
            },
            Frame::StreamMaxMoney {
                stream_id: 1,
                receive_max: u64::MAX,
                total_received: source.next(),
            },
            Frame::StreamData {
                stream_id: 1,
                offset: round,
                data: &payload,
            },
            Frame::StreamClose {
                stream_id: 3,
                code: riptide_proto::stream::CloseCode::NoError,
                message: "done",
            },
        ];
        let plaintext = StreamPacketBuilder {
            ilp_packet_type: [12, 13, 14][round as usize % 3],
            sequence: round,
            prepare_amount: source.next(),
            frames: &frames[..1 + round as usize % 6],
        }
        .to_bytes();
        let iv: [u8; 12] = source.fill(12).try_into().expect("12");
        let mut data = Vec::new();
        keys.encrypt_into(iv, &plaintext, &mut data);
        vectors.push(json!({"kind": "stream", "secret": hex::encode(&secret), "data": hex::encode(&data), "plaintext": hex::encode(&plaintext), "sequence": round.to_string(), "fulfillment": hex::encode(keys.fulfillment(&data))}));
    }
    vectors
}

#[test]
fn riptide_packets_decode_in_javascript() {
    let vectors = riptide_vectors(&mut Bytes(0x9e37_79b9_7f4a_7c15));
    let input = serde_json::to_vec(&vectors).expect("JSON");
    let (ok, stdout, stderr) = node(&["check"], &input);
    assert!(ok, "JS rejected Riptide's packets:\n{stderr}\n{stdout}");
    assert!(
        stdout.contains(&format!("checked {} vectors, 0 mismatches", vectors.len())),
        "{stdout}"
    );
}

#[test]
fn the_checker_can_fail() {
    // A corrupted vector must be caught, or the test above proves nothing.
    let mut vectors = riptide_vectors(&mut Bytes(7));
    vectors.truncate(1);
    vectors[0]["amount"] = json!("12345");
    let input = serde_json::to_vec(&vectors).expect("JSON");
    let (ok, _, stderr) = node(&["check"], &input);
    assert!(!ok, "a wrong amount went unnoticed");
    assert!(stderr.contains("amount"), "{stderr}");
}
