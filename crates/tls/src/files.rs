//! `--tls cert --cert FILE --key FILE`: a certificate the user brings, watched for
//! changes. The files are polled (size and modification time, through symlinks), which
//! also sees the symlink swaps Kubernetes secrets and certbot's `live/` links make. A
//! change that does not load (say the certificate was written before its new key) is
//! logged and the old certificate keeps serving until a change that loads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::TlsError;
use crate::certs::{self, CertSlot, Loaded};

/// Reads and checks the pair.
pub fn load(cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Io {
            what: format!("reading {}", path.display()),
            source,
        })
    };
    certs::parse(
        &read(cert)?,
        &read(key)?,
        &format!("{} with {}", cert.display(), key.display()),
    )
}

pub(crate) type Stamp = [Option<(u64, SystemTime)>; 2];

/// What the pair looks like on disk now (taken before loading, so a change made while
/// loading is not missed).
pub(crate) fn stamp(cert: &Path, key: &Path) -> Stamp {
    [cert, key].map(|path| {
        std::fs::metadata(path).ok().map(|meta| {
            (
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            )
        })
    })
}

/// Polls the files every `interval` and serves a changed pair once it loads.
pub(crate) fn spawn_reload(
    slot: Arc<CertSlot>,
    cert: PathBuf,
    key: PathBuf,
    loaded_at: Stamp,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = loaded_at;
        loop {
            tokio::time::sleep(interval).await;
            let now = stamp(&cert, &key);
            if now == seen {
                continue;
            }
            seen = now;
            match load(&cert, &key) {
                Ok(loaded) => {
                    tracing::info!(
                        cert = %cert.display(),
                        serial = %loaded.info.serial,
                        not_after = %crate::format_ms(loaded.info.not_after_ms),
                        "the certificate files changed; serving the new certificate"
                    );
                    slot.replace(loaded);
                }
                Err(error) => tracing::warn!(
                    %error,
                    "the certificate files changed but do not load; still serving the previous certificate"
                ),
            }
        }
    })
}
