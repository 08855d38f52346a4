//! The STREAM packet (RFC 0029 §5.2): the plaintext inside an ILP packet's data.

use super::frame::{Frame, FrameError};
use crate::packet::ilp::{TYPE_FULFILL, TYPE_PREPARE, TYPE_REJECT};
use crate::packet::oer::{self, OerError, Reader};
use thiserror::Error;

/// The only STREAM version.
pub const STREAM_VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StreamPacketError {
    #[error("unsupported STREAM version {0}")]
    Version(u8),
    #[error("STREAM packet names ILP packet type {0}, not 12, 13 or 14")]
    IlpPacketType(u8),
    #[error("malformed STREAM header: {0}")]
    Header(OerError),
    #[error("frame count {0} cannot fit in the packet")]
    FrameCount(u64),
    #[error("{0}")]
    Frame(#[from] FrameError),
}

/// A decoded STREAM packet whose frames are validated and borrowed from the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPacket<'a> {
    /// The ILP packet type this STREAM packet must travel in (12, 13 or 14).
    pub ilp_packet_type: u8,
    pub sequence: u64,
    /// In a Prepare: the least the receiver should accept. In a reply: the amount
    /// that arrived.
    pub prepare_amount: u64,
    frame_count: u64,
    frames_region: &'a [u8],
}

impl<'a> StreamPacket<'a> {
    /// Parses and validates every frame once, so that [`StreamPacket::frames`] cannot
    /// fail later. Bytes after the frames are junk and ignored.
    pub fn parse(plaintext: &'a [u8]) -> Result<StreamPacket<'a>, StreamPacketError> {
        let mut reader = Reader::new(plaintext);
        let version = reader.read_u8().map_err(StreamPacketError::Header)?;
        if version != STREAM_VERSION {
            return Err(StreamPacketError::Version(version));
        }
        let ilp_packet_type = reader.read_u8().map_err(StreamPacketError::Header)?;
        if !matches!(ilp_packet_type, TYPE_PREPARE | TYPE_FULFILL | TYPE_REJECT) {
            return Err(StreamPacketError::IlpPacketType(ilp_packet_type));
        }
        let sequence = reader.read_var_uint().map_err(StreamPacketError::Header)?;
        let prepare_amount = reader.read_var_uint().map_err(StreamPacketError::Header)?;
        let frame_count = reader.read_var_uint().map_err(StreamPacketError::Header)?;
        // Every frame takes at least two bytes, which bounds the loop below by the input.
        if frame_count > (reader.remaining() / 2) as u64 {
            return Err(StreamPacketError::FrameCount(frame_count));
        }
        let frames_start = reader.offset();
        for _ in 0..frame_count {
            Frame::read(&mut reader)?;
        }
        let frames_region = &plaintext[frames_start..reader.offset()];
        Ok(StreamPacket {
            ilp_packet_type,
            sequence,
            prepare_amount,
            frame_count,
            frames_region,
        })
    }

    /// The frames, in order, unknown types included (as [`Frame::Unknown`]).
    pub fn frames(&self) -> Frames<'a> {
        Frames {
            reader: Reader::new(self.frames_region),
            remaining: self.frame_count,
        }
    }

    pub fn frame_count(&self) -> u64 {
        self.frame_count
    }
}

/// Iterator over the frames of a validated packet.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    reader: Reader<'a>,
    remaining: u64,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Parsing validated every frame, so a failure here would be a bug; stop
        // rather than panic.
        Frame::read(&mut self.reader).ok()
    }
}

/// The fields of a STREAM packet to encode.
#[derive(Debug, Clone, Copy)]
pub struct StreamPacketBuilder<'a, 'f> {
    pub ilp_packet_type: u8,
    pub sequence: u64,
    pub prepare_amount: u64,
    pub frames: &'f [Frame<'a>],
}

impl StreamPacketBuilder<'_, '_> {
    /// Appends the plaintext to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        assert!(matches!(
            self.ilp_packet_type,
            TYPE_PREPARE | TYPE_FULFILL | TYPE_REJECT
        ));
        out.push(STREAM_VERSION);
        out.push(self.ilp_packet_type);
        oer::write_var_uint(out, self.sequence);
        oer::write_var_uint(out, self.prepare_amount);
        oer::write_var_uint(out, self.frames.len() as u64);
        for frame in self.frames {
            frame.write_to(out);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_to(&mut out);
        out
    }
}
