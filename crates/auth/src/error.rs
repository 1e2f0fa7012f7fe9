//! Error types of the auth primitives.

use std::time::Duration;

use thiserror::Error;

/// A failure that is the server's fault (bad key material, hashing failure), not the caller's.
#[derive(Debug, Error)]
pub enum AuthError {
    /// argon2 refused to hash (only on invalid parameters; not expected in practice).
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// The signing key bytes are not an Ed25519 PKCS#8 (v1 or v2) DER document.
    #[error("invalid Ed25519 signing key (expected PKCS#8 DER): {0}")]
    InvalidKey(String),
}

/// Why a password was refused at sign-up (wire code `weak_password`). The message names the
/// rule and how to satisfy it, so it can be shown to the user as is.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WeakPassword {
    /// Fewer than `min` characters.
    #[error("password is too short: use at least {min} characters")]
    TooShort {
        /// The minimum number of characters.
        min: usize,
    },
    /// More than `max` bytes (UTF-8).
    #[error("password is too long: use at most {max} bytes")]
    TooLong {
        /// The maximum length in bytes.
        max: usize,
    },
    /// One character repeated, e.g. `aaaaaaaa`.
    #[error("password is a single repeated character: use a mix of different characters")]
    RepeatedCharacter,
    /// The email address, or the part of it before the `@`.
    #[error(
        "password is your email address or its part before the @: choose something unrelated to your email"
    )]
    SameAsEmail,
    /// In the list of the most common passwords.
    #[error(
        "password is one of the most commonly used passwords: choose a less guessable one, such as a phrase of several unrelated words"
    )]
    Common,
}

/// Why an email address was refused (wire code `invalid_email`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InvalidEmail {
    /// Empty after trimming.
    #[error("email address is empty")]
    Empty,
    /// Longer than 254 bytes.
    #[error("email address is too long: at most 254 bytes")]
    TooLong,
    /// Contains a space or another whitespace or control character.
    #[error("email address must not contain spaces or control characters")]
    Whitespace,
    /// No `@`, or more than one.
    #[error("email address must contain exactly one @")]
    At,
    /// Nothing before the `@`, or more than 64 bytes.
    #[error("email address needs a name of 1 to 64 characters before the @")]
    Local,
    /// The part after the `@` is not a domain name with a dot, like `example.com`.
    #[error("email address needs a domain with a dot after the @, like example.com")]
    Domain,
}

/// Why an access token was refused. `Expired` maps to `token_expired`, the rest to
/// `invalid_token`.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// `exp` is more than the leeway in the past.
    #[error("token expired")]
    Expired,
    /// The signature does not verify with this key, or the header names another algorithm.
    #[error("token signature is invalid")]
    BadSignature,
    /// Not a JWT, not JSON, an unknown algorithm (`none`), or a required claim is missing.
    #[error("token is malformed")]
    Malformed,
    /// `iss` or `aud` is not `gureum`.
    #[error("token was issued for another issuer or audience")]
    WrongIssuerOrAudience,
}

/// Too many failed sign-in attempts for a key; retry after the duration (wire code
/// `rate_limited` with a `retry-after` header of [`RetryAfter::secs`]).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("too many failed sign-in attempts: retry in {} s", self.secs())]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds to wait, rounded up and at least 1 (for a `retry-after` header).
    pub fn secs(&self) -> u64 {
        let d = self.0;
        let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        s.max(1)
    }
}
