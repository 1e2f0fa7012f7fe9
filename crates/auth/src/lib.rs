//! Auth primitives for the backend services (`/auth/v1`, see `notes/api-baas.md`):
//! argon2id password hashes, Ed25519 JWT access tokens, opaque refresh tokens and an
//! in-memory login rate limiter; [`caller`] (who sent a request) and [`service`] (the
//! `/auth/v1` HTTP routes over the store, and bearer-token resolution).

pub mod caller;
pub mod error;
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
pub use service::{
    AuthService, CallerError, ClientAddr, FunctionTokenCheck, constant_time_eq, user_json,
};
