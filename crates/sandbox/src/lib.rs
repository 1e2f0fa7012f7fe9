//! The sandbox every process function (`runtime = "lambda"`) runs in, built on
//! bubblewrap (`bwrap`, the sandbox of Flatpak), the way Lambda's execution environment
//! looks from inside:
//!
//! - its own mount namespace: the host's system directories (`/usr`, the library
//!   links, a short list of `/etc` files) read-only, the version's code read-only at
//!   `/var/task`, a private `/tmp` tmpfs capped at `ephemeral_storage_mb`, a fresh
//!   `/proc` and a minimal `/dev`; nothing of the data directory, of other functions'
//!   code or of the server's files;
//! - its own PID, IPC and UTS namespaces: `/proc` shows only its processes, and
//!   everything it started dies with it (bwrap's `--die-with-parent` and the end of the
//!   PID namespace);
//! - its own user: as root, a uid of its own per function (`SANDBOX_UID_BASE` + a hash of
//!   the name), never 0; otherwise uid 993 in a user namespace (Lambda's sandbox user),
//!   mapped to the server's user;
//! - no capabilities, `no_new_privs`, limits on processes and open files, and a seccomp
//!   filter at least as strict as the OCI default (`seccomp.rs`).
//!
//! The last step runs in our own code: the `gureum` binary, bound read-only into the
//! sandbox, is started as `gureum __sandbox-exec …` (`exec.rs`) and execs the function.
//!
//! [`Sandbox::detect`] finds bwrap (or `GUREUM_BWRAP`) and starts a trial sandbox when the
//! server starts; when that fails, the reason and the fix are kept and given to every
//! deploy and start of a process function (runtime-lambda's `Isolation::Unavailable`).
//! [`Sandbox::command`] builds the bwrap line: `--unshare-pid`, `-ipc`, `-uts`, `-net` (and
//! `-user` unless root), `--die-with-parent`, the host's `/usr` and library links, an
//! allow-list of `/etc` files, `--proc`, `--dev`, a `--size`d tmpfs `/tmp`, the code at
//! `/var/task`, the instance's directory at `/run/gureum/net` (relay socket) with its
//! hosts file over `/etc/hosts`, and the `gureum` binary at `/run/gureum/exec` (as root
//! through `/proc/PID/exe`, so a binary replaced on disk is not the one that runs).
//!
//! # Why bubblewrap
//!
//! Compared for issue 22; bwrap measured on the 2-core VM, the others from their
//! documentation and published start-up figures, not measured here.
//!
//! - bwrap (Debian `bubblewrap` 0.8; Flatpak's sandbox, maintained by the containers
//!   project) starts a namespace set with our mounts in about 2–3 ms of its own (a
//!   `bwrap … true` round trip is about 9 ms on the loaded machine, `true` alone 1 ms), is
//!   rootless through user namespaces and works the same as root, needs no image, bundle
//!   or JSON, takes cgroup v1 and v2 alike (it does not touch cgroups; memory stays with
//!   runtime-lambda's cgroup or watchdog), and leaves seccomp to us.
//! - crun and runc need an OCI bundle (`config.json`, a rootfs) per instance and a state
//!   directory, and add their own start-up (runc is Go and re-executes itself; crun is C
//!   and lighter); their rootless cgroup handling on v1 is partial. They are the right
//!   tool for container images, and a later issue can build on the same `Sandbox` seam.
//! - youki's `libcontainer` would run in process, but it is a whole container runtime
//!   (about 150 crates), Linux-only, with its own rust-version and cgroup v1 rough edges,
//!   and its `fork` inside our multi-threaded server is exactly what runtime-lambda avoids.
//!
//! bwrap's limits (one seccomp program, no rlimits, no uid switch as root) are closed by
//! our own last step (`__sandbox-exec`, see `exec.rs`), not by more helper programs.

mod exec;
pub mod network;
mod seccomp;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub use exec::{EXEC_ARG, GO, exec_main};

