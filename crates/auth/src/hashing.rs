//! Password hashes (argon2id: 19 MiB and a core each) run on a few long-lived threads
//! of their own (two per core), at most one per thread, behind a semaphore that turns a
//! full pool into a quick 503 `busy` after a 2 s wait. Not on tokio's blocking pool: each
//! short-lived blocking thread gets a malloc arena of its own that keeps its 19 MiB after
//! the hash, so a burst of sign-ins grew the server by hundreds of megabytes; a fixed set
//! of threads keeps a fixed set of arenas, and memory stays flat.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

/// Longest wait for a free hashing thread before the attempt is refused.
const WAIT: Duration = Duration::from_secs(2);

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
        let mut started = 0;
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
            match spawned {
                Ok(_) => started += 1,
                Err(error) => tracing::error!(%error, "starting a password hashing thread failed"),
            }
        }
        // One place per running thread: a job never waits in the channel.
        Self {
            jobs,
            places: Arc::new(Semaphore::new(started)),
        }
    }

    /// Runs `work` on a hashing thread, waiting at most [`WAIT`] for one to be free;
    /// `None` when none was (the caller answers 503: the work was not done).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let place = tokio::time::timeout(WAIT, self.places.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
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
