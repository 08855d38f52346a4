//! Connection tokens: how a stateless receiver gets a connection's shared secret
//! back from the destination address (`shared/reference/ilp-protocols.md` §7).
//!
//! Every variant shares `keygen = HMAC-SHA256(server_secret, "ilp_stream_shared_secret")`
//! and a destination `<server address>.<token segment>[.<anything>]`.
//!
//! * **C**, `@interledger/stream-receiver` (Rafiki's library), the one Riptide
//!   issues: `flags: UInt8` (bit 0 payment tag, bit 1 receipts, bit 2 asset), then
//!   if bit 0 `VarOctetString(payment tag, ASCII)`, if bit 1 `receipt nonce (16) ||
//!   receipt secret (32)`, if bit 2 `VarOctetString(asset code, UTF-8) || scale:
//!   UInt8`; sealed with AES-256-GCM under `HMAC(server_secret,
//!   "ilp_stream_connection_token")` as `IV || tag || ciphertext`. Unknown flag bits
//!   and trailing bytes are ignored, as the JS decoder does.
//! * **B**, `ilp-protocol-stream` 2.5 and later: `nonce (18) || VarOctetString(tag)
//!   || VarOctetString(receipt nonce: 0 or 16 bytes) || VarOctetString(receipt
//!   secret: 0 or 32 bytes)`, sealed the same way under the server secret itself.
//! * **Legacy** (older `ilp-protocol-stream`, interledger-rs): any text, optionally
//!   `<random>~<connection tag>`; nothing is sealed, so the token alone proves
//!   nothing. Only a STREAM packet that decrypts under the derived secret does.
//!
//! For B and C, `shared_secret = HMAC(keygen, raw token bytes)`; for legacy tokens
//! it is `HMAC(keygen, ASCII of the segment text)`.
//!
//! Segments are base64url without padding, decoded strictly (canonical trailing
//! bits): a lenient decoder would let several addresses, hence several Rafiki
//! connection ids, map to one token.
//!
//! **Which segment is the token.** The one right after `server_address + "."`,
//! ending at the next `.`, as both `ilp-protocol-stream` and
//! `@interledger/stream-receiver` read it; later segments are ignored.
//! `@interledger/pay` relies on this: its second asset probe inserts a dummy `_`
//! segment before the token (`<server>._.<token>`) together with
//! `ConnectionNewAddress("private.SEND_ONLY_CLIENT")`, precisely so that receivers of
//! this kind reject it (the `_` is no token, so the STREAM data cannot decrypt: F06)
//! instead of starting a send loop back to a send-only client. Only interledger-rs,
//! which reads the last segment, answers that probe. Pay takes the asset details
//! from its first probe (`ConnectionNewAddress("")`), which a receiver answers
//! normally. Riptide follows the JS receivers and does not skip the `_`.
//!
//! Decoding allocates nothing but the strings of the details: the token and its
//! plaintext live in stack buffers sized for the largest ILP address.

use super::crypto::{aes_key, hmac_sign, seal_with, sha256, Sealed, ENCRYPTION_OVERHEAD, IV_SIZE};
use super::receipt::{RECEIPT_NONCE_SIZE, RECEIPT_SECRET_SIZE};
use crate::limits::{ADDRESS_SIZE_MAX, SEGMENT_SIZE_MAX, TOKEN_SIZE_MAX};
use crate::packet::oer::{self, Reader};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::LessSafeKey;
use ring::hmac;
use thiserror::Error;

const SHARED_SECRET_STRING: &[u8] = b"ilp_stream_shared_secret";
const CONNECTION_TOKEN_STRING: &[u8] = b"ilp_stream_connection_token";

const FLAG_PAYMENT_TAG: u8 = 0x01;
const FLAG_RECEIPTS: u8 = 0x02;
const FLAG_ASSET: u8 = 0x04;
/// Random bytes at the head of a variant B token.
const VARIANT_B_NONCE_SIZE: usize = 18;

