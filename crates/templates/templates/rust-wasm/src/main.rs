//! `{{name}}`: a gureum function, compiled to a `wasi:http` component (WASI 0.2).
//!
//! gureum calls [`handle`] once per HTTP request to `/fn/{{name}}/…` and to the routes in
//! gureum.toml (`/{{name}}`). An instance stays warm between requests (one at a time), so
//! globals such as caches survive; it may be dropped whenever it is idle.
//!
//! Beyond plain HTTP, the SDK (vendor/gureum-sdk) has:
//! - `gureum_sdk::config`: typed settings from `[env]` in gureum.toml;
//! - `gureum_sdk::kv`: key-value buckets with atomic counters
//!   (`Bucket::open("visits")?.increment("home", 1)?`);
//! - `gureum_sdk::documents`: JSON documents in collections
//!   (`Collection::new("notes").create(&note).await?`, after granting
//!   `data = ["notes:write"]` under `[permissions]` in gureum.toml);
//! - `gureum_sdk::websocket` (connections to `/ws/{{name}}`, channels) and
//!   `gureum_sdk::invoke` (call or queue other functions).

use gureum_sdk::config;
use gureum_sdk::http::{self, Body, Error, Request, Response, StatusCode};

// Exports `handle` as the component's `wasi:http/incoming-handler` (and defines `main`).
gureum_sdk::export_handler!(handle);

/// Answers one request.
///
/// The request (`Request<Body>`):
/// - `request.method()`: GET, POST, … as the client sent it.
/// - `request.uri()`: the path and query the function sees. Under `/fn/{{name}}` the
///   prefix is stripped (`/fn/{{name}}/a?x=1` arrives as `/a?x=1`, the prefix in header
///   `x-forwarded-prefix`); a route from gureum.toml arrives unchanged (`/{{name}}?x=1`).
///   `http::query_param(request.uri(), "x")` reads one decoded query parameter.
/// - `request.headers()`: the client's headers, plus `x-gureum-invocation-id` (the id on
///   this request's log lines) and, for a function with `auth` in gureum.toml, the
///   caller's verified claims (`http::auth_claims(&request)`).
/// - `request.body_mut()`: the body, streamed; `.contents().await?` reads it whole as
///   bytes, `.str_contents().await?` as text, `.json::<T>().await?` as JSON.
///
/// The response (`Response<Body>`):
/// - the status (`StatusCode::OK`, …), headers (`content-type` matters to browsers) and a
///   body (`Body::from` a `String`, `&str` or `Vec<u8>`); `http::text`, `http::json` and
///   `http::empty` build the common ones.
/// - An `Err` fails the request: gureum answers 502 and logs the error with the request.
///   Anything printed (`println!`, `eprintln!`) lands in `gureum logs {{name}}`.
async fn handle(request: Request<Body>) -> Result<Response<Body>, Error> {
    let name = http::query_param(request.uri(), "name");
    let salutation = config::get("GREETING").unwrap_or_else(|| "Hello".to_owned());
    Ok(http::text(
        StatusCode::OK,
        greeting(&salutation, name.as_deref()),
    ))
}

/// `SALUTATION, NAME!` with a newline; `world` when the name is missing or blank.
fn greeting(salutation: &str, name: Option<&str>) -> String {
    let name = name.map(str::trim).filter(|name| !name.is_empty());
    format!("{salutation}, {}!\n", name.unwrap_or("world"))
}

// `cargo test` runs these on your machine (no wasm needed): the handler is an ordinary
// async function, and `gureum_sdk::block_on` drives it.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name_or_the_world() {
        assert_eq!(greeting("Hello", Some("Ada")), "Hello, Ada!\n");
        assert_eq!(greeting("Hello", Some("  ")), "Hello, world!\n");
        assert_eq!(greeting("Hi", None), "Hi, world!\n");
    }

    #[test]
    fn the_handler_reads_the_query_and_answers_text() {
        let request = Request::get("/?name=Ada").body(Body::empty()).unwrap();
        let mut response = gureum_sdk::block_on(handle(request)).expect("handler succeeds");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        let body = gureum_sdk::block_on(response.body_mut().str_contents()).unwrap();
        assert_eq!(body, "Hello, Ada!\n");
    }
}
