//! What each invocation leaves behind: its record, log lines, metrics, span and quota
//! usage, handed to telemetry off the request path; refusals (429) are accounted too.
//!
//! In order (`Finish`): when the handler returns, the instance goes back to its pool, or
//! is dropped after any failure (`release_to`). The metrics are counted, this month's
//! quota usage grows by the billed MB-ms, and the log lines go to telemetry. Once the
//! response body is done (ended or dropped, so the bytes sent are known), the invocation
//! record (billed ms, bytes in and out, trigger) goes to telemetry and the span ends.
//! Telemetry never makes a record wait: a full channel folds it into the overflow
//! roll-up. With metering off only the log lines go.
//!
//! Accounting that has to wait runs in tasks the invoker tracks.
//! [`crate::Invoker::finish_accounting`] waits for them at shutdown, so every answered
//! request has handed its record over before telemetry flushes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gureum_model::{InvocationOutcome, InvocationRecord, LogLine, LogStream, Trigger};
use gureum_pool::{InstancePool, Lease, PoolError};
use gureum_runtime_wasm::Failure;
use gureum_telemetry::Telemetry;
use gureum_tracing::{InvocationAttrs, InvocationSpan};
use http_body_util::BodyExt as _;

use crate::Quotas;
use crate::{Answer, InvokeError, LoadedVersion, ResponseBody};
use tokio_util::task::TaskTracker;

/// One request on its way through the invoker.
pub(crate) struct Call {
    pub(crate) invocation_id: String,
    pub(crate) started: Instant,
    pub(crate) started_at_ms: i64,
    pub(crate) cold_start: bool,
    pub(crate) trigger: Trigger,
    pub(crate) span: Option<InvocationSpan>,
    pub(crate) meter: Meter,
    /// Run when the response body is done (ended or dropped), instead of signalling
    /// the accounting task: the accounting of a handler that already finished.
    pub(crate) at_body_end: Option<Box<dyn FnOnce() + Send>>,
}

/// Runs its closure when dropped: held by the response body, so it runs when the body
/// is done, however it ends.
pub(crate) struct AtDrop(pub(crate) Option<Box<dyn FnOnce() + Send>>);
impl Drop for AtDrop {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run();
        }
    }
}

/// Body bytes in and out of one invocation, and the signal that its response body is
/// done (ended or dropped), after which the record can say how many bytes went out.
pub(crate) struct Meter {
    pub(crate) bytes_in: Arc<AtomicU64>,
    pub(crate) bytes_out: Arc<AtomicU64>,
    pub(crate) body_end: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) body_done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Meter {
    pub(crate) fn counting() -> Self {
        let (end, done) = tokio::sync::oneshot::channel();
        Self {
            bytes_in: Arc::default(),
            bytes_out: Arc::default(),
            body_end: Some(end),
            body_done: Some(done),
        }
    }

    /// Counts nothing and waits for nothing (metering off).
    pub(crate) fn off() -> Self {
        Self {
            bytes_in: Arc::default(),
            bytes_out: Arc::default(),
            body_end: None,
            body_done: None,
        }
    }
}

impl Call {
    /// Sets the W3C trace headers the function sees: the invocation's span as parent.
    pub(crate) fn propagate_trace(&self, headers: &mut http::HeaderMap) {
        let Some(span) = &self.span else { return };
        if let Some(value) = span
            .traceparent()
            .and_then(|value| http::HeaderValue::from_str(&value).ok())
        {
            headers.insert("traceparent", value);
        }
        if let Some(value) = span
            .tracestate()
            .and_then(|value| http::HeaderValue::from_str(&value).ok())
        {
            headers.insert("tracestate", value);
        }
    }

