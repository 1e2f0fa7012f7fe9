//! The one error answer of every listener: status, `content-type: application/json`,
//! `x-gureum-error: CODE`, `retry-after` where waiting helps, and the body
//! `{"error": {"code", "message", …}}` ([`crate::ErrorBody`], which the client parses).
//! Each error type says its status, code and retry delay ([`PublicError`]); [`render`]
//! is the only place the answer is built.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};

/// The header naming the error code of a failed answer.
pub const ERROR_HEADER: &str = "x-gureum-error";

/// An error as a client sees it.
pub trait PublicError: std::fmt::Display {
    /// The HTTP status.
    fn status(&self) -> StatusCode;
    /// The stable machine-readable code (`function_not_found`, `permission_denied`, …).
    fn code(&self) -> &str;
    /// Seconds to wait before trying again, when waiting helps (429, 503).
    fn retry_after_s(&self) -> Option<u64> {
        None
    }
    /// A structured detail added beside `code` and `message` (e.g. `"quota"`).
    fn details(&self) -> Option<(&'static str, serde_json::Value)> {
        None
    }
}

/// An error composed on the spot: a status, a code and a message.
#[derive(Debug, Clone)]
pub struct Failure {
    status: StatusCode,
    code: String,
    message: String,
    retry_after_s: Option<u64>,
}

impl Failure {
    /// `status` with `code` and `message`.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            status,
            code: code.into(),
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// With a `retry-after` of `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl PublicError for Failure {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn code(&self) -> &str {
        &self.code
    }

    fn retry_after_s(&self) -> Option<u64> {
        self.retry_after_s
    }
}

/// The answer for `error`.
pub fn render<E: PublicError + ?Sized>(error: &E) -> Response<Bytes> {
    let mut detail = serde_json::json!({ "code": error.code(), "message": error.to_string() });
    if let Some((key, value)) = error.details() {
        detail[key] = value;
    }
    let body = serde_json::json!({ "error": detail }).to_string();
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(code) = HeaderValue::from_str(error.code()) {
        headers.insert(ERROR_HEADER, code);
    }
    if let Some(seconds) = error.retry_after_s() {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quota;

    impl std::fmt::Display for Quota {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("over the monthly cap")
        }
    }

    impl PublicError for Quota {
        fn status(&self) -> StatusCode {
            StatusCode::TOO_MANY_REQUESTS
        }
        fn code(&self) -> &str {
            "quota_exceeded"
        }
        fn retry_after_s(&self) -> Option<u64> {
            Some(3600)
        }
        fn details(&self) -> Option<(&'static str, serde_json::Value)> {
            Some(("quota", serde_json::json!({"cap": 10})))
        }
    }

    #[test]
    fn an_error_renders_its_status_code_header_delay_and_details() {
        let response = render(&Quota);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[ERROR_HEADER], "quota_exceeded");
        assert_eq!(response.headers()[RETRY_AFTER], "3600");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body: crate::ErrorBody = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body.error.code, "quota_exceeded");
        assert_eq!(body.error.message, "over the monthly cap");
        let raw: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(raw["error"]["quota"]["cap"], 10);
        let plain = render(&Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such thing",
        ));
        assert!(plain.headers().get(RETRY_AFTER).is_none());
        assert_eq!(plain.headers()[ERROR_HEADER], "not_found");
    }
}
