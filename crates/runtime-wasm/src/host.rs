//! Per-instance host state: WASI contexts, the memory limiter and the outbound-HTTP
//! policy hook.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// The `T` of every `Store<T>`.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) config: WasiConfigVariables,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) outbound: OutboundPolicy,
    /// `wasi:keyvalue`: the backend and the function's scope.
    pub(crate) key_value: crate::keyvalue::KeyValueCtx,
    /// When the running invocation must stop (checked on every epoch tick).
    pub(crate) deadline: std::time::Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Caps the linear memories of one instance and remembers whether the cap was hit, so
/// that the resulting trap can be reported as a memory-limit failure.
pub(crate) struct MemoryLimiter {
    pub(crate) limit_bytes: usize,
    pub(crate) hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Denies outbound HTTP to origins the manifest does not list, and to private addresses
/// that a listed name resolves to (see `crate::outbound`).
pub(crate) struct OutboundPolicy {
    pub(crate) allowed: Arc<Vec<String>>,
    /// `gureum up --outbound-private`.
    pub(crate) private: gureum_manifest::PrivateDestinations,
    /// The instance's log, for the line saying why a request was refused.
    pub(crate) capture: crate::logs::LogCapture,
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = crate::outbound::Sent> + Send> {
        // As wasi-http's default: nothing here reports how the response body was consumed.
        drop(fut);
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16();
        let Some(allowance) =
            gureum_manifest::outbound_allowance(&self.allowed, &scheme, &host, port)
        else {
            tracing::debug!(%scheme, %host, ?port, "outbound request denied by allowed_outbound_hosts");
            return Box::new(async move {
                crate::outbound::drain(request.into_body()).await;
                Err(wasmtime_wasi_http::Error::HttpRequestDenied)
            });
        };
        let check = crate::outbound::Check::for_request(allowance, self.private);
        Box::new(crate::outbound::send(
            detach_body(request),
            options,
            check,
            self.capture.clone(),
        ))
    }
}

/// Puts a relay between the guest's request body and the HTTP client. The client may
/// drop the body as soon as the upstream has answered (e.g. a GET whose response came
/// back before the guest called `finish`); the guest would then see its own body stream
/// closed and report "connection reset" instead of the response. The relay keeps
/// accepting (and discarding) the guest's writes after the client is gone.
fn detach_body(
    request: http::Request<wasmtime_wasi_http::WasiBody>,
) -> http::Request<wasmtime_wasi_http::WasiBody> {
    use http_body_util::BodyExt;
    let (parts, mut body) = request.into_parts();
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut sender = Some(sender);
        while let Some(frame) = body.frame().await {
            if let Some(open) = &sender
                && open.send(frame).await.is_err()
            {
                sender = None;
            }
        }
    });
    let frames = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|frame| (frame, receiver))
    });
    http::Request::from_parts(
        parts,
        http_body_util::StreamBody::new(frames).boxed_unsync(),
    )
}
