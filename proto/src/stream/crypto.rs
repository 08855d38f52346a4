//! STREAM cryptography (RFC 0029 §5.5-5.6) with ring.
//!
//! * `encryption_key = HMAC-SHA256(shared_secret, "ilp_stream_encryption")`, used for
//!   AES-256-GCM with no AAD. The ILP data field is `IV (12) || tag (16) ||
//!   ciphertext`: the tag comes first, unlike ring's `ciphertext || tag`, so the
//!   tag is handled separately rather than appended.
//! * `fulfillment_key = HMAC-SHA256(shared_secret, "ilp_stream_fulfillment")`;
//!   `fulfillment = HMAC-SHA256(fulfillment_key, whole encrypted data)`, IV and tag
//!   included; `condition = SHA-256(fulfillment)`.
//!
//! [`StreamKeys`] derives both keys once per shared secret, so per-packet work is
//! one AES-GCM pass and one HMAC, into buffers the caller reuses. IVs come from the
//! caller: this module has no randomness of its own.

use super::packet::StreamPacketBuilder;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::{digest, hmac};
use thiserror::Error;

pub const IV_SIZE: usize = NONCE_LEN;
pub const TAG_SIZE: usize = 16;
/// Bytes encryption adds to a plaintext.
pub const ENCRYPTION_OVERHEAD: usize = IV_SIZE + TAG_SIZE;

const ENCRYPTION_KEY_STRING: &[u8] = b"ilp_stream_encryption";
const FULFILLMENT_KEY_STRING: &[u8] = b"ilp_stream_fulfillment";

/// Why encrypted data does not decrypt. Both mean F06 (or F02) to a receiver; the
/// distinction is for logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("encrypted data is {0} bytes, shorter than IV and tag")]
    TooShort(usize),
    #[error("decryption failed: wrong key or altered data")]
    Authentication,
}

/// HMAC-SHA256 with a one-off key. Per-packet code uses keys prepared once instead.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac_sign(&key, message)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    array32(digest::digest(&digest::SHA256, bytes).as_ref())
}

pub(crate) fn hmac_sign(key: &hmac::Key, message: &[u8]) -> [u8; 32] {
    array32(hmac::sign(key, message).as_ref())
}

/// Copies a SHA-256 output (always 32 bytes) into an array without a panic path.
fn array32(bytes: &[u8]) -> [u8; 32] {
    debug_assert_eq!(bytes.len(), 32);
    let mut out = [0u8; 32];
    for (slot, byte) in out.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    out
}

/// The keys of one STREAM connection, derived once from its shared secret.
#[derive(Clone)]
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

    /// Appends `IV || tag || ciphertext` of `plaintext` to `out`. The IV must never
    /// repeat under one key: callers pass 12 random bytes.
    ///
    /// # Panics
    /// Only if the plaintext is over AES-GCM's limit of about 64 GiB; STREAM data is
    /// at most 32739 bytes.
    pub fn encrypt_into(&self, iv: [u8; IV_SIZE], plaintext: &[u8], out: &mut Vec<u8>) {
        out.reserve(ENCRYPTION_OVERHEAD + plaintext.len());
        seal_with(&self.encryption, iv, out, |buffer| {
            buffer.extend_from_slice(plaintext)
        });
    }

    /// Encodes `packet` straight into `out` and encrypts it there, so a reply needs
    /// no separate plaintext buffer. Appends `IV || tag || ciphertext`.
    ///
    /// # Panics
    /// As [`StreamKeys::encrypt_into`].
    pub fn encrypt_packet(
        &self,
        iv: [u8; IV_SIZE],
        packet: &StreamPacketBuilder<'_, '_>,
        out: &mut Vec<u8>,
    ) {
        out.reserve(ENCRYPTION_OVERHEAD + packet.encoded_size());
        seal_with(&self.encryption, iv, out, |buffer| packet.write_to(buffer));
    }

    /// Replaces the contents of `out` with the plaintext of `data`. On failure `out`
    /// is left empty. Reusing one `out` across packets avoids any allocation.
    pub fn decrypt_into(&self, data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let sealed = Sealed::split(data)?;
        out.clear();
        out.extend_from_slice(sealed.ciphertext);
        let opened = sealed.open_in_place(&self.encryption, out);
        if opened.is_err() {
            out.clear();
        }
        opened
    }

    /// HMAC over the whole encrypted data field, IV and tag included.
    pub fn fulfillment(&self, encrypted_data: &[u8]) -> [u8; 32] {
        hmac_sign(&self.fulfillment, encrypted_data)
    }

    /// SHA-256 of the fulfillment: what the sender put in the Prepare.
    pub fn condition(&self, encrypted_data: &[u8]) -> [u8; 32] {
        sha256(&self.fulfillment(encrypted_data))
    }

    /// The fulfillment when it hashes to `execution_condition`, else `None` (an
    /// unfulfillable packet, such as a rate probe with a random condition).
    pub fn fulfillment_for(
        &self,
        encrypted_data: &[u8],
        execution_condition: &[u8; 32],
    ) -> Option<[u8; 32]> {
        let fulfillment = self.fulfillment(encrypted_data);
        // The condition is public, so a plain comparison leaks nothing.
        (sha256(&fulfillment) == *execution_condition).then_some(fulfillment)
    }
}

