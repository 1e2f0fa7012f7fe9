//! Prometheus metrics of the platform, labelled by function.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of per-function series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    /// Function name.
    pub function: String,
}

/// Labels of per-function, per-outcome series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Function name.
    pub function: String,
    /// `ok`, `error`, `timeout` or `throttled`.
    pub outcome: String,
}

/// Every metric the platform exports.
pub struct Metrics {
    registry: Registry,
    /// Invocations by function and outcome.
    pub invocations: Family<OutcomeLabels, Counter>,
    /// Invocation wall time in seconds.
    pub duration_seconds: Family<FunctionLabels, Histogram>,
    /// Invocations that had to create an instance or load code.
    pub cold_starts: Family<FunctionLabels, Counter>,
    /// Components compiled from source (not loaded from the compiled cache).
    pub compilations: Counter,
    /// Components loaded from the compiled-code cache.
    pub cache_loads: Counter,
    /// Warm instances currently kept.
    pub warm_instances: Family<FunctionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gureum");
        let invocations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "invocations",
            "Function invocations by outcome",
            invocations.clone(),
        );
        let duration_seconds = Family::<FunctionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "invocation_duration_seconds",
            "Invocation wall time",
            duration_seconds.clone(),
        );
        let cold_starts = Family::<FunctionLabels, Counter>::default();
        registry.register(
            "cold_starts",
            "Invocations that created an instance or loaded code",
            cold_starts.clone(),
        );
        let compilations = Counter::default();
        registry.register(
            "wasm_compilations",
            "Components compiled to machine code",
            compilations.clone(),
        );
        let cache_loads = Counter::default();
        registry.register(
            "wasm_cache_loads",
            "Components loaded from the compiled-code cache",
            cache_loads.clone(),
        );
        let warm_instances = Family::<FunctionLabels, Gauge>::default();
        registry.register(
            "warm_instances",
            "Warm instances kept per function",
            warm_instances.clone(),
        );
        Self {
            registry,
            invocations,
            duration_seconds,
            cold_starts,
            compilations,
            cache_loads,
            warm_instances,
        }
    }

    /// The Prometheus (OpenMetrics) text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
