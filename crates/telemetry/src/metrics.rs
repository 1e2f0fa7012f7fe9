//! Prometheus metrics of the platform, labelled by function and version.
//!
//! Counters and histograms are updated on the request path through handles resolved once
//! per loaded version; gauges of the instance pools (warm, busy, queued) are read only
//! when `/metrics` is scraped, from a [`PoolStats`] source the invoker registers, so they
//! cost the request path nothing. Process metrics come from `/proc/self`.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::process;

/// Labels of per-version series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    /// Function name.
    pub function: String,
    /// Version number.
    pub version: String,
}

/// Labels of invocation counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    /// Function name.
    pub function: String,
    /// Version number.
    pub version: String,
    /// HTTP status returned to the caller.
    pub status: String,
    /// `ok`, `error`, `timeout` or `throttled`.
    pub outcome: String,
}

/// Labels of refusals before running.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    /// Function name.
    pub function: String,
    /// `concurrency` (max_instances and its queue full) or `quota` (a monthly cap).
    pub reason: String,
}

/// Labels of quota series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabels {
    /// `global` or the function's name.
    pub scope: String,
    /// `requests`, `gb_seconds` or `cost`.
    pub kind: String,
}

/// Labels of the WebSocket metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebSocketLabels {
    /// The function whose `/ws/NAME` the connection opened.
    pub function: String,
}

/// Labels of the asynchronous queue's gauges.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// The function whose queue it is.
    pub function: String,
}

/// Labels of the asynchronous queue's event counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueEventLabels {
    /// The function.
    pub function: String,
    /// enqueued, succeeded, retried, throttled, dead_lettered or rejected (queue full).
    pub result: String,
}

/// The pool of one loaded version, as seen at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSample {
    /// Function name.
    pub function: String,
    /// Version number.
    pub version: u32,
    /// Idle warm instances.
    pub warm: u64,
    /// Instances running an invocation right now.
    pub busy: u64,
    /// Requests waiting for a free slot.
    pub waiting: u64,
}

/// Where the pool gauges come from (the invoker).
pub trait PoolStats: Send + Sync {
    /// One sample per loaded version.
    fn pool_samples(&self) -> Vec<PoolSample>;
}

/// Every metric the platform exports.
pub struct Metrics {
    registry: Registry,
    /// Invocations by function, version, status and outcome.
    pub invocations: Family<InvocationLabels, Counter>,
    /// Invocations that failed or timed out.
    pub errors: Family<FunctionLabels, Counter>,
    /// Invocation wall time in seconds.
    pub duration_seconds: Family<FunctionLabels, Histogram>,
    /// Invocations that had to create an instance or load code.
    pub cold_starts: Family<FunctionLabels, Counter>,
    /// Request body bytes given to functions.
    pub request_bytes: Family<FunctionLabels, Counter>,
    /// Response body bytes sent back.
    pub response_bytes: Family<FunctionLabels, Counter>,
    /// Requests refused before running.
    pub rejections: Family<RejectionLabels, Counter>,
    /// Components compiled from source (not loaded from the compiled cache).
    pub compilations: Counter,
    /// Components loaded from the compiled-code cache.
    pub cache_loads: Counter,
    /// Invocation records that found the telemetry buffer full (usage kept, row not).
    pub records_overflowed: Counter,
    /// Share of a monthly quota used (1.0 = at the cap).
    pub quota_used_ratio: Family<QuotaLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Times a quota crossed its warning threshold.
    pub quota_warnings: Family<QuotaLabels, Counter>,
    /// WebSocket connections open now, per function.
    pub websocket_connections: Family<WebSocketLabels, Gauge>,
    /// WebSocket messages received from clients.
    pub websocket_messages_in: Family<WebSocketLabels, Counter>,
    /// WebSocket messages sent to clients.
    pub websocket_messages_out: Family<WebSocketLabels, Counter>,
    /// WebSocket connections closed because their send queue was full (1013).
    pub websocket_slow_consumers: Family<WebSocketLabels, Counter>,
    /// Events waiting or running in each function's asynchronous queue (all nodes).
    pub queue_depth_events: Family<QueueLabels, Gauge>,
    /// Age of the oldest event in each function's queue.
    pub queue_oldest_age_seconds: Family<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// What happened to asynchronous events on this node.
    pub queue_events: Family<QueueEventLabels, Counter>,
    pools: Arc<Mutex<Option<Arc<dyn PoolStats>>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        // Process metrics keep their conventional unprefixed names.
        let mut registry = Registry::default();
        registry.register_collector(Box::new(process::ProcessCollector));
        let pools: Arc<Mutex<Option<Arc<dyn PoolStats>>>> = Arc::default();
        let gureum = registry.sub_registry_with_prefix("gureum");
        gureum.register_collector(Box::new(PoolCollector {
            source: pools.clone(),
        }));

