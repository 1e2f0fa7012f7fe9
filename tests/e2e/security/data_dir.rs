//! Finding 4 and info item 6: the data directory was 0755 and `gureum.db` (all signing
//! keys, password hashes) 0644, readable by every local user; `admin.token` and
//! `jwt.key` got 0600 only when created.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::Server;
use crate::sandbox::{UNPRIVILEGED_USER, ensure_unprivileged_user, is_root};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn assert_private(data_dir: &Path) {
    assert_eq!(mode(data_dir), 0o700, "the data directory");
    for file in [
        "gureum.db",
        "gureum.db-wal",
        "gureum.db-shm",
        "admin.token",
        "jwt.key",
        "node.id",
    ] {
        let path = data_dir.join(file);
        if file.contains('-') && !path.exists() {
            // SQLite's WAL files exist only while the database is open.
            continue;
        }
        assert_eq!(mode(&path) & 0o077, 0, "{file} is {:o}", mode(&path));
    }
}

/// Whether another local user can read `path` (only checked when the test runs as root).
fn readable_by_another_user(path: &Path) -> bool {
    ensure_unprivileged_user();
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={UNPRIVILEGED_USER}"),
            &format!("--regid={UNPRIVILEGED_USER}"),
            "--clear-groups",
            "head",
            "-c",
            "16",
        ])
        .arg(path)
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn the_data_directory_and_its_secrets_are_private_also_after_an_upgrade() {
    let parent = tempfile::tempdir().unwrap();
    // Others may enter the parent, as with a data directory in a home or /var/lib.
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = parent.path().join("data");
    let server = Server::start_in(&data_dir, None);
    assert_private(&data_dir);
    if is_root() {
        assert!(!readable_by_another_user(&data_dir.join("gureum.db")));
    }
    assert_eq!(server.stop(), Some(0));

    // A data directory from before: everything world-readable. The next start makes it
    // private again and says what it changed.
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(&data_dir).unwrap().flatten() {
        if entry.metadata().unwrap().is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    if is_root() {
        assert!(
            readable_by_another_user(&data_dir.join("gureum.db")),
            "the test's own premise: a 0644 database in a 0755 directory is readable"
        );
    }
    let log = parent.path().join("server.log");
    let server = Server::start_in_logged(&data_dir, &["--no-examples"], &log);
    assert_private(&data_dir);
    if is_root() {
        assert!(!readable_by_another_user(&data_dir.join("gureum.db")));
    }
    server.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("was open to other users (mode 755)") && text.contains("admin.token"),
        "{text}"
    );
}