/// Why a destination or token gives no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("destination is not under the receiver's address, or has no token")]
    NotOurs,
    #[error("{0} characters do not fit in an ILP address")]
    TooLong(usize),
    #[error("token does not decrypt under this receiver's secret")]
    NotAuthentic,
    #[error("token plaintext is malformed")]
    Malformed,
    #[error("payment tag is not ASCII")]
    PaymentTag,
}

/// Receipt parameters a verifier shared with the receiver (RFC 0039).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReceiptSetup {
    pub nonce: [u8; RECEIPT_NONCE_SIZE],
    pub secret: [u8; RECEIPT_SECRET_SIZE],
}

impl std::fmt::Debug for ReceiptSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptSetup")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// What a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenDetails {
    /// ASCII. Rafiki puts the incoming payment id or wallet address id here.
    pub payment_tag: Option<String>,
    pub receipt: Option<ReceiptSetup>,
    /// Asset code and scale, which the receiver announces in
    /// `ConnectionAssetDetails`. Variant C only.
    pub asset: Option<(String, u8)>,
}

/// Which token layout a segment used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVariant {
    /// `@interledger/stream-receiver` (Rafiki). Authenticated by its seal.
    C,
    /// `ilp-protocol-stream` 2.5 and later. Authenticated by its seal.
    B,
    /// Older `ilp-protocol-stream` and interledger-rs: HMAC over the segment text.
    /// **Not authenticated**: any text gives a secret; the connection is real only
    /// if the STREAM data decrypts under it.
    Legacy,
}

/// A decoded token and the shared secret it gives.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionToken {
    pub variant: TokenVariant,
    pub shared_secret: [u8; 32],
    pub details: TokenDetails,
}

impl ConnectionToken {
    /// False for legacy tokens, which only an authentic STREAM packet can prove.
    pub fn is_authenticated(&self) -> bool {
        self.variant != TokenVariant::Legacy
    }
}

impl std::fmt::Debug for ConnectionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionToken")
            .field("variant", &self.variant)
            .field("details", &self.details)
            .finish_non_exhaustive()
    }
}

/// What a client needs to pay into a new connection (the SPSP answer).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub destination: String,
    pub shared_secret: [u8; 32],
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

