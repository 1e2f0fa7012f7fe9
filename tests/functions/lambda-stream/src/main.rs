//! End-to-end test fixture for `runtime = "lambda"` with response streaming
//! (`lambda_http::run_with_streaming_response`), behaviour chosen by path:
//!
//! * `/stream?n=N` — 200, header `x-streamed: yes`, `text/plain`, N chunks
//!   `chunk i\n` about 5 ms apart.
//! * `/stream-error` — two chunks, then the body stream fails, so the runtime
//!   reports a mid-stream error (`Lambda-Runtime-Function-Error-Type/-Body`).
//! * anything else — 200 text `lambda-stream`.

use std::time::Duration;

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::lambda_runtime::streaming::{Body, channel};
use lambda_http::{Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run_with_streaming_response(service_fn(handle)).await
}

/// Dispatches on the request path; the body is produced by a spawned task.
async fn handle(req: Request) -> Result<Response<Body>, Error> {
    let (mut tx, body) = channel();
    let path = req.uri().path().to_owned();
    let response = Response::builder().header(CONTENT_TYPE, "text/plain");
    match path.as_str() {
        "/stream" => {
            let n: u64 = req
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|pair| pair.strip_prefix("n="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            tokio::spawn(async move {
                for i in 0..n {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    if tx.send_data(format!("chunk {i}\n").into()).await.is_err() {
                        return;
                    }
                }
            });
            Ok(response.header("x-streamed", "yes").body(body)?)
        }
        "/stream-error" => {
            tokio::spawn(async move {
                for i in 0..2 {
                    if tx.send_data(format!("chunk {i}\n").into()).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // The body yields an error: the runtime turns it into the
                // `Lambda-Runtime-Function-Error-*` trailer fields.
                tx.abort();
            });
            Ok(response.body(body)?)
        }
        _ => {
            tokio::spawn(async move {
                let _ = tx.send_data("lambda-stream".into()).await;
            });
            Ok(response.body(body)?)
        }
    }
}
