//! Distributed traces: a span per invocation and per deploy, exported over OTLP/HTTP; W3C traceparent in, traceparent and X-Ray trace ids out.
//!
//! [`Tracer::otlp`] exports spans as OTLP/HTTP protobuf (`POST {endpoint}/v1/traces`) through
//! the OpenTelemetry SDK's batch span processor: ending a span only queues it, and a
//! background thread exports the queue every few seconds, so exporting never blocks a
//! request. When the collector is unreachable, exports fail (logged through `tracing` by
//! the SDK) and, once the processor's queue is full (2048 spans by default,
//! `OTEL_BSP_MAX_QUEUE_SIZE`), new spans are dropped.
//!
//! [`Tracer::disabled`] creates no exporter, no thread and no span; its
//! [`InvocationSpan`]s only pass an incoming `traceparent` through to the function.
//!
//! Trace ids this process starts carry the Unix time in their first 32 bits, so that each is
//! also a valid AWS X-Ray trace id ([`InvocationSpan::xray_trace_id`]).

mod http_client;
mod ids;
#[cfg(feature = "testing")]
pub mod testing;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, IdGenerator as _, SdkTracer, SdkTracerProvider,
};

/// The `service.name` of every span this crate exports.
pub const SERVICE_NAME: &str = "gureum";

/// Bound on one export request (connect, send, response).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on one export including the exporter's retries.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on [`Tracer::shutdown`].
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why tracing could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    /// The endpoint is not an `http://` URL with a host.
    #[error("invalid OTLP endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `https://` endpoint: this build has no TLS for the exporter.
    #[error(
        "OTLP endpoint {0:?} uses https, which this build does not support; use http:// (e.g. a local collector)"
    )]
    HttpsUnsupported(String),
    /// [`Tracer::otlp`] was called outside a tokio runtime.
    #[error("the OTLP exporter must be started inside a tokio runtime")]
    NoRuntime,
    /// The HTTP client or the OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// Maps gureum's trigger names to the OpenTelemetry FaaS `faas.trigger` values.
fn faas_trigger(trigger: &str) -> &'static str {
    match trigger {
        "http" | "api" => "http",
        "cron" => "timer",
        "queue" => "pubsub",
        // WebSocket messages, and anything new, have no well-known value.
        _ => "other",
    }
}

/// `{endpoint}/v1/traces` unless `endpoint` already ends with `/v1/traces`; only plain http.
fn traces_url(endpoint: &str) -> Result<String, TracingError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let invalid = |reason: &str| TracingError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let url = reqwest::Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
    match url.scheme() {
        "http" => {}
        "https" => return Err(TracingError::HttpsUnsupported(endpoint.to_owned())),
        _ => return Err(invalid("the scheme must be http")),
    }
    if url.host().is_none() {
        return Err(invalid("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("no query or fragment allowed"));
    }
    if trimmed.ends_with("/v1/traces") {
        Ok(trimmed.to_owned())
    } else {
        Ok(format!("{trimmed}/v1/traces"))
    }
}

/// The resource every exported span carries.
fn resource() -> Resource {
    // `builder()` also adds the `telemetry.sdk.*` attributes and `OTEL_RESOURCE_ATTRIBUTES`.
    Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("process.pid", i64::from(std::process::id())),
            KeyValue::new("process.runtime.name", "rust"),
        ])
        .build()
}

/// What an enabled [`Tracer`] shares between its clones.
struct Exporting {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    url: String,
}

/// Starts spans and exports them; cheap to clone. [`Tracer::disabled`] does nothing at all.
///
/// Call [`Tracer::shutdown`] on graceful shutdown: it flushes the queued spans. Dropping the
/// last clone without it also shuts the exporter down, but blocks the dropping thread (up to
/// 5 s) while doing so.
#[derive(Clone, Default)]
pub struct Tracer {
    inner: Option<Arc<Exporting>>,
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Tracer(disabled)"),
            Some(inner) => write!(f, "Tracer(otlp {})", inner.url),
        }
    }
}

impl Tracer {
    /// A tracer that records and exports nothing.
    pub fn disabled() -> Tracer {
        Tracer { inner: None }
    }

