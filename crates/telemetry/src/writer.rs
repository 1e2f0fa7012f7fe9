//! The batching writer: one task drains the channel, groups records and writes each
//! group in one store transaction.
//!
//! The channel holds [`DEFAULT_CHANNEL_CAPACITY`] (65,536) items. After the first record of
//! a batch the task sleeps [`DEFAULT_FLUSH_INTERVAL`] (200 ms), so records pile up in the
//! channel instead of waking it per request, then writes what is queued, at most
//! [`DEFAULT_BATCH_SIZE`] (1,000) per transaction; each transaction also upserts the
//! per-day usage roll-up (`usage_daily`) of its records. A failed batch is retried (five
//! attempts, then dropped with an error in the log).
//!
//! Invocation records never make a request wait: when the channel is full, the record's
//! usage is folded into an in-memory roll-up (requests, GB-seconds, bytes per day,
//! function and version) that the next batch adds to the store's daily usage, and the
//! overflow is counted (`gureum_invocation_records_overflowed_total`). Only the individual
//! row is lost; what the invocation costs is not. Log lines, by contrast, wait for room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gureum_model::{DailyUsage, InvocationRecord, LogLine, VersionNumber};
use gureum_store::Store;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, mpsc, oneshot};

/// Records the channel holds before senders must wait; sized for bursts of a few
/// thousand invocations with logs.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 65_536;
/// Largest batch written in one transaction.
pub const DEFAULT_BATCH_SIZE: usize = 1_000;
/// Longest time a record waits in memory before it is written.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Channel capacity in records.
    pub channel_capacity: usize,
    /// Records per transaction.
    pub batch_size: usize,
    /// Maximum delay before a record is written.
    pub flush_interval: Duration,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }
}

enum Record {
    Log(LogLine),
    Invocation(InvocationRecord),
    Flush(oneshot::Sender<()>),
}

/// Usage of records that did not fit in the channel, keyed by (day, function, version).
type Overflow = Arc<Mutex<HashMap<(i64, String, VersionNumber), DailyUsage>>>;

/// Cheap handle used on the request path to hand over logs and records.
#[derive(Clone)]
pub struct Telemetry {
    sender: mpsc::Sender<Record>,
    overflow: Overflow,
    overflowed: Counter,
}

/// Owner of the background writer; [`TelemetryWriter::shutdown`] flushes everything.
pub struct TelemetryWriter {
    sender: mpsc::Sender<Record>,
    flush: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the background writer on `store`; `overflowed` counts invocation records that
/// found the channel full (their usage is kept, their row is not).
pub fn start(
    store: Store,
    settings: WriterSettings,
    overflowed: Counter,
) -> (Telemetry, TelemetryWriter) {
    let (sender, receiver) = mpsc::channel(settings.channel_capacity);
    let overflow = Overflow::default();
    let flush = Arc::new(Notify::new());
    let task = tokio::spawn(run_writer(
        store,
        receiver,
        overflow.clone(),
        settings,
        flush.clone(),
    ));
    (
        Telemetry {
            sender: sender.clone(),
            overflow,
            overflowed,
        },
        TelemetryWriter {
            sender,
            flush,
            task,
        },
    )
}

impl Telemetry {
    /// Hands over one log line.
    pub async fn log(&self, line: LogLine) {
        self.send(Record::Log(line)).await;
    }

    /// Hands over many log lines.
    pub async fn logs(&self, lines: impl IntoIterator<Item = LogLine>) {
        for line in lines {
            self.send(Record::Log(line)).await;
        }
    }