/// Where the function's code is, as on Lambda (`LAMBDA_TASK_ROOT`).
pub const TASK_ROOT: &str = "/var/task";
/// Processes and threads one sandbox may have (Lambda: 1,024).
pub const MAX_PROCESSES: u64 = 1024;
/// Open files one process may have (Lambda: 1,024).
pub const MAX_OPEN_FILES: u64 = 1024;
/// First uid of the per-function users when gureum runs as root: far above the ranges
/// distributions hand out (system users, people, subordinate id ranges).
pub const SANDBOX_UID_BASE: u32 = 0x4000_0000;
/// How many per-function uids there are.
const SANDBOX_UID_SPAN: u32 = 0x1_0000;
/// The uid and gid inside the user namespace when gureum does not run as root.
pub const USER_NAMESPACE_ID: u32 = 993;
/// The environment variable naming the bwrap binary, when not the system's.
pub const BWRAP_ENV: &str = "GUREUM_BWRAP";
/// Where the helper binary is inside the sandbox.
const HELPER_PATH: &str = "/run/gureum/exec";

/// `/etc` entries a process may need (shared libraries, TLS roots, name resolution,
/// time zones); bound read-only when the host has them. Nothing with secrets in it.
const ETC_ENTRIES: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "crypto-policies",
    "resolv.conf",
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "gai.conf",
    "localtime",
    "timezone",
    "alternatives",
    "mime.types",
    "protocols",
    "services",
];

/// The top-level directories of the host's system (links on merged-/usr systems).
const SYSTEM_DIRECTORIES: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Why the sandbox cannot run here.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// bwrap is not installed.
    #[error(
        "bubblewrap (bwrap) is not installed; process functions run in its sandbox: install it (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) or start gureum with --unsandboxed-processes (trusted code only)"
    )]
    NoBwrap,
    /// A trial sandbox did not start.
    #[error("a trial sandbox did not start: {detail}; {hint}")]
    Probe {
        /// What bwrap or the helper said.
        detail: String,
        /// How to make it work.
        hint: &'static str,
    },
    /// The seccomp filter cannot be built for this machine.
    #[error(transparent)]
    Filter(#[from] seccomp::FilterError),
}

const USERNS_HINT: &str = "user namespaces are not available to this user: allow them (Debian: sysctl -w kernel.unprivileged_userns_clone=1; Ubuntu 24.04+: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for bwrap; in a container: run it with user namespaces allowed, e.g. podman, or docker with --security-opt seccomp=unconfined --security-opt apparmor=unconfined), run gureum as root, or start it with --unsandboxed-processes (trusted code only)";
const OTHER_HINT: &str = "start gureum with --unsandboxed-processes to run process functions without a sandbox (trusted code only)";

/// One instance to start.
#[derive(Debug, Clone)]
pub struct Instance<'a> {
    /// The function's name (its uid, as root).
    pub function: &'a str,
    /// The unpacked code, bound at [`TASK_ROOT`].
    pub code_dir: &'a Path,
    /// Program and arguments, run in [`TASK_ROOT`].
    pub command: &'a [String],
    /// Size of the private `/tmp`.
    pub tmp_bytes: u64,
    /// The instance's own network (see `network`); `None` shares the host's.
    pub network: Option<Network<'a>>,
}

/// An instance's network: its directory on the host (with the relay socket the server
/// listens on and the hosts file) and what the relay offers inside.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    /// Bound at `network::RELAY_DIR`; holds `network::RELAY_SOCKET` and
    /// `network::HOSTS_FILE`.
    pub dir: &'a Path,
    /// The relay's listeners and hosts file.
    pub plan: &'a network::Plan,
}

/// A working sandbox for this machine.
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    helper: PathBuf,
    rootful: bool,
    system: Vec<OsString>,
}

impl Sandbox {
    /// Finds bwrap and proves that a sandbox starts here. `helper` is the `gureum`
    /// binary (`/proc/self/exe` of the server), run inside as [`EXEC_ARG`].
    pub fn detect(helper: &Path) -> Result<Self, SandboxError> {
        // `GUREUM_BWRAP` names another bwrap (e.g. a newer build in /opt).
        let bwrap = match std::env::var_os(BWRAP_ENV) {
            Some(path) => Some(PathBuf::from(path)).filter(|path| path.exists()),
            None => ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
                .iter()
                .map(PathBuf::from)
                .find(|path| path.exists()),
        }
        .ok_or(SandboxError::NoBwrap)?;
        seccomp::filters()?;
        let sandbox = Sandbox {
            bwrap,
            helper: helper.to_path_buf(),
            rootful: is_root(),
            system: system_arguments(),
        };
        sandbox.probe()?;
        Ok(sandbox)
    }