/// The receiver's 32-byte secret, as the keys derived from it.
pub struct ServerSecret {
    keygen: hmac::Key,
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
        let keygen = hmac_sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            SHARED_SECRET_STRING,
        );
        let token_key_c = hmac_sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            CONNECTION_TOKEN_STRING,
        );
        ServerSecret {
            keygen: hmac::Key::new(hmac::HMAC_SHA256, &keygen),
            token_key_c: aes_key(&token_key_c),
            token_key_b: aes_key(secret),
        }
    }

    /// The shared secret for raw token bytes (variants B and C) or for the segment
    /// text (legacy).
    pub fn shared_secret(&self, token: &[u8]) -> [u8; 32] {
        hmac_sign(&self.keygen, token)
    }

    /// Makes a variant C token segment (base64url, no padding). `iv` must be random
    /// and never reused.
    pub fn generate_segment(
        &self,
        iv: [u8; IV_SIZE],
        details: &TokenDetails,
    ) -> Result<String, TokenError> {
        let token = self.seal_variant_c(iv, details)?;
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// Makes a destination address under `server_address` and its shared secret, as
    /// `generateCredentials` of `@interledger/stream-receiver` does.
    pub fn generate_credentials(
        &self,
        server_address: &str,
        iv: [u8; IV_SIZE],
        details: &TokenDetails,
    ) -> Result<Credentials, TokenError> {
        let token = self.seal_variant_c(iv, details)?;
        let destination = format!("{server_address}.{}", URL_SAFE_NO_PAD.encode(&token));
        if destination.len() > ADDRESS_SIZE_MAX {
            return Err(TokenError::TooLong(destination.len()));
        }
        Ok(Credentials {
            destination,
            shared_secret: self.shared_secret(&token),
        })
    }

    fn seal_variant_c(
        &self,
        iv: [u8; IV_SIZE],
        details: &TokenDetails,
    ) -> Result<Vec<u8>, TokenError> {
        if details
            .payment_tag
            .as_deref()
            .is_some_and(|tag| !tag.is_ascii())
        {
            return Err(TokenError::PaymentTag);
        }
        let mut token = Vec::with_capacity(ENCRYPTION_OVERHEAD + 64);
        seal_with(&self.token_key_c, iv, &mut token, |plaintext| {
            write_variant_c(details, plaintext)
        });
        // Unpadded base64 takes 4 characters per 3 bytes, rounded up.
        let segment_size = (token.len() * 4).div_ceil(3);
        if segment_size > SEGMENT_SIZE_MAX {
            return Err(TokenError::TooLong(segment_size));
        }
        Ok(token)
    }

    /// Decodes a token segment: variant C, else B, else a legacy token (check
    /// [`ConnectionToken::is_authenticated`]). Errors only when the segment cannot
    /// be a token, or when it is sealed under this secret but malformed.
    pub fn decode_segment(&self, segment: &str) -> Result<ConnectionToken, TokenError> {
        match self.open_segment(segment)? {
            Some(token) => Ok(token),
            None => Ok(self.legacy_token(segment)),
        }
    }

    /// Decodes a variant C or B token segment, refusing legacy ones: for a receiver
    /// that issues only sealed tokens, as Rafiki's does (F06 on `NotAuthentic`).
    pub fn decode_sealed_segment(&self, segment: &str) -> Result<ConnectionToken, TokenError> {
        self.open_segment(segment)?.ok_or(TokenError::NotAuthentic)
    }

    /// [`token_segment`] then [`ServerSecret::decode_segment`].
    pub fn decode_destination(
        &self,
        server_address: &str,
        destination: &str,
    ) -> Result<ConnectionToken, TokenError> {
        self.decode_segment(token_segment(server_address, destination)?)
    }

    /// `Ok(None)` when the segment is not sealed under this secret.
    fn open_segment(&self, segment: &str) -> Result<Option<ConnectionToken>, TokenError> {
        check_segment_size(segment)?;
        let mut token_buffer = [0u8; TOKEN_SIZE_MAX];
        let Ok(token_size) = URL_SAFE_NO_PAD.decode_slice(segment, &mut token_buffer) else {
            return Ok(None);
        };
        let token = token_buffer.get(..token_size).unwrap_or_default();
        let Ok(sealed) = Sealed::split(token) else {
            return Ok(None);
        };
        let mut plaintext_buffer = [0u8; TOKEN_SIZE_MAX];
        let Some(plaintext) = plaintext_buffer.get_mut(..sealed.ciphertext.len()) else {
            return Ok(None);
        };
        let (variant, details) = if try_open(&sealed, &self.token_key_c, plaintext) {
            (TokenVariant::C, decode_variant_c(plaintext)?)
        } else if try_open(&sealed, &self.token_key_b, plaintext) {
            (TokenVariant::B, decode_variant_b(plaintext)?)
        } else {
            return Ok(None);
        };
        Ok(Some(ConnectionToken {
            variant,
            shared_secret: self.shared_secret(token),
            details,
        }))
    }

    fn legacy_token(&self, segment: &str) -> ConnectionToken {
        let payment_tag = segment.split_once('~').map(|(_, tag)| tag.to_owned());
        ConnectionToken {
            variant: TokenVariant::Legacy,
            shared_secret: self.shared_secret(segment.as_bytes()),
            details: TokenDetails {
                payment_tag,
                receipt: None,
                asset: None,
            },
        }
    }
}

fn check_segment_size(segment: &str) -> Result<(), TokenError> {
    if segment.is_empty() {
        return Err(TokenError::NotOurs);
    }
    if segment.len() > ADDRESS_SIZE_MAX {
        return Err(TokenError::TooLong(segment.len()));
    }
    Ok(())
}

/// Copies the ciphertext into `plaintext` (a failed attempt leaves it altered) and
/// opens it there.
fn try_open(sealed: &Sealed<'_>, key: &LessSafeKey, plaintext: &mut [u8]) -> bool {
    plaintext.copy_from_slice(sealed.ciphertext);
    sealed.open_in_place(key, plaintext).is_ok()
}