    /// Hands over an invocation record without ever waiting: when the channel is full,
    /// its usage goes into the overflow roll-up instead (counted).
    pub fn invocation(&self, record: InvocationRecord) {
        match self.sender.try_send(Record::Invocation(record)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Record::Invocation(record))) => {
                self.overflowed.inc();
                let key = DailyUsage::key_of(&record);
                let mut overflow = self
                    .overflow
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let row = overflow.entry(key.clone()).or_insert_with(|| DailyUsage {
                    day: key.0,
                    function: key.1,
                    version: key.2,
                    ..DailyUsage::default()
                });
                row.add(&record);
                row.overflowed += 1;
            }
            Err(mpsc::error::TrySendError::Full(_)) => unreachable!("sent an invocation"),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("telemetry writer already stopped; invocation record dropped");
            }
        }
    }

    /// Hands over log lines without waiting; returns the ones that found the channel
    /// full (the caller sends them with [`Telemetry::logs`] from a task of its own).
    pub fn try_logs(&self, lines: Vec<LogLine>) -> Vec<LogLine> {
        let mut lines = lines.into_iter();
        while let Some(line) = lines.next() {
            match self.sender.try_send(Record::Log(line)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Record::Log(line))) => {
                    return std::iter::once(line).chain(lines).collect();
                }
                Err(mpsc::error::TrySendError::Full(_)) => unreachable!("sent a log line"),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::warn!("telemetry writer already stopped; log lines dropped");
                    return Vec::new();
                }
            }
        }
        Vec::new()
    }

    async fn send(&self, record: Record) {
        // The fast path never waits; a full channel means the store is behind, and the
        // request then waits instead of dropping what it produced.
        match self.sender.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(record)) => {
                let _ = self.sender.send(record).await;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!("telemetry writer already stopped; record dropped");
            }
        }
    }
}

impl TelemetryWriter {
    /// Writes everything still buffered and stops the writer.
    pub async fn shutdown(self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Record::Flush(done)).await.is_ok() {
            self.flush.notify_one();
            let _ = wait.await;
        }
        self.task.abort();
    }
}

async fn run_writer(
    store: Store,
    mut receiver: mpsc::Receiver<Record>,
    overflow: Overflow,
    settings: WriterSettings,
    flush: Arc<Notify>,
) {
    let mut logs = Vec::with_capacity(settings.batch_size);
    let mut invocations = Vec::with_capacity(settings.batch_size);
    let mut flush_waiters = Vec::new();
    loop {
        let Some(first) = receiver.recv().await else {
            write_batch(&store, &mut logs, &mut invocations, &overflow).await;
            return;
        };
        // Let records pile up in the channel for the interval instead of waking this
        // task for each one (a wake-up per request costs more than the write): then take
        // what is queued, a transaction per `batch_size`. A flush cuts the wait short.
        let wait_until = tokio::time::Instant::now() + settings.flush_interval;
        if !matches!(first, Record::Flush(_)) {
            tokio::select! {
                () = tokio::time::sleep_until(wait_until) => {}
                () = flush.notified() => {}
            }
        }
        // Only what is queued now: under a steady load the loop still comes round to
        // answer flushes.
        let queued = receiver.len();
        let mut next = Some(first);
        for _ in 0..=queued {
            let record = match next.take() {
                Some(record) => record,
                None => match receiver.try_recv() {
                    Ok(record) => record,
                    Err(_) => break,
                },
            };
            match record {
                Record::Log(line) => logs.push(line),
                Record::Invocation(record) => invocations.push(record),
                Record::Flush(done) => flush_waiters.push(done),
            }
            if logs.len() + invocations.len() >= settings.batch_size {
                write_batch(&store, &mut logs, &mut invocations, &overflow).await;
            }
        }
        write_batch(&store, &mut logs, &mut invocations, &overflow).await;
        for done in flush_waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write_batch(
    store: &Store,
    logs: &mut Vec<LogLine>,
    invocations: &mut Vec<InvocationRecord>,
    overflow: &Overflow,
) {
    let mut overflowed: Vec<DailyUsage> = {
        let mut overflow = overflow
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        overflow.drain().map(|(_, usage)| usage).collect()
    };
    // A failed write is retried a few times: losing acknowledged records is worse than
    // holding the writer back for a moment.
    for attempt in 1..=5u32 {
        let result = async {
            if !invocations.is_empty() || !overflowed.is_empty() {
                store.insert_invocations(invocations, &overflowed).await?;
                invocations.clear();
                overflowed.clear();
            }
            if !logs.is_empty() {
                store.insert_logs(logs).await?;
                logs.clear();
            }
            Ok::<(), gureum_store::StoreError>(())
        }
        .await;
        match result {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, attempt, "writing telemetry batch failed");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
    tracing::error!(
        logs = logs.len(),
        invocations = invocations.len(),
        overflowed = overflowed.len(),
        "giving up on a telemetry batch after 5 attempts"
    );
    logs.clear();
    invocations.clear();
}
