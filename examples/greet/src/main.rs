//! `greet`: configuration through the environment, and path routing.
//!
//! * The greeting comes from env `GREETING` (`[env]` in `gureum.toml`),
//!   `hi` when it is not set.
//! * The name is taken from the path: `/` or `/greet` → `world`,
//!   `/alice` or `/greet/alice` → `alice`. Reached through the manifest route
//!   `/greet/*` the function sees the full path `/greet/alice`; through
//!   `/fn/greet/alice` the gateway strips the mount prefix, so it sees `/alice`
//!   and the header `x-forwarded-prefix: /fn/greet`.
//! * `?format=json` answers
//!   `{"greeting":..,"name":..,"path":..,"prefix":..}` instead of the text
//!   `GREETING, NAME!`.

use wstd::http::body::Body;
use wstd::http::{Error, Request, Response};

/// The manifest route this function is published under; stripped from the
/// path when the gateway did not already strip a mount prefix.
const ROUTE: &str = "/greet";

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "hi".to_owned());
    let path = request.uri().path().to_owned();
    let prefix = request
        .headers()
        .get("x-forwarded-prefix")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    // Without a forwarded prefix the request came through a manifest route,
    // which passes the path unchanged: drop our own route segment.
    let rest = match &prefix {
        Some(_) => path.as_str(),
        None => strip_route(&path),
    };
    let rest = rest.trim_matches('/');
    let name = if rest.is_empty() {
        "world".to_owned()
    } else {
        percent_decode(rest)
    };

    let json =
        query_param(request.uri().query().unwrap_or(""), "format").as_deref() == Some("json");
    if json {
        let body = serde_json::json!({
            "greeting": greeting,
            "name": name,
            "path": path,
            "prefix": prefix,
        });
        Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))?)
    } else {
        Ok(Response::builder()
            .header("content-type", "text/plain; charset=utf-8")
            .body(Body::from(format!("{greeting}, {name}!")))?)
    }
}

/// `/greet` → ``, `/greet/alice` → `/alice`; other paths are left alone.
fn strip_route(path: &str) -> &str {
    match path.strip_prefix(ROUTE) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

/// The first value of query parameter `name`, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept as-is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
