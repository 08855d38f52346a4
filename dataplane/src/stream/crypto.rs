//! STREAM cryptography (RFC 0029 §5.5-5.6): AES-256-GCM with the wire layout
//! IV (12) || tag (16) || ciphertext, and the HMAC-SHA256 fulfillment. Keys are
//! derived once per shared secret ([`StreamKeys::new`]), never per packet.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use thiserror::Error;

pub const IV_SIZE: usize = NONCE_LEN;
pub const TAG_SIZE: usize = 16;
/// Bytes encryption adds to a plaintext.
pub const ENCRYPTION_OVERHEAD: usize = IV_SIZE + TAG_SIZE;

const ENCRYPTION_KEY_STRING: &[u8] = b"ilp_stream_encryption";
const FULFILLMENT_KEY_STRING: &[u8] = b"ilp_stream_fulfillment";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("encrypted data is {0} bytes, shorter than IV and tag")]
    TooShort(usize),
    #[error("decryption failed: wrong key or altered data")]
    Authentication,
}

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, message);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The keys of one STREAM connection, ready to use.
pub struct StreamKeys {
    encryption: LessSafeKey,
    fulfillment: hmac::Key,
}

impl std::fmt::Debug for StreamKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamKeys(..)")
    }
}

impl StreamKeys {
    pub fn new(shared_secret: &[u8]) -> StreamKeys {
        let encryption_key = hmac_sha256(shared_secret, ENCRYPTION_KEY_STRING);
        let fulfillment_key = hmac_sha256(shared_secret, FULFILLMENT_KEY_STRING);
        StreamKeys {
            encryption: aes_key(&encryption_key),
            fulfillment: hmac::Key::new(hmac::HMAC_SHA256, &fulfillment_key),
        }
    }

    /// Appends IV || tag || ciphertext of `plaintext` to `out`. The IV must never
    /// repeat under one key: callers pass 12 random bytes.
    pub fn encrypt_into(&self, iv: [u8; IV_SIZE], plaintext: &[u8], out: &mut Vec<u8>) {
        seal(&self.encryption, iv, plaintext, out);
    }

    /// Replaces the contents of `out` with the plaintext of `data`.
    pub fn decrypt_into(&self, data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        open(&self.encryption, data, out)
    }

    /// HMAC over the whole encrypted data field, IV and tag included.
    pub fn fulfillment(&self, encrypted_data: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.fulfillment, encrypted_data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// SHA-256 of the fulfillment.
    pub fn condition(&self, encrypted_data: &[u8]) -> [u8; 32] {
        sha256(&self.fulfillment(encrypted_data))
    }
}

pub(crate) fn aes_key(key: &[u8; 32]) -> LessSafeKey {
    // A 32-byte key is exactly what AES-256 takes, so this cannot fail.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

pub(crate) fn seal(key: &LessSafeKey, iv: [u8; IV_SIZE], plaintext: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(ENCRYPTION_OVERHEAD + plaintext.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&[0u8; TAG_SIZE]);
    out.extend_from_slice(plaintext);
    let body_start = start + ENCRYPTION_OVERHEAD;
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::empty(),
            &mut out[body_start..],
        )
        .expect("AES-GCM seals any plaintext under 64 GiB");
    out[start + IV_SIZE..body_start].copy_from_slice(tag.as_ref());
}

pub(crate) fn open(key: &LessSafeKey, data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
    if data.len() < ENCRYPTION_OVERHEAD {
        return Err(CryptoError::TooShort(data.len()));
    }
    let mut iv = [0u8; IV_SIZE];
    iv.copy_from_slice(&data[..IV_SIZE]);
    let (tag, ciphertext) = data[IV_SIZE..].split_at(TAG_SIZE);
    // ring opens ciphertext || tag in place: lay it out that way in `out`.
    out.clear();
    out.extend_from_slice(ciphertext);
    out.extend_from_slice(tag);
    let plaintext_size = key
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::empty(), out)
        .map_err(|_| CryptoError::Authentication)?
        .len();
    out.truncate(plaintext_size);
    Ok(())
}
