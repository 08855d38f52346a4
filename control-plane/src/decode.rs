//! Packet -> JSON for `riptidectl decode`. Amounts are strings, since u64 values do not
//! survive a JSON number in most readers.

use riptide_proto::packet::ildcp::{is_ildcp_request, IldcpResponse};
use riptide_proto::packet::{AmountTooLargeData, ErrorCode, Fulfill, Packet, Prepare, Reject};
use serde_json::{json, Value};

/// Decodes `bytes` as an ILP packet; with `shared_secret`, its data as STREAM too,
/// unless it is ILDCP (a `peer.config` request or its answer), which is never
/// encrypted and is decoded as such whether a secret is given or not.
pub fn decode_to_json(bytes: &[u8], shared_secret: Option<&str>) -> Result<Value, String> {
    let packet = Packet::parse(bytes).map_err(|e| format!("not an ILP packet: {e}"))?;
    let mut json = match packet {
        Packet::Prepare(prepare) => prepare_json(&prepare),
        Packet::Fulfill(fulfill) => fulfill_json(&fulfill),
        Packet::Reject(reject) => reject_json(&reject),
    };
    let ildcp = json["ildcpRequest"] == true || json.get("ildcpResponse").is_some();
    if let Some(secret) = shared_secret.filter(|_| !ildcp) {
        json["stream"] = crate::decode::stream::stream_json(&packet, secret)?;
    }
    Ok(json)
}

fn prepare_json(prepare: &Prepare<'_>) -> Value {
    json!({
        "type": "prepare",
        "amount": prepare.amount.to_string(),
        "expiresAt": prepare.expires_at.to_rfc3339(),
        "executionCondition": hex::encode(prepare.execution_condition),
        "destination": prepare.destination.as_str(),
        "data": hex::encode(prepare.data),
        "ildcpRequest": is_ildcp_request(prepare),
    })
}

fn fulfill_json(fulfill: &Fulfill<'_>) -> Value {
    let mut json = json!({
        "type": "fulfill",
        "fulfillment": hex::encode(fulfill.fulfillment),
        "data": hex::encode(fulfill.data),
    });
    if let Ok(ildcp) = IldcpResponse::parse(fulfill.data) {
        json["ildcpResponse"] = json!({
            "clientAddress": ildcp.client_address.as_str(),
            "assetScale": ildcp.asset_scale,
            "assetCode": ildcp.asset_code,
        });
    }
    json
}

fn reject_json(reject: &Reject<'_>) -> Value {
    let mut json = json!({
        "type": "reject",
        "code": reject.code.to_string(),
        "name": reject.code.name(),
        "triggeredBy": reject.triggered_by,
        "message": reject.message_lossy(),
        "data": hex::encode(reject.data),
    });
    if reject.code == ErrorCode::F08 {
        if let Ok(details) = AmountTooLargeData::parse(reject.data) {
            json["amountTooLarge"] = json!({
                "receivedAmount": details.amount_received.to_string(),
                "maximumAmount": details.amount_max.to_string(),
            });
        }
    }
    json
}

mod stream {
    use super::*;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    use riptide_proto::stream::{Frame, StreamKeys, StreamPacket};

