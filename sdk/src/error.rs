//! The SDK's error type.

use crate::config::ConfigError;

/// Why a call of the SDK failed.
///
/// Converts into [`http::Error`](crate::http::Error) with `?`, so a handler can propagate
/// it; match on it (or use [`Error::status`], [`Error::code`], [`Error::is_not_found`]) to
/// answer something better than a 502.
///
/// ```no_run
/// use gureum_sdk::documents::Collection;
/// use gureum_sdk::Error;
///
/// # async fn example() -> Result<(), Error> {
/// let notes = Collection::new("notes");
/// match notes.delete("0190c0ffee").await {
///     Ok(()) => println!("deleted"),
///     Err(error) if error.is_not_found() => println!("already gone"),
///     Err(Error::Api { status, code, message }) => println!("{status} {code}: {message}"),
///     Err(other) => return Err(other),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or invalid (including `GUREUM_API` / `GUREUM_FUNCTION_TOKEN`
    /// when the component runs outside gureum).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The platform API answered with an error: its HTTP status, its error code
    /// (`not_found`, `version_mismatch`, `permission_denied`, `GoneException`, …) and its
    /// message.
    #[error("the platform answered {status} {code}: {message}")]
    Api {
        /// The HTTP status, e.g. 404.
        status: u16,
        /// The machine-readable code of the answer (`{"error": {"code"}}`, or the
        /// `x-amzn-errortype` of the WebSocket management API).
        code: String,
        /// What went wrong, for people.
        message: String,
    },
    /// The request did not get an answer: the connection failed, the host is not allowed
    /// (`allowed_outbound_hosts`), or the body could not be read.
    #[error("{0}")]
    Http(String),
    /// A body could not be encoded as or decoded from JSON; says which and why.
    #[error("{0}")]
    Json(String),
    /// A `wasi:keyvalue` call failed.
    #[error("key-value: {0}")]
    KeyValue(#[from] KeyValueError),
}

impl Error {
    /// The HTTP status of an [`Error::Api`], else `None`.
    ///
    /// ```
    /// let error = gureum_sdk::Error::Api { status: 412, code: "version_mismatch".into(), message: "stale".into() };
    /// assert_eq!(error.status(), Some(412));
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code of an [`Error::Api`] (`not_found`, `GoneException`, …), else `None`.
    ///
    /// ```
    /// let error = gureum_sdk::Error::Api { status: 410, code: "GoneException".into(), message: "closed".into() };
    /// assert_eq!(error.code(), Some("GoneException"));
    /// ```
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the platform said the thing does not exist: 404, or 410 for a WebSocket
    /// connection that is gone.
    ///
    /// ```
    /// let error = gureum_sdk::Error::Api { status: 404, code: "not_found".into(), message: "no document".into() };
    /// assert!(error.is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(self.status(), Some(404 | 410))
    }
}

/// An error of the `wasi:keyvalue` host (its `store.error` variant).
///
/// ```
/// let error = gureum_sdk::KeyValueError::Other("bucket name too long".into());
/// assert_eq!(error.to_string(), "bucket name too long");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyValueError {
    /// The host has no store of that name.
    #[error("no such store")]
    NoSuchStore,
    /// The function may not use that store.
    #[error("access denied")]
    AccessDenied,
    /// Anything else, with the host's message (on gureum: an invalid bucket name, the
    /// storage failing, or storage not configured).
    #[error("{0}")]
    Other(String),
}
