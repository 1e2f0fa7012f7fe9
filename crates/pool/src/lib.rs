//! Warm-instance lifecycle, generic over the instance type: a per-function concurrency
//! ceiling, a short bounded wait queue in front of it, LIFO reuse of idle instances and
//! their expiry after an idle TTL. It knows neither wasmtime nor processes, so its logic
//! is tested with plain values in milliseconds.
//!
//! The ceiling is a semaphore of `max_instances` slots. When every slot is busy, up to
//! [`DEFAULT_QUEUE_PER_SLOT`] (4) callers per slot wait at most [`DEFAULT_QUEUE_TIMEOUT`]
//! (500 ms); past either, [`PoolError::Throttled`] (a 429).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many callers may wait for a free slot, per allowed concurrent invocation.
pub const DEFAULT_QUEUE_PER_SLOT: usize = 4;
/// How long a queued caller waits for a slot before it is throttled.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a slot could not be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// Every slot was busy and the wait queue was full or the wait timed out.
    #[error(
        "function is at its concurrency limit of {max_instances} (max_instances); retry later or raise max_instances"
    )]
    Throttled {
        /// The ceiling that was hit.
        max_instances: u32,
    },
}

/// Settings of one pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Concurrent leases allowed.
    pub max_instances: u32,
    /// Idle instances older than this are dropped by [`InstancePool::reap`].
    pub idle_ttl: Duration,
    /// Whether released instances are kept for later leases.
    pub reuse: bool,
    /// Callers allowed to wait when all slots are busy.
    pub max_queue: usize,
    /// How long a waiting caller waits.
    pub queue_timeout: Duration,
}

impl PoolSettings {
    /// Settings with the default queue for `max_instances` slots.
    pub fn new(max_instances: u32, idle_ttl: Duration, reuse: bool) -> Self {
        Self {
            max_instances,
            idle_ttl,
            reuse,
            max_queue: max_instances as usize * DEFAULT_QUEUE_PER_SLOT,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

/// Instances of one function version, and the slots that bound their concurrency.
pub struct InstancePool<I> {
    settings: PoolSettings,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    idle: Mutex<Vec<IdleInstance<I>>>,
    last_used: Mutex<Instant>,
}

struct IdleInstance<I> {
    instance: I,
    since: Instant,
}

/// A granted slot, with a warm instance when one was idle. Without one, the caller
/// creates an instance (a cold start) and hands it back through [`InstancePool::release`].
pub struct Lease<I> {
    /// The warm instance, if one was idle.
    pub instance: Option<I>,
    _slot: OwnedSemaphorePermit,
}

impl<I> InstancePool<I> {
    /// An empty pool.
    pub fn new(settings: PoolSettings) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(settings.max_instances as usize)),
            settings,
            waiting: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
            last_used: Mutex::new(Instant::now()),
        }
    }

    /// Takes a slot, waiting in the bounded queue when all are busy.
    pub async fn acquire(&self) -> Result<Lease<I>, PoolError> {
        let throttled = PoolError::Throttled {
            max_instances: self.settings.max_instances,
        };
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Admission to the queue is checked before waiting so that overload is
                // answered at once instead of piling up callers.
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.settings.max_queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(throttled);
                }
                let waited = tokio::time::timeout(
                    self.settings.queue_timeout,
                    self.slots.clone().acquire_owned(),
                )
                .await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                match waited {
                    Ok(Ok(slot)) => slot,
                    _ => return Err(throttled),
                }
            }
        };
        self.touch();
        // LIFO: the most recently used instance has the warmest caches.
        let instance = lock(&self.idle).pop().map(|idle| idle.instance);
        Ok(Lease {
            instance,
            _slot: slot,
        })
    }

    /// Ends a lease. A healthy instance is kept warm when the pool reuses instances;
    /// `None` (a discarded or consumed instance) just frees the slot.
    pub fn release(&self, lease: Lease<I>, instance: Option<I>) {
        self.touch();
        if let Some(instance) = instance
            && self.settings.reuse
            && !self.settings.idle_ttl.is_zero()
        {
            lock(&self.idle).push(IdleInstance {
                instance,
                since: Instant::now(),
            });
        }
        drop(lease);
    }

    /// Drops idle instances unused for the idle TTL; returns how many were dropped.
    pub fn reap(&self, now: Instant) -> usize {
        let expired: Vec<IdleInstance<I>> = {
            let mut idle = lock(&self.idle);
            let ttl = self.settings.idle_ttl;
            let (keep, expired) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|entry| now.saturating_duration_since(entry.since) < ttl);
            *idle = keep;
            expired
        };
        // Instances are dropped outside the lock: dropping one may be slow.
        expired.len()
    }

    /// Idle (warm) instances right now.
    pub fn idle_count(&self) -> usize {
        lock(&self.idle).len()
    }

    /// Leases held right now.
    pub fn busy_count(&self) -> usize {
        self.settings.max_instances as usize - self.slots.available_permits()
    }

    /// Callers waiting in the queue for a slot right now.
    pub fn waiting_count(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Whether the pool has had no lease for the idle TTL and holds nothing: the version's
    /// loaded code can be dropped too (scale to zero).
    pub fn is_expired(&self, now: Instant) -> bool {
        self.is_expired_after(now, self.settings.idle_ttl)
    }

    /// Whether the pool holds nothing and has had no lease for `ttl` (at least the idle
    /// TTL): for what is kept longer than the instances, such as mapped code.
    pub fn is_expired_after(&self, now: Instant, ttl: Duration) -> bool {
        self.busy_count() == 0
            && self.idle_count() == 0
            && now.saturating_duration_since(*lock(&self.last_used))
                >= ttl.max(self.settings.idle_ttl)
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }
}

