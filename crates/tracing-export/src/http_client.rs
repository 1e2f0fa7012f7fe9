//! The OTLP exporter's HTTP transport: the workspace's async reqwest 0.12 client, driven on
//! the tokio runtime that created the tracer.
//!
//! The SDK's batch span processor exports from its own OS thread and blocks that thread on
//! the export future (`futures_executor::block_on`), where no tokio reactor exists. Each
//! request is therefore spawned onto the captured runtime and only its `JoinHandle` (which
//! any executor can await) is waited on by the exporter thread.

use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use tokio::runtime::Handle;

/// OTLP responses are a few bytes (an `ExportTraceServiceResponse`); anything larger than
/// this is not read.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// An [`HttpClient`] that sends each request with `reqwest` on a tokio runtime.
#[derive(Debug, Clone)]
pub(crate) struct TokioReqwestClient {
    client: reqwest::Client,
    runtime: Handle,
}

impl TokioReqwestClient {
    /// A client whose every request (connect, send, read the response) is bounded by
    /// `timeout`, run on `runtime`.
    pub(crate) fn new(runtime: Handle, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self { client, runtime })
    }
}

/// The response body grew past [`MAX_RESPONSE_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("OTLP response body larger than {MAX_RESPONSE_BYTES} bytes")]
struct ResponseTooLarge;

async fn send(
    client: reqwest::Client,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
    let request = reqwest::Request::try_from(request)?;
    let mut response = client.execute(request).await?;
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(Box::new(ResponseTooLarge));
    }
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Box::new(ResponseTooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    let mut out = Response::new(Bytes::from(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

#[async_trait::async_trait]
impl HttpClient for TokioReqwestClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        // A runtime that has shut down cancels the task at once: the join error is returned.
        self.runtime
            .spawn(send(self.client.clone(), request))
            .await?
    }
}
