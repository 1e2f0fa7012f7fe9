//! Auth primitives for the backend services (`/auth/v1`, README "Backend services"):
//! argon2id password hashes, Ed25519 JWT access tokens, opaque refresh tokens and an
//! in-memory login rate limiter; [`caller`] (who sent a request) and [`service`] (the
//! `/auth/v1` HTTP routes over the store, and bearer-token resolution).
//!
//! [`bearer_token`] is the one parser of `Authorization` headers, used by both listeners
//! and the management API (the scheme is case-insensitive). A wrong email and a wrong
//! password answer the same, after the same work ([`password::verify_dummy`]); no secret in
//! clear is stored or logged.

pub mod caller;
pub mod error;
mod hashing;
pub mod jwt;
pub mod password;
pub mod ratelimit;
pub mod refresh;
pub mod service;

pub use caller::{Caller, UserIdentity};
pub use error::{AuthError, InvalidEmail, RetryAfter, TokenError, WeakPassword};
pub use jwt::{Claims, SigningKey};
pub use password::{check_strength, hash_password, validate_email, verify_password};
pub use ratelimit::{LimitRule, LoginLimiter, LoginLimiterConfig};
pub use refresh::{hash_refresh_token, new_refresh_token};
/// The token of an `Authorization: Bearer TOKEN` header. The scheme is matched without
/// regard to case (RFC 9110 §11.1: `bearer`, `BEARER` are the same scheme).
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub use service::{
    AuthService, CallerError, ClientAddr, FunctionTokenCheck, KEY_FILE, constant_time_eq, user_json,
};

#[cfg(test)]
mod bearer_tests {
    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_trimmed() {
        let token = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            super::bearer_token(&headers).map(str::to_string)
        };
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "BeArEr   abc  "] {
            assert_eq!(token(value).as_deref(), Some("abc"), "{value:?}");
        }
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(token(value), None, "{value:?}");
        }
    }
}
