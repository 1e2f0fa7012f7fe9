//! Durable asynchronous invocation and cron schedules.
//!
//! An asynchronous request is committed to the store before it is acknowledged (group
//! commit: the enqueue writer stores every enqueue waiting at that moment in one
//! transaction). Workers on every node claim due events with a lease, run them through
//! the same `Invoker::invoke` as HTTP requests, retry failures with exponential backoff
//! and jitter, move events that exhausted their retries (or their age) to the function's
//! dead-letter list, and enqueue Lambda-style destination records. A node that dies
//! stops renewing its leases and the events run again elsewhere (at-least-once; every
//! attempt carries the same invocation id for deduplication). The scheduler turns cron
//! ticks into queued events with a compare-and-set on the schedule's last tick, so one
//! node fires each tick.
//!
//! Back-pressure never reads the store on the request path: an enqueue is checked against
//! an in-memory depth per function (the last count in the store plus this node's enqueues
//! since), in events (`[async] max_queued`) and in bytes of bodies held, queue and dead
//! letters together (`[async] max_queued_bytes`). Idempotency keys are checked inside the
//! group-commit transaction. The monitor task counts depths every second, renews this
//! node's leases every third of the lease (30 s by default, so every 10 s) and gives free
//! SQLite pages back each minute (`Store::reclaim_space`). A node's id is stable
//! (`DATA_DIR/node.id`): it frees its own leases at start and at shutdown, so the events it
//! was running run again without waiting for the lease to expire.

mod events;
mod scheduler;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use gureum_invoke::Invoker;
use gureum_model::VersionNumber;
use gureum_store::{Enqueued, QueuedEvent, Store, StoreError};
use gureum_telemetry::{Metrics, QueueEventLabels, QueueLabels};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use events::{ScheduleView, destination_record, rfc3339};
pub use scheduler::MISSED_AFTER;

/// Errors of enqueueing.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No such function.
    #[error("no function named {0:?} is deployed; `gureum ls` lists the deployed functions")]
    NotFound(String),
    /// The function's queue holds `max_queued` events already.
    #[error(
        "the asynchronous queue of {function:?} is full ({max_queued} events waiting); retry later, or raise [async] max_queued in its gureum.toml"
    )]
    QueueFull {
        /// The function.
        function: String,
        /// Its limit.
        max_queued: u32,
    },
    /// The function's queue and dead-letter list hold `max_queued_bytes` of bodies.
    #[error(
        "the asynchronous queue of {function:?} holds its {max_bytes} bytes of queued and dead-lettered bodies; retry later, drain its dead letters (`gureum dlq NAME rm --all`), or raise [async] max_queued_bytes in its gureum.toml"
    )]
    QueueBytesFull {
        /// The function.
        function: String,
        /// Its limit.
        max_bytes: u64,
    },
    /// The server is stopping and takes no new events.
    #[error("the server is shutting down; retry on another node or after the restart")]
    ShuttingDown,
    /// The store failed; the event was not acknowledged.
    #[error("storing the event failed: {0}")]
    Store(String),
}

impl From<StoreError> for QueueError {
    fn from(error: StoreError) -> Self {
        QueueError::Store(error.to_string())
    }
}

/// Tuning of the queue on one node.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Events this node runs at once (over all functions).
    pub concurrency: usize,
    /// How often a node looks for due events when nothing woke it.
    pub poll_interval: Duration,
    /// How long a claim lasts without renewal; a dead node's events run again after it.
    pub lease: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            concurrency: 64,
            poll_interval: Duration::from_millis(200),
            lease: Duration::from_secs(30),
        }
    }
}

/// An asynchronous request to queue.
#[derive(Debug, Clone)]
pub struct AsyncRequest {
    /// The function.
    pub function: String,
    /// A pinned version, or `None` for the one live when the event runs.
    pub version: Option<VersionNumber>,
    /// Method of the request replayed to the function.
    pub method: String,
    /// Path and query the function sees.
    pub path: String,
    /// Headers passed on.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// From the `idempotency-key` header: a repeat within 24 h is not queued again.
    pub idempotency_key: Option<String>,
}

