//! Log retention: a background task deletes log lines and invocation records older than
//! the retention period (`--log-retention-days`), at start and then every
//! [`DEFAULT_RETENTION_INTERVAL`] (an hour), in bounded batches (5,000 rows per statement,
//! so a large purge never holds the write lock for long). The daily usage roll-up is kept,
//! so usage reports and quotas do not depend on retention.

use std::time::Duration;

use gureum_store::Store;

/// How often old logs are looked for.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Starts the retention task: keeps `days` days of logs and records (0 keeps them
/// forever, and no task runs).
pub fn spawn_retention(
    store: Store,
    days: u32,
    interval: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if days == 0 {
        return None;
    }
    let keep = i64::from(days) * gureum_model::MS_PER_DAY;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let cutoff = gureum_model::now_ms() - keep;
            match store.purge_before(cutoff).await {
                Ok((0, 0)) => {}
                Ok((logs, invocations)) => {
                    tracing::info!(logs, invocations, days, "deleted logs past retention");
                }
                Err(error) => tracing::warn!(%error, "deleting logs past retention failed"),
            }
        }
    }))
}