    /// SPSP secrets come as base64 or base64url, padded or not.
    fn decode_secret(text: &str) -> Result<Vec<u8>, String> {
        let lenient =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, lenient);
        let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient);
        standard
            .decode(text.trim())
            .or_else(|_| url.decode(text.trim()))
            .map_err(|_| "shared secret is not base64 or base64url".to_owned())
    }

    pub fn stream_json(packet: &Packet<'_>, secret: &str) -> Result<Value, String> {
        let secret = decode_secret(secret)?;
        let keys = StreamKeys::new(&secret);
        let data = match packet {
            Packet::Prepare(prepare) => prepare.data,
            Packet::Fulfill(fulfill) => fulfill.data,
            Packet::Reject(reject) => reject.data,
        };
        let mut plaintext = Vec::new();
        keys.decrypt_into(data, &mut plaintext)
            .map_err(|e| format!("data does not decrypt with this shared secret: {e}"))?;
        let stream =
            StreamPacket::parse(&plaintext).map_err(|e| format!("not a STREAM packet: {e}"))?;
        let frames: Vec<Value> = stream.frames().map(|frame| frame_json(&frame)).collect();
        let mut json = json!({
            "ilpPacketType": stream.ilp_packet_type,
            "sequence": stream.sequence.to_string(),
            "prepareAmount": stream.prepare_amount.to_string(),
            "frames": frames,
        });
        if let Packet::Prepare(prepare) = packet {
            let fulfillment = keys.fulfillment(prepare.data);
            json["fulfillment"] = json!(hex::encode(fulfillment));
            json["fulfillable"] =
                json!(keys.condition(prepare.data) == *prepare.execution_condition);
        }
        Ok(json)
    }

    fn frame_json(frame: &Frame<'_>) -> Value {
        connection_frame_json(frame).unwrap_or_else(|| stream_frame_json(frame))
    }

    /// A connection-level frame; `None` for a stream frame.
    fn connection_frame_json(frame: &Frame<'_>) -> Option<Value> {
        let value = match *frame {
            Frame::ConnectionClose { code, message } => {
                json!({"type": "ConnectionClose", "code": code.to_u8(), "message": message})
            }
            Frame::ConnectionNewAddress { source_account } => {
                json!({"type": "ConnectionNewAddress", "sourceAccount": source_account})
            }
            Frame::ConnectionMaxData { max_offset } => {
                json!({"type": "ConnectionMaxData", "maxOffset": max_offset.to_string()})
            }
            Frame::ConnectionDataBlocked { max_offset } => {
                json!({"type": "ConnectionDataBlocked", "maxOffset": max_offset.to_string()})
            }
            Frame::ConnectionMaxStreamId { max_stream_id } => {
                json!({"type": "ConnectionMaxStreamId", "maxStreamId": max_stream_id.to_string()})
            }
            Frame::ConnectionStreamIdBlocked { max_stream_id } => {
                json!({"type": "ConnectionStreamIdBlocked", "maxStreamId": max_stream_id.to_string()})
            }
            Frame::ConnectionAssetDetails {
                asset_code,
                asset_scale,
            } => {
                json!({"type": "ConnectionAssetDetails", "sourceAssetCode": asset_code, "sourceAssetScale": asset_scale})
            }
            _ => return None,
        };
        Some(value)
    }

    /// A stream-level frame, or an unknown one.
    fn stream_frame_json(frame: &Frame<'_>) -> Value {
        match *frame {
            Frame::StreamClose {
                stream_id,
                code,
                message,
            } => {
                json!({"type": "StreamClose", "streamId": stream_id.to_string(), "code": code.to_u8(), "message": message})
            }
            Frame::StreamMoney { stream_id, shares } => {
                json!({"type": "StreamMoney", "streamId": stream_id.to_string(), "shares": shares.to_string()})
            }
            Frame::StreamMaxMoney {
                stream_id,
                receive_max,
                total_received,
            } => {
                json!({"type": "StreamMaxMoney", "streamId": stream_id.to_string(), "receiveMax": receive_max.to_string(), "totalReceived": total_received.to_string()})
            }
            Frame::StreamMoneyBlocked {
                stream_id,
                send_max,
                total_sent,
            } => {
                json!({"type": "StreamMoneyBlocked", "streamId": stream_id.to_string(), "sendMax": send_max.to_string(), "totalSent": total_sent.to_string()})
            }
            Frame::StreamData {
                stream_id,
                offset,
                data,
            } => {
                json!({"type": "StreamData", "streamId": stream_id.to_string(), "offset": offset.to_string(), "data": hex::encode(data)})
            }
            Frame::StreamMaxData {
                stream_id,
                max_offset,
            } => {
                json!({"type": "StreamMaxData", "streamId": stream_id.to_string(), "maxOffset": max_offset.to_string()})
            }
            Frame::StreamDataBlocked {
                stream_id,
                max_offset,
            } => {
                json!({"type": "StreamDataBlocked", "streamId": stream_id.to_string(), "maxOffset": max_offset.to_string()})
            }
            Frame::StreamReceipt { stream_id, receipt } => {
                json!({"type": "StreamReceipt", "streamId": stream_id.to_string(), "receipt": hex::encode(receipt)})
            }
            Frame::Unknown {
                frame_type,
                contents,
            } => {
                json!({"type": "Unknown", "frameType": frame_type, "contents": hex::encode(contents)})
            }
            _ => json!({"type": "Unknown"}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REJECT_HEX: &str = "0e414630310e6578616d706c652e75732e626f62276d697373696e672064657374696e6174696f6e2e206c65646765723d6578616d706c652e75732e06000000041041";

    #[test]
    fn reject_vector_as_json() {
        let bytes = hex::decode(REJECT_HEX).expect("test hex");
        let json = decode_to_json(&bytes, None).expect("valid packet");
        assert_eq!(json["type"], "reject");
        assert_eq!(json["code"], "F01");
        assert_eq!(json["triggeredBy"], "example.us.bob");
        assert_eq!(json["message"], "missing destination. ledger=example.us.");
    }

    #[test]
    fn javascript_stream_prepare_with_its_secret() {
        // The end-to-end vector: a JS-made STREAM Prepare and its shared secret.
        let prepare = "0c819900000000000001f43230313931303238323134313533383338f31a96346c613011947f39a0f1f4e573c2fc3e7e53797672b01d2898e90c9a0723746573742e70656572422e4e6a584430754a504275477a353653426d4933755836682d3b6cc484c0d4e9282275d4b37c6ae18f35b497ddbfcbce6d9305b9451b4395c3158aa75e05bf27582a237109ec6ca0129d840da7abd96826c8147d0d";
        let secret = "t9CdLhbm-DxVtg5C_NfCuO1JYkod9zxZs4Pb4uhpAwk";
        let json =
            decode_to_json(&hex::decode(prepare).expect("hex"), Some(secret)).expect("decodes");
        assert_eq!(json["stream"]["sequence"], "7");
        assert_eq!(json["stream"]["prepareAmount"], "495");
        assert_eq!(json["stream"]["frames"][2]["type"], "StreamMoney");
        assert_eq!(json["stream"]["fulfillable"], true);
        let wrong = decode_to_json(&hex::decode(prepare).expect("hex"), Some("AAAA"))
            .expect_err("wrong secret");
        assert!(wrong.contains("does not decrypt"), "{wrong}");
    }

    #[test]
    fn ildcp_is_recognised_before_any_decryption() {
        // RFC 0031's request, and a response for `example.client` in XAM at scale 13.
        let request = "0c46000000000000000032303135303631363030303130303030306668\
7aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f29250b706565722e636f6e66696700";
        let response = concat!(
            "0d35",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "14",
            "0e6578616d706c652e636c69656e740d0358414d"
        );
        for (hex_text, key) in [(request, "ildcpRequest"), (response, "ildcpResponse")] {
            let bytes = hex::decode(hex_text).expect("test hex");
            let secret = "t9CdLhbm-DxVtg5C_NfCuO1JYkod9zxZs4Pb4uhpAwk";
            let with_secret = decode_to_json(&bytes, Some(secret)).expect("ILDCP decodes");
            assert_eq!(
                with_secret,
                decode_to_json(&bytes, None).expect("ILDCP decodes")
            );
            assert!(with_secret.get("stream").is_none());
            assert!(
                with_secret[key] != Value::Null && with_secret[key] != false,
                "{key}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let error = decode_to_json(&[0x0c, 0x05, 1, 2], None).expect_err("invalid");
        assert!(error.starts_with("not an ILP packet"), "{error}");
    }
}
