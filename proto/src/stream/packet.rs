//! The STREAM packet (RFC 0029 §5.2): the plaintext inside an ILP packet's data.
//!
//! ```text
//! version: UInt8 = 1 | ilpPacketType: UInt8 (12, 13, 14) | sequence: VarUInt
//! prepareAmount: VarUInt | frame count: VarUInt | frames | junk (ignored)
//! ```
//!
//! Two ways to decode: [`StreamPacket::parse`] checks every frame up front, so its
//! [`StreamPacket::frames`] iterator cannot fail; [`StreamHeader::parse`] reads only
//! the header and hands back a lazy [`FrameIter`] of `Result`s, for a caller that
//! acts on frames in one pass. Neither allocates.

use super::frame::{Frame, FrameError};
use crate::packet::ilp::{TYPE_FULFILL, TYPE_PREPARE, TYPE_REJECT};
use crate::packet::oer::{self, OerError, Reader};
use thiserror::Error;

/// The only STREAM version.
pub const STREAM_VERSION: u8 = 1;
/// A frame takes at least a type byte and a length byte: this bounds how many
/// frames a buffer can hold, so a huge declared count fails before any loop.
const FRAME_SIZE_MIN: usize = 2;

/// Why a plaintext is not a STREAM packet.
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
    #[error("frame {index}: {source}")]
    Frame { index: u64, source: FrameError },
}

/// The fixed fields of a STREAM packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader {
    /// The ILP packet type this STREAM packet must travel in (12, 13 or 14).
    pub ilp_packet_type: u8,
    pub sequence: u64,
    /// In a Prepare: the least the receiver should accept. In a reply: the amount
    /// that arrived.
    pub prepare_amount: u64,
}

impl StreamHeader {
    /// Reads the header; the frames are decoded lazily by the returned iterator, and
    /// bytes after the last frame are junk that nobody reads.
    pub fn parse(plaintext: &[u8]) -> Result<(StreamHeader, FrameIter<'_>), StreamPacketError> {
        let mut reader = Reader::new(plaintext);
        let header_error = StreamPacketError::Header;
        let version = reader.read_u8().map_err(header_error)?;
        if version != STREAM_VERSION {
            return Err(StreamPacketError::Version(version));
        }
        let ilp_packet_type = reader.read_u8().map_err(header_error)?;
        if !is_ilp_packet_type(ilp_packet_type) {
            return Err(StreamPacketError::IlpPacketType(ilp_packet_type));
        }
        let sequence = reader.read_var_uint().map_err(header_error)?;
        let prepare_amount = reader.read_var_uint().map_err(header_error)?;
        let frame_count = reader.read_var_uint().map_err(header_error)?;
        if frame_count > (reader.remaining() / FRAME_SIZE_MIN) as u64 {
            return Err(StreamPacketError::FrameCount(frame_count));
        }
        let header = StreamHeader {
            ilp_packet_type,
            sequence,
            prepare_amount,
        };
        Ok((
            header,
            FrameIter {
                reader,
                remaining: frame_count,
                index: 0,
            },
        ))
    }
}

fn is_ilp_packet_type(byte: u8) -> bool {
    matches!(byte, TYPE_PREPARE | TYPE_FULFILL | TYPE_REJECT)
}

/// Lazily decodes the frames after a header. Yields each frame or the first error,
/// then stops.
#[derive(Debug, Clone)]
pub struct FrameIter<'a> {
    reader: Reader<'a>,
    remaining: u64,
    index: u64,
}

impl<'a> FrameIter<'a> {
    /// Frames not yet yielded.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Position in the plaintext of the next frame.
    fn offset(&self) -> usize {
        self.reader.offset()
    }
}

impl<'a> Iterator for FrameIter<'a> {
    type Item = Result<Frame<'a>, StreamPacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match Frame::read(&mut self.reader) {
            Ok(frame) => {
                self.remaining -= 1;
                self.index += 1;
                Some(Ok(frame))
            }
            Err(source) => {
                self.remaining = 0;
                Some(Err(StreamPacketError::Frame {
                    index: self.index,
                    source,
                }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // The count was bounded by the buffer size when the header was read.
        let remaining = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (0, Some(remaining))
    }
}

/// A decoded STREAM packet whose frames were all checked and are borrowed from the
/// plaintext.
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
    /// Parses the header and decodes every frame once, so that
    /// [`StreamPacket::frames`] cannot fail later. Bytes after the frames are junk
    /// and ignored.
    pub fn parse(plaintext: &'a [u8]) -> Result<StreamPacket<'a>, StreamPacketError> {
        let (header, mut frames) = StreamHeader::parse(plaintext)?;
        let frame_count = frames.remaining();
        let frames_start = frames.offset();
        for frame in frames.by_ref() {
            frame?;
        }
        // The frames were just read from this range, so it exists.
        let frames_region = plaintext
            .get(frames_start..frames.offset())
            .unwrap_or_default();
        Ok(StreamPacket {
            ilp_packet_type: header.ilp_packet_type,
            sequence: header.sequence,
            prepare_amount: header.prepare_amount,
            frame_count,
            frames_region,
        })
    }

    pub fn header(&self) -> StreamHeader {
        StreamHeader {
            ilp_packet_type: self.ilp_packet_type,
            sequence: self.sequence,
            prepare_amount: self.prepare_amount,
        }
    }

    /// The frames, in order, unknown types included (as [`Frame::Unknown`]).
    pub fn frames(&self) -> Frames<'a> {
        let reader = Reader::new(self.frames_region);
        Frames {
            inner: FrameIter {
                reader,
                remaining: self.frame_count,
                index: 0,
            },
        }
    }

    pub fn frame_count(&self) -> u64 {
        self.frame_count
    }

    /// The encoded frames, without the header and the junk after them.
    pub fn frames_bytes(&self) -> &'a [u8] {
        self.frames_region
    }
}