    /// This program's binary, as the sandbox should bind it for [`EXEC_ARG`]. As root
    /// through `/proc/PID/exe`, so a binary replaced on disk while the server runs is
    /// still the one that runs; an unprivileged bwrap, already in its user namespace when
    /// it binds, may not follow that link, so it gets the path.
    pub fn this_binary() -> PathBuf {
        let through_proc = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
        if is_root() {
            return through_proc;
        }
        std::env::current_exe().unwrap_or(through_proc)
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        if self.rootful {
            format!(
                "process functions run sandboxed by {} (namespaces, a uid of their own per function from {SANDBOX_UID_BASE}, no capabilities, seccomp)",
                self.bwrap.display()
            )
        } else {
            format!(
                "process functions run sandboxed by {} (namespaces, uid {USER_NAMESPACE_ID} in a user namespace, no capabilities, seccomp)",
                self.bwrap.display()
            )
        }
    }

    /// The uid (and gid) a function's processes run as on the host when gureum is root.
    pub fn function_uid(function: &str) -> u32 {
        // FNV-1a: stable across versions and machines, so a function keeps its uid.
        let hash = function.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
        SANDBOX_UID_BASE + hash % SANDBOX_UID_SPAN
    }

    /// The command that starts `instance` in its sandbox. The caller adds the
    /// environment (passed through to the function as is), stdio and process group.
    /// The sandbox is made at once but holds before the function's command: it runs
    /// when the caller writes [`GO`] to the child's stdin (a pipe the caller makes),
    /// and the function then reads an empty stdin. Closing stdin unused ends it.
    pub fn command(&self, instance: &Instance<'_>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.bwrap);
        command.args(self.arguments(instance));
        command
    }

    fn arguments(&self, instance: &Instance<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "--die-with-parent",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "gureum",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if instance.network.is_some() {
            args.push("--unshare-net".into());
        }
        let id = USER_NAMESPACE_ID.to_string();
        if !self.rootful {
            args.extend(
                [
                    "--unshare-user",
                    "--uid",
                    &id,
                    "--gid",
                    &id,
                    "--disable-userns",
                ]
                .map(OsString::from),
            );
        }
        // What the helper needs before it drops everything for good: the relay's ports
        // (some below 1024), and as root, becoming the function's user.
        args.extend(["--cap-drop", "ALL", "--cap-add", "CAP_SETPCAP"].map(OsString::from));
        if instance.network.is_some() {
            args.extend(["--cap-add", "CAP_NET_BIND_SERVICE"].map(OsString::from));
        }
        if self.rootful {
            args.extend(["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"].map(OsString::from));
        }
        args.extend(self.system.iter().cloned());
        let tmp_bytes = instance.tmp_bytes.max(1024 * 1024).to_string();
        args.extend(
            [
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--size",
                &tmp_bytes,
                "--perms",
                "1777",
                "--tmpfs",
                "/tmp",
                "--perms",
                "0755",
                "--dir",
                "/var",
                "--perms",
                "0755",
                "--dir",
                "/run",
                "--perms",
                "0755",
                "--dir",
                "/run/gureum",
            ]
            .map(OsString::from),
        );
        if let Some(network) = &instance.network {
            args.extend([
                "--ro-bind".into(),
                network.dir.as_os_str().to_owned(),
                network::RELAY_DIR.into(),
                "--ro-bind".into(),
                network.dir.join(network::HOSTS_FILE).into_os_string(),
                "/etc/hosts".into(),
            ]);
        }
        args.extend([
            "--ro-bind".into(),
            instance.code_dir.as_os_str().to_owned(),
            TASK_ROOT.into(),
            "--ro-bind".into(),
            self.helper.as_os_str().to_owned(),
            HELPER_PATH.into(),
            "--chdir".into(),
            TASK_ROOT.into(),
            "--".into(),
            HELPER_PATH.into(),
            EXEC_ARG.into(),
        ]);
        let user = self.rootful.then(|| {
            let uid = Self::function_uid(instance.function);
            (uid, uid)
        });
        args.extend(
            exec::ExecPlan {
                user,
                max_processes: MAX_PROCESSES,
                max_open_files: MAX_OPEN_FILES,
                relay: instance.network.as_ref().map(|network| {
                    (
                        Path::new(network::RELAY_DIR).join(network::RELAY_SOCKET),
                        network.plan.listeners.clone(),
                    )
                }),
                hold: true,
                command: instance.command.iter().map(OsString::from).collect(),
            }
            .to_args(),
        );
        args
    }