    /// Starts the OTLP/HTTP protobuf exporter with a batch span processor (export off the
    /// request path), `service.name = "gureum"`. `endpoint` is the collector's base URL, like
    /// `http://127.0.0.1:4318`; `/v1/traces` is appended unless the URL already ends with it.
    ///
    /// Must be called inside a tokio runtime: export requests run on it. Only `http://` is
    /// supported (no TLS in this build). The exporter also honours the standard
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_BSP_*`
    /// variables.
    pub fn otlp(endpoint: &str) -> Result<Tracer, TracingError> {
        let url = traces_url(endpoint)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| TracingError::NoRuntime)?;
        let client = http_client::TokioReqwestClient::new(runtime, REQUEST_TIMEOUT)
            .map_err(|e| TracingError::Exporter(e.to_string()))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| TracingError::Exporter(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_resource(resource())
            .with_id_generator(ids::XrayIdGenerator::default())
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .build();
        let tracer = provider.tracer_with_scope(
            InstrumentationScope::builder("gureum")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        Ok(Tracer {
            inner: Some(Arc::new(Exporting {
                provider,
                tracer,
                url,
            })),
        })
    }

    /// Whether spans are recorded and exported.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The full OTLP traces URL spans are sent to, when enabled.
    pub fn endpoint(&self) -> Option<&str> {
        self.inner.as_deref().map(|inner| inner.url.as_str())
    }

    /// A span for one invocation (name `invoke {function}`, kind server), child of the
    /// incoming W3C `traceparent` (+ `tracestate`) when it is valid, else a new root trace.
    /// It starts now; [`InvocationSpan::end`] ends it.
    ///
    /// Sampling is parent-based: a caller whose traceparent says "not sampled" (flags `00`)
    /// gets a non-recording span (new span id, same trace, not exported); every other
    /// invocation is recorded.
    pub fn invocation(
        &self,
        function: &str,
        version: u64,
        trigger: &str,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> InvocationSpan {
        let incoming = traceparent.and_then(|tp| {
            ids::parse_traceparent(tp, tracestate).map(|sc| Incoming {
                traceparent: tp.trim().to_owned(),
                tracestate: tracestate.map(str::to_owned),
                span_context: sc,
            })
        });
        let Some(inner) = &self.inner else {
            return InvocationSpan {
                incoming,
                recording: None,
            };
        };
        let parent = match &incoming {
            Some(incoming) => {
                Context::new().with_remote_span_context(incoming.span_context.clone())
            }
            None => Context::new(),
        };
        let start = SystemTime::now();
        let span = inner
            .tracer
            .span_builder(format!("invoke {function}"))
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("faas.name", function.to_owned()),
                KeyValue::new("faas.version", version.to_string()),
                KeyValue::new("faas.trigger", faas_trigger(trigger)),
                KeyValue::new("gureum.trigger", trigger.to_owned()),
            ])
            .start_with_context(&inner.tracer, &parent);
        InvocationSpan {
            incoming,
            recording: Some(Recording {
                span,
                start,
                started: Instant::now(),
            }),
        }
    }

    /// Records one deploy as a span named `deploy {function}` (a new trace) from `started`
    /// to now, with its outcome: status error with `error` as description when `ok` is false.
    pub fn deploy(
        &self,
        function: &str,
        version: Option<u64>,
        ok: bool,
        error: Option<&str>,
        started: SystemTime,
    ) {
        let Some(inner) = &self.inner else {
            return;
        };
        let mut attributes = vec![
            KeyValue::new("faas.name", function.to_owned()),
            KeyValue::new("gureum.deploy.outcome", if ok { "ok" } else { "error" }),
        ];
        if let Some(version) = version {
            attributes.push(KeyValue::new("faas.version", version.to_string()));
        }
        let mut span = inner
            .tracer
            .span_builder(format!("deploy {function}"))
            .with_kind(SpanKind::Internal)
            .with_start_time(started)
            .with_attributes(attributes)
            .start_with_context(&inner.tracer, &Context::new());
        if !ok {
            span.set_attribute(KeyValue::new("error.type", "deploy_failed"));
            span.set_status(Status::error(error.unwrap_or("deploy failed").to_owned()));
        }
        span.end();
    }

    /// Flushes the queued spans and stops the exporter, within 5 s; later spans are not
    /// exported. Safe to call more than once and on a disabled tracer. The SDK's shutdown
    /// blocks, so it runs on tokio's blocking pool.
    pub async fn shutdown(&self) {
        let Some(inner) = &self.inner else {
            return;
        };
        let provider = inner.provider.clone();
        let task =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
        match tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_millis(500), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "trace exporter shutdown incomplete"),
            Ok(Err(e)) => tracing::warn!(error = %e, "trace exporter shutdown task failed"),
            Err(_) => tracing::warn!("trace exporter shutdown timed out"),
        }
    }
}

/// A valid incoming W3C trace context.
struct Incoming {
    traceparent: String,
    tracestate: Option<String>,
    span_context: SpanContext,
}

/// The SDK span of an enabled tracer.
struct Recording {
    span: opentelemetry_sdk::trace::Span,
    /// Wall-clock start, as recorded on the span.
    start: SystemTime,
    /// Monotonic start, for the duration.
    started: Instant,
}

/// The span of one invocation; `Send + 'static`, so it can move into a spawned task.
///
/// Dropping it without [`InvocationSpan::end`] still ends (and exports) the span, without
/// the invocation's results.
pub struct InvocationSpan {
    incoming: Option<Incoming>,
    recording: Option<Recording>,
}

impl fmt::Debug for InvocationSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvocationSpan")
            .field("traceparent", &self.traceparent())
            .field("recording", &self.recording.is_some())
            .finish()
    }
}