/// Iterator over the frames of a checked [`StreamPacket`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    inner: FrameIter<'a>,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        // Parsing decoded these very bytes without error, so `ok()` drops nothing;
        // it only avoids a panic path.
        self.inner.next()?.ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.inner.remaining).unwrap_or(usize::MAX);
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for Frames<'_> {}

/// The fields of a STREAM packet to encode.
#[derive(Debug, Clone, Copy)]
pub struct StreamPacketBuilder<'a, 'f> {
    /// 12, 13 or 14; anything else encodes a packet no receiver accepts.
    pub ilp_packet_type: u8,
    pub sequence: u64,
    pub prepare_amount: u64,
    pub frames: &'f [Frame<'a>],
}

impl StreamPacketBuilder<'_, '_> {
    /// Bytes [`StreamPacketBuilder::write_to`] appends.
    pub fn encoded_size(&self) -> usize {
        let fixed_size = 2
            + oer::var_uint_size(self.sequence)
            + oer::var_uint_size(self.prepare_amount)
            + oer::var_uint_size(self.frames.len() as u64);
        self.frames
            .iter()
            .fold(fixed_size, |size, frame| size + frame.encoded_size())
    }

    /// Appends the plaintext to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        debug_assert!(is_ilp_packet_type(self.ilp_packet_type));
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
        let mut out = Vec::with_capacity(self.encoded_size());
        self.write_to(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::frame::CloseCode;

    fn bytes(text: &str) -> Vec<u8> {
        hex::decode(text.replace(' ', "")).expect("test hex")
    }

    /// interledger-rs `packet.rs` SERIALIZED, asserted there to equal the JS output.
    const ALL_FRAMES: &str = "010c01010163010e010501036f6f70020d0c6578616d706c652e626c6168\
        03030203e804030207d00503020bb80603020fa007050358595a091008014c0204626c616811040158\
        01631208010b0203db0201f413080142024e20021770140b01220223280568656c6c6f150501230222\
        3e160602037802ad9c";

    #[test]
    fn all_frames_vector_decodes_and_reencodes() {
        let plaintext = bytes(ALL_FRAMES);
        let packet = StreamPacket::parse(&plaintext).expect("valid");
        assert_eq!(
            packet.header(),
            StreamHeader {
                ilp_packet_type: 12,
                sequence: 1,
                prepare_amount: 99
            }
        );
        let frames: Vec<Frame> = packet.frames().collect();
        let expected = [
            Frame::ConnectionClose {
                code: CloseCode::NoError,
                message: "oop",
            },
            Frame::ConnectionNewAddress {
                source_account: "example.blah",
            },
            Frame::ConnectionMaxData { max_offset: 1000 },
            Frame::ConnectionDataBlocked { max_offset: 2000 },
            Frame::ConnectionMaxStreamId {
                max_stream_id: 3000,
            },
            Frame::ConnectionStreamIdBlocked {
                max_stream_id: 4000,
            },
            Frame::ConnectionAssetDetails {
                asset_code: "XYZ",
                asset_scale: 9,
            },
            Frame::StreamClose {
                stream_id: 76,
                code: CloseCode::InternalError,
                message: "blah",
            },
            Frame::StreamMoney {
                stream_id: 88,
                shares: 99,
            },
            Frame::StreamMaxMoney {
                stream_id: 11,
                receive_max: 987,
                total_received: 500,
            },
            Frame::StreamMoneyBlocked {
                stream_id: 66,
                send_max: 20000,
                total_sent: 6000,
            },
            Frame::StreamData {
                stream_id: 34,
                offset: 9000,
                data: b"hello",
            },
            Frame::StreamMaxData {
                stream_id: 35,
                max_offset: 8766,
            },
            Frame::StreamDataBlocked {
                stream_id: 888,
                max_offset: 44444,
            },
        ];
        assert_eq!(frames, expected);
        let builder = StreamPacketBuilder {
            ilp_packet_type: 12,
            sequence: 1,
            prepare_amount: 99,
            frames: &frames,
        };
        assert_eq!(builder.encoded_size(), plaintext.len());
        assert_eq!(builder.to_bytes(), plaintext);
        let (_, lazy) = StreamHeader::parse(&plaintext).expect("valid");
        assert_eq!(lazy.collect::<Result<Vec<_>, _>>(), Ok(expected.to_vec()));
    }

    #[test]
    fn rfc_fixtures() {
        let cases: [(&str, &[Frame]); 4] = [
            ("010c010001000100", &[]),
            (
                "010c010001000101020e0d6578616d706c652e616c696365",
                &[Frame::ConnectionNewAddress {
                    source_account: "example.alice",
                }],
            ),
            (
                "010c010001000101070503414243ff",
                &[Frame::ConnectionAssetDetails {
                    asset_code: "ABC",
                    asset_scale: 255,
                }],
            ),
            (
                "010c010001000101110b017b08ffffffffffffffff",
                &[Frame::StreamMoney {
                    stream_id: 123,
                    shares: u64::MAX,
                }],
            ),
        ];
        for (text, expected) in cases {
            let plaintext = bytes(text);
            let packet = StreamPacket::parse(&plaintext).expect("valid");
            assert_eq!((packet.sequence, packet.prepare_amount), (0, 0), "{text}");
            assert_eq!(packet.frames().collect::<Vec<_>>(), expected, "{text}");
            let builder = StreamPacketBuilder {
                ilp_packet_type: 12,
                sequence: 0,
                prepare_amount: 0,
                frames: expected,
            };
            assert_eq!(hex::encode(builder.to_bytes()), text);
        }
    }

    #[test]
    fn rfc_fixture_receive_max_too_big_saturates() {
        let too_big = bytes("010c010001000101120f017b090100000000000000000201c8");
        let packet = StreamPacket::parse(&too_big).expect("saturates");
        let frame = Frame::StreamMaxMoney {
            stream_id: 123,
            receive_max: u64::MAX,
            total_received: 456,
        };
        assert_eq!(packet.frames().collect::<Vec<_>>(), [frame]);
    }

    #[test]
    fn unknown_frames_are_skipped_and_junk_ignored() {
        let plaintext = bytes("010c0100010001025903010203110401010102 000000");
        let packet = StreamPacket::parse(&plaintext).expect("valid");
        let frames: Vec<Frame> = packet.frames().collect();
        assert_eq!(
            frames[0],
            Frame::Unknown {
                frame_type: 0x59,
                contents: &[1, 2, 3]
            }
        );
        assert_eq!(
            frames[1],
            Frame::StreamMoney {
                stream_id: 1,
                shares: 2
            }
        );
        assert_eq!(packet.frames_bytes(), &plaintext[8..plaintext.len() - 3]);
        assert_eq!(packet.frames().len(), 2);
    }

    #[test]
    fn malformed_headers_are_errors() {
        let parse = |text: &str| StreamPacket::parse(&bytes(text)).map(|packet| packet.header());
        assert_eq!(
            parse("020c010001000100"),
            Err(StreamPacketError::Version(2))
        );
        assert_eq!(
            parse("010f010001000100"),
            Err(StreamPacketError::IlpPacketType(15))
        );
        assert_eq!(
            parse("010c0100010001"),
            Err(StreamPacketError::Header(OerError::UnexpectedEnd))
        );
        assert_eq!(
            parse("010c01000100017f"),
            Err(StreamPacketError::FrameCount(127))
        );
        assert_eq!(
            parse("010c 0100 0100 020001"),
            Err(StreamPacketError::Header(OerError::NonCanonicalVarUInt))
        );
        assert_eq!(
            parse(""),
            Err(StreamPacketError::Header(OerError::UnexpectedEnd))
        );
    }

    #[test]
    fn a_bad_frame_fails_the_whole_packet_and_stops_the_lazy_iterator() {
        // Two frames declared: a good StreamMoney, then a close whose message runs past
        // its contents.
        let plaintext = bytes("010c 0100 0100 0102 1104 0101 0102 0103 02 0268");
        let error = StreamPacketError::Frame {
            index: 1,
            source: FrameError::Contents {
                frame_type: 1,
                source: OerError::UnexpectedEnd,
            },
        };
        assert_eq!(StreamPacket::parse(&plaintext), Err(error));
        let (header, mut lazy) = StreamHeader::parse(&plaintext).expect("header is fine");
        assert_eq!(header.sequence, 0);
        assert_eq!(
            lazy.next(),
            Some(Ok(Frame::StreamMoney {
                stream_id: 1,
                shares: 2
            }))
        );
        assert_eq!(lazy.next(), Some(Err(error)));
        assert_eq!(lazy.next(), None);
    }

    #[test]
    fn fewer_frames_than_declared_is_an_error() {
        let plaintext = bytes("010c 0100 0100 0102 1104 0101 0102 0000");
        let error = StreamPacketError::Frame {
            index: 1,
            source: FrameError::Header(OerError::UnexpectedEnd),
        };
        assert_eq!(
            StreamPacket::parse(&plaintext[..plaintext.len() - 2]).err(),
            Some(error)
        );
        // With two junk zero bytes the second "frame" is type 0 with empty contents.
        let packet = StreamPacket::parse(&plaintext).expect("valid");
        assert_eq!(
            packet.frames().nth(1),
            Some(Frame::Unknown {
                frame_type: 0,
                contents: &[]
            })
        );
    }
}