/// An acknowledged enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The invocation id (every attempt runs under it).
    pub invocation_id: String,
    /// True when the idempotency key was seen before and nothing new was queued.
    pub duplicate: bool,
}

struct EnqueueJob {
    event: QueuedEvent,
    key: Option<String>,
    reply: oneshot::Sender<Result<Enqueued, String>>,
}

/// The queue of one node.
pub struct Queue {
    store: Store,
    invoker: Arc<Invoker>,
    metrics: Arc<Metrics>,
    node: String,
    settings: QueueSettings,
    enqueue: mpsc::Sender<EnqueueJob>,
    wake: Notify,
    slots: Arc<Semaphore>,
    // Per function: events counted in the store at the last look...
    depths: Mutex<HashMap<String, u64>>,
    // ...plus this node's enqueues since that count began (the back-pressure check
    // never reads the store; an enqueue committed while the count runs may be counted
    // twice until the next count, which errs on the safe side).
    recent: Mutex<HashMap<String, u64>>,
    // The same two for the bytes of bodies held (queue and dead letters together).
    held_bytes: Mutex<HashMap<String, u64>>,
    recent_bytes: Mutex<HashMap<String, u64>>,
    // Per function: events this node is running now.
    running: Mutex<HashMap<String, u32>>,
    stop: CancellationToken,
    tasks: TaskTracker,
    runs: TaskTracker,
}

const ENQUEUE_BATCH: usize = 256;
/// How often queue depths are counted in the store (back-pressure and gauges) and
/// leases renewed.
const MONITOR_INTERVAL: Duration = Duration::from_secs(1);

impl Queue {
    /// Starts the queue's tasks for `node` (a stable id: a restarted node frees its own
    /// leases at once, so the events it was running run again without waiting).
    pub async fn start(
        store: Store,
        invoker: Arc<Invoker>,
        metrics: Arc<Metrics>,
        node: String,
        settings: QueueSettings,
    ) -> Result<Arc<Queue>, StoreError> {
        let released = store.release_leases(&node).await?;
        if released > 0 {
            tracing::info!(
                released,
                "asynchronous events left running by this node's previous run will run again"
            );
        }
        let (sender, receiver) = mpsc::channel(4 * ENQUEUE_BATCH);
        let queue = Arc::new(Queue {
            store,
            invoker,
            metrics,
            node,
            settings,
            enqueue: sender,
            wake: Notify::new(),
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            depths: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
            held_bytes: Mutex::new(HashMap::new()),
            recent_bytes: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            runs: TaskTracker::new(),
        });
        queue.count_depths().await;
        queue.tasks.spawn(enqueue_writer(queue.clone(), receiver));
        queue.tasks.spawn(worker::run(queue.clone()));
        queue.tasks.spawn(monitor(queue.clone()));
        queue.tasks.spawn(scheduler::run(queue.clone()));
        Ok(queue)
    }

