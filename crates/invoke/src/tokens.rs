//! Function tokens: the credential every function version gets (`GUREUM_FUNCTION_TOKEN`)
//! to call the platform API and the services. A token names its function and version and
//! carries an HMAC-SHA256 of both under a per-installation key, so any node holding the
//! key can check it without a store lookup, and a function cannot mint another's token.
//! Whether the version may still use it (live, or retired within a grace) and what it may
//! do (`[permissions]`) is the registry's answer, not the token's: see
//! [`crate::Invoker::function_identity`].

use gureum_model::VersionNumber;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Where the installation's key lives in the store's settings (shared by every node).
pub const TOKEN_KEY_SETTING: &str = "function_token_key";

/// Bytes of the MAC kept in a token (160 bits).
const MAC_BYTES: usize = 20;
const PREFIX: &str = "gft.";

/// Mints and checks function tokens.
#[derive(Clone)]
pub struct FunctionTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for FunctionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FunctionTokens(..)")
    }
}

impl FunctionTokens {
    /// Tokens under `key` (any length; the installation's is 32 random bytes, hex).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// A fresh random key, hex-encoded, for [`TOKEN_KEY_SETTING`].
    pub fn generate_key() -> String {
        let bytes: [u8; 32] = rand::random();
        hex::encode(bytes)
    }

    fn mac(&self, function: &str, version: VersionNumber) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        // A function name has no '.', so NAME.VERSION is unambiguous.
        mac.update(format!("{function}.{version}").as_bytes());
        mac
    }

    /// `gft.NAME.VERSION.MAC`: no `/` or `:`, so it also fits an AWS access key id.
    pub fn token_for(&self, function: &str, version: VersionNumber) -> String {
        let tag = self.mac(function, version).finalize().into_bytes();
        format!(
            "{PREFIX}{function}.{version}.{}",
            hex::encode(&tag[..MAC_BYTES])
        )
    }

    /// The function and version a token was minted for, if this installation minted it.
    pub fn verify(&self, token: &str) -> Option<(String, VersionNumber)> {
        let rest = token.strip_prefix(PREFIX)?;
        let (named, tag) = rest.rsplit_once('.')?;
        let (function, version) = named.rsplit_once('.')?;
        let version: VersionNumber = version.parse().ok()?;
        let tag = hex::decode(tag).ok()?;
        if tag.len() != MAC_BYTES {
            return None;
        }
        // Constant-time comparison of the truncated MAC.
        self.mac(function, version)
            .verify_truncated_left(&tag)
            .ok()
            .map(|()| (function.to_string(), version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_as_its_function_and_version_only() {
        let tokens = FunctionTokens::new(b"key");
        let token = tokens.token_for("chat", 3);
        assert!(token.starts_with("gft.chat.3."));
        assert_eq!(tokens.verify(&token), Some(("chat".to_string(), 3)));
        // Another function's name or another version with chat 3's MAC, a changed MAC,
        // another key, the old unversioned shape.
        let forged = token.replace("gft.chat.", "gft.other.");
        assert_eq!(tokens.verify(&forged), None);
        let forged = token.replace("gft.chat.3.", "gft.chat.4.");
        assert_eq!(tokens.verify(&forged), None);
        let old_shape = token.replace("gft.chat.3.", "gft.chat.");
        assert_eq!(tokens.verify(&old_shape), None);
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(tokens.verify(&flipped), None);
        assert_eq!(FunctionTokens::new(b"other key").verify(&token), None);
        assert_eq!(tokens.verify("Bearer nonsense"), None);
        assert_eq!(tokens.verify("gft.chat.zz"), None);
    }
}
