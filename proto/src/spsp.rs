//! SPSP (RFC 0009) as data: the answer a receiver gives, and the base64 both
//! alphabets of which senders and receivers use for secrets and receipt headers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use thiserror::Error;

/// An SPSP answer that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct AnswerError(pub String);

/// Standard or URL-safe base64, padded or not, of exactly `N` bytes.
pub fn decode_exact<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let trimmed: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| *b != b'=')
        .map(|b| match b {
            b'+' => b'-',
            b'/' => b'_',
            other => other,
        })
        .collect();
    let bytes = URL_SAFE_NO_PAD.decode(trimmed).ok()?;
    bytes.try_into().ok()
}

/// Reads an SPSP answer: the destination and the 32-byte shared secret, in
/// either base64 alphabet, padded or not; unknown fields are ignored.
pub fn parse_answer(body: &[u8]) -> Result<(String, Vec<u8>), AnswerError> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| AnswerError(e.to_string()))?;
    let destination = answer["destination_account"]
        .as_str()
        .ok_or_else(|| AnswerError("no destination_account".into()))?;
    let secret = answer["shared_secret"]
        .as_str()
        .and_then(|text| decode_exact::<32>(text.as_bytes()))
        .ok_or_else(|| AnswerError("shared_secret is not 32 bytes of base64".into()))?;
    Ok((destination.to_owned(), secret.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::{decode_exact, parse_answer, AnswerError};

    #[test]
    fn answers_are_read_in_either_alphabet_and_checked() {
        let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let body =
            format!(r#"{{"destination_account":"g.x.y","shared_secret":"{secret}","extra":1}}"#);
        let (destination, bytes) = parse_answer(body.as_bytes()).expect("valid");
        assert_eq!((destination.as_str(), bytes[31]), ("g.x.y", 31));
        assert!(matches!(
            parse_answer(br#"{"destination_account":"g.x","shared_secret":"AAAA"}"#),
            Err(AnswerError(_))
        ));
    }

    #[test]
    fn receipt_headers_decode_in_either_alphabet() {
        let standard = b"+/+/+/+/+/+/+/+/+/+/+w==";
        let url_safe = b"-_-_-_-_-_-_-_-_-_-_-w";
        assert_eq!(decode_exact::<16>(standard), decode_exact::<16>(url_safe));
        assert!(decode_exact::<16>(standard).is_some());
        assert_eq!(decode_exact::<32>(standard), None);
        assert_eq!(decode_exact::<16>(b"not base64!"), None);
    }
}
