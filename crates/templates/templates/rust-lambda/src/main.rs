//! `{{name}}`: an AWS Lambda function in Rust, run by gureum.
//!
//! gureum starts this binary and serves it the Lambda Runtime API; every HTTP request to
//! `/fn/{{name}}/…` (or to the routes in gureum.toml) arrives as an API Gateway HTTP API
//! (payload v2.0) event, which `lambda_http` hands to [`handler`] as an `http::Request`.
//! What [`handler`] returns becomes the HTTP response.

use lambda_http::{Body, Error, Request, RequestExt as _, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Runs until the platform stops the process: one event at a time, each answered by
    // `handler`. Anything printed to stdout/stderr lands in `gureum logs {{name}}`,
    // tagged with the invocation's id.
    lambda_http::run(service_fn(handler)).await
}

/// Answers one request.
///
/// The request (`http::Request<Body>`):
/// - `request.method()`: GET, POST, … as the client sent it.
/// - `request.uri().path()`: the path the function sees, e.g. `/fn/{{name}}/hello`.
/// - `request.query_string_parameters()`: the decoded query, e.g. `?name=Ada` →
///   `.first("name") == Some("Ada")`.
/// - `request.headers()`: the client's headers, lower-case names; gureum adds
///   `x-gureum-invocation-id` (also in every log line) and, for functions with `auth`, the
///   caller's verified claims in `request.request_context()`.
/// - `request.body()`: `Body::Empty`, `Body::Text` or `Body::Binary`, already decoded.
/// - `request.lambda_context()`: the invocation id (`request_id`), the deadline, the
///   function's name and memory.
///
/// The response (`http::Response<Body>`):
/// - the status (default 200), any headers (`content-type` matters to browsers), and a
///   body; a `Body::Binary` body is sent base64-encoded in the event reply and decoded by
///   gureum. An `Err` becomes a 502 and its message is logged.
///
/// The platform API is at `std::env::var("GUREUM_API")` with the bearer token in
/// `GUREUM_FUNCTION_TOKEN`: key-value (`/kv/v1/buckets/B/keys/K`), documents
/// (`/data/v1/collections/C/docs`, once `[permissions] data` in gureum.toml grants C)
/// and WebSocket connections (`/@connections/ID`).
async fn handler(request: Request) -> Result<Response<Body>, Error> {
    let query = request.query_string_parameters();
    let body = greeting(query.first("name"));
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.into())?)
}

/// `Hello, NAME!` with a newline; `world` when the name is missing or blank.
fn greeting(name: Option<&str>) -> String {
    let name = name.map(str::trim).filter(|name| !name.is_empty());
    format!("Hello, {}!\n", name.unwrap_or("world"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn greets_by_name_or_the_world() {
        assert_eq!(greeting(Some("Ada")), "Hello, Ada!\n");
        assert_eq!(greeting(Some("  ")), "Hello, world!\n");
        assert_eq!(greeting(None), "Hello, world!\n");
    }

    #[tokio::test]
    async fn the_handler_reads_the_query_and_answers_text() {
        let request = Request::default().with_query_string_parameters(HashMap::from([(
            "name".to_string(),
            "Ada".to_string(),
        )]));
        let response = handler(request).await.expect("handler succeeds");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(response.body(), &Body::Text("Hello, Ada!\n".into()));
    }
}
