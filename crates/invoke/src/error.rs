//! Why a request got no answer from the function: [`InvokeError`], with the error code
//! and HTTP status the gateway renders.

use gureum_pool::PoolError;

use crate::QuotaRefusal;

/// Why a request got no answer from the function.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No such function, or no such version.
    #[error("{0}")]
    NotFound(String),
    /// Over the function's concurrency limit.
    #[error(transparent)]
    Throttled(#[from] PoolError),
    /// The function ran past its timeout.
    #[error("function timed out after {timeout_ms} ms (timeout_ms in gureum.toml)")]
    Timeout {
        /// The limit.
        timeout_ms: u64,
    },
    /// The function hit its memory limit.
    #[error("function exceeded its memory limit of {memory_mb} MiB (memory_mb in gureum.toml)")]
    MemoryLimit {
        /// The limit.
        memory_mb: u32,
    },
    /// The function crashed, trapped or answered with an error.
    #[error("function failed: {0}")]
    FunctionError(String),
    /// The platform could not run the function (code missing, instance pool full...).
    #[error("function unavailable: {0}")]
    Unavailable(String),
    /// A monthly quota is used up.
    #[error(transparent)]
    QuotaExceeded(Box<QuotaRefusal>),
}

impl InvokeError {
    /// Stable error code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::NotFound(_) => "function_not_found",
            InvokeError::Throttled(_) => "too_many_requests",
            InvokeError::Timeout { .. } => "function_timeout",
            InvokeError::MemoryLimit { .. } => "function_memory_limit",
            InvokeError::FunctionError(_) => "function_error",
            InvokeError::Unavailable(_) => "function_unavailable",
            InvokeError::QuotaExceeded(_) => "quota_exceeded",
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            InvokeError::NotFound(_) => 404,
            InvokeError::Throttled(_) | InvokeError::QuotaExceeded(_) => 429,
            InvokeError::Timeout { .. } => 504,
            InvokeError::MemoryLimit { .. } | InvokeError::FunctionError(_) => 502,
            InvokeError::Unavailable(_) => 503,
        }
    }
}

impl gureum_api_types::PublicError for InvokeError {
    fn status(&self) -> http::StatusCode {
        http::StatusCode::from_u16(InvokeError::status(self))
            .unwrap_or(http::StatusCode::BAD_GATEWAY)
    }

    fn code(&self) -> &str {
        InvokeError::code(self)
    }

    fn retry_after_s(&self) -> Option<u64> {
        match self {
            InvokeError::QuotaExceeded(refusal) => Some(refusal.retry_after_s),
            InvokeError::Throttled(_) => Some(1),
            _ => None,
        }
    }

    /// The cap and its reset, for programs, not only in the message.
    fn details(&self) -> Option<(&'static str, serde_json::Value)> {
        let InvokeError::QuotaExceeded(refusal) = self else {
            return None;
        };
        Some((
            "quota",
            serde_json::json!({
                "scope": refusal.scope,
                "kind": refusal.kind,
                "cap": refusal.cap,
                "used": refusal.used,
                "resets_at": refusal.resets_at,
            }),
        ))
    }
}