        let invocations = Family::<InvocationLabels, Counter>::default();
        gureum.register(
            "invocations",
            "Function invocations by status and outcome",
            invocations.clone(),
        );
        let errors = Family::<FunctionLabels, Counter>::default();
        gureum.register(
            "invocation_errors",
            "Invocations that failed (trap, crash, error answer) or timed out",
            errors.clone(),
        );
        let duration_seconds = Family::<FunctionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ])
        });
        gureum.register_with_unit(
            "invocation_duration",
            "Invocation wall time",
            Unit::Seconds,
            duration_seconds.clone(),
        );
        let cold_starts = Family::<FunctionLabels, Counter>::default();
        gureum.register(
            "cold_starts",
            "Invocations that created an instance or loaded code",
            cold_starts.clone(),
        );
        let request_bytes = Family::<FunctionLabels, Counter>::default();
        gureum.register_with_unit(
            "request_body",
            "Request body bytes given to functions",
            Unit::Bytes,
            request_bytes.clone(),
        );
        let response_bytes = Family::<FunctionLabels, Counter>::default();
        gureum.register_with_unit(
            "response_body",
            "Response body bytes sent back by functions",
            Unit::Bytes,
            response_bytes.clone(),
        );
        let rejections = Family::<RejectionLabels, Counter>::default();
        gureum.register(
            "rejections",
            "Requests refused before running: concurrency limit or quota",
            rejections.clone(),
        );
        let compilations = Counter::default();
        gureum.register(
            "wasm_compilations",
            "Components compiled to machine code",
            compilations.clone(),
        );
        let cache_loads = Counter::default();
        gureum.register(
            "wasm_cache_loads",
            "Components loaded from the compiled-code cache",
            cache_loads.clone(),
        );
        let records_overflowed = Counter::default();
        gureum.register(
            "invocation_records_overflowed",
            "Invocation records that found the write buffer full (their usage is still counted)",
            records_overflowed.clone(),
        );
        let quota_used_ratio = Family::default();
        gureum.register(
            "quota_used_ratio",
            "Share of a monthly quota used this month (1 = at the cap)",
            quota_used_ratio.clone(),
        );
        let quota_warnings = Family::<QuotaLabels, Counter>::default();
        gureum.register(
            "quota_warnings",
            "Times a monthly quota crossed its warning threshold",
            quota_warnings.clone(),
        );
        let websocket_connections = Family::<WebSocketLabels, Gauge>::default();
        gureum.register(
            "websocket_connections",
            "WebSocket connections open on this node",
            websocket_connections.clone(),
        );
        let websocket_messages_in = Family::<WebSocketLabels, Counter>::default();
        gureum.register(
            "websocket_messages_in",
            "WebSocket messages received from clients",
            websocket_messages_in.clone(),
        );
        let websocket_messages_out = Family::<WebSocketLabels, Counter>::default();
        gureum.register(
            "websocket_messages_out",
            "WebSocket messages sent to clients",
            websocket_messages_out.clone(),
        );
        let websocket_slow_consumers = Family::<WebSocketLabels, Counter>::default();
        gureum.register(
            "websocket_slow_consumers",
            "WebSocket connections closed (1013) because they did not read fast enough",
            websocket_slow_consumers.clone(),
        );
        let queue_depth_events = Family::<QueueLabels, Gauge>::default();
        gureum.register(
            "async_queue_depth",
            "Asynchronous events waiting or running, per function (whole cluster)",
            queue_depth_events.clone(),
        );
        let queue_oldest_age_seconds =
            Family::<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        gureum.register(
            "async_oldest_event_age_seconds",
            "Age of the oldest queued asynchronous event, per function",
            queue_oldest_age_seconds.clone(),
        );
        let queue_events = Family::<QueueEventLabels, Counter>::default();
        gureum.register(
            "async_events",
            "Asynchronous events by what happened to them on this node",
            queue_events.clone(),
        );
        Self {
            registry,
            queue_depth_events,
            queue_oldest_age_seconds,
            queue_events,
            websocket_connections,
            websocket_messages_in,
            websocket_messages_out,
            websocket_slow_consumers,
            invocations,
            errors,
            duration_seconds,
            cold_starts,
            request_bytes,
            response_bytes,
            rejections,
            compilations,
            cache_loads,
            records_overflowed,
            quota_used_ratio,
            quota_warnings,
            pools,
        }
    }

    /// Sets where the pool gauges (warm, busy, waiting) are read from at scrape time.
    pub fn set_pool_stats(&self, source: Arc<dyn PoolStats>) {
        *self
            .pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(source);
    }

    /// The Prometheus (OpenMetrics) text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Pool gauges, sampled from the invoker at scrape time.
#[derive(Debug)]
struct PoolCollector {
    source: Arc<Mutex<Option<Arc<dyn PoolStats>>>>,
}

impl std::fmt::Debug for dyn PoolStats {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PoolStats")
    }
}

/// Reads one gauge's value out of a pool sample.
type SampleField = fn(&PoolSample) -> u64;

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let source = self
            .source
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let samples = source
            .map(|source| source.pool_samples())
            .unwrap_or_default();
        let gauges: [(&str, &str, SampleField); 3] = [
            (
                "warm_instances",
                "Idle warm instances kept per version",
                |sample| sample.warm,
            ),
            (
                "in_flight",
                "Invocations running right now per version",
                |sample| sample.busy,
            ),
            (
                "queue_depth",
                "Requests waiting for a free instance slot per version",
                |sample| sample.waiting,
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for sample in &samples {
                let labels = FunctionLabels {
                    function: sample.function.clone(),
                    version: sample.version.to_string(),
                };
                let metric = family.encode_family(&labels)?;
                ConstGauge::new(value(sample) as i64).encode(metric)?;
            }
        }
        Ok(())
    }
}
