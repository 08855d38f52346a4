//! STREAM frames (RFC 0029 §5.3): decoded as views that borrow the plaintext, and
//! encoded by appending to a caller's buffer with no temporary allocation.
//!
//! On the wire a frame is `type: UInt8` then `contents: VarOctetString`. Decoding
//! is lenient inside the contents: bytes after the known fields are ignored, as OER
//! extensibility asks, but contents too short for the known fields are an error.
//! Unknown types are kept as [`Frame::Unknown`], so a receiver can skip them and a
//! re-encode is byte-identical.

use crate::packet::oer::{self, OerError, Reader};
use thiserror::Error;

/// Why one frame does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame type or length is malformed: {0}")]
    Header(OerError),
    #[error("frame 0x{frame_type:02x} is malformed: {source}")]
    Contents { frame_type: u8, source: OerError },
    #[error("frame 0x{frame_type:02x} carries a string that is not UTF-8")]
    NotUtf8 { frame_type: u8 },
}

/// Error codes of ConnectionClose and StreamClose (RFC 0029 §5.4). Any other byte is
/// kept in [`CloseCode::Other`]: the RFC fixtures themselves use 255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    NoError,
    InternalError,
    EndpointBusy,
    FlowControlError,
    StreamIdError,
    StreamStateError,
    FrameFormatError,
    ProtocolViolation,
    ApplicationError,
    /// A code not listed above. `from_u8` never puts a listed code here.
    Other(u8),
}

impl CloseCode {
    pub fn from_u8(byte: u8) -> CloseCode {
        match byte {
            0x01 => CloseCode::NoError,
            0x02 => CloseCode::InternalError,
            0x03 => CloseCode::EndpointBusy,
            0x04 => CloseCode::FlowControlError,
            0x05 => CloseCode::StreamIdError,
            0x06 => CloseCode::StreamStateError,
            0x07 => CloseCode::FrameFormatError,
            0x08 => CloseCode::ProtocolViolation,
            0x09 => CloseCode::ApplicationError,
            other => CloseCode::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            CloseCode::NoError => 0x01,
            CloseCode::InternalError => 0x02,
            CloseCode::EndpointBusy => 0x03,
            CloseCode::FlowControlError => 0x04,
            CloseCode::StreamIdError => 0x05,
            CloseCode::StreamStateError => 0x06,
            CloseCode::FrameFormatError => 0x07,
            CloseCode::ProtocolViolation => 0x08,
            CloseCode::ApplicationError => 0x09,
            CloseCode::Other(byte) => byte,
        }
    }
}

impl From<u8> for CloseCode {
    fn from(byte: u8) -> CloseCode {
        CloseCode::from_u8(byte)
    }
}

impl From<CloseCode> for u8 {
    fn from(code: CloseCode) -> u8 {
        code.to_u8()
    }
}

/// Frame type bytes.
pub mod frame_type {
    pub const CONNECTION_CLOSE: u8 = 0x01;
    pub const CONNECTION_NEW_ADDRESS: u8 = 0x02;
    pub const CONNECTION_MAX_DATA: u8 = 0x03;
    pub const CONNECTION_DATA_BLOCKED: u8 = 0x04;
    pub const CONNECTION_MAX_STREAM_ID: u8 = 0x05;
    pub const CONNECTION_STREAM_ID_BLOCKED: u8 = 0x06;
    pub const CONNECTION_ASSET_DETAILS: u8 = 0x07;
    pub const STREAM_CLOSE: u8 = 0x10;
    pub const STREAM_MONEY: u8 = 0x11;
    pub const STREAM_MAX_MONEY: u8 = 0x12;
    pub const STREAM_MONEY_BLOCKED: u8 = 0x13;
    pub const STREAM_DATA: u8 = 0x14;
    pub const STREAM_MAX_DATA: u8 = 0x15;
    pub const STREAM_DATA_BLOCKED: u8 = 0x16;
    /// Deprecated in the RFCs in 2026, still sent by deployed receivers.
    pub const STREAM_RECEIPT: u8 = 0x17;
}

