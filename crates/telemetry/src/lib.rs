//! Telemetry leaves the request path without waiting on disk: log lines and invocation
//! records go into a bounded channel and a background writer stores them in batches;
//! shutdown drains the channel so nothing handed over is lost. Metrics are in-memory
//! Prometheus counters and histograms.

mod metrics;
mod process;
mod retention;
mod writer;

pub use metrics::{
    FunctionLabels, InvocationLabels, Metrics, PoolSample, PoolStats, QueueEventLabels,
    QueueLabels, QuotaLabels, RejectionLabels, WebSocketLabels,
};
pub use retention::{DEFAULT_RETENTION_INTERVAL, spawn_retention};
pub use writer::{Telemetry, TelemetryWriter, WriterSettings, start};