    pub(crate) fn answer(
        mut self,
        loaded: &LoadedVersion,
        response: Result<http::Response<ResponseBody>, InvokeError>,
    ) -> Answer {
        // No body: nothing to wait for.
        if response.is_err()
            && let Some(run) = self.at_body_end.take()
        {
            run();
        }
        // The response body counts what it sends and, when it is dropped, releases the
        // accounting that waits for it (or runs it).
        let response = response.map(|response| {
            let counted = self.meter.bytes_out.clone();
            let end = match (self.at_body_end.take(), self.meter.body_end.take()) {
                (Some(run), _) => AtDrop(Some(run)),
                (None, Some(end)) => AtDrop(Some(Box::new(move || drop(end)))),
                (None, None) => return response,
            };
            response.map(move |body| {
                body.map_frame(move |frame| {
                    let _keep_until_dropped = &end;
                    if let Some(data) = frame.data_ref() {
                        counted.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    frame
                })
                .boxed_unsync()
            })
        });
        Answer {
            invocation_id: self.invocation_id,
            version: loaded.version,
            cold_start: self.cold_start,
            response,
        }
    }
}

/// The accounting of one invocation, run after the function is done with it: metrics,
/// the log lines it produced, a platform line for a failure, the invocation record (once
/// the response body is done, to know the bytes sent), this month's quota usage and the
/// trace span.
pub(crate) struct Finish {
    pub(crate) metering: bool,
    pub(crate) telemetry: Telemetry,
    pub(crate) quotas: Arc<Quotas>,
    pub(crate) loaded: Arc<LoadedVersion>,
    pub(crate) id: String,
    pub(crate) started: Instant,
    pub(crate) started_at_ms: i64,
    pub(crate) cold_start: bool,
    pub(crate) trigger: Trigger,
    pub(crate) status: u16,
    pub(crate) span: Option<InvocationSpan>,
    pub(crate) bytes_in: Arc<AtomicU64>,
    pub(crate) bytes_out: Arc<AtomicU64>,
    pub(crate) body_done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Finish {
    /// Accounts the invocation from a task of its own: waits for room for the log lines
    /// and for the response body's end.
    pub(crate) async fn run(
        mut self,
        outcome: InvocationOutcome,
        lines: impl Iterator<Item = (LogStream, i64, String)>,
        failure: Option<String>,
    ) {
        let duration = self.started.elapsed();
        let lines = self.log_lines(lines, failure.as_deref());
        self.count(outcome, duration);
        self.telemetry.logs(lines).await;
        if !self.metering {
            return;
        }
        if let Some(done) = self.body_done.take() {
            let _ = done.await;
        }
        self.record(outcome, duration, failure);
    }

    /// Accounts the invocation right here, without a task: for a handler that finished
    /// before its response was handed over, called when the response body is done (or
    /// at once with metering off). Log lines that find the telemetry channel full are
    /// sent from a tracked task instead.
    pub(crate) fn run_now(
        self,
        outcome: InvocationOutcome,
        duration: Duration,
        lines: impl Iterator<Item = (LogStream, i64, String)>,
        failure: Option<String>,
        tracker: &TaskTracker,
    ) {
        let lines = self.log_lines(lines, failure.as_deref());
        self.count(outcome, duration);
        let unsent = self.telemetry.try_logs(lines);
        if !unsent.is_empty() {
            let telemetry = self.telemetry.clone();
            tracker.spawn(async move { telemetry.logs(unsent).await });
        }
        if self.metering {
            self.record(outcome, duration, failure);
        }
    }

    /// The function's lines, and a platform line for a failure.
    pub(crate) fn log_lines(
        &self,
        lines: impl Iterator<Item = (LogStream, i64, String)>,
        failure: Option<&str>,
    ) -> Vec<LogLine> {
        let loaded = &self.loaded;
        let line = |stream, ts_ms, message| LogLine {
            seq: 0,
            invocation_id: self.id.clone(),
            function: loaded.function.clone(),
            version: loaded.version,
            ts_ms,
            stream,
            message,
        };
        let mut lines: Vec<LogLine> = lines
            .map(|(stream, ts_ms, message)| line(stream, ts_ms, message))
            .collect();
        if let Some(failure) = failure {
            lines.push(line(
                LogStream::Platform,
                gureum_model::now_ms(),
                failure.to_string(),
            ));
        }
        lines
    }

    /// Metrics of the invocation, and this month's quota usage: counted at once (quotas
    /// must not lag behind a slow client).
    pub(crate) fn count(&self, outcome: InvocationOutcome, duration: Duration) {
        if !self.metering {
            return;
        }
        let loaded = &self.loaded;
        let metrics = &loaded.metrics;
        metrics.invocations(self.status, outcome).inc();
        if outcome.is_failure() {
            metrics.errors.inc();
        }
        metrics.duration.observe(duration.as_secs_f64());
        let billed_ms = gureum_model::billed_ms(duration.as_micros() as u64);
        self.quotas.record(
            &loaded.function,
            billed_ms * u64::from(loaded.spec.limits.memory_mb),
        );
    }

    /// The invocation record (once the response body is done, so it can say how many
    /// bytes went out) and the trace span.
    pub(crate) fn record(
        self,
        outcome: InvocationOutcome,
        duration: Duration,
        failure: Option<String>,
    ) {
        let loaded = &self.loaded;
        let metrics = &loaded.metrics;
        let billed_ms = gureum_model::billed_ms(duration.as_micros() as u64);
        let memory_mb = loaded.spec.limits.memory_mb;
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let bytes_out = self.bytes_out.load(Ordering::Relaxed);
        metrics.request_bytes.inc_by(bytes_in);
        metrics.response_bytes.inc_by(bytes_out);
        self.telemetry.invocation(InvocationRecord {
            id: self.id.clone(),
            function: loaded.function.clone(),
            version: loaded.version,
            started_at_ms: self.started_at_ms,
            duration_us: duration.as_micros() as i64,
            status: self.status,
            outcome,
            cold_start: self.cold_start,
            memory_mb,
            trigger: self.trigger,
            billed_ms: billed_ms as i64,
            bytes_in: bytes_in as i64,
            bytes_out: bytes_out as i64,
        });
        if let Some(span) = self.span {
            span.end(InvocationAttrs {
                invocation_id: self.id,
                status: self.status,
                outcome: outcome.as_str(),
                cold_start: self.cold_start,
                billed_ms,
                memory_mb,
                bytes_in,
                bytes_out,
                error: failure,
            });
        }
    }
}

/// A wasm handler's end as the accounting needs it: outcome, log lines, failure text.
pub(crate) fn completion_parts(
    done: gureum_runtime_wasm::Completion,
) -> (
    InvocationOutcome,
    impl Iterator<Item = (LogStream, i64, String)>,
    Option<String>,
) {
    let outcome = match &done.failure {
        None => InvocationOutcome::Ok,
        Some(Failure::Timeout { .. }) => InvocationOutcome::Timeout,
        Some(_) => InvocationOutcome::Error,
    };
    let failure = done
        .failure
        .as_ref()
        .map(|failure| failure_error(failure).to_string());
    let lines = done
        .lines
        .into_iter()
        .map(|line| (line.stream, line.ts_ms, line.message));
    (outcome, lines, failure)
}

/// A callback that hands an instance back to its pool and then signals `released`
/// (which holds the response's end, see [`body::HoldEnd`]).
pub(crate) fn release_to<I: Send + 'static>(
    loaded: Arc<LoadedVersion>,
    lease: Lease<I>,
    pool: fn(&LoadedVersion) -> &InstancePool<I>,
) -> (
    impl FnOnce(Option<I>) + Send + 'static,
    tokio::sync::oneshot::Receiver<()>,
) {
    let (sender, released) = tokio::sync::oneshot::channel();
    let release = move |instance| {
        pool(&loaded).release(lease, instance);
        let _ = sender.send(());
    };
    (release, released)
}

pub(crate) fn status_of<T>(response: &Result<http::Response<T>, InvokeError>) -> u16 {
    match response {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.status(),
    }
}

pub(crate) fn failure_error(failure: &Failure) -> InvokeError {
    match failure {
        Failure::Timeout { timeout_ms } => InvokeError::Timeout {
            timeout_ms: *timeout_ms,
        },
        Failure::MemoryLimit { memory_mb } => InvokeError::MemoryLimit {
            memory_mb: *memory_mb,
        },
        Failure::Trap(message) => InvokeError::FunctionError(message.clone()),
        Failure::NoResponse => {
            InvokeError::FunctionError("the handler returned without setting a response".into())
        }
        Failure::GuestError(code) => {
            InvokeError::FunctionError(format!("the handler answered with error {code}"))
        }
    }
}

impl crate::Invoker {
    pub(crate) fn refuse(
        &self,
        loaded: &LoadedVersion,
        mut call: Call,
        throttled: PoolError,
    ) -> Answer {
        loaded.metrics.concurrency_rejections.inc();
        if !self.parts.metering {
            return call.answer(loaded, Err(InvokeError::Throttled(throttled)));
        }
        self.parts.quotas.refund(&loaded.function);
        loaded
            .metrics
            .invocations(429, InvocationOutcome::Throttled)
            .inc();
        self.parts.telemetry.invocation(InvocationRecord {
            id: call.invocation_id.clone(),
            function: loaded.function.clone(),
            version: loaded.version,
            started_at_ms: call.started_at_ms,
            duration_us: call.started.elapsed().as_micros() as i64,
            status: 429,
            outcome: InvocationOutcome::Throttled,
            cold_start: false,
            memory_mb: loaded.spec.limits.memory_mb,
            trigger: call.trigger,
            billed_ms: 0,
            bytes_in: 0,
            bytes_out: 0,
        });
        if let Some(span) = call.span.take() {
            span.end(InvocationAttrs {
                invocation_id: call.invocation_id.clone(),
                status: 429,
                outcome: InvocationOutcome::Throttled.as_str(),
                cold_start: false,
                billed_ms: 0,
                memory_mb: loaded.spec.limits.memory_mb,
                bytes_in: 0,
                bytes_out: 0,
                error: Some(throttled.to_string()),
            });
        }
        call.answer(loaded, Err(InvokeError::Throttled(throttled)))
    }