/// One STREAM frame, borrowing its strings and bytes from the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    ConnectionClose {
        code: CloseCode,
        message: &'a str,
    },
    /// The sender's ILP address. `@interledger/pay` sends an empty one to ask for the
    /// asset details, so this is any UTF-8 text, not a validated address.
    ConnectionNewAddress {
        source_account: &'a str,
    },
    ConnectionMaxData {
        max_offset: u64,
    },
    ConnectionDataBlocked {
        max_offset: u64,
    },
    ConnectionMaxStreamId {
        max_stream_id: u64,
    },
    ConnectionStreamIdBlocked {
        max_stream_id: u64,
    },
    ConnectionAssetDetails {
        asset_code: &'a str,
        asset_scale: u8,
    },
    StreamClose {
        stream_id: u64,
        code: CloseCode,
        message: &'a str,
    },
    StreamMoney {
        stream_id: u64,
        shares: u64,
    },
    /// `receive_max` decodes as `u64::MAX` when its VarUInt is longer than 8 bytes.
    StreamMaxMoney {
        stream_id: u64,
        receive_max: u64,
        total_received: u64,
    },
    /// `send_max` decodes as `u64::MAX` when its VarUInt is longer than 8 bytes.
    StreamMoneyBlocked {
        stream_id: u64,
        send_max: u64,
        total_sent: u64,
    },
    StreamData {
        stream_id: u64,
        offset: u64,
        data: &'a [u8],
    },
    StreamMaxData {
        stream_id: u64,
        max_offset: u64,
    },
    StreamDataBlocked {
        stream_id: u64,
        max_offset: u64,
    },
    /// A 58-byte receipt (see [`super::receipt`]), kept as bytes: only a verifier,
    /// holding the receipt secret, can check it.
    StreamReceipt {
        stream_id: u64,
        receipt: &'a [u8],
    },
    /// A type this implementation does not know; receivers skip it.
    Unknown {
        frame_type: u8,
        contents: &'a [u8],
    },
}

/// The fields of one frame's contents, read in order; errors name the frame type.
struct Fields<'a> {
    reader: Reader<'a>,
    contents: &'a [u8],
    frame_type: u8,
}

impl<'a> Fields<'a> {
    fn error(&self, source: OerError) -> FrameError {
        FrameError::Contents {
            frame_type: self.frame_type,
            source,
        }
    }

    fn byte(&mut self) -> Result<u8, FrameError> {
        self.reader.read_u8().map_err(|e| self.error(e))
    }

    fn code(&mut self) -> Result<CloseCode, FrameError> {
        self.byte().map(CloseCode::from_u8)
    }

    fn uint(&mut self) -> Result<u64, FrameError> {
        self.reader.read_var_uint().map_err(|e| self.error(e))
    }

    fn uint_saturating(&mut self) -> Result<u64, FrameError> {
        self.reader
            .read_var_uint_saturating()
            .map_err(|e| self.error(e))
    }

    fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        self.reader
            .read_var_octet_string()
            .map_err(|e| self.error(e))
    }

    fn text(&mut self) -> Result<&'a str, FrameError> {
        let bytes = self.bytes()?;
        let frame_type = self.frame_type;
        std::str::from_utf8(bytes).map_err(|_| FrameError::NotUtf8 { frame_type })
    }

    fn unknown(&self) -> Frame<'a> {
        Frame::Unknown {
            frame_type: self.frame_type,
            contents: self.contents,
        }
    }

    fn connection_frame(&mut self) -> Result<Frame<'a>, FrameError> {
        use frame_type::*;
        let frame = match self.frame_type {
            CONNECTION_CLOSE => Frame::ConnectionClose {
                code: self.code()?,
                message: self.text()?,
            },
            CONNECTION_NEW_ADDRESS => Frame::ConnectionNewAddress {
                source_account: self.text()?,
            },
            CONNECTION_MAX_DATA => Frame::ConnectionMaxData {
                max_offset: self.uint()?,
            },
            CONNECTION_DATA_BLOCKED => Frame::ConnectionDataBlocked {
                max_offset: self.uint()?,
            },
            CONNECTION_MAX_STREAM_ID => Frame::ConnectionMaxStreamId {
                max_stream_id: self.uint()?,
            },
            CONNECTION_STREAM_ID_BLOCKED => Frame::ConnectionStreamIdBlocked {
                max_stream_id: self.uint()?,
            },
            CONNECTION_ASSET_DETAILS => Frame::ConnectionAssetDetails {
                asset_code: self.text()?,
                asset_scale: self.byte()?,
            },
            _ => self.unknown(),
        };
        Ok(frame)
    }

    /// Struct fields are evaluated in the order written, which is the wire order.
    fn stream_frame(&mut self) -> Result<Frame<'a>, FrameError> {
        use frame_type::*;
        let stream_id = self.uint()?;
        let frame = match self.frame_type {
            STREAM_CLOSE => Frame::StreamClose {
                stream_id,
                code: self.code()?,
                message: self.text()?,
            },
            STREAM_MONEY => Frame::StreamMoney {
                stream_id,
                shares: self.uint()?,
            },
            STREAM_MAX_MONEY => Frame::StreamMaxMoney {
                stream_id,
                receive_max: self.uint_saturating()?,
                total_received: self.uint()?,
            },
            STREAM_MONEY_BLOCKED => Frame::StreamMoneyBlocked {
                stream_id,
                send_max: self.uint_saturating()?,
                total_sent: self.uint()?,
            },
            STREAM_DATA => Frame::StreamData {
                stream_id,
                offset: self.uint()?,
                data: self.bytes()?,
            },
            STREAM_MAX_DATA => Frame::StreamMaxData {
                stream_id,
                max_offset: self.uint()?,
            },
            STREAM_DATA_BLOCKED => Frame::StreamDataBlocked {
                stream_id,
                max_offset: self.uint()?,
            },
            STREAM_RECEIPT => Frame::StreamReceipt {
                stream_id,
                receipt: self.bytes()?,
            },
            _ => self.unknown(),
        };
        Ok(frame)
    }
}

impl<'a> Frame<'a> {
    /// Reads one frame (type byte, then length-prefixed contents) from `reader`.
    pub fn read(reader: &mut Reader<'a>) -> Result<Frame<'a>, FrameError> {
        let frame_type = reader.read_u8().map_err(FrameError::Header)?;
        let contents = reader.read_var_octet_string().map_err(FrameError::Header)?;
        Frame::decode(frame_type, contents)
    }

    /// Decodes the contents of a frame of type `frame_type`.
    pub fn decode(frame_type: u8, contents: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        let mut fields = Fields {
            reader: Reader::new(contents),
            contents,
            frame_type,
        };
        match frame_type {
            frame_type::CONNECTION_CLOSE..=frame_type::CONNECTION_ASSET_DETAILS => {
                fields.connection_frame()
            }
            frame_type::STREAM_CLOSE..=frame_type::STREAM_RECEIPT => fields.stream_frame(),
            _ => Ok(fields.unknown()),
        }
    }

    pub fn frame_type(&self) -> u8 {
        use frame_type::*;
        match self {
            Frame::ConnectionClose { .. } => CONNECTION_CLOSE,
            Frame::ConnectionNewAddress { .. } => CONNECTION_NEW_ADDRESS,
            Frame::ConnectionMaxData { .. } => CONNECTION_MAX_DATA,
            Frame::ConnectionDataBlocked { .. } => CONNECTION_DATA_BLOCKED,
            Frame::ConnectionMaxStreamId { .. } => CONNECTION_MAX_STREAM_ID,
            Frame::ConnectionStreamIdBlocked { .. } => CONNECTION_STREAM_ID_BLOCKED,
            Frame::ConnectionAssetDetails { .. } => CONNECTION_ASSET_DETAILS,
            Frame::StreamClose { .. } => STREAM_CLOSE,
            Frame::StreamMoney { .. } => STREAM_MONEY,
            Frame::StreamMaxMoney { .. } => STREAM_MAX_MONEY,
            Frame::StreamMoneyBlocked { .. } => STREAM_MONEY_BLOCKED,
            Frame::StreamData { .. } => STREAM_DATA,
            Frame::StreamMaxData { .. } => STREAM_MAX_DATA,
            Frame::StreamDataBlocked { .. } => STREAM_DATA_BLOCKED,
            Frame::StreamReceipt { .. } => STREAM_RECEIPT,
            Frame::Unknown { frame_type, .. } => *frame_type,
        }
    }

    /// Bytes [`Frame::write_to`] appends: type, length prefix and contents.
    pub fn encoded_size(&self) -> usize {
        1 + oer::var_octet_string_size(self.contents_size())
    }

    /// Appends the frame to `out`. The contents size is computed first so that the
    /// length prefix is written in place, without a temporary buffer.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let contents_size = self.contents_size();
        out.push(self.frame_type());
        oer::write_length(out, contents_size);
        let contents_start = out.len();
        self.write_contents(out);
        debug_assert_eq!(out.len() - contents_start, contents_size);
    }