impl InvocationSpan {
    /// This span's context when it is a real (valid) span. After the tracer's shutdown the SDK
    /// hands out invalid no-op spans; those count as no span.
    fn own_context(&self) -> Option<&SpanContext> {
        self.recording
            .as_ref()
            .map(|r| r.span.span_context())
            .filter(|sc| sc.is_valid())
    }

    /// The W3C `traceparent` the function should see, with this span as its parent
    /// (`00-{trace}-{span}-{flags}`). When tracing is disabled, the incoming valid
    /// traceparent unchanged, or `None` when there was none.
    pub fn traceparent(&self) -> Option<String> {
        match self.own_context() {
            Some(sc) => Some(ids::format_traceparent(sc)),
            None => self.incoming.as_ref().map(|i| i.traceparent.clone()),
        }
    }

    /// The W3C `tracestate` to pass on with [`InvocationSpan::traceparent`]: the incoming
    /// one (when valid and non-empty), or `None`.
    pub fn tracestate(&self) -> Option<String> {
        match self.own_context() {
            Some(sc) => Some(sc.trace_state().header()).filter(|s| !s.is_empty()),
            None => self
                .incoming
                .as_ref()
                .and_then(|i| i.tracestate.clone())
                .filter(|s| !s.trim().is_empty()),
        }
    }

    /// The same trace as an AWS X-Ray header value for Lambda
    /// (`Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled={0|1}`), for
    /// `Lambda-Runtime-Trace-Id` / `_X_AMZN_TRACE_ID`. The first 8 hex digits of the W3C trace
    /// id are the X-Ray epoch part. When tracing is disabled and there is no incoming trace, a
    /// fresh random one (current epoch, `Sampled=0`).
    pub fn xray_trace_id(&self) -> String {
        if let Some(sc) = self.own_context() {
            return ids::xray_header(sc.trace_id(), sc.span_id(), sc.is_sampled());
        }
        if let Some(incoming) = &self.incoming {
            let sc = &incoming.span_context;
            return ids::xray_header(sc.trace_id(), sc.span_id(), sc.is_sampled());
        }
        let ids = ids::XrayIdGenerator::default();
        ids::xray_header(ids.new_trace_id(), ids.new_span_id(), false)
    }

