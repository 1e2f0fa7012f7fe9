//! Access tokens: JWTs signed with EdDSA (Ed25519), verified with the algorithm pinned to
//! EdDSA, and the public key published as a JWKS (RFC 8037 OKP key).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{AuthError, TokenError};

/// The `iss` of every access token.
pub const ISSUER: &str = "gureum";
/// The `aud` of every access token.
pub const AUDIENCE: &str = "gureum";
/// The `role` of an end user's token.
pub const ROLE_USER: &str = "user";
/// Lifetime of an access token (the session's `expires_in`).
pub const ACCESS_TOKEN_TTL_SECS: u64 = 900;
/// Clock skew tolerated on `exp`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// The claims of an access token. `iat` and `exp` are unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's (normalised) email address.
    pub email: String,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Expires at, unix seconds.
    pub exp: u64,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// [`ROLE_USER`] for end users.
    pub role: String,
    /// Any other claims. Names of the fields above are ignored here when signing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Claims {
    /// Claims for an end user's access token issued at `now` (unix seconds), valid for
    /// [`ACCESS_TOKEN_TTL_SECS`].
    pub fn new(sub: impl Into<String>, email: impl Into<String>, now: u64) -> Claims {
        Claims {
            sub: sub.into(),
            email: email.into(),
            iat: now,
            exp: now + ACCESS_TOKEN_TTL_SECS,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            role: ROLE_USER.to_owned(),
            extra: Map::new(),
        }
    }

    /// The payload as signed: `extra`, then the named fields over it (so `extra` can never
    /// override `sub`, `exp`, `role`, …).
    fn to_payload(&self) -> Map<String, Value> {
        let mut map = self.extra.clone();
        map.insert("sub".into(), self.sub.clone().into());
        map.insert("email".into(), self.email.clone().into());
        map.insert("iat".into(), self.iat.into());
        map.insert("exp".into(), self.exp.into());
        map.insert("iss".into(), self.iss.clone().into());
        map.insert("aud".into(), self.aud.clone().into());
        map.insert("role".into(), self.role.clone().into());
        map
    }
}

/// The Ed25519 key that signs and verifies access tokens. Built from a PKCS#8 DER document
/// (keep that document secret and stable: a new key invalidates every issued token).
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: [u8; 32],
    kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key, and its PKCS#8 (v2) DER document to persist.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn generate() -> (SigningKey, Vec<u8>) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("operating system random number generator failed")
            .as_ref()
            .to_vec();
        let key = SigningKey::from_pkcs8(&pkcs8).expect("ring's own PKCS#8 document parses");
        (key, pkcs8)
    }

    /// The key from a PKCS#8 DER document: v2 as made by [`SigningKey::generate`] (the
    /// embedded public key is checked), or v1 as made by `openssl genpkey -algorithm ED25519`.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, AuthError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| AuthError::InvalidKey(e.to_string()))?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| AuthError::InvalidKey("public key is not 32 bytes".into()))?;
        let digest = Sha256::digest(public);
        let kid = hex::encode(&digest[..8]);
        Ok(SigningKey {
            encoding: EncodingKey::from_ed_der(der),
            decoding: DecodingKey::from_ed_der(&public),
            public,
            kid,
        })
    }

    /// The key id: the first 16 hex digits of the SHA-256 of the raw public key. Set as
    /// `kid` in every token header and in the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// Signs `claims` into a compact JWT (`alg: EdDSA`, `typ: JWT`, `kid`).
    ///
    /// # Panics
    /// Never in practice: the key was checked when it was built and a JSON map always
    /// serialises.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims.to_payload(), &self.encoding)
            .expect("signing with a checked Ed25519 key")
    }

    /// Verifies a compact JWT made by [`SigningKey::sign`] at `now` (unix seconds): the
    /// signature with the algorithm pinned to EdDSA (`none`, HS256 and every other `alg` are
    /// refused), `iss` and `aud` equal to `gureum`, and `exp` not more than
    /// [`LEEWAY_SECS`] in the past.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        // exp is checked below against the caller's clock, not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| map_error(e.kind()))?;
        let claims = data.claims;
        if claims.exp.saturating_add(LEEWAY_SECS) < now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The public key as a JSON Web Key Set (RFC 7517) holding one RFC 8037 OKP key, served
    /// at `/auth/v1/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(self.public),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }]
        })
    }
}