    /// The stream a stream frame (types 0x10 to 0x17) is about.
    pub fn stream_id(&self) -> Option<u64> {
        match *self {
            Frame::StreamClose { stream_id, .. }
            | Frame::StreamMoney { stream_id, .. }
            | Frame::StreamMaxMoney { stream_id, .. }
            | Frame::StreamMoneyBlocked { stream_id, .. }
            | Frame::StreamData { stream_id, .. }
            | Frame::StreamMaxData { stream_id, .. }
            | Frame::StreamDataBlocked { stream_id, .. }
            | Frame::StreamReceipt { stream_id, .. } => Some(stream_id),
            _ => None,
        }
    }

    /// Every stream frame starts with its stream id; the rest follows by type.
    fn contents_size(&self) -> usize {
        use oer::{var_octet_string_size as bytes, var_uint_size as uint};
        let stream_id_size = self.stream_id().map_or(0, uint);
        let rest_size = match *self {
            Frame::ConnectionClose { message, .. } | Frame::StreamClose { message, .. } => {
                1 + bytes(message.len())
            }
            Frame::ConnectionNewAddress { source_account } => bytes(source_account.len()),
            Frame::ConnectionMaxData { max_offset: value }
            | Frame::ConnectionDataBlocked { max_offset: value }
            | Frame::ConnectionMaxStreamId {
                max_stream_id: value,
            }
            | Frame::ConnectionStreamIdBlocked {
                max_stream_id: value,
            }
            | Frame::StreamMoney { shares: value, .. }
            | Frame::StreamMaxData {
                max_offset: value, ..
            }
            | Frame::StreamDataBlocked {
                max_offset: value, ..
            } => uint(value),
            Frame::ConnectionAssetDetails { asset_code, .. } => bytes(asset_code.len()) + 1,
            Frame::StreamMaxMoney {
                receive_max: max,
                total_received: total,
                ..
            }
            | Frame::StreamMoneyBlocked {
                send_max: max,
                total_sent: total,
                ..
            } => uint(max) + uint(total),
            Frame::StreamData { offset, data, .. } => uint(offset) + bytes(data.len()),
            Frame::StreamReceipt { receipt, .. } => bytes(receipt.len()),
            Frame::Unknown { contents, .. } => contents.len(),
        };
        stream_id_size + rest_size
    }

