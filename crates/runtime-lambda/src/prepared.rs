//! Sandboxes made ahead of the start that needs them. Making a sandbox (bubblewrap's
//! namespaces and mounts, the helper's limits, user and seccomp filters) costs several
//! milliseconds (about 12 ms) that a cold start should not wait for. After an instance of
//! a version starts, one more sandbox for that version is made in the background and held
//! just before the function's command: nothing of the function runs in it until a start
//! takes it (scale-out, a replacement after a crash, the first request after
//! scale-to-zero). A held sandbox is keyed by everything that goes into making one
//! (version, command, environment, limits, endpoints, code; see [`key`]), so a new
//! version never starts in an old one's. At most [`CAPACITY`] (16) are held (the least
//! recently made goes first), each for at most [`KEEP_FOR`] (15 minutes); a held sandbox
//! is a few processes of the helper and bubblewrap, about 4 MB in all, with an empty
//! `/tmp`.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::ProcessSettings;
use crate::instance::Spawned;

/// Sandboxes held at once, over all functions.
pub(crate) const CAPACITY: usize = 16;
/// How long a held sandbox waits for a start before it is dropped.
pub(crate) const KEEP_FOR: Duration = Duration::from_secs(15 * 60);

/// What a held sandbox was made for: everything that goes into making one (a new
/// version, environment or code is another key, so a sandbox never outlives them).
pub(crate) fn key(settings: &ProcessSettings) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    settings.function.hash(&mut hasher);
    settings.version.hash(&mut hasher);
    settings.command.hash(&mut hasher);
    settings.env.hash(&mut hasher);
    settings.memory_mb.hash(&mut hasher);
    settings.ephemeral_storage_mb.hash(&mut hasher);
    settings.outbound_endpoints.hash(&mut hasher);
    settings.code_dir.hash(&mut hasher);
    hasher.finish()
}

enum Slot {
    /// Being made.
    Making,
    Held {
        spawned: Box<Spawned>,
        made: Instant,
    },
}

/// The held sandboxes, by [`key`].
pub(crate) struct Prepared {
    slots: Mutex<HashMap<u64, Slot>>,
    capacity: usize,
}

impl Prepared {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The held sandbox for `key`, unless there is none or it has died.
    pub(crate) fn take(&self, key: u64) -> Option<Spawned> {
        let mut slots = self.slots();
        if !matches!(slots.get(&key), Some(Slot::Held { .. })) {
            return None;
        }
        let Some(Slot::Held { mut spawned, .. }) = slots.remove(&key) else {
            return None;
        };
        drop(slots);
        (!spawned.has_exited()).then_some(*spawned)
    }

    /// Reserves `key` for a sandbox about to be made; false when one is held or being
    /// made already, or when every place is taken by sandboxes being made.
    pub(crate) fn claim(&self, key: u64) -> bool {
        let mut slots = self.slots();
        if slots.contains_key(&key) {
            return false;
        }
        let mut evicted = None;
        if slots.len() >= self.capacity {
            let oldest = slots
                .iter()
                .filter_map(|(key, slot)| match slot {
                    Slot::Held { made, .. } => Some((*made, *key)),
                    Slot::Making => None,
                })
                .min();
            match oldest {
                Some((_, oldest)) => evicted = slots.remove(&oldest),
                None => return false,
            }
        }
        slots.insert(key, Slot::Making);
        drop(slots);
        drop(evicted);
        true
    }

    /// Holds the sandbox made for a claimed `key`, and drops it after [`KEEP_FOR`]
    /// unless a start took it first.
    pub(crate) fn fill(self: &Arc<Self>, key: u64, spawned: Spawned) {
        let made = Instant::now();
        {
            let mut slots = self.slots();
            if !matches!(slots.get(&key), Some(Slot::Making)) {
                // Released meanwhile; `spawned` is dropped (and killed) below.
                return;
            }
            slots.insert(
                key,
                Slot::Held {
                    spawned: Box::new(spawned),
                    made,
                },
            );
        }
        let prepared = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_FOR).await;
            let Some(prepared) = prepared.upgrade() else {
                return;
            };
            let mut slots = prepared.slots();
            if matches!(slots.get(&key), Some(Slot::Held { made: held, .. }) if *held == made) {
                let expired = slots.remove(&key);
                drop(slots);
                drop(expired);
            }
        });
    }

    /// Gives up a claim whose sandbox could not be made.
    pub(crate) fn release(&self, key: u64) {
        let mut slots = self.slots();
        if matches!(slots.get(&key), Some(Slot::Making)) {
            slots.remove(&key);
        }
    }
}
