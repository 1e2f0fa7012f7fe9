//! Refresh tokens: opaque random strings handed to the client once; the store keeps only
//! their SHA-256, so a leaked database does not leak usable tokens. A rotated token's
//! successor is derived from it with HMAC under the installation's `refresh_successor_key`
//! setting, so two requests rotating one token at once (two tabs) get the same successor.
//! Rotation, the reuse window (`--refresh-reuse-interval`, 10 s by default) and reuse
//! detection are one store transaction (`gureum_store`'s `users`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of every refresh token (recognisable in logs and secret scanners).
pub const REFRESH_TOKEN_PREFIX: &str = "grt_";
/// Random bytes in a refresh token.
pub const REFRESH_TOKEN_BYTES: usize = 32;
/// Length of a refresh token: the prefix and 43 base64url characters.
pub const REFRESH_TOKEN_LEN: usize = REFRESH_TOKEN_PREFIX.len() + 43;

/// A new refresh token `grt_<43 base64url chars of 32 random bytes>` and its hash
/// ([`hash_refresh_token`]). Give the token to the client; store only the hash.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// The token that replaces `token` when it is rotated, and its hash: derived from it
/// with the installation's `key` (HMAC-SHA256), so that two requests rotating the same
/// token at once (two tabs) are given the same successor, while nobody without the key
/// can tell a successor from a random token.
pub fn successor_token(key: &[u8], token: &str) -> (String, String) {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(token.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let successor = format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_refresh_token(&successor);
    (successor, hash)
}

/// The lowercase hex SHA-256 of the whole token (prefix included): the value the store
/// keeps and looks tokens up by.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` has the shape of a refresh token (a cheap check before a store lookup).
pub fn looks_like_refresh_token(token: &str) -> bool {
    token.len() == REFRESH_TOKEN_LEN
        && token
            .strip_prefix(REFRESH_TOKEN_PREFIX)
            .is_some_and(|rest| {
                rest.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_hash() {
        let (token, hash) = new_refresh_token();
        assert!(token.starts_with("grt_"), "{token}");
        assert_eq!(token.len(), 4 + 43);
        assert!(looks_like_refresh_token(&token));
        let raw = URL_SAFE_NO_PAD.decode(&token[4..]).unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(hash.len(), 64);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(hash, hash_refresh_token(&token));
        assert!(!hash.contains(&token[4..]));
    }

    #[test]
    fn tokens_are_unique() {
        let (a, ha) = new_refresh_token();
        let (b, hb) = new_refresh_token();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
    }

    #[test]
    fn known_hash() {
        // sha256("abc")
        assert_eq!(
            hash_refresh_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn shape_check() {
        assert!(!looks_like_refresh_token(""));
        assert!(!looks_like_refresh_token("grt_short"));
        assert!(!looks_like_refresh_token(&format!(
            "xyz_{}",
            "a".repeat(43)
        )));
        assert!(!looks_like_refresh_token(&format!(
            "grt_{}",
            "+".repeat(43)
        )));
        assert!(looks_like_refresh_token(&format!("grt_{}", "a".repeat(43))));
    }
}