pub(crate) fn aes_key(key: &[u8; 32]) -> LessSafeKey {
    // ring refuses only keys of the wrong length, and this one is 32 bytes by type.
    let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key");
    LessSafeKey::new(key)
}

/// Appends `iv`, room for the tag, then whatever `write_plaintext` appends, and
/// encrypts that plaintext in place.
pub(crate) fn seal_with(
    key: &LessSafeKey,
    iv: [u8; IV_SIZE],
    out: &mut Vec<u8>,
    write_plaintext: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    out.extend_from_slice(&iv);
    out.extend_from_slice(&[0u8; TAG_SIZE]);
    write_plaintext(out);
    let tag_start = start + IV_SIZE;
    let body_start = start + ENCRYPTION_OVERHEAD;
    debug_assert!(out.len() >= body_start, "the plaintext writer only appends");
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::empty(),
            &mut out[body_start..],
        )
        .expect("AES-GCM seals anything under 64 GiB");
    out[tag_start..body_start].copy_from_slice(tag.as_ref());
}

/// Encrypted data split into its parts, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sealed<'a> {
    iv: &'a [u8; IV_SIZE],
    tag: &'a [u8; TAG_SIZE],
    pub(crate) ciphertext: &'a [u8],
}

impl<'a> Sealed<'a> {
    pub(crate) fn split(data: &'a [u8]) -> Result<Sealed<'a>, CryptoError> {
        let too_short = CryptoError::TooShort(data.len());
        let (iv, rest) = data.split_first_chunk::<IV_SIZE>().ok_or(too_short)?;
        let (tag, ciphertext) = rest.split_first_chunk::<TAG_SIZE>().ok_or(too_short)?;
        Ok(Sealed {
            iv,
            tag,
            ciphertext,
        })
    }

    /// Decrypts `buffer`, which holds a copy of the ciphertext, in place. On failure
    /// the buffer's contents are unspecified.
    pub(crate) fn open_in_place(
        &self,
        key: &LessSafeKey,
        buffer: &mut [u8],
    ) -> Result<(), CryptoError> {
        let nonce = Nonce::assume_unique_for_key(*self.iv);
        key.open_in_place_separate_tag(nonce, Aad::empty(), Tag::from(*self.tag), buffer, 0..)
            .map(|_| ())
            .map_err(|_| CryptoError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::frame::Frame;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    fn bytes(text: &str) -> Vec<u8> {
        hex::decode(text.replace(' ', "")).expect("test hex")
    }

    /// ilp-protocol-stream `test/crypto.spec.ts`.
    #[test]
    fn key_derivation_vector_foo() {
        let derive = |message: &[u8]| STANDARD.encode(hmac_sha256(b"foo", message));
        assert_eq!(
            derive(ENCRYPTION_KEY_STRING),
            "zfOGMU/uY+EOUCE6tN3WhE77bF/N6pS0wSOmMgEAMEA="
        );
        assert_eq!(
            derive(FULFILLMENT_KEY_STRING),
            "lh8nGJCJosvfUePaU0uxxXK3jNvV2Y+5ivt1GH1Muhs="
        );
        let zero_key = STANDARD.encode(hmac_sha256(&[0u8; 32], b"foo"));
        assert_eq!(zero_key, "DA2Y9+PZ1F5y6Id7wbEEMn77nAexjy/+ztdtgTB/H/8=");
    }

    /// ilp-protocol-stream `test/crypto.spec.ts`: a raw AES key, not a shared secret.
    #[test]
    fn aes_gcm_decrypt_vector_foo_bar() {
        let key_bytes = bytes("00e4adca806fa0af7f38585d99fd93cd046b26c0a4c47fdc8f8f586bb4453847");
        let key = aes_key(&key_bytes.try_into().expect("32 bytes"));
        let data = bytes("6355225e90c0d46c00bfe87de4212febb3b8f4c380250ae760440cace16c6efeabae51");
        let sealed = Sealed::split(&data).expect("long enough");
        let mut buffer = sealed.ciphertext.to_vec();
        sealed.open_in_place(&key, &mut buffer).expect("authentic");
        assert_eq!(buffer, b"foo bar");
    }

    /// interledger-rs `crates/interledger-stream/src/crypto.rs`; the condition is
    /// DERIVED in the reference.
    #[test]
    fn interledger_rs_encrypt_and_fulfillment_vector() {
        let secret = bytes("7edb755d76f8f9d314d3416eed50fdb35192e543e7315c7ffee6906667a69624");
        let encryption_key = hmac_sha256(&secret, ENCRYPTION_KEY_STRING);
        let fulfillment_key = hmac_sha256(&secret, FULFILLMENT_KEY_STRING);
        assert_eq!(
            hex::encode(encryption_key),
            "3f8f12c9f2be99d32bd615fdf212e96f47911242556f4f32c75241ba1149cc57"
        );
        assert_eq!(
            hex::encode(fulfillment_key),
            "aa044d1508fde0fbff6956f1daf210235dc396810be76ad27bab497f5707f31d"
        );
        let keys = StreamKeys::new(&secret);
        let iv = bytes("77f8d5ea3fc8e08cd4de699f")
            .try_into()
            .expect("12 bytes");
        let mut encrypted = vec![0xaa];
        keys.encrypt_into(iv, &bytes("63000cff4d1f"), &mut encrypted);
        let expected =
            bytes("77f8d5ea3fc8e08cd4de699f f6cb429b97ac44184ce85a0aed92bd49 f8c4b16c73df");
        assert_eq!(encrypted[0], 0xaa, "encrypt_into appends");
        let encrypted = &encrypted[1..];
        assert_eq!(encrypted, expected);
        let fulfillment = keys.fulfillment(encrypted);
        assert_eq!(
            hex::encode(fulfillment),
            "18063849e5ec58e3527098319849b6b7c607e97c77410d44366c78c13be26b27"
        );
        let condition = keys.condition(encrypted);
        assert_eq!(
            hex::encode(condition),
            "8c1e5999a50fbe1afb92f0a39485cac876f45b5499c8fb8268aa14e5b50b90bb"
        );
        assert_eq!(
            keys.fulfillment_for(encrypted, &condition),
            Some(fulfillment)
        );
        assert_eq!(keys.fulfillment_for(encrypted, &fulfillment), None);
        let mut decrypted = vec![1, 2, 3];
        keys.decrypt_into(encrypted, &mut decrypted)
            .expect("authentic");
        assert_eq!(decrypted, bytes("63000cff4d1f"));
    }

    #[test]
    fn any_altered_byte_fails_and_leaves_the_output_empty() {
        let keys = StreamKeys::new(b"secret");
        let mut data = Vec::new();
        keys.encrypt_into([1; IV_SIZE], b"some plaintext", &mut data);
        let mut out = Vec::new();
        for index in 0..data.len() {
            let mut altered = data.clone();
            altered[index] ^= 0x01;
            out.extend_from_slice(b"stale");
            assert_eq!(
                keys.decrypt_into(&altered, &mut out),
                Err(CryptoError::Authentication),
                "{index}"
            );
            assert!(out.is_empty());
        }
        let other = StreamKeys::new(b"other secret");
        assert_eq!(
            other.decrypt_into(&data, &mut out),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            keys.decrypt_into(&data[..27], &mut out),
            Err(CryptoError::TooShort(27))
        );
        keys.decrypt_into(&data, &mut out).expect("authentic");
        assert_eq!(out, b"some plaintext");
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let keys = StreamKeys::new(&[]);
        let mut data = Vec::new();
        keys.encrypt_into([0; IV_SIZE], b"", &mut data);
        assert_eq!(data.len(), ENCRYPTION_OVERHEAD);
        let mut out = vec![9];
        keys.decrypt_into(&data, &mut out).expect("authentic");
        assert!(out.is_empty());
    }

    #[test]
    fn encrypt_packet_equals_encode_then_encrypt() {
        let keys = StreamKeys::new(&[4; 32]);
        let frames = [
            Frame::StreamMoney {
                stream_id: 1,
                shares: 1,
            },
            Frame::ConnectionNewAddress {
                source_account: "g.sender",
            },
        ];
        let packet = StreamPacketBuilder {
            ilp_packet_type: 14,
            sequence: 9,
            prepare_amount: 5,
            frames: &frames,
        };
        let mut direct = vec![7];
        keys.encrypt_packet([3; IV_SIZE], &packet, &mut direct);
        let mut two_steps = vec![7];
        keys.encrypt_into([3; IV_SIZE], &packet.to_bytes(), &mut two_steps);
        assert_eq!(direct, two_steps);
    }
}
