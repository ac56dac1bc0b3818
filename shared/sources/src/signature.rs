//! Webhook signature verification: pure functions over the raw body bytes,
//! constant-time comparisons, several secrets accepted (rotation).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::config::Secret;
use crate::delivery::Rejection;

/// `base64(HMAC-SHA256(secret, body))` as Shopify sends in
/// `X-Shopify-Hmac-Sha256`, checked against each secret in turn.
pub fn verify_base64_sha256(body: &[u8], signature: &str, secrets: &[Secret]) -> Result<(), Rejection> {
    let expected = STANDARD.decode(signature.trim()).map_err(|_| Rejection::BadSignature)?;
    if expected.len() != 32 {
        return Err(Rejection::BadSignature);
    }
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose()).map_err(|_| Rejection::BadSignature)?;
        mac.update(body);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(Rejection::BadSignature)
}

/// WooCommerce: the same formula with the secret's HTML entities decoded
/// first (`wp_specialchars_decode($secret, ENT_QUOTES)`).
pub fn verify_woocommerce(body: &[u8], signature: &str, secrets: &[Secret]) -> Result<(), Rejection> {
    let decoded: Vec<Secret> = secrets.iter().map(|s| Secret::new(decode_entities(s.expose()))).collect();
    verify_base64_sha256(body, signature, &decoded)
}

/// Segment's webhook destination: `X-Signature` = hex(HMAC-SHA1(secret, body)).
pub fn verify_hex_sha1(body: &[u8], signature: &str, secrets: &[Secret]) -> Result<(), Rejection> {
    let expected = decode_hex(signature.trim()).ok_or(Rejection::BadSignature)?;
    if expected.len() != 20 {
        return Err(Rejection::BadSignature);
    }
    for secret in secrets {
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose()).map_err(|_| Rejection::BadSignature)?;
        mac.update(body);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(Rejection::BadSignature)
}

