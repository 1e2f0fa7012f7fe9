//! The control API's error-code table: every error maps to one status, one stable code
//! and a message that says how to fix it, rendered by `gureum_api_types::render` like
//! every other answer (with `x-gureum-error`). Conversions are pure; logging happens in
//! the handlers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gureum_api_types::Problem;
use gureum_invoke::{DeployError, QuotaError};

/// An error answered by the control API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong bearer token.
    #[error(
        "missing or invalid admin token: send `Authorization: Bearer <token>` with the token from DATA_DIR/admin.token"
    )]
    Unauthorized,
    /// A malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// A deploy/rollback/remove refusal.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// Not found.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] gureum_store::StoreError),
    /// Prices or quotas could not be read or changed.
    #[error(transparent)]
    Quota(#[from] QuotaError),
    /// A price list in a request that cannot be used (the body itself, before its keys).
    #[error("{0}")]
    InvalidPrices(String),
    /// A quota in a request that cannot be used (the body itself, before its caps).
    #[error("{0}")]
    InvalidQuota(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
            ApiError::InvalidPrices(_) => (StatusCode::BAD_REQUEST, "invalid_prices"),
            ApiError::InvalidQuota(_) => (StatusCode::BAD_REQUEST, "invalid_quota"),
            ApiError::Quota(error) => match error {
                QuotaError::Prices(_) => (StatusCode::BAD_REQUEST, "invalid_prices"),
                QuotaError::Quota(_) => (StatusCode::BAD_REQUEST, "invalid_quota"),
                QuotaError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
                QuotaError::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            ApiError::Deploy(error) => match error {
                DeployError::Manifest(_) => (StatusCode::BAD_REQUEST, "invalid_manifest"),
                DeployError::Artifact(_) | DeployError::Package(_) => {
                    (StatusCode::BAD_REQUEST, "invalid_artifact")
                }
                DeployError::Static(_) => (StatusCode::BAD_REQUEST, "invalid_static_site"),
                DeployError::NoSandbox(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "sandbox_unavailable")
                }
                DeployError::RouteConflict { .. } => (StatusCode::CONFLICT, "route_conflict"),
                DeployError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                DeployError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
                DeployError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
        }
    }
}

impl gureum_api_types::PublicError for ApiError {
    fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn code(&self) -> &str {
        self.status_and_code().1
    }

    /// An invalid manifest's problems, each with its field.
    fn details(&self) -> Option<(&'static str, serde_json::Value)> {
        let ApiError::Deploy(DeployError::Manifest(error)) = self else {
            return None;
        };
        let problems: Vec<Problem> = error
            .problems()
            .iter()
            .map(|problem| Problem {
                field: problem.field.clone(),
                message: problem.message.clone(),
            })
            .collect();
        (!problems.is_empty()).then(|| ("problems", serde_json::json!(problems)))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        gureum_api_types::render(&self).map(axum::body::Body::from)
    }
}
