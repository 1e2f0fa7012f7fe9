//! Telemetry leaves the request path without waiting on disk: log lines and invocation
//! records go into a bounded channel and a background writer stores them in batches;
//! shutdown drains the channel so nothing handed over is lost. Metrics are in-memory
//! Prometheus counters and histograms.
//!
//! Usage is counted twice, on purpose: the invocation records (the detail, subject to
//! retention) and the `usage_daily` roll-up (the totals, kept for good) are written in the
//! same transaction, and usage reports and quotas read the roll-up only. `gureum up`'s
//! hidden `--no-metering` turns records, byte counts, quotas and invocation metrics off,
//! only so the benchmark can measure what they cost.

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