fn map_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenError::BadSignature,
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongIssuerOrAudience,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_760_000_000;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn claims() -> Claims {
        let mut c = Claims::new("u_123", "alice@example.com", NOW);
        c.extra.insert("tier".into(), "pro".into());
        c
    }

    #[test]
    fn sign_then_verify() {
        let (key, _) = SigningKey::generate();
        let token = key.sign(&claims());
        assert_eq!(token.split('.').count(), 3);
        let got = key.verify(&token, NOW + 10).unwrap();
        assert_eq!(got, claims());
        assert_eq!(got.iss, "gureum");
        assert_eq!(got.aud, "gureum");
        assert_eq!(got.role, "user");
        assert_eq!(got.exp, NOW + 900);
        assert_eq!(got.extra.get("tier"), Some(&Value::from("pro")));

        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], key.kid());
    }

    #[test]
    fn extra_cannot_override_named_claims() {
        let (key, _) = SigningKey::generate();
        let mut c = claims();
        c.extra.insert("role".into(), "admin".into());
        c.extra.insert("sub".into(), "someone_else".into());
        let got = key.verify(&key.sign(&c), NOW).unwrap();
        assert_eq!(got.role, "user");
        assert_eq!(got.sub, "u_123");
    }

    #[test]
    fn key_round_trips_through_pkcs8() {
        let (key, der) = SigningKey::generate();
        let again = SigningKey::from_pkcs8(&der).unwrap();
        assert_eq!(key.kid(), again.kid());
        assert_eq!(again.verify(&key.sign(&claims()), NOW), Ok(claims()));
        assert!(matches!(
            SigningKey::from_pkcs8(b"not a key"),
            Err(AuthError::InvalidKey(_))
        ));
        assert!(!format!("{key:?}").contains(&format!("{der:?}")));
    }

    #[test]
    fn tampered_payload_is_bad_signature() {
        let (key, _) = SigningKey::generate();
        let token = key.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload = serde_json::to_value(claims()).unwrap();
        payload["role"] = "admin".into();
        let forged = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
        assert_eq!(key.verify(&forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn other_key_is_bad_signature() {
        let (key, _) = SigningKey::generate();
        let (other, _) = SigningKey::generate();
        assert_ne!(key.kid(), other.kid());
        let token = other.sign(&claims());
        assert_eq!(key.verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn expiry_with_leeway() {
        let (key, _) = SigningKey::generate();
        let token = key.sign(&claims());
        let exp = NOW + ACCESS_TOKEN_TTL_SECS;
        assert!(key.verify(&token, exp).is_ok());
        assert!(key.verify(&token, exp + LEEWAY_SECS).is_ok());
        assert_eq!(
            key.verify(&token, exp + LEEWAY_SECS + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn wrong_issuer_or_audience() {
        let (key, _) = SigningKey::generate();
        let mut c = claims();
        c.iss = "someone".into();
        assert_eq!(
            key.verify(&key.sign(&c), NOW),
            Err(TokenError::WrongIssuerOrAudience)
        );
        let mut c = claims();
        c.aud = "other-app".into();
        assert_eq!(
            key.verify(&key.sign(&c), NOW),
            Err(TokenError::WrongIssuerOrAudience)
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        let (key, _) = SigningKey::generate();
        let header = json!({"alg": "none", "typ": "JWT", "kid": key.kid()});
        let payload = serde_json::to_value(claims()).unwrap();
        for token in [
            format!("{}.{}.", b64(&header), b64(&payload)),
            format!("{}.{}", b64(&header), b64(&payload)),
        ] {
            let err = key.verify(&token, NOW).unwrap_err();
            assert!(
                matches!(err, TokenError::Malformed | TokenError::BadSignature),
                "{err:?}"
            );
        }
    }

    #[test]
    fn hs256_with_public_key_as_secret_is_rejected() {
        let (key, _) = SigningKey::generate();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid().to_owned());
        let token = jsonwebtoken::encode(
            &header,
            &claims().to_payload(),
            &EncodingKey::from_secret(key.public_key()),
        )
        .unwrap();
        assert_eq!(key.verify(&token, NOW), Err(TokenError::BadSignature));
        // The same with the JWKS `x` string as the secret.
        let x = key.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let token = jsonwebtoken::encode(
            &header,
            &claims().to_payload(),
            &EncodingKey::from_secret(x.as_bytes()),
        )
        .unwrap();
        assert_eq!(key.verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed() {
        let (key, _) = SigningKey::generate();
        for token in ["", "abc", "a.b.c", "..."] {
            assert_eq!(
                key.verify(token, NOW),
                Err(TokenError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn jwks_has_the_kid_and_key() {
        let (key, _) = SigningKey::generate();
        let jwks = key.jwks();
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(key.kid().len(), 16);
        assert!(key.kid().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            key.kid(),
            &hex::encode(Sha256::digest(key.public_key()))[..16]
        );
        // Another service can verify with nothing but the JWKS.
        let x = jwk["x"].as_str().unwrap();
        let decoding = DecodingKey::from_ed_components(x).unwrap();
        let mut v = Validation::new(Algorithm::EdDSA);
        v.validate_exp = false;
        v.set_audience(&[AUDIENCE]);
        let data = jsonwebtoken::decode::<Claims>(&key.sign(&claims()), &decoding, &v).unwrap();
        assert_eq!(data.claims.sub, "u_123");
    }
}
