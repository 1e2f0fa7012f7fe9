//! The node's own files in the data directory (the admin token, its id) and the
//! process limits it raises at start.

use std::path::Path;

use crate::PlatformError;

/// The admin token's file name inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";
/// File in the data directory holding this node's id (the owner of its queue leases).
pub const NODE_ID_FILE: &str = "node.id";

/// The admin token: read from `path`, or made (32 random bytes, hex) and written 0600.
pub(crate) fn admin_token(path: &Path) -> Result<String, PlatformError> {
    if let Ok(token) = std::fs::read_to_string(path) {
        let token = token.trim().to_string();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    write_private(path, &token).map_err(|e| {
        PlatformError::io(format!("writing the admin token to {}", path.display()), e)
    })?;
    Ok(token)
}

/// This node's id, created on first start and kept in the data directory, so a restarted
/// node recognises (and frees at once) the queue leases it held before.
pub(crate) fn node_id(data_dir: &Path) -> Result<String, PlatformError> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::now_v7().simple().to_string();
            write_private(&path, &id)
                .map_err(|e| PlatformError::io(format!("writing {}", path.display()), e))?;
            Ok(id)
        }
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

/// Raises the soft limit on open files to the hard limit (systemd's default soft limit
/// of 1024 is what a thousand idle sockets exhausted in audit finding 7) and returns the
/// limit now in force.
pub(crate) fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return limit.maximum.unwrap_or(u64::MAX),
            Err(error) => tracing::warn!(%error, current, "could not raise the open-file limit"),
        }
    }
    current
}

/// The public listener's connection cap when none is configured: what the open-file
/// limit leaves after the admin listener's cap and room for the server's own files
/// (store, compiled code, process functions, outbound connections), an eighth of the
/// limit and at least 256.
pub(crate) fn default_max_connections(open_files: u64, admin_max_connections: usize) -> usize {
    let open_files = usize::try_from(open_files).unwrap_or(usize::MAX);
    let reserve = (open_files / 8).max(256);
    open_files
        .saturating_sub(reserve)
        .saturating_sub(admin_max_connections)
        .max(64)
}