fn write_variant_c(details: &TokenDetails, out: &mut Vec<u8>) {
    let flags = [
        (details.payment_tag.is_some(), FLAG_PAYMENT_TAG),
        (details.receipt.is_some(), FLAG_RECEIPTS),
        (details.asset.is_some(), FLAG_ASSET),
    ];
    out.push(
        flags
            .iter()
            .filter(|(present, _)| *present)
            .fold(0, |all, (_, flag)| all | flag),
    );
    if let Some(tag) = &details.payment_tag {
        oer::write_var_octet_string(out, tag.as_bytes());
    }
    if let Some(receipt) = &details.receipt {
        out.extend_from_slice(&receipt.nonce);
        out.extend_from_slice(&receipt.secret);
    }
    if let Some((code, scale)) = &details.asset {
        oer::write_var_octet_string(out, code.as_bytes());
        out.push(*scale);
    }
}

fn decode_variant_c(plaintext: &[u8]) -> Result<TokenDetails, TokenError> {
    let mut reader = Reader::new(plaintext);
    let malformed = |_| TokenError::Malformed;
    let flags = reader.read_u8().map_err(malformed)?;
    let mut details = TokenDetails::default();
    if flags & FLAG_PAYMENT_TAG != 0 {
        details.payment_tag = Some(ascii(reader.read_var_octet_string().map_err(malformed)?)?);
    }
    if flags & FLAG_RECEIPTS != 0 {
        let nonce = *reader
            .read_array::<RECEIPT_NONCE_SIZE>()
            .map_err(malformed)?;
        let secret = *reader
            .read_array::<RECEIPT_SECRET_SIZE>()
            .map_err(malformed)?;
        details.receipt = Some(ReceiptSetup { nonce, secret });
    }
    if flags & FLAG_ASSET != 0 {
        let code = reader.read_var_octet_string().map_err(malformed)?;
        let code = std::str::from_utf8(code).map_err(|_| TokenError::Malformed)?;
        let scale = reader.read_u8().map_err(malformed)?;
        details.asset = Some((code.to_owned(), scale));
    }
    Ok(details)
}

fn decode_variant_b(plaintext: &[u8]) -> Result<TokenDetails, TokenError> {
    let mut reader = Reader::new(plaintext);
    let malformed = |_| TokenError::Malformed;
    reader.read_bytes(VARIANT_B_NONCE_SIZE).map_err(malformed)?;
    let tag = reader.read_var_octet_string().map_err(malformed)?;
    let nonce = reader.read_var_octet_string().map_err(malformed)?;
    let secret = reader.read_var_octet_string().map_err(malformed)?;
    let receipt = if nonce.is_empty() && secret.is_empty() {
        None
    } else {
        let nonce = nonce.try_into().map_err(|_| TokenError::Malformed)?;
        let secret = secret.try_into().map_err(|_| TokenError::Malformed)?;
        Some(ReceiptSetup { nonce, secret })
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

fn ascii(bytes: &[u8]) -> Result<String, TokenError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => Ok(text.to_owned()),
        _ => Err(TokenError::PaymentTag),
    }
}

/// The token segment of `destination`: the segment right after
/// `server_address + "."`, up to the next `.` (see the module notes on
/// `@interledger/pay`'s `_` segment).
pub fn token_segment<'a>(
    server_address: &str,
    destination: &'a str,
) -> Result<&'a str, TokenError> {
    if destination.len() > ADDRESS_SIZE_MAX {
        return Err(TokenError::TooLong(destination.len()));
    }
    let local = destination
        .strip_prefix(server_address)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(TokenError::NotOurs)?;
    let segment = local.split_once('.').map_or(local, |(first, _)| first);
    if segment.is_empty() {
        return Err(TokenError::NotOurs);
    }
    Ok(segment)
}