    fn write_contents(&self, out: &mut Vec<u8>) {
        use oer::{write_var_octet_string as bytes, write_var_uint as uint};
        if let Some(stream_id) = self.stream_id() {
            uint(out, stream_id);
        }
        match *self {
            Frame::ConnectionClose { code, message } | Frame::StreamClose { code, message, .. } => {
                out.push(code.to_u8());
                bytes(out, message.as_bytes());
            }
            Frame::ConnectionNewAddress { source_account } => bytes(out, source_account.as_bytes()),
            Frame::ConnectionMaxData { max_offset: value }
            | Frame::ConnectionDataBlocked { max_offset: value }
            | Frame::ConnectionMaxStreamId {
                max_stream_id: value,
            }
            | Frame::ConnectionStreamIdBlocked {
                max_stream_id: value,
            }
            | Frame::StreamMoney { shares: value, .. }
            | Frame::StreamMaxData {
                max_offset: value, ..
            }
            | Frame::StreamDataBlocked {
                max_offset: value, ..
            } => uint(out, value),
            Frame::ConnectionAssetDetails {
                asset_code,
                asset_scale,
            } => {
                bytes(out, asset_code.as_bytes());
                out.push(asset_scale);
            }
            Frame::StreamMaxMoney {
                receive_max: max,
                total_received: total,
                ..
            }
            | Frame::StreamMoneyBlocked {
                send_max: max,
                total_sent: total,
                ..
            } => {
                uint(out, max);
                uint(out, total);
            }
            Frame::StreamData { offset, data, .. } => {
                uint(out, offset);
                bytes(out, data);
            }
            Frame::StreamReceipt { receipt, .. } => bytes(out, receipt),
            Frame::Unknown { contents, .. } => out.extend_from_slice(contents),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(frame_hex: &str) -> Result<Frame<'static>, FrameError> {
        let bytes: &'static [u8] = hex::decode(frame_hex.replace(' ', ""))
            .expect("test hex")
            .leak();
        let mut reader = Reader::new(bytes);
        Frame::read(&mut reader)
    }

    #[test]
    fn close_codes_keep_unknown_values() {
        for byte in 0..=u8::MAX {
            assert_eq!(CloseCode::from_u8(byte).to_u8(), byte);
        }
        assert_eq!(CloseCode::from_u8(0x08), CloseCode::ProtocolViolation);
        assert_eq!(CloseCode::from(0xff), CloseCode::Other(0xff));
        assert_eq!(u8::from(CloseCode::ApplicationError), 0x09);
        assert_eq!(
            decode("1008 014c ff 04626c6168"),
            Ok(Frame::StreamClose {
                stream_id: 76,
                code: CloseCode::Other(255),
                message: "blah"
            })
        );
    }

    #[test]
    fn receive_max_and_send_max_saturate() {
        let too_big = "09 010000000000000000";
        let max_money = format!("120f 017b {too_big} 0201c8");
        assert_eq!(
            decode(&max_money),
            Ok(Frame::StreamMaxMoney {
                stream_id: 123,
                receive_max: u64::MAX,
                total_received: 456
            })
        );
        let blocked = format!("130f 017b {too_big} 0201c8");
        assert_eq!(
            decode(&blocked),
            Ok(Frame::StreamMoneyBlocked {
                stream_id: 123,
                send_max: u64::MAX,
                total_sent: 456
            })
        );
    }

    #[test]
    fn other_oversize_var_uints_are_errors() {
        let nine_bytes = OerError::VarUIntTooLong(9);
        let error = |frame_type| {
            Err(FrameError::Contents {
                frame_type,
                source: nine_bytes,
            })
        };
        let too_big = "09 010000000000000000";
        assert_eq!(
            decode(&format!("110c 017b {too_big}")),
            error(0x11),
            "shares"
        );
        assert_eq!(
            decode(&format!("120e {too_big} 017b 0100")),
            error(0x12),
            "stream id"
        );
        assert_eq!(
            decode(&format!("120f 017b 0201c8 {too_big}")),
            error(0x12),
            "totalReceived"
        );
        assert_eq!(decode(&format!("030a {too_big}")), error(0x03), "maxOffset");
    }

    #[test]
    fn contents_too_short_is_an_error_but_extra_bytes_are_ignored() {
        let end = OerError::UnexpectedEnd;
        assert_eq!(
            decode("1102017b"),
            Err(FrameError::Contents {
                frame_type: 0x11,
                source: end
            }),
            "StreamMoney without shares"
        );
        assert_eq!(
            decode("070403414243"),
            Err(FrameError::Contents {
                frame_type: 0x07,
                source: end
            }),
            "asset details without the scale"
        );
        assert_eq!(
            decode("1106017b0102aabb"),
            Ok(Frame::StreamMoney {
                stream_id: 123,
                shares: 2
            }),
            "two extra bytes inside the contents"
        );
        assert_eq!(
            decode("1105017b01"),
            Err(FrameError::Header(end)),
            "length past the input"
        );
        assert_eq!(decode(""), Err(FrameError::Header(end)), "no type byte");
    }

    #[test]
    fn strings_must_be_utf8() {
        assert_eq!(
            decode("0103 01 01ff"),
            Err(FrameError::NotUtf8 { frame_type: 1 })
        );
        assert_eq!(
            decode("0202 01c3"),
            Err(FrameError::NotUtf8 { frame_type: 2 })
        );
        assert_eq!(
            decode("0703 0180 02"),
            Err(FrameError::NotUtf8 { frame_type: 7 })
        );
        assert_eq!(
            decode("1005 01 02 01 01ff"),
            Err(FrameError::NotUtf8 { frame_type: 0x10 })
        );
        assert_eq!(
            decode("02020100"),
            Ok(Frame::ConnectionNewAddress {
                source_account: "\0"
            })
        );
        assert_eq!(
            decode("020100"),
            Ok(Frame::ConnectionNewAddress { source_account: "" })
        );
    }

    #[test]
    fn unknown_types_keep_their_contents() {
        assert_eq!(
            decode("5903010203"),
            Ok(Frame::Unknown {
                frame_type: 0x59,
                contents: &[1, 2, 3]
            })
        );
        assert_eq!(
            decode("0800"),
            Ok(Frame::Unknown {
                frame_type: 0x08,
                contents: &[]
            })
        );
        assert_eq!(
            decode("1800"),
            Ok(Frame::Unknown {
                frame_type: 0x18,
                contents: &[]
            })
        );
    }

    #[test]
    fn stream_ids_only_on_stream_frames() {
        assert_eq!(
            Frame::StreamReceipt {
                stream_id: 5,
                receipt: &[]
            }
            .stream_id(),
            Some(5)
        );
        assert_eq!(
            Frame::StreamClose {
                stream_id: 0,
                code: CloseCode::NoError,
                message: ""
            }
            .stream_id(),
            Some(0)
        );
        assert_eq!(
            Frame::ConnectionMaxStreamId { max_stream_id: 5 }.stream_id(),
            None
        );
        assert_eq!(
            Frame::Unknown {
                frame_type: 0x18,
                contents: &[1, 5]
            }
            .stream_id(),
            None
        );
    }

    #[test]
    fn encoded_size_matches_write_to() {
        let long = [7u8; 300];
        let frames = [
            Frame::StreamData {
                stream_id: u64::MAX,
                offset: 0,
                data: &long,
            },
            Frame::ConnectionClose {
                code: CloseCode::NoError,
                message: "",
            },
            Frame::Unknown {
                frame_type: 0x40,
                contents: &long,
            },
        ];
        for frame in frames {
            let mut out = vec![0xee];
            frame.write_to(&mut out);
            assert_eq!(out.len() - 1, frame.encoded_size(), "{frame:?}");
            let mut reader = Reader::new(&out[1..]);
            assert_eq!(Frame::read(&mut reader), Ok(frame));
        }
    }
}