    /// The store the queue lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Queues a request durably; returns once it is committed.
    pub async fn enqueue(&self, request: AsyncRequest) -> Result<Accepted, QueueError> {
        if self.stop.is_cancelled() {
            return Err(QueueError::ShuttingDown);
        }
        let Some((_, spec)) = self.invoker.live_function(&request.function) else {
            return Err(QueueError::NotFound(request.function));
        };
        let max_queued = spec.async_config.max_queued;
        let depth = counted(&self.depths, &self.recent, &request.function);
        if depth >= u64::from(max_queued) {
            self.count(&request.function, "rejected");
            return Err(QueueError::QueueFull {
                function: request.function,
                max_queued,
            });
        }
        let max_bytes = spec.async_config.max_queued_bytes;
        let body_bytes = request.body.len() as u64;
        let held = counted(&self.held_bytes, &self.recent_bytes, &request.function);
        if held + body_bytes > max_bytes {
            self.count(&request.function, "rejected");
            return Err(QueueError::QueueBytesFull {
                function: request.function,
                max_bytes,
            });
        }
        let event = events::queued_from_request(&request);
        let id = event.id.clone();
        let function = request.function.clone();
        let (reply, answer) = oneshot::channel();
        let job = EnqueueJob {
            event,
            key: request.idempotency_key,
            reply,
        };
        self.enqueue
            .send(job)
            .await
            .map_err(|_| QueueError::ShuttingDown)?;
        let outcome = answer
            .await
            .map_err(|_| QueueError::ShuttingDown)?
            .map_err(QueueError::Store)?;
        Ok(match outcome {
            Enqueued::New => {
                *lock(&self.recent).entry(function.clone()).or_insert(0) += 1;
                *lock(&self.recent_bytes)
                    .entry(function.clone())
                    .or_insert(0) += body_bytes;
                self.count(&function, "enqueued");
                Accepted {
                    invocation_id: id,
                    duplicate: false,
                }
            }
            Enqueued::Duplicate(first) => Accepted {
                invocation_id: first,
                duplicate: true,
            },
        })
    }

    /// Every live function's schedules with their state and next tick.
    pub async fn schedules(&self) -> Result<Vec<ScheduleView>, StoreError> {
        scheduler::views(self).await
    }

