//! HTTP types for handlers and a few small helpers.
//!
//! The types are the [`http`](https://docs.rs/http) crate's (`Request`, `Response`,
//! `StatusCode`, …) with [`wstd`](https://docs.rs/wstd)'s [`Body`], re-exported so a
//! function needs no other dependency.
//!
//! What a handler sees on gureum: the method; the path with the query, where `/fn/NAME` is
//! already stripped (`GET /fn/hi/a/b?x=1` arrives as `/a/b?x=1`, the prefix in header
//! `x-forwarded-prefix`) while a manifest route arrives unchanged; the headers, plus
//! `x-gureum-invocation-id` and, behind `auth`, the caller's claims (see [`auth_claims`]);
//! and the body, streamed.
//!
//! ```no_run
//! use gureum_sdk::http::{self, Body, Error, Method, Request, Response, StatusCode};
//!
//! async fn handle(mut request: Request<Body>) -> Result<Response<Body>, Error> {
//!     match (request.method().clone(), request.uri().path()) {
//!         (Method::GET, "/") => Ok(http::text(StatusCode::OK, "ready\n")),
//!         (Method::POST, "/echo") => {
//!             let value: serde_json::Value = request.body_mut().json().await?;
//!             Ok(http::json(StatusCode::OK, &value)?)
//!         }
//!         _ => Ok(http::text(StatusCode::NOT_FOUND, "no such route\n")),
//!     }
//! }
//! # gureum_sdk::export_handler!(handle);
//! ```

use serde::Serialize;

pub use ::http::header;
pub use wstd::http::{
    Body, Client, Error, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode,
    Uri,
};

/// The header in which gureum passes the verified claims of the caller's access token to
/// functions with `auth = "user"` (or an auth expression); [`auth_claims`] reads it.
///
/// ```
/// assert_eq!(gureum_sdk::http::AUTH_CLAIMS_HEADER, "x-gureum-auth-claims");
/// ```
pub const AUTH_CLAIMS_HEADER: &str = "x-gureum-auth-claims";
/// The header holding the id of the invocation (also on every log line); every attempt
/// of a queued invocation carries the same id.
///
/// ```
/// # let request = gureum_sdk::http::Request::get("/").body(gureum_sdk::http::Body::empty()).unwrap();
/// let id = request
///     .headers()
///     .get(gureum_sdk::http::INVOCATION_ID_HEADER)
///     .and_then(|value| value.to_str().ok());
/// ```
pub const INVOCATION_ID_HEADER: &str = "x-gureum-invocation-id";

/// `text/plain; charset=utf-8`, the content type of [`text`].
///
/// ```
/// use gureum_sdk::http::{text, StatusCode, TEXT_PLAIN};
/// assert_eq!(text(StatusCode::OK, "hi").headers()["content-type"], TEXT_PLAIN);
/// ```
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// `application/json`, the content type of [`json`].
///
/// ```
/// use gureum_sdk::http::{json, StatusCode, APPLICATION_JSON};
/// let response = json(StatusCode::OK, &[1, 2]).unwrap();
/// assert_eq!(response.headers()["content-type"], APPLICATION_JSON);
/// ```
pub const APPLICATION_JSON: &str = "application/json";

/// A response with `status`, `content-type: text/plain; charset=utf-8` and `body`.
///
/// ```
/// use gureum_sdk::http::{text, StatusCode};
///
/// let response = text(StatusCode::NOT_FOUND, "no such page\n");
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
/// ```
pub fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    with_type(status, TEXT_PLAIN, Body::from(body.into()))
}

/// A response with `status`, `content-type: application/json` and `value` serialized as
/// its body; an [`Error::Json`](crate::Error::Json) if `value` cannot be serialized.
///
/// ```
/// use gureum_sdk::http::{json, StatusCode};
///
/// let response = json(StatusCode::CREATED, &serde_json::json!({"id": 7})).unwrap();
/// assert_eq!(response.status(), StatusCode::CREATED);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
pub fn json<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Result<Response<Body>, crate::Error> {
    let bytes = serde_json::to_vec(value)
        .map_err(|error| crate::Error::Json(format!("encoding the response body: {error}")))?;
    Ok(with_type(status, APPLICATION_JSON, Body::from(bytes)))
}

/// A response with `status` and no body.
///
/// ```
/// use gureum_sdk::http::{empty, StatusCode};
///
/// assert_eq!(empty(StatusCode::NO_CONTENT).status(), 204);
/// ```
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The first value of query parameter `name` in `uri`, percent-decoded (`+` reads as a
/// space); `None` when it is absent. `?name` without `=` gives `Some("")`.
///
/// ```
/// use gureum_sdk::http::{query_param, Uri};
///
/// let uri: Uri = "/greet?name=Ada%20L&x=1".parse().unwrap();
/// assert_eq!(query_param(&uri, "name").as_deref(), Some("Ada L"));
/// assert_eq!(query_param(&uri, "missing"), None);
/// ```
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    query_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// Every `key=value` pair of a query string, in order, percent-decoded (`+` reads as a
/// space). Empty pieces (`a=1&&b=2`) are skipped.
///
/// ```
/// use gureum_sdk::http::query_pairs;
///
/// let pairs = query_pairs("tag=a&tag=b+c&flag");
/// assert_eq!(pairs, vec![
///     ("tag".to_owned(), "a".to_owned()),
///     ("tag".to_owned(), "b c".to_owned()),
///     ("flag".to_owned(), String::new()),
/// ]);
/// ```
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (as a space); a malformed escape is kept as it is, and
/// bytes that are not UTF-8 become U+FFFD.
///
/// ```
/// assert_eq!(gureum_sdk::http::percent_decode("a%2Fb+c%zz"), "a/b c%zz");
/// ```
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes `text` for use as one URL path segment or query value: everything but
/// `A-Z a-z 0-9 - . _ ~` is escaped.
///
/// ```
/// assert_eq!(gureum_sdk::http::percent_encode("a b/c"), "a%20b%2Fc");
/// ```
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The verified claims of the caller's access token, for a function behind `auth`
/// (`sub`, `email`, …); `None` when the function has no `auth` policy or runs elsewhere.
///
/// gureum verifies the token before invoking and removes any such header a client sent, so
/// the claims can be trusted.
///
/// ```
/// use gureum_sdk::http::{auth_claims, Body, Request};
///
/// let request = Request::get("/")
///     .header("x-gureum-auth-claims", r#"{"sub":"u1","email":"a@example.org"}"#)
///     .body(Body::empty())
///     .unwrap();
/// let claims = auth_claims(&request).unwrap();
/// assert_eq!(claims["sub"], "u1");
/// ```
pub fn auth_claims<B>(request: &Request<B>) -> Option<serde_json::Value> {
    let value = request.headers().get(AUTH_CLAIMS_HEADER)?;
    serde_json::from_slice(value.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_edges() {
        assert_eq!(percent_decode("%41%4a%"), "AJ%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert_eq!(percent_decode(""), "");
    }

    #[test]
    fn encoding_round_trips() {
        for text in ["plain", "a b/c?d&e=f", "ünï €", "%41"] {
            assert_eq!(percent_decode(&percent_encode(text)), text);
        }
    }

    #[test]
    fn the_first_query_value_wins() {
        let uri: Uri = "/p?a=1&a=2&b".parse().unwrap();
        assert_eq!(query_param(&uri, "a").as_deref(), Some("1"));
        assert_eq!(query_param(&uri, "b").as_deref(), Some(""));
        let bare: Uri = "/p".parse().unwrap();
        assert_eq!(query_param(&bare, "a"), None);
    }
}