/// Rafiki's connection id: SHA-256 of the full destination address (ASCII).
pub fn connection_id(destination: &str) -> [u8; 32] {
    sha256(destination.as_bytes())
}

/// [`connection_id`] as lowercase hex, the form Rafiki uses in its Redis keys.
pub fn connection_id_hex(destination: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for byte in connection_id(destination) {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Vec<u8> {
        hex::decode(text.replace(' ', "")).expect("test hex")
    }

    /// The DERIVED variant C example of the reference (§7C).
    #[test]
    fn variant_c_derived_example() {
        let secret: [u8; 32] = std::array::from_fn(|i| i as u8);
        let token_key = crate::stream::crypto::hmac_sha256(&secret, CONNECTION_TOKEN_STRING);
        assert_eq!(
            hex::encode(token_key),
            "8c3bade7714f312415f64b501f80eecca6781bf4cbbf479851219d46416d5588"
        );
        let details = TokenDetails {
            payment_tag: Some("pay-tag-1".into()),
            receipt: None,
            asset: Some(("USD".into(), 2)),
        };
        let mut plaintext = Vec::new();
        write_variant_c(&details, &mut plaintext);
        assert_eq!(hex::encode(&plaintext), "05097061792d7461672d310355534402");
        let server = ServerSecret::new(&secret);
        let token = bytes(concat!(
            "000000000000000000000000",
            "17b644f5dd82c249ac6c3be5c9a04d8e",
            "7e0775e09890630b32fb9ecd56ee45fc"
        ));
        assert_eq!(server.seal_variant_c([0; 12], &details), Ok(token.clone()));
        let segment = server.generate_segment([0; 12], &details).expect("token");
        assert_eq!(
            segment,
            "AAAAAAAAAAAAAAAAF7ZE9d2CwkmsbDvlyaBNjn4HdeCYkGMLMvuezVbuRfw"
        );
        let shared_secret = "03fcfaa9fcff5c643671e4cc3de9255dfe56bc9644e2d9492d4078677a751d1c";
        assert_eq!(hex::encode(server.shared_secret(&token)), shared_secret);
        let decoded = server.decode_segment(&segment).expect("decodes");
        assert_eq!(decoded.variant, TokenVariant::C);
        assert!(decoded.is_authenticated());
        assert_eq!(decoded.details, details);
        assert_eq!(hex::encode(decoded.shared_secret), shared_secret);
        assert_eq!(server.decode_sealed_segment(&segment), Ok(decoded));
    }

    #[test]
    fn credentials_put_the_token_under_the_server_address() {
        let server = ServerSecret::new(&[1; 32]);
        let receipt = Some(ReceiptSetup {
            nonce: [2; 16],
            secret: [3; 32],
        });
        let details = TokenDetails {
            payment_tag: Some("tag".into()),
            receipt,
            asset: None,
        };
        let credentials = server
            .generate_credentials("g.riptide", [5; 12], &details)
            .expect("fits");
        let token = server
            .decode_destination("g.riptide", &credentials.destination)
            .expect("ours");
        assert_eq!(token.details, details);
        assert_eq!(token.shared_secret, credentials.shared_secret);
        let long_tag = TokenDetails {
            payment_tag: Some("x".repeat(740)),
            ..TokenDetails::default()
        };
        assert!(matches!(
            server.generate_segment([5; 12], &long_tag),
            Err(TokenError::TooLong(_))
        ));
        let tag = TokenDetails {
            payment_tag: Some("x".repeat(700)),
            ..TokenDetails::default()
        };
        let segment = server.generate_segment([5; 12], &tag).expect("fits alone");
        assert_eq!(
            server.decode_segment(&segment).map(|token| token.details),
            Ok(tag.clone())
        );
        let long_address = "g.".to_owned() + &"a".repeat(100);
        assert!(matches!(
            server.generate_credentials(&long_address, [5; 12], &tag),
            Err(TokenError::TooLong(_))
        ));
        let not_ascii = TokenDetails {
            payment_tag: Some("é".into()),
            ..TokenDetails::default()
        };
        assert_eq!(
            server.generate_segment([5; 12], &not_ascii),
            Err(TokenError::PaymentTag)
        );
    }

    fn variant_b_segment(secret: &[u8; 32], plaintext: &[u8]) -> (String, Vec<u8>) {
        let mut token = Vec::new();
        seal_with(&aes_key(secret), [3; 12], &mut token, |out| {
            out.extend_from_slice(plaintext)
        });
        (URL_SAFE_NO_PAD.encode(&token), token)
    }

    #[test]
    fn variant_b_tokens_decode() {
        let secret = [7u8; 32];
        let server = ServerSecret::new(&secret);
        let mut plaintext = vec![9u8; 18];
        oer::write_var_octet_string(&mut plaintext, b"conn-tag");
        oer::write_var_octet_string(&mut plaintext, &[1u8; 16]);
        oer::write_var_octet_string(&mut plaintext, &[2u8; 32]);
        let (segment, token) = variant_b_segment(&secret, &plaintext);
        let decoded = server.decode_segment(&segment).expect("decodes");
        assert_eq!(decoded.variant, TokenVariant::B);
        assert_eq!(decoded.details.payment_tag.as_deref(), Some("conn-tag"));
        assert_eq!(
            decoded.details.receipt,
            Some(ReceiptSetup {
                nonce: [1; 16],
                secret: [2; 32]
            })
        );
        assert_eq!(decoded.shared_secret, server.shared_secret(&token));

        let mut bare = vec![9u8; 18];
        bare.extend_from_slice(&[0, 0, 0]);
        let (segment, _) = variant_b_segment(&secret, &bare);
        let decoded = server.decode_sealed_segment(&segment).expect("decodes");
        assert_eq!(decoded.details, TokenDetails::default());

        let mut half_receipt = vec![9u8; 18];
        half_receipt.extend_from_slice(&[0, 0x10]);
        half_receipt.extend_from_slice(&[1; 16]);
        half_receipt.push(0);
        let (segment, _) = variant_b_segment(&secret, &half_receipt);
        assert_eq!(server.decode_segment(&segment), Err(TokenError::Malformed));
    }

    /// interledger-rs `fulfills_packets_sent_to_javascript_receiver` (§7A).
    #[test]
    fn legacy_tokens_hash_the_segment_text() {
        let server = ServerSecret::new(&[0; 32]);
        let keygen = crate::stream::crypto::hmac_sha256(&[0; 32], SHARED_SECRET_STRING);
        assert_eq!(
            hex::encode(keygen),
            "e8d01eed8f1e01ae650f9ea9b789da1d4841fa8931ab2b21f2e285dd6017a246"
        );
        let token = server
            .decode_segment("NjXD0uJPBuGz56SBmI3uX6h-")
            .expect("legacy");
        assert_eq!(token.variant, TokenVariant::Legacy);
        assert!(!token.is_authenticated());
        assert_eq!(token.details, TokenDetails::default());
        let expected = "b7d09d2e16e6f83c55b60e42fcd7c2b8ed49624a1df73c59b383dbe2e8690309";
        assert_eq!(hex::encode(token.shared_secret), expected);
        assert_eq!(
            server.decode_sealed_segment("NjXD0uJPBuGz56SBmI3uX6h-"),
            Err(TokenError::NotAuthentic)
        );

        let tagged = server
            .decode_segment("NjXD0uJPBuGz56SBmI3uX6h-~order-7")
            .expect("legacy");
        assert_eq!(tagged.details.payment_tag.as_deref(), Some("order-7"));
        assert_eq!(
            tagged.shared_secret,
            server.shared_secret(b"NjXD0uJPBuGz56SBmI3uX6h-~order-7")
        );
    }

    #[test]
    fn sealed_but_malformed_tokens_are_errors_not_legacy() {
        let secret = [8u8; 32];
        let server = ServerSecret::new(&secret);
        let token_key = crate::stream::crypto::hmac_sha256(&secret, CONNECTION_TOKEN_STRING);
        let mut token = Vec::new();
        // Flags say "payment tag" but the tag's length runs past the end.
        seal_with(&aes_key(&token_key), [0; 12], &mut token, |out| {
            out.extend_from_slice(&[1, 5, b'a'])
        });
        let segment = URL_SAFE_NO_PAD.encode(&token);
        assert_eq!(server.decode_segment(&segment), Err(TokenError::Malformed));
        token.clear();
        seal_with(&aes_key(&token_key), [0; 12], &mut token, |out| {
            out.extend_from_slice(&[1, 1, 0xff])
        });
        let segment = URL_SAFE_NO_PAD.encode(&token);
        assert_eq!(server.decode_segment(&segment), Err(TokenError::PaymentTag));
        token.clear();
        // Unknown flag bits and trailing bytes are ignored.
        seal_with(&aes_key(&token_key), [0; 12], &mut token, |out| {
            out.extend_from_slice(&[0xf8, 1, 2])
        });
        let segment = URL_SAFE_NO_PAD.encode(&token);
        assert_eq!(
            server.decode_segment(&segment).map(|t| t.details),
            Ok(TokenDetails::default())
        );
    }

    #[test]
    fn token_segments() {
        assert_eq!(token_segment("g.r", "g.r.abc"), Ok("abc"));
        assert_eq!(token_segment("g.r", "g.r.abc.extra.more"), Ok("abc"));
        assert_eq!(token_segment("g.r", "g.rx.abc"), Err(TokenError::NotOurs));
        assert_eq!(token_segment("g.r", "g.r"), Err(TokenError::NotOurs));
        assert_eq!(token_segment("g.r", "g.r."), Err(TokenError::NotOurs));
        assert_eq!(token_segment("g.r", "g.r..abc"), Err(TokenError::NotOurs));
        assert_eq!(token_segment("g.r", "h.g.r.abc"), Err(TokenError::NotOurs));
        let long = format!("g.r.{}", "a".repeat(1020));
        assert_eq!(token_segment("g.r", &long), Err(TokenError::TooLong(1024)));
    }

    /// `@interledger/pay`'s second asset probe goes to `<server>._.<token>`: the `_`
    /// is taken as the token and is no sealed token of ours.
    #[test]
    fn pay_dummy_segment_is_not_skipped() {
        let server = ServerSecret::new(&[1; 32]);
        let details = TokenDetails {
            asset: Some(("USD".into(), 2)),
            ..TokenDetails::default()
        };
        let credentials = server
            .generate_credentials("g.r", [9; 12], &details)
            .expect("fits");
        let (_, token) = credentials
            .destination
            .rsplit_once('.')
            .expect("has a token");
        let probe = format!("g.r._.{token}");
        assert_eq!(token_segment("g.r", &probe), Ok("_"));
        assert_eq!(
            server.decode_sealed_segment("_"),
            Err(TokenError::NotAuthentic)
        );
        let legacy = server
            .decode_destination("g.r", &probe)
            .expect("legacy fallback");
        assert!(!legacy.is_authenticated());
        assert_ne!(legacy.shared_secret, credentials.shared_secret);
    }

    #[test]
    fn odd_segments() {
        let server = ServerSecret::new(&[0; 32]);
        assert_eq!(server.decode_segment(""), Err(TokenError::NotOurs));
        assert_eq!(
            server.decode_segment(&"A".repeat(1024)),
            Err(TokenError::TooLong(1024))
        );
        let longest = server.decode_segment(&"A".repeat(1023)).expect("legacy");
        assert_eq!(longest.variant, TokenVariant::Legacy);
        // Standard base64 characters and padding are not base64url: legacy text.
        assert_eq!(
            server.decode_segment("ab+/==").map(|t| t.variant),
            Ok(TokenVariant::Legacy)
        );
    }

    #[test]
    fn connection_ids() {
        let destination = "test.peerB.NjXD0uJPBuGz56SBmI3uX6h-";
        assert_eq!(connection_id(destination), sha256(destination.as_bytes()));
        assert_eq!(
            connection_id_hex(destination),
            hex::encode(sha256(destination.as_bytes()))
        );
    }
}