    /// Stops taking and claiming events, waits up to `grace` for the events this node is
    /// running, and frees the leases of those still running (they run again elsewhere or
    /// after the restart).
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.cancel();
        self.wake.notify_waiters();
        self.tasks.close();
        self.tasks.wait().await;
        self.runs.close();
        if tokio::time::timeout(grace, self.runs.wait()).await.is_err() {
            tracing::warn!("asynchronous events still running at shutdown will run again");
        }
        if let Err(error) = self.store.release_leases(&self.node).await {
            tracing::warn!(%error, "freeing this node's leases at shutdown failed; they expire on their own");
        }
    }

    fn count(&self, function: &str, result: &str) {
        self.metrics
            .queue_events
            .get_or_create(&QueueEventLabels {
                function: function.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    async fn count_depths(&self) {
        let bytes_before = std::mem::take(&mut *lock(&self.recent_bytes));
        match self.store.queued_bytes().await {
            Ok(held) => *lock(&self.held_bytes) = held.into_iter().collect(),
            Err(error) => {
                tracing::warn!(%error, "counting queued bytes failed");
                let mut recent = lock(&self.recent_bytes);
                for (function, bytes) in bytes_before {
                    *recent.entry(function).or_insert(0) += bytes;
                }
            }
        }
        let before = std::mem::take(&mut *lock(&self.recent));
        let depths = match self.store.queue_depths().await {
            Ok(depths) => depths,
            Err(error) => {
                tracing::warn!(%error, "counting queue depths failed");
                // The old count stands, so the enqueues made since it must too.
                let mut recent = lock(&self.recent);
                for (function, count) in before {
                    *recent.entry(function).or_insert(0) += count;
                }
                return;
            }
        };
        let now = gureum_model::now_ms();
        let mut known = lock(&self.depths);
        for depth in known.values_mut() {
            *depth = 0;
        }
        for row in depths {
            let labels = QueueLabels {
                function: row.function.clone(),
            };
            self.metrics
                .queue_depth_events
                .get_or_create(&labels)
                .set(i64::try_from(row.depth).unwrap_or(i64::MAX));
            let age = (now - row.oldest_enqueued_at_ms).max(0) as f64 / 1000.0;
            self.metrics
                .queue_oldest_age_seconds
                .get_or_create(&labels)
                .set(age);
            known.insert(row.function, row.depth);
        }
        for (function, depth) in known.iter() {
            if *depth == 0 {
                let labels = QueueLabels {
                    function: function.clone(),
                };
                self.metrics
                    .queue_depth_events
                    .get_or_create(&labels)
                    .set(0);
                self.metrics
                    .queue_oldest_age_seconds
                    .get_or_create(&labels)
                    .set(0.0);
            }
        }
    }
}

/// Group commit: every enqueue waiting when the writer comes round goes into one
/// transaction, so a burst costs one commit (one fsync on SQLite), not one each.
async fn enqueue_writer(queue: Arc<Queue>, mut receiver: mpsc::Receiver<EnqueueJob>) {
    let mut batch = Vec::with_capacity(ENQUEUE_BATCH);
    loop {
        let first = tokio::select! {
            job = receiver.recv() => job,
            () = queue.stop.cancelled() => {
                // Refuse what is still waiting: nothing unacknowledged is lost, the
                // callers get an error instead of a 202.
                receiver.close();
                while let Ok(job) = receiver.try_recv() {
                    let _ = job.reply.send(Err("the server is shutting down".to_string()));
                }
                return;
            }
        };
        let Some(first) = first else { return };
        batch.push(first);
        while batch.len() < ENQUEUE_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let rows: Vec<(QueuedEvent, Option<String>)> = batch
            .iter()
            .map(|job| (job.event.clone(), job.key.clone()))
            .collect();
        match queue.store.enqueue_events(&rows).await {
            Ok(outcomes) => {
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
                queue.wake.notify_one();
            }
            Err(error) => {
                tracing::error!(%error, events = batch.len(), "storing asynchronous events failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(error.to_string()));
                }
            }
        }
    }
}

/// Counts queue depths (gauges, back-pressure), renews this node's leases and expires
/// old idempotency keys.
/// A function's figure as last counted in the store plus this node's additions since.
fn counted(
    stored: &Mutex<HashMap<String, u64>>,
    recent: &Mutex<HashMap<String, u64>>,
    function: &str,
) -> u64 {
    let of = |map: &Mutex<HashMap<String, u64>>| lock(map).get(function).copied().unwrap_or(0);
    of(stored) + of(recent)
}

/// How often, and how many pages at most (4 KiB each: 64 MiB), the store gives back.
const RECLAIM_EVERY: Duration = Duration::from_secs(60);
const RECLAIM_PAGES: u32 = 16_384;

async fn monitor(queue: Arc<Queue>) {
    let mut tick = tokio::time::interval(MONITOR_INTERVAL);
    let renew_every = (queue.settings.lease / 3).max(MONITOR_INTERVAL);
    let mut last_renewal = tokio::time::Instant::now();
    let mut last_purge = tokio::time::Instant::now();
    let mut last_reclaim = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = queue.stop.cancelled() => return,
        }
        queue.count_depths().await;
        if last_renewal.elapsed() >= renew_every {
            last_renewal = tokio::time::Instant::now();
            let until = gureum_model::now_ms() + millis(queue.settings.lease);
            if let Err(error) = queue.store.renew_leases(&queue.node, until).await {
                tracing::warn!(%error, "renewing leases of running asynchronous events failed");
            }
        }
        if last_reclaim.elapsed() >= RECLAIM_EVERY {
            last_reclaim = tokio::time::Instant::now();
            // Consumed events and dead letters leave free pages; giving a bounded number
            // back each minute keeps a flood from growing the file for good (finding 10).
            if let Err(error) = queue.store.reclaim_space(RECLAIM_PAGES).await {
                tracing::warn!(%error, "giving free database pages back failed");
            }
        }
        if last_purge.elapsed() >= Duration::from_secs(3600) {
            last_purge = tokio::time::Instant::now();
            if let Err(error) = queue
                .store
                .purge_idempotency_keys(gureum_model::now_ms())
                .await
            {
                tracing::warn!(%error, "expiring idempotency keys failed");
            }
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
