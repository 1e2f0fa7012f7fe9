//! Password hashes (argon2id: 19 MiB and a core each) run on a few long-lived threads
//! of their own, at most one per thread, behind a semaphore that turns a full pool into
//! a quick 503. Not on tokio's blocking pool: each short-lived blocking thread gets a
//! malloc arena of its own that keeps its 19 MiB after the hash, so a burst of
//! sign-ins grew the server by hundreds of megabytes; a fixed set of threads keeps a
//! fixed set of arenas, and memory stays flat.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads.
pub(crate) struct HashingPool {
    jobs: mpsc::Sender<Job>,
    places: Arc<Semaphore>,
}

impl HashingPool {
    /// `threads` hashing threads (at least one).
    pub(crate) fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{index}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
                            receiver.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "starting a password hashing thread failed");
            }
        }
        Self {
            jobs,
            places: Arc::new(Semaphore::new(threads)),
        }
    }

    /// A place on one of the threads, waiting at most `wait`; `None` when every thread
    /// stayed busy that long (the caller answers 503).
    pub(crate) async fn place(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.places.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Runs `work` on a hashing thread while `place` is held.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        place: OwnedSemaphorePermit,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (sender, receiver) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _place = place;
                let _ = sender.send(work());
            }))
            .ok()?;
        receiver.await.ok()
    }
}