    /// Ends the span with the invocation's results (see [`InvocationAttrs`]). The span's
    /// status is error for a 5xx status, an `"error"` or `"timeout"` outcome, or an `error`
    /// message; a throttled (429) invocation keeps an unset status, like other 4xx. The end
    /// time is the start plus the monotonic time elapsed since [`Tracer::invocation`].
    pub fn end(self, attrs: InvocationAttrs) {
        let Some(Recording {
            mut span,
            start,
            started,
        }) = self.recording
        else {
            return;
        };
        let elapsed = started.elapsed();
        let max_memory_bytes = i64::from(attrs.memory_mb) * 1024 * 1024;
        span.set_attributes([
            KeyValue::new("faas.invocation_id", attrs.invocation_id),
            KeyValue::new("faas.coldstart", attrs.cold_start),
            KeyValue::new("faas.max_memory", max_memory_bytes),
            KeyValue::new("http.response.status_code", i64::from(attrs.status)),
            KeyValue::new("http.request.body.size", saturating_i64(attrs.bytes_in)),
            KeyValue::new("http.response.body.size", saturating_i64(attrs.bytes_out)),
            KeyValue::new("gureum.outcome", attrs.outcome),
            KeyValue::new(
                "gureum.duration_ms",
                saturating_i64(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
            ),
            KeyValue::new("gureum.billed_ms", saturating_i64(attrs.billed_ms)),
            KeyValue::new("gureum.memory_mb", i64::from(attrs.memory_mb)),
        ]);
        let server_error = attrs.status >= 500;
        let failed_outcome = matches!(attrs.outcome, "error" | "timeout");
        if server_error || failed_outcome || attrs.error.is_some() {
            let error_type: Cow<'static, str> = if attrs.outcome != "ok" {
                Cow::Borrowed(attrs.outcome)
            } else if server_error {
                Cow::Owned(attrs.status.to_string())
            } else {
                Cow::Borrowed("error")
            };
            let description = attrs
                .error
                .unwrap_or_else(|| format!("{} (status {})", attrs.outcome, attrs.status));
            span.set_attribute(KeyValue::new("error.type", error_type));
            span.set_status(Status::error(description));
        }
        span.end_with_timestamp(start + elapsed);
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The results of one invocation, recorded by [`InvocationSpan::end`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationAttrs {
    /// The invocation id (`faas.invocation_id`).
    pub invocation_id: String,
    /// The HTTP status returned to the caller (`http.response.status_code`).
    pub status: u16,
    /// `"ok"`, `"error"`, `"timeout"` or `"throttled"` (`gureum.outcome`).
    pub outcome: &'static str,
    /// Whether the invocation started a new instance (`faas.coldstart`).
    pub cold_start: bool,
    /// Billed duration in milliseconds (`gureum.billed_ms`).
    pub billed_ms: u64,
    /// Memory size of the function in MB (`gureum.memory_mb`; `faas.max_memory` in bytes).
    pub memory_mb: u32,
    /// Request body size in bytes (`http.request.body.size`).
    pub bytes_in: u64,
    /// Response body size in bytes (`http.response.body.size`).
    pub bytes_out: u64,
    /// The error message of a failed invocation (the span status description).
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn assert_send_static<T: Send + 'static>() {}

    #[test]
    fn spans_can_move_into_tasks() {
        assert_send_static::<InvocationSpan>();
        assert_send_static::<Tracer>();
    }

    #[test]
    fn endpoint_urls() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://127.0.0.1:4318/").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector/otlp").unwrap(),
            "http://collector/otlp/v1/traces"
        );
        assert!(matches!(
            traces_url("https://collector:4318"),
            Err(TracingError::HttpsUnsupported(_))
        ));
        for bad in ["", "collector:4318", "ftp://x", "http://", "http://x/?a=b"] {
            assert!(
                matches!(traces_url(bad), Err(TracingError::InvalidEndpoint { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn trigger_mapping() {
        assert_eq!(faas_trigger("http"), "http");
        assert_eq!(faas_trigger("api"), "http");
        assert_eq!(faas_trigger("cron"), "timer");
        assert_eq!(faas_trigger("queue"), "pubsub");
        assert_eq!(faas_trigger("websocket"), "other");
        assert_eq!(faas_trigger("something-new"), "other");
    }

    #[test]
    fn otlp_needs_a_runtime() {
        assert!(matches!(
            Tracer::otlp("http://127.0.0.1:4318"),
            Err(TracingError::NoRuntime)
        ));
    }

    #[test]
    fn disabled_tracer_passes_the_incoming_traceparent_through() {
        let tracer = Tracer::disabled();
        assert!(!tracer.is_enabled());
        assert!(tracer.endpoint().is_none());
        assert!(format!("{tracer:?}").contains("disabled"));

        let span = tracer.invocation("hello", 1, "http", Some(INCOMING), Some("k=v"));
        assert!(
            span.recording.is_none(),
            "a disabled tracer records nothing"
        );
        assert_eq!(span.traceparent().as_deref(), Some(INCOMING));
        assert_eq!(span.tracestate().as_deref(), Some("k=v"));
        assert_eq!(
            span.xray_trace_id(),
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        span.end(attrs());

        // No incoming trace: no traceparent, but always an X-Ray id (Lambda always gives one).
        let span = tracer.invocation("hello", 1, "http", None, None);
        assert_eq!(span.traceparent(), None);
        assert_eq!(span.tracestate(), None);
        let xray = span.xray_trace_id();
        assert_xray_shape(&xray);
        assert_ne!(xray, span.xray_trace_id(), "fresh each time");

        // An invalid incoming traceparent is not passed on.
        let span = tracer.invocation("hello", 1, "http", Some("00-bogus-01"), None);
        assert_eq!(span.traceparent(), None);
        assert_xray_shape(&span.xray_trace_id());

        tracer.deploy("hello", Some(1), true, None, SystemTime::now());
    }

    fn assert_xray_shape(xray: &str) {
        let rest = xray.strip_prefix("Root=1-").expect(xray);
        let (root, rest) = rest.split_once(";Parent=").expect(xray);
        let (parent, sampled) = rest.split_once(";Sampled=").expect(xray);
        let (epoch, unique) = root.split_once('-').expect(xray);
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(
            hex(epoch, 8) && hex(unique, 24) && hex(parent, 16),
            "{xray}"
        );
        assert!(sampled == "0" || sampled == "1", "{xray}");
    }

    fn attrs() -> InvocationAttrs {
        InvocationAttrs {
            invocation_id: "inv-1".into(),
            status: 200,
            outcome: "ok",
            cold_start: true,
            billed_ms: 10,
            memory_mb: 128,
            bytes_in: 1,
            bytes_out: 2,
            error: None,
        }
    }

    /// An enabled tracer whose collector never answers: spans are still created locally.
    async fn unreachable_tracer() -> Tracer {
        // Port 9 (discard) on loopback: nothing listens, exports fail fast.
        Tracer::otlp("http://127.0.0.1:9").expect("tracer")
    }

    #[tokio::test]
    async fn child_span_keeps_the_trace_and_gets_a_new_span_id() {
        let tracer = unreachable_tracer().await;
        assert!(tracer.is_enabled());
        assert_eq!(tracer.endpoint(), Some("http://127.0.0.1:9/v1/traces"));

        let span = tracer.invocation("hello", 3, "api", Some(INCOMING), Some("k=v"));
        let tp = span.traceparent().expect("traceparent");
        let child = ids::parse_traceparent(&tp, None).expect("valid traceparent out");
        assert_eq!(
            child.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_ne!(child.span_id().to_string(), "00f067aa0ba902b7");
        assert!(child.is_sampled());
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(tp.ends_with("-01"));
        assert_eq!(span.tracestate().as_deref(), Some("k=v"));
        assert_eq!(
            span.xray_trace_id(),
            format!(
                "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent={};Sampled=1",
                child.span_id()
            )
        );
        span.end(attrs());
        tracer.shutdown().await;
        tracer.shutdown().await; // twice is fine
    }

    #[tokio::test]
    async fn an_unsampled_caller_is_respected() {
        let tracer = unreachable_tracer().await;
        let span = tracer.invocation(
            "hello",
            1,
            "http",
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            None,
        );
        assert!(!span.recording.as_ref().unwrap().span.is_recording());
        let tp = span.traceparent().expect("traceparent");
        assert!(
            tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{tp}"
        );
        assert!(tp.ends_with("-00"), "{tp}");
        assert!(!tp.contains("00f067aa0ba902b7"), "{tp}");
        assert!(span.xray_trace_id().ends_with(";Sampled=0"));
        span.end(attrs());
        tracer.shutdown().await;
    }

    #[tokio::test]
    async fn invalid_traceparent_starts_a_new_root() {
        let tracer = unreachable_tracer().await;
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", // too few fields
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
            "00-00000000000000000000000000000000-0000000000000000-01", // all zero
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01", // bad length
        ] {
            let span = tracer.invocation("hello", 1, "http", Some(bad), None);
            let tp = span.traceparent().expect("a root span has a traceparent");
            let sc = ids::parse_traceparent(&tp, None).expect("valid");
            assert_ne!(
                sc.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            assert!(sc.is_sampled());
            assert_xray_shape(&span.xray_trace_id());
            // A root trace id starts with the current epoch (valid for X-Ray).
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let epoch = u64::from_str_radix(&sc.trace_id().to_string()[..8], 16).unwrap();
            assert!(epoch.abs_diff(now) <= 2);
        }
        let root = tracer.invocation("hello", 1, "http", None, None);
        assert!(root.traceparent().is_some());
        assert_eq!(root.tracestate(), None);
        tracer.shutdown().await;
    }

    #[tokio::test]
    async fn after_shutdown_spans_fall_back_to_passthrough() {
        let tracer = unreachable_tracer().await;
        tracer.shutdown().await;
        let span = tracer.invocation("hello", 1, "http", Some(INCOMING), None);
        assert_eq!(span.traceparent().as_deref(), Some(INCOMING));
        let span = tracer.invocation("hello", 1, "http", None, None);
        assert_eq!(span.traceparent(), None);
        assert_xray_shape(&span.xray_trace_id());
    }
}