    /// Starts `true` in a sandbox like a function's and waits for it.
    fn probe(&self) -> Result<(), SandboxError> {
        let failed = |what: &str, error: std::io::Error| SandboxError::Probe {
            detail: format!("{what}: {error}"),
            hint: OTHER_HINT,
        };
        let empty = std::env::temp_dir();
        let dir = tempfile::tempdir().map_err(|error| failed("making a directory", error))?;
        let plan = network::Plan::new(&[]);
        std::fs::write(dir.path().join(network::HOSTS_FILE), &plan.hosts)
            .map_err(|error| failed("writing a hosts file", error))?;
        let command = ["true".to_string()];
        let args = self.arguments(&Instance {
            function: "gureum-probe",
            code_dir: &empty,
            command: &command,
            tmp_bytes: 1024 * 1024,
            network: Some(Network {
                dir: dir.path(),
                plan: &plan,
            }),
        });
        let output = std::process::Command::new(&self.bwrap)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .output();
        drop(dir);
        let output =
            output.map_err(|error| failed(&format!("running {}", self.bwrap.display()), error))?;
        if output.status.success() {
            return Ok(());
        }
        let detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let userns = ["namespace", "uid map", "uid_map", "setting up uid"]
            .iter()
            .any(|sign| detail.contains(sign));
        Err(SandboxError::Probe {
            detail: if detail.is_empty() {
                format!("bwrap ended with {}", output.status)
            } else {
                detail
            },
            hint: if userns && !self.rootful {
                USERNS_HINT
            } else {
                OTHER_HINT
            },
        })
    }
}

/// Whether this process runs as root (then no user namespace is needed, and functions
/// get uids of their own).
fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// The host's system, read-only: `/usr`, the top-level library and program directories
/// as the host has them (links or directories), and the `/etc` entries that exist.
fn system_arguments() -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--ro-bind".into(), "/usr".into(), "/usr".into()];
    for name in SYSTEM_DIRECTORIES {
        let path = Path::new("/").join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(&path) {
                    args.extend(["--symlink".into(), target.into_os_string(), path.into()]);
                }
            }
            Ok(meta) if meta.is_dir() => {
                args.extend(["--ro-bind".into(), path.clone().into(), path.into()]);
            }
            _ => {}
        }
    }
    // bwrap makes the parents of mount points 0700: the function's user must see in.
    args.extend([
        "--perms".into(),
        "0755".into(),
        "--dir".into(),
        "/etc".into(),
    ]);
    for entry in ETC_ENTRIES {
        let path = Path::new("/etc").join(entry);
        args.extend(["--ro-bind-try".into(), path.clone().into(), path.into()]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_uids_are_stable_distinct_and_never_root() {
        let a = Sandbox::function_uid("orders");
        assert_eq!(a, Sandbox::function_uid("orders"));
        assert_ne!(a, Sandbox::function_uid("mailer"));
        for name in ["a", "b", "hello", "x".repeat(63).as_str()] {
            let uid = Sandbox::function_uid(name);
            assert!((SANDBOX_UID_BASE..SANDBOX_UID_BASE + SANDBOX_UID_SPAN).contains(&uid));
        }
    }

    #[test]
    fn the_code_is_read_only_at_var_task_and_tmp_is_capped() {
        let sandbox = Sandbox {
            bwrap: "/usr/bin/bwrap".into(),
            helper: "/proc/1/exe".into(),
            rootful: false,
            system: system_arguments(),
        };
        let command = ["./bootstrap".to_string()];
        let args = sandbox.arguments(&Instance {
            function: "f",
            code_dir: Path::new("/data/code/abc"),
            command: &command,
            tmp_bytes: 5 * 1024 * 1024,
            network: None,
        });
        let text: Vec<String> = args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let joined = text.join(" ");
        assert!(
            joined.contains("--ro-bind /data/code/abc /var/task"),
            "{joined}"
        );
        assert!(
            joined.contains("--size 5242880 --perms 1777 --tmpfs /tmp"),
            "{joined}"
        );
        assert!(joined.contains("--disable-userns"), "{joined}");
        assert!(
            joined.ends_with("-- ./bootstrap"),
            "the function's command comes last: {joined}"
        );
        assert!(!joined.contains("/data/code --"), "{joined}");
    }
}
