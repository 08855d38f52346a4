//! ILDCP (RFC 0031): a child asks its parent for its address with a Prepare to
//! `peer.config`; the parent fulfills with the address, asset scale and asset code.

use super::address::{Address, AddressError};
use super::ilp::{Fulfill, Prepare};
use super::oer::{self, OerError, Reader};
use thiserror::Error;

/// Destination of an ILDCP request.
pub const ILDCP_DESTINATION: &str = "peer.config";
/// Fulfillment of every peer protocol reply: 32 zero bytes.
pub const PEER_PROTOCOL_FULFILLMENT: [u8; 32] = [0; 32];
/// SHA-256 of [`PEER_PROTOCOL_FULFILLMENT`], the condition of every peer protocol request.
pub const PEER_PROTOCOL_CONDITION: [u8; 32] = [
    0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77, 0x6c, 0x8f, 0xc1, 0x8b, 0x8e, 0x9f, 0x8e, 0x20,
    0x08, 0x97, 0x14, 0x85, 0x6e, 0xe2, 0x33, 0xb3, 0x90, 0x2a, 0x59, 0x1d, 0x0d, 0x5f, 0x29, 0x25,
];

/// The ILDCP answer: the child's address and the asset of the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IldcpResponse<'a> {
    pub client_address: Address<'a>,
    pub asset_scale: u8,
    pub asset_code: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IldcpError {
    #[error("malformed ILDCP response: {0}")]
    Oer(#[from] OerError),
    #[error("invalid client address: {0}")]
    Address(#[from] AddressError),
    #[error("asset code is not UTF-8")]
    AssetCodeNotUtf8,
}

/// Whether `prepare` is an ILDCP request a parent should answer.
pub fn is_ildcp_request(prepare: &Prepare<'_>) -> bool {
    prepare.destination.as_str() == ILDCP_DESTINATION
        && *prepare.execution_condition == PEER_PROTOCOL_CONDITION
}

impl<'a> IldcpResponse<'a> {
    /// Encodes the response data (not the Fulfill around it).
    pub fn data(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            oer::var_octet_string_size(self.client_address.as_bytes().len())
                + 1
                + oer::var_octet_string_size(self.asset_code.len()),
        );
        oer::write_var_octet_string(&mut out, self.client_address.as_bytes());
        out.push(self.asset_scale);
        oer::write_var_octet_string(&mut out, self.asset_code.as_bytes());
        out
    }

    /// The complete Fulfill packet answering a request.
    pub fn to_fulfill(&self) -> Vec<u8> {
        let data = self.data();
        Fulfill {
            fulfillment: &PEER_PROTOCOL_FULFILLMENT,
            data: &data,
        }
        .to_bytes()
    }

    pub fn parse(data: &'a [u8]) -> Result<IldcpResponse<'a>, IldcpError> {
        let mut reader = Reader::new(data);
        let client_address = Address::parse(reader.read_var_octet_string()?)?;
        let asset_scale = reader.read_u8()?;
        let code_bytes = reader.read_var_octet_string()?;
        let asset_code =
            std::str::from_utf8(code_bytes).map_err(|_| IldcpError::AssetCodeNotUtf8)?;
        Ok(IldcpResponse {
            client_address,
            asset_scale,
            asset_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::ilp::condition_of;

    const REQUEST_HEX: &str = "0c46000000000000000032303135303631363030303130303030306668\
7aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f29250b706565722e636f6e66696700";
    /// `0d35`, 32 zero bytes of fulfillment, then the 20 data bytes.
    const RESPONSE_HEX: &str = concat!(
        "0d35",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "14",
        "0e6578616d706c652e636c69656e740d0358414d"
    );

    #[test]
    fn condition_is_the_hash_of_the_zero_fulfillment() {
        assert_eq!(
            condition_of(&PEER_PROTOCOL_FULFILLMENT),
            PEER_PROTOCOL_CONDITION
        );
    }

    #[test]
    fn request_vector_is_recognised() {
        let buffer = hex::decode(REQUEST_HEX).expect("test hex");
        let prepare = Prepare::parse(&buffer).expect("valid Prepare");
        assert_eq!(prepare.amount, 0);
        assert_eq!(&prepare.expires_at.to_digits(), b"20150616000100000");
        assert!(is_ildcp_request(&prepare));
    }

    #[test]
    fn response_vector_round_trips() {
        let expected = hex::decode(RESPONSE_HEX).expect("test hex");
        let response = IldcpResponse {
            client_address: Address::parse_str("example.client").expect("valid"),
            asset_scale: 13,
            asset_code: "XAM",
        };
        assert_eq!(response.to_fulfill(), expected);
        let fulfill = Fulfill::parse(&expected).expect("valid Fulfill");
        assert_eq!(IldcpResponse::parse(fulfill.data), Ok(response));
    }
}