/// Computes a Shopify / WooCommerce style signature (for tests, samples and
/// the demo's signed deliveries).
pub fn sign_base64_sha256(body: &[u8], secret: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Computes a Segment webhook signature (hex HMAC-SHA1).
pub fn sign_hex_sha1(body: &[u8], secret: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The entities `wp_specialchars_decode(…, ENT_QUOTES)` turns back into
/// characters.
fn decode_entities(secret: &[u8]) -> Vec<u8> {
    const ENTITIES: [(&[u8], u8); 7] = [
        (b"&amp;", b'&'),
        (b"&lt;", b'<'),
        (b"&gt;", b'>'),
        (b"&quot;", b'"'),
        (b"&#039;", b'\''),
        (b"&#39;", b'\''),
        (b"&#x27;", b'\''),
    ];
    let mut out = Vec::with_capacity(secret.len());
    let mut i = 0;
    'scan: while i < secret.len() {
        for (entity, ch) in ENTITIES {
            if secret[i..].starts_with(entity) {
                out.push(ch);
                i += entity.len();
                continue 'scan;
            }
        }
        out.push(secret[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secrets(s: &[&str]) -> Vec<Secret> {
        s.iter().map(|s| Secret::new(s.as_bytes().to_vec())).collect()
    }

    #[test]
    fn shopify_signature_matches_a_known_vector() {
        // Computed independently: base64(hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", sha256).digest())
        let sig = sign_base64_sha256(b"The quick brown fox jumps over the lazy dog", b"key");
        assert_eq!(sig, "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
    }

    #[test]
    fn a_correct_signature_verifies() {
        let sig = sign_base64_sha256(b"{}", b"s1");
        assert_eq!(verify_base64_sha256(b"{}", &sig, &secrets(&["s1"])), Ok(()));
    }

    #[test]
    fn any_of_several_secrets_verifies_during_rotation() {
        let sig = sign_base64_sha256(b"{}", b"new");
        assert_eq!(verify_base64_sha256(b"{}", &sig, &secrets(&["old", "new"])), Ok(()));
    }

    #[test]
    fn a_wrong_secret_is_rejected() {
        let sig = sign_base64_sha256(b"{}", b"other");
        assert_eq!(verify_base64_sha256(b"{}", &sig, &secrets(&["s1"])), Err(Rejection::BadSignature));
    }

    #[test]
    fn a_changed_body_is_rejected() {
        let sig = sign_base64_sha256(b"{\"a\":1}", b"s1");
        assert_eq!(verify_base64_sha256(b"{\"a\":2}", &sig, &secrets(&["s1"])), Err(Rejection::BadSignature));
    }

    #[test]
    fn an_empty_body_with_the_original_signature_is_rejected() {
        let sig = sign_base64_sha256(b"{\"a\":1}", b"s1");
        assert_eq!(verify_base64_sha256(b"", &sig, &secrets(&["s1"])), Err(Rejection::BadSignature));
    }

    #[test]
    fn a_signature_that_is_not_base64_or_has_the_wrong_length_is_rejected() {
        for sig in ["", "not base64!", "AAAA", &STANDARD.encode([0u8; 31])] {
            assert_eq!(verify_base64_sha256(b"{}", sig, &secrets(&["s1"])), Err(Rejection::BadSignature), "{sig:?}");
        }
    }

    #[test]
    fn no_configured_secret_verifies_nothing() {
        let sig = sign_base64_sha256(b"{}", b"");
        assert_eq!(verify_base64_sha256(b"{}", &sig, &[]), Err(Rejection::BadSignature));
    }

    #[test]
    fn woocommerce_secrets_are_entity_decoded_before_use() {
        let sig = sign_base64_sha256(b"{}", b"a&b<c>'\"");
        assert_eq!(verify_woocommerce(b"{}", &sig, &secrets(&["a&amp;b&lt;c&gt;&#039;&quot;"])), Ok(()));
        assert_eq!(
            verify_base64_sha256(b"{}", &sig, &secrets(&["a&amp;b&lt;c&gt;&#039;&quot;"])),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn segment_webhook_signature_is_hex_hmac_sha1() {
        // Computed independently: hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", sha1).hexdigest()
        let sig = sign_hex_sha1(b"The quick brown fox jumps over the lazy dog", b"key");
        assert_eq!(sig, "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9");
        assert_eq!(verify_hex_sha1(b"The quick brown fox jumps over the lazy dog", &sig, &secrets(&["key"])), Ok(()));
        assert_eq!(verify_hex_sha1(b"x", &sig, &secrets(&["key"])), Err(Rejection::BadSignature));
        assert_eq!(verify_hex_sha1(b"x", "zz", &secrets(&["key"])), Err(Rejection::BadSignature));
    }

    proptest! {
        #[test]
        fn verify_of_sign_holds_and_any_single_bit_flip_fails(body in proptest::collection::vec(any::<u8>(), 0..512), bit in any::<proptest::sample::Index>()) {
            let keys = secrets(&["prop-secret"]);
            let sig = sign_base64_sha256(&body, b"prop-secret");
            prop_assert_eq!(verify_base64_sha256(&body, &sig, &keys), Ok(()));
            // Flip one bit of the body, or of the signature when the body is empty.
            if body.is_empty() {
                let mut raw = STANDARD.decode(&sig).unwrap();
                let i = bit.index(raw.len() * 8);
                raw[i / 8] ^= 1 << (i % 8);
                prop_assert_eq!(verify_base64_sha256(&body, &STANDARD.encode(raw), &keys), Err(Rejection::BadSignature));
            } else {
                let mut flipped = body.clone();
                let i = bit.index(flipped.len() * 8);
                flipped[i / 8] ^= 1 << (i % 8);
                prop_assert_eq!(verify_base64_sha256(&flipped, &sig, &keys), Err(Rejection::BadSignature));
            }
        }

        #[test]
        fn segment_verify_of_sign_holds_and_a_bit_flip_fails(body in proptest::collection::vec(any::<u8>(), 1..512), bit in any::<proptest::sample::Index>()) {
            let keys = secrets(&["k"]);
            let sig = sign_hex_sha1(&body, b"k");
            prop_assert_eq!(verify_hex_sha1(&body, &sig, &keys), Ok(()));
            let mut flipped = body.clone();
            let i = bit.index(flipped.len() * 8);
            flipped[i / 8] ^= 1 << (i % 8);
            prop_assert_eq!(verify_hex_sha1(&flipped, &sig, &keys), Err(Rejection::BadSignature));
        }
    }
}