/// Locks a mutex, ignoring poisoning: the guarded data stays consistent because no
/// critical section here can panic halfway.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max: u32, ttl_ms: u64, reuse: bool) -> InstancePool<u32> {
        InstancePool::new(PoolSettings {
            max_instances: max,
            idle_ttl: Duration::from_millis(ttl_ms),
            reuse,
            max_queue: 1,
            queue_timeout: Duration::from_millis(50),
        })
    }

    #[tokio::test]
    async fn a_released_instance_is_reused_warm() {
        let pool = pool(2, 10_000, true);
        let lease = pool.acquire().await.unwrap();
        assert!(lease.instance.is_none(), "first lease is a cold start");
        pool.release(lease, Some(7));
        let lease = pool.acquire().await.unwrap();
        assert_eq!(lease.instance, Some(7));
    }

    #[tokio::test]
    async fn without_reuse_every_lease_is_fresh() {
        let pool = pool(2, 10_000, false);
        let lease = pool.acquire().await.unwrap();
        pool.release(lease, Some(7));
        assert!(pool.acquire().await.unwrap().instance.is_none());
    }

    #[tokio::test]
    async fn over_the_limit_callers_queue_then_get_throttled() {
        let pool = Arc::new(pool(1, 10_000, true));
        let held = pool.acquire().await.unwrap();
        // One caller may queue; it times out after 50 ms.
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire().await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The queue (size 1) is full: refused at once.
        assert_eq!(
            pool.acquire().await.err(),
            Some(PoolError::Throttled { max_instances: 1 })
        );
        assert!(queued.await.unwrap().is_err());
        pool.release(held, None);
        assert!(pool.acquire().await.is_ok());
    }

    #[tokio::test]
    async fn a_queued_caller_gets_the_slot_when_it_frees() {
        let pool = Arc::new(pool(1, 10_000, true));
        let held = pool.acquire().await.unwrap();
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire().await.map(|lease| lease.instance) })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        pool.release(held, Some(3));
        assert_eq!(queued.await.unwrap(), Ok(Some(3)));
    }

    #[tokio::test]
    async fn idle_instances_expire_after_the_ttl() {
        let pool = pool(2, 20, true);
        let lease = pool.acquire().await.unwrap();
        pool.release(lease, Some(1));
        assert_eq!(pool.reap(Instant::now()), 0);
        assert!(!pool.is_expired(Instant::now()));
        let later = Instant::now() + Duration::from_millis(25);
        assert_eq!(pool.reap(later), 1);
        assert!(pool.is_expired(later));
        // What outlives the instances expires after its own, longer TTL.
        assert!(!pool.is_expired_after(later, Duration::from_secs(60)));
        assert!(pool.is_expired_after(later + Duration::from_secs(60), Duration::from_secs(60)));
        assert!(pool.acquire().await.unwrap().instance.is_none());
    }

    #[tokio::test]
    async fn a_zero_ttl_keeps_nothing_warm() {
        let pool = pool(1, 0, true);
        let lease = pool.acquire().await.unwrap();
        pool.release(lease, Some(1));
        assert_eq!(pool.idle_count(), 0);
    }
}
