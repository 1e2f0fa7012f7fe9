//! `hello`: the smallest gureum function.
//!
//! A `wasi:http/incoming-handler` component (WASI 0.2) that answers
//! `200 hello from gureum` to any request. Build it with
//! `cargo xtask build-fixtures` and deploy with `gureum deploy examples/hello`.

use wstd::http::body::Body;
use wstd::http::{Error, Request, Response};

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from("hello from gureum\n"))?)
}
