//! Metric handles of one loaded version, resolved once when it loads so the request path
//! neither looks up nor allocates label sets; per-status counters are created on first
//! use and then found in a short list.

use std::sync::RwLock;

use gureum_model::{InvocationOutcome, VersionNumber};
use gureum_telemetry::{FunctionLabels, InvocationLabels, Metrics, RejectionLabels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

pub(crate) struct VersionMetrics {
    function: String,
    version: String,
    family: Family<InvocationLabels, Counter>,
    by_status: RwLock<Vec<(u16, InvocationOutcome, Counter)>>,
    pub(crate) errors: Counter,
    pub(crate) cold_starts: Counter,
    pub(crate) duration: Histogram,
    pub(crate) request_bytes: Counter,
    pub(crate) response_bytes: Counter,
    pub(crate) concurrency_rejections: Counter,
}

impl VersionMetrics {
    pub(crate) fn new(metrics: &Metrics, function: &str, version: VersionNumber) -> Self {
        let labels = FunctionLabels {
            function: function.to_string(),
            version: version.to_string(),
        };
        Self {
            function: function.to_string(),
            version: version.to_string(),
            family: metrics.invocations.clone(),
            by_status: RwLock::new(Vec::new()),
            errors: metrics.errors.get_or_create(&labels).clone(),
            cold_starts: metrics.cold_starts.get_or_create(&labels).clone(),
            duration: metrics.duration_seconds.get_or_create(&labels).clone(),
            request_bytes: metrics.request_bytes.get_or_create(&labels).clone(),
            response_bytes: metrics.response_bytes.get_or_create(&labels).clone(),
            concurrency_rejections: metrics
                .rejections
                .get_or_create(&RejectionLabels {
                    function: function.to_string(),
                    reason: "concurrency".into(),
                })
                .clone(),
        }
    }

    /// The invocation counter of one status and outcome.
    pub(crate) fn invocations(&self, status: u16, outcome: InvocationOutcome) -> Counter {
        let find = |list: &[(u16, InvocationOutcome, Counter)]| {
            list.iter()
                .find(|(s, o, _)| *s == status && *o == outcome)
                .map(|(_, _, counter)| counter.clone())
        };
        if let Some(counter) = find(&self.by_status.read().unwrap_or_else(|p| p.into_inner())) {
            return counter;
        }
        let mut list = self.by_status.write().unwrap_or_else(|p| p.into_inner());
        if let Some(counter) = find(&list) {
            return counter;
        }
        let counter = self
            .family
            .get_or_create(&InvocationLabels {
                function: self.function.clone(),
                version: self.version.clone(),
                status: status.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .clone();
        list.push((status, outcome, counter.clone()));
        counter
    }
}
