//! Scale to zero: the task that drops idle instances past their TTL and wasm code unused
//! for [`crate::WASM_CODE_TTL`], and the pool gauges of `/metrics`.
//!
//! It runs every [`REAP_INTERVAL`] (250 ms). Instances go after their version's idle TTL
//! (`idle_ttl_s`). A wasm version's code, mapped from the compiled cache, stays until its
//! pool has been empty and unused for `WASM_CODE_TTL` (10 minutes), so a cold start
//! within that time only instantiates; a lambda version's goes with its last process.
//! Pinned versions' static sites unused that long go too.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gureum_telemetry::{PoolSample, PoolStats};

use crate::{Invoker, Runner, WASM_CODE_TTL, lock};

impl Runner {
    pub(crate) fn reap(&self, now: Instant) -> usize {
        match self {
            Runner::Wasm { pool, .. } => {
                pool.reap(now);
                pool.idle_count()
            }
            Runner::Lambda { pool, .. } => {
                pool.reap(now);
                pool.idle_count()
            }
        }
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        match self {
            // Instances go after the idle TTL (scale to zero); the code, mapped from the
            // compiled cache (file-backed, reclaimable by the kernel), stays a while
            // longer so that the next cold start only instantiates.
            Runner::Wasm { pool, .. } => pool.is_expired_after(now, WASM_CODE_TTL),
            Runner::Lambda { pool, .. } => pool.is_expired(now),
        }
    }

    /// (idle, busy, waiting) of the version's pool.
    pub(crate) fn pool_counts(&self) -> (u64, u64, u64) {
        match self {
            Runner::Wasm { pool, .. } => (
                pool.idle_count() as u64,
                pool.busy_count() as u64,
                pool.waiting_count() as u64,
            ),
            Runner::Lambda { pool, .. } => (
                pool.idle_count() as u64,
                pool.busy_count() as u64,
                pool.waiting_count() as u64,
            ),
        }
    }
}

impl PoolStats for Invoker {
    fn pool_samples(&self) -> Vec<PoolSample> {
        let map = lock(&self.loaded);
        let mut samples = Vec::new();
        for versions in map.values() {
            for cell in versions.values() {
                let Some(loaded) = cell.get() else { continue };
                let (warm, busy, waiting) = loaded.runner.pool_counts();
                samples.push(PoolSample {
                    function: loaded.function.clone(),
                    version: loaded.version,
                    warm,
                    busy,
                    waiting,
                });
            }
        }
        samples
    }
}

/// How often idle instances and unused code are looked for.
pub const REAP_INTERVAL: Duration = Duration::from_millis(250);

impl crate::Invoker {
    /// Starts the background task that drops idle instances and unused code.
    pub fn spawn_reaper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let invoker = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_INTERVAL);
            loop {
                tick.tick().await;
                let Some(invoker) = invoker.upgrade() else {
                    return;
                };
                invoker.reap(Instant::now());
            }
        })
    }

    /// Drops idle instances past their TTL and the code of versions nobody used for
    /// their TTL (scale to zero).
    pub fn reap(&self, now: Instant) {
        let unused_since = gureum_model::now_ms() - WASM_CODE_TTL.as_millis() as i64;
        lock(&self.pinned_sites)
            .retain(|_, slot| slot.used_ms.load(Ordering::Relaxed) >= unused_since);
        lock(&self.sites).retain(|_, site| site.strong_count() > 0);
        let mut map = lock(&self.loaded);
        map.retain(|_, versions| {
            versions.retain(|_, cell| {
                let Some(loaded) = cell.get() else {
                    return true;
                };
                loaded.runner.reap(now);
                !loaded.runner.is_expired(now)
            });
            !versions.is_empty()
        });
    }
}
