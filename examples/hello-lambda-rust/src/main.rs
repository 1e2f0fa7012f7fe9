//! Example gureum function: an ordinary AWS Lambda function in Rust, written
//! with the official `lambda_http` crate. `GET /hello-lambda-rust?name=X`
//! answers `Hello, X, from a Rust Lambda function on gureum!` (`X` defaults to
//! `world`).

use lambda_http::{Body, Error, Request, RequestExt as _, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(hello)).await
}

/// Greets the caller named in the `name` query parameter.
async fn hello(req: Request) -> Result<Response<Body>, Error> {
    let params = req.query_string_parameters();
    let name = params.first("name").unwrap_or("world");
    let body = format!("Hello, {name}, from a Rust Lambda function on gureum!");
    Ok(Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.into())?)
}