    /// What the accounting of one invocation needs once the function is done. Takes the
    /// call's trace span and the signal of its response body's end.
    /// A request whose instance could not be started (wasm instantiation, a process
    /// that did not come up): its pool slot goes back, it is accounted like any failed
    /// invocation (an error record, no log lines), and the answer says why.
    pub(crate) fn failed_to_start<I: Send + 'static>(
        &self,
        loaded: &Arc<LoadedVersion>,
        mut call: Call,
        pool: &InstancePool<I>,
        lease: Lease<I>,
        error: InvokeError,
    ) -> Answer {
        pool.release(lease, None);
        let finish = self.finisher(loaded, &mut call, error.status());
        let message = error.to_string();
        self.accounting.spawn(finish.run(
            InvocationOutcome::Error,
            std::iter::empty(),
            Some(message),
        ));
        call.answer(loaded, Err(error))
    }

    pub(crate) fn finisher(
        &self,
        loaded: &Arc<LoadedVersion>,
        call: &mut Call,
        status: u16,
    ) -> Finish {
        Finish {
            metering: self.parts.metering,
            telemetry: self.parts.telemetry.clone(),
            quotas: self.parts.quotas.clone(),
            loaded: loaded.clone(),
            id: call.invocation_id.clone(),
            started: call.started,
            started_at_ms: call.started_at_ms,
            cold_start: call.cold_start,
            trigger: call.trigger,
            status,
            span: call.span.take(),
            bytes_in: call.meter.bytes_in.clone(),
            bytes_out: call.meter.bytes_out.clone(),
            body_done: call.meter.body_done.take(),
        }
    }
}
