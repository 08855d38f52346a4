//! STREAM frames (RFC 0029 §5.3): decoded as views borrowing the plaintext, encoded
//! into a caller's buffer. Unknown frame types are kept as [`Frame::Unknown`] so a
//! receiver can skip them and a re-encode is byte-identical.

use crate::packet::oer::{self, OerError, Reader};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("malformed frame 0x{frame_type:02x}: {source}")]
    Oer { frame_type: u8, source: OerError },
    #[error("frame 0x{0:02x} has a string that is not UTF-8")]
    NotUtf8(u8),
}

/// Close codes of ConnectionClose and StreamClose (RFC 0029 §5.4); any other byte
/// is kept, since the fixtures themselves use 255.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// `receive_max` saturates at `u64::MAX` when its encoding is longer than 8 bytes.
    StreamMaxMoney {
        stream_id: u64,
        receive_max: u64,
        total_received: u64,
    },
    /// `send_max` saturates at `u64::MAX` when its encoding is longer than 8 bytes.
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

fn text(bytes: &[u8], frame_type: u8) -> Result<&str, FrameError> {
    std::str::from_utf8(bytes).map_err(|_| FrameError::NotUtf8(frame_type))
}

impl<'a> Frame<'a> {
    /// Reads one frame: its type byte and its length-prefixed contents. Bytes left in
    /// the contents after the known fields are ignored (OER extensibility).
    pub fn read(reader: &mut Reader<'a>) -> Result<Frame<'a>, FrameError> {
        let frame_type = reader.read_u8().map_err(|source| FrameError::Oer {
            frame_type: 0,
            source,
        })?;
        let contents = reader
            .read_var_octet_string()
            .map_err(|source| FrameError::Oer { frame_type, source })?;
        Self::decode_contents(frame_type, contents)
    }

    fn decode_contents(frame_type: u8, contents: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        use frame_type::*;
        let mut r = Reader::new(contents);
        let oer = |source| FrameError::Oer { frame_type, source };
        let frame = match frame_type {
            CONNECTION_CLOSE => Frame::ConnectionClose {
                code: CloseCode::from_u8(r.read_u8().map_err(oer)?),
                message: text(r.read_var_octet_string().map_err(oer)?, frame_type)?,
            },
            CONNECTION_NEW_ADDRESS => Frame::ConnectionNewAddress {
                source_account: text(r.read_var_octet_string().map_err(oer)?, frame_type)?,
            },
            CONNECTION_MAX_DATA => Frame::ConnectionMaxData {
                max_offset: r.read_var_uint().map_err(oer)?,
            },
            CONNECTION_DATA_BLOCKED => Frame::ConnectionDataBlocked {
                max_offset: r.read_var_uint().map_err(oer)?,
            },
            CONNECTION_MAX_STREAM_ID => Frame::ConnectionMaxStreamId {
                max_stream_id: r.read_var_uint().map_err(oer)?,
            },
            CONNECTION_STREAM_ID_BLOCKED => Frame::ConnectionStreamIdBlocked {
                max_stream_id: r.read_var_uint().map_err(oer)?,
            },
            CONNECTION_ASSET_DETAILS => Frame::ConnectionAssetDetails {
                asset_code: text(r.read_var_octet_string().map_err(oer)?, frame_type)?,
                asset_scale: r.read_u8().map_err(oer)?,
            },
            STREAM_CLOSE => Frame::StreamClose {
                stream_id: r.read_var_uint().map_err(oer)?,
                code: CloseCode::from_u8(r.read_u8().map_err(oer)?),
                message: text(r.read_var_octet_string().map_err(oer)?, frame_type)?,
            },
            STREAM_MONEY => Frame::StreamMoney {
                stream_id: r.read_var_uint().map_err(oer)?,
                shares: r.read_var_uint().map_err(oer)?,
            },
            STREAM_MAX_MONEY => Frame::StreamMaxMoney {
                stream_id: r.read_var_uint().map_err(oer)?,
                receive_max: r.read_var_uint_saturating().map_err(oer)?,
                total_received: r.read_var_uint().map_err(oer)?,
            },
            STREAM_MONEY_BLOCKED => Frame::StreamMoneyBlocked {
                stream_id: r.read_var_uint().map_err(oer)?,
                send_max: r.read_var_uint_saturating().map_err(oer)?,
                total_sent: r.read_var_uint().map_err(oer)?,
            },
            STREAM_DATA => Frame::StreamData {
                stream_id: r.read_var_uint().map_err(oer)?,
                offset: r.read_var_uint().map_err(oer)?,
                data: r.read_var_octet_string().map_err(oer)?,
            },
            STREAM_MAX_DATA => Frame::StreamMaxData {
                stream_id: r.read_var_uint().map_err(oer)?,
                max_offset: r.read_var_uint().map_err(oer)?,
            },
            STREAM_DATA_BLOCKED => Frame::StreamDataBlocked {
                stream_id: r.read_var_uint().map_err(oer)?,
                max_offset: r.read_var_uint().map_err(oer)?,
            },
            STREAM_RECEIPT => Frame::StreamReceipt {
                stream_id: r.read_var_uint().map_err(oer)?,
                receipt: r.read_var_octet_string().map_err(oer)?,
            },
            _ => Frame::Unknown {
                frame_type,
                contents,
            },
        };
        Ok(frame)
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

    /// Appends the frame (type, length, contents) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut contents = Vec::with_capacity(32);
        self.write_contents(&mut contents);
        out.push(self.frame_type());
        oer::write_var_octet_string(out, &contents);
    }

    fn write_contents(&self, out: &mut Vec<u8>) {
        use oer::{write_var_octet_string as bytes, write_var_uint as uint};
        match *self {
            Frame::ConnectionClose { code, message } => {
                out.push(code.to_u8());
                bytes(out, message.as_bytes());
            }
            Frame::ConnectionNewAddress { source_account } => bytes(out, source_account.as_bytes()),
            Frame::ConnectionMaxData { max_offset }
            | Frame::ConnectionDataBlocked { max_offset } => uint(out, max_offset),
            Frame::ConnectionMaxStreamId { max_stream_id }
            | Frame::ConnectionStreamIdBlocked { max_stream_id } => uint(out, max_stream_id),
            Frame::ConnectionAssetDetails {
                asset_code,
                asset_scale,
            } => {
                bytes(out, asset_code.as_bytes());
                out.push(asset_scale);
            }
            Frame::StreamClose {
                stream_id,
                code,
                message,
            } => {
                uint(out, stream_id);
                out.push(code.to_u8());
                bytes(out, message.as_bytes());
            }
            Frame::StreamMoney { stream_id, shares } => {
                uint(out, stream_id);
                uint(out, shares);
            }
            Frame::StreamMaxMoney {
                stream_id,
                receive_max: first,
                total_received: second,
            }
            | Frame::StreamMoneyBlocked {
                stream_id,
                send_max: first,
                total_sent: second,
            } => {
                uint(out, stream_id);
                uint(out, first);
                uint(out, second);
            }
            Frame::StreamData {
                stream_id,
                offset,
                data,
            } => {
                uint(out, stream_id);
                uint(out, offset);
                bytes(out, data);
            }
            Frame::StreamMaxData {
                stream_id,
                max_offset,
            }
            | Frame::StreamDataBlocked {
                stream_id,
                max_offset,
            } => {
                uint(out, stream_id);
                uint(out, max_offset);
            }
            Frame::StreamReceipt { stream_id, receipt } => {
                uint(out, stream_id);
                bytes(out, receipt);
            }
            Frame::Unknown { contents, .. } => out.extend_from_slice(contents),
        }
    }
}
