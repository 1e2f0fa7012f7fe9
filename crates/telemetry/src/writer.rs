//! The batching writer: one task drains the channel, groups records and writes each
//! group in one store transaction.

use std::time::Duration;

use gureum_model::{InvocationRecord, LogLine};
use gureum_store::Store;
use tokio::sync::{mpsc, oneshot};

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

/// Cheap handle used on the request path to hand over logs and records.
#[derive(Clone)]
pub struct Telemetry {
    sender: mpsc::Sender<Record>,
}

/// Owner of the background writer; [`TelemetryWriter::shutdown`] flushes everything.
pub struct TelemetryWriter {
    sender: mpsc::Sender<Record>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the background writer on `store`.
pub fn start(store: Store, settings: WriterSettings) -> (Telemetry, TelemetryWriter) {
    let (sender, receiver) = mpsc::channel(settings.channel_capacity);
    let task = tokio::spawn(run_writer(store, receiver, settings));
    (
        Telemetry {
            sender: sender.clone(),
        },
        TelemetryWriter { sender, task },
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

    /// Hands over an invocation record.
    pub async fn invocation(&self, record: InvocationRecord) {
        self.send(Record::Invocation(record)).await;
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
            let _ = wait.await;
        }
        self.task.abort();
    }
}

async fn run_writer(store: Store, mut receiver: mpsc::Receiver<Record>, settings: WriterSettings) {
    let mut logs = Vec::with_capacity(settings.batch_size);
    let mut invocations = Vec::with_capacity(settings.batch_size);
    let mut flush_waiters = Vec::new();
    loop {
        let Some(first) = receiver.recv().await else {
            write_batch(&store, &mut logs, &mut invocations).await;
            return;
        };
        let deadline = tokio::time::Instant::now() + settings.flush_interval;
        let mut next = Some(first);
        // Gather until the batch is full, the interval passed, or a flush is asked for.
        loop {
            match next.take() {
                Some(Record::Log(line)) => logs.push(line),
                Some(Record::Invocation(record)) => invocations.push(record),
                Some(Record::Flush(done)) => {
                    flush_waiters.push(done);
                    // Drain what is already queued so the flush covers it.
                    while let Ok(record) = receiver.try_recv() {
                        match record {
                            Record::Log(line) => logs.push(line),
                            Record::Invocation(record) => invocations.push(record),
                            Record::Flush(done) => flush_waiters.push(done),
                        }
                    }
                    break;
                }
                None => {}
            }
            if logs.len() + invocations.len() >= settings.batch_size {
                break;
            }
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(record)) => next = Some(record),
                Ok(None) | Err(_) => break,
            }
        }
        write_batch(&store, &mut logs, &mut invocations).await;
        for done in flush_waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write_batch(
    store: &Store,
    logs: &mut Vec<LogLine>,
    invocations: &mut Vec<InvocationRecord>,
) {
    // A failed write is retried a few times: losing acknowledged records is worse than
    // holding the writer back for a moment.
    for attempt in 1..=5u32 {
        let result = async {
            if !invocations.is_empty() {
                store.insert_invocations(invocations).await?;
                invocations.clear();
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
        "giving up on a telemetry batch after 5 attempts"
    );
    logs.clear();
    invocations.clear();
}
