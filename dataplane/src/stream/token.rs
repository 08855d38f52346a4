//! Connection tokens: the last segment of a STREAM receiver's address carries an
//! encrypted token from which a stateless receiver derives the shared secret
//! (`../shared/reference/ilp-protocols.md` §7). Riptide produces variant C (as
//! `@interledger/stream-receiver`, Rafiki's library, does) and reads all three:
//! C; B (`ilp-protocol-stream` 2.5 and later); and the legacy A, whose token is
//! not authenticated by itself and is only proven by decrypting the STREAM data.

use super::crypto::{aes_key, hmac_sha256, open, seal, sha256, IV_SIZE};
use crate::packet::oer::{self, Reader};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::LessSafeKey;
use thiserror::Error;

const SHARED_SECRET_STRING: &[u8] = b"ilp_stream_shared_secret";
const CONNECTION_TOKEN_STRING: &[u8] = b"ilp_stream_connection_token";

const FLAG_PAYMENT_TAG: u8 = 0x01;
const FLAG_RECEIPTS: u8 = 0x02;
const FLAG_ASSET: u8 = 0x04;
/// Random bytes at the head of a variant B token.
const VARIANT_B_NONCE_SIZE: usize = 18;
/// Longest payment tag a token may carry; the address must stay under 1023 bytes.
pub const PAYMENT_TAG_SIZE_MAX: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("destination is not under the receiver's address")]
    NotOurs,
    #[error("token segment is not base64url")]
    NotBase64,
    #[error("token does not decrypt under this receiver's secret")]
    NotAuthentic,
    #[error("token plaintext is malformed")]
    Malformed,
    #[error("payment tag is longer than {PAYMENT_TAG_SIZE_MAX} bytes or not ASCII")]
    PaymentTag,
}

/// Receipt parameters a verifier shared with the receiver (RFC 0039).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptSetup {
    pub nonce: [u8; 16],
    pub secret: [u8; 32],
}

/// What a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenDetails {
    pub payment_tag: Option<String>,
    pub receipt: Option<ReceiptSetup>,
    pub asset: Option<(String, u8)>,
}

/// Which token layout a segment used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVariant {
    /// `@interledger/stream-receiver` (Rafiki).
    C,
    /// `ilp-protocol-stream` 2.5 and later.
    B,
    /// Older `ilp-protocol-stream` and interledger-rs: HMAC over the segment text.
    /// Not authenticated until the STREAM data decrypts.
    Legacy,
}

/// A decoded token and the secret it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionToken {
    pub variant: TokenVariant,
    pub shared_secret: [u8; 32],
    pub details: TokenDetails,
}

/// The receiver's secret with the keys derived from it.
pub struct ServerSecret {
    keygen: [u8; 32],
    token_key_c: LessSafeKey,
    token_key_b: LessSafeKey,
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

impl ServerSecret {
    pub fn new(secret: &[u8; 32]) -> ServerSecret {
        ServerSecret {
            keygen: hmac_sha256(secret, SHARED_SECRET_STRING),
            token_key_c: aes_key(&hmac_sha256(secret, CONNECTION_TOKEN_STRING)),
            token_key_b: aes_key(secret),
        }
    }

    /// The shared secret for raw token bytes (variants B and C) or for the segment
    /// text (legacy).
    pub fn shared_secret(&self, token: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.keygen, token)
    }

    /// Makes a variant C token segment (base64url, no padding). `iv` must be random.
    pub fn generate_segment(
        &self,
        iv: [u8; IV_SIZE],
        details: &TokenDetails,
    ) -> Result<String, TokenError> {
        let plaintext = encode_variant_c(details)?;
        let mut token = Vec::with_capacity(plaintext.len() + 28);
        seal(&self.token_key_c, iv, &plaintext, &mut token);
        Ok(URL_SAFE_NO_PAD.encode(&token))
    }

    /// Decodes a token segment: variant C, then B, then the legacy form.
    pub fn decode_segment(&self, segment: &str) -> Result<ConnectionToken, TokenError> {
        let token = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| TokenError::NotBase64)?;
        let mut plaintext = Vec::with_capacity(token.len());
        if open(&self.token_key_c, &token, &mut plaintext).is_ok() {
            let details = decode_variant_c(&plaintext)?;
            return Ok(ConnectionToken {
                variant: TokenVariant::C,
                shared_secret: self.shared_secret(&token),
                details,
            });
        }
        if open(&self.token_key_b, &token, &mut plaintext).is_ok() {
            let details = decode_variant_b(&plaintext)?;
            return Ok(ConnectionToken {
                variant: TokenVariant::B,
                shared_secret: self.shared_secret(&token),
                details,
            });
        }
        Ok(ConnectionToken {
            variant: TokenVariant::Legacy,
            shared_secret: self.shared_secret(segment.as_bytes()),
            details: legacy_details(segment),
        })
    }
}

