//! The data directory is private to the server's user: it holds the store (signing keys,
//! password hashes, every document), the admin token and TLS keys. Like PostgreSQL, which
//! refuses a data directory others can read, gureum makes it 0700 and its secrets 0600 —
//! at every start, not only when they are created — and says so when it had to tighten
//! something. No process-wide umask: bubblewrap creates the sandbox's mount points with
//! it, and the function's own user must be able to enter them.
//!
//! The SQLite file is created 0600 before SQLite opens it (SQLite gives its `-wal` and
//! `-shm` files the database's mode), so it is never readable by others, even for a
//! moment.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use crate::PlatformError;

/// Creates the data directory (0700) or tightens it; tightens the `secrets` in it
/// (file names: the admin token, the signing key…) to 0600 when they exist; and makes
/// the SQLite database of `store_url`, when it is a file, 0600: created empty before
/// SQLite opens it (SQLite gives its `-wal` and `-shm` files the database's mode), or
/// tightened.
pub(crate) fn prepare_data_dir(
    dir: &Path,
    store_url: &str,
    secrets: &[&str],
) -> Result<(), PlatformError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            PlatformError::io(format!("creating the data directory {}", dir.display()), e)
        })?;
    make_private(dir, 0o700)?;
    for secret in secrets {
        make_private(&dir.join(secret), 0o600)?;
    }
    if let Some(database) = sqlite_file(store_url) {
        if !database.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&database)
                .map_err(|e| {
                    PlatformError::io(format!("creating the database {}", database.display()), e)
                })?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", database.display());
            make_private(Path::new(&file), 0o600)?;
        }
    }
    let tls = dir.join("tls");
    if tls.is_dir() {
        make_private(&tls, 0o700)?;
    }
    warn_readable(dir);
    Ok(())
}

/// Sets `mode` on `path` if it exists and group or others may use it, with a warning
/// naming what changed.
fn make_private(path: &Path, mode: u32) -> Result<(), PlatformError> {
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    let current = metadata.permissions().mode() & 0o777;
    if current & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        PlatformError::io(
            format!("making {} private (chmod {mode:o})", path.display()),
            e,
        )
    })?;
    tracing::warn!(
        "{} was open to other users (mode {current:o}); it holds secrets, so it is now {mode:o}",
        path.display()
    );
    Ok(())
}

/// Names the files directly in the data directory that others could read if they could
/// enter it (defence in depth: the directory itself is 0700).
fn warn_readable(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if metadata.is_file() && mode & 0o044 != 0 {
            tracing::warn!(
                "{} is readable by group or others (mode {mode:o}); chmod 600 it unless that is intended",
                entry.path().display()
            );
        }
    }
}

/// The file of a `sqlite://PATH[?options]` store URL.
fn sqlite_file(store_url: &str) -> Option<std::path::PathBuf> {
    let rest = store_url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}
