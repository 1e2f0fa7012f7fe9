//! `peer-hyper-hello [ADDR]`: a benchmark peer with nothing between the socket and the
//! answer. tokio's multi-threaded runtime and hyper's HTTP/1.1 server with keep-alive
//! answer `200 hello from gureum` (the body of `examples/hello`) to every request, so
//! `cargo xtask bench` can show how close gureum's gateway comes to the bare stack it is
//! built on. Listens on 127.0.0.1:8082 unless given an address.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const BODY: &[u8] = b"hello from gureum\n";

async fn answer(
    _request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8082".to_string());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    eprintln!("peer-hyper-hello on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer)),
        );
    }
}