fn encode_variant_c(details: &TokenDetails) -> Result<Vec<u8>, TokenError> {
    let mut flags = 0u8;
    let mut body = Vec::with_capacity(64);
    if let Some(tag) = &details.payment_tag {
        if tag.len() > PAYMENT_TAG_SIZE_MAX || !tag.is_ascii() {
            return Err(TokenError::PaymentTag);
        }
        flags |= FLAG_PAYMENT_TAG;
        oer::write_var_octet_string(&mut body, tag.as_bytes());
    }
    if let Some(receipt) = &details.receipt {
        flags |= FLAG_RECEIPTS;
        body.extend_from_slice(&receipt.nonce);
        body.extend_from_slice(&receipt.secret);
    }
    if let Some((code, scale)) = &details.asset {
        flags |= FLAG_ASSET;
        oer::write_var_octet_string(&mut body, code.as_bytes());
        body.push(*scale);
    }
    let mut plaintext = Vec::with_capacity(1 + body.len());
    plaintext.push(flags);
    plaintext.extend_from_slice(&body);
    Ok(plaintext)
}

fn decode_variant_c(plaintext: &[u8]) -> Result<TokenDetails, TokenError> {
    let mut reader = Reader::new(plaintext);
    let flags = reader.read_u8().map_err(|_| TokenError::Malformed)?;
    let mut details = TokenDetails::default();
    if flags & FLAG_PAYMENT_TAG != 0 {
        let tag = reader
            .read_var_octet_string()
            .map_err(|_| TokenError::Malformed)?;
        details.payment_tag = Some(ascii(tag)?);
    }
    if flags & FLAG_RECEIPTS != 0 {
        let nonce = *reader
            .read_array::<16>()
            .map_err(|_| TokenError::Malformed)?;
        let secret = *reader
            .read_array::<32>()
            .map_err(|_| TokenError::Malformed)?;
        details.receipt = Some(ReceiptSetup { nonce, secret });
    }
    if flags & FLAG_ASSET != 0 {
        let code = reader
            .read_var_octet_string()
            .map_err(|_| TokenError::Malformed)?;
        let code = std::str::from_utf8(code)
            .map_err(|_| TokenError::Malformed)?
            .to_owned();
        let scale = reader.read_u8().map_err(|_| TokenError::Malformed)?;
        details.asset = Some((code, scale));
    }
    Ok(details)
}

fn decode_variant_b(plaintext: &[u8]) -> Result<TokenDetails, TokenError> {
    let mut reader = Reader::new(plaintext);
    reader
        .read_bytes(VARIANT_B_NONCE_SIZE)
        .map_err(|_| TokenError::Malformed)?;
    let tag = reader
        .read_var_octet_string()
        .map_err(|_| TokenError::Malformed)?;
    let nonce = reader
        .read_var_octet_string()
        .map_err(|_| TokenError::Malformed)?;
    let secret = reader
        .read_var_octet_string()
        .map_err(|_| TokenError::Malformed)?;
    let receipt = match (nonce.len(), secret.len()) {
        (0, 0) => None,
        (16, 32) => {
            let mut setup = ReceiptSetup {
                nonce: [0; 16],
                secret: [0; 32],
            };
            setup.nonce.copy_from_slice(nonce);
            setup.secret.copy_from_slice(secret);
            Some(setup)
        }
        _ => return Err(TokenError::Malformed),
    };
    let payment_tag = if tag.is_empty() {
        None
    } else {
        Some(ascii(tag)?)
    };
    Ok(TokenDetails {
        payment_tag,
        receipt,
        asset: None,
    })
}

/// A legacy token may carry `~<connection tag>` after its 24 characters.
fn legacy_details(segment: &str) -> TokenDetails {
    let payment_tag = segment.split_once('~').map(|(_, tag)| tag.to_owned());
    TokenDetails {
        payment_tag,
        receipt: None,
        asset: None,
    }
}

fn ascii(bytes: &[u8]) -> Result<String, TokenError> {
    if bytes.len() > PAYMENT_TAG_SIZE_MAX || !bytes.is_ascii() {
        return Err(TokenError::PaymentTag);
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// The token segment of `destination`: the segment right after
/// `receiver_address + "."`. Segments after it (a sender may append its own) are
/// ignored, as the reference receivers do.
pub fn token_segment<'a>(
    receiver_address: &str,
    destination: &'a str,
) -> Result<&'a str, TokenError> {
    let rest = destination
        .strip_prefix(receiver_address)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(TokenError::NotOurs)?;
    let segment = rest.split('.').next().unwrap_or("");
    if segment.is_empty() {
        return Err(TokenError::NotOurs);
    }
    Ok(segment)
}

/// Rafiki's connection id: SHA-256 of the full destination address.
pub fn connection_id(destination: &str) -> [u8; 32] {
    sha256(destination.as_bytes())
}
