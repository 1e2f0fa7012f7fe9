//! How a process is held to its `memory_mb`. The strongest mechanism the machine
//! allows is chosen once at start: a cgroup v2 `memory.max` per instance (the kernel
//! counts every page the process and its children touch, and OOM-kills past it), or,
//! where cgroup v2 cannot be delegated to us, a watchdog that reads the resident memory
//! of the process and its children from `/proc` (every 10 ms while it runs an event)
//! and kills it past the limit. An address-space rlimit was tried as that fallback and
//! rejected: V8 (Node) and Go reserve gigabytes of address space they never touch, so
//! any useful `RLIMIT_AS` kills them at start ("Failed to reserve virtual memory").
#![allow(unsafe_code)] // kill(2) of a process group, with its reason below.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// How often the watchdog reads a busy process's resident memory.
pub const WATCH_INTERVAL_BUSY: std::time::Duration = std::time::Duration::from_millis(10);
/// How often it reads an idle one's.
pub const WATCH_INTERVAL_IDLE: std::time::Duration = std::time::Duration::from_millis(250);

const MIB: u64 = 1024 * 1024;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The mechanism chosen for this machine.
#[derive(Debug, Clone)]
pub enum MemoryEnforcement {
    /// Per-instance cgroups under this directory (memory controller enabled).
    Cgroup(PathBuf),
    /// The resident-memory watchdog; the reason cgroup v2 could not be used.
    Watchdog(String),
}

impl MemoryEnforcement {
    /// Picks the strongest mechanism available to this process.
    pub fn detect() -> Self {
        match delegate_cgroup() {
            Ok(dir) => MemoryEnforcement::Cgroup(dir),
            Err(reason) => MemoryEnforcement::Watchdog(reason),
        }
    }

    /// One line for the logs and the docs.
    pub fn describe(&self) -> String {
        match self {
            MemoryEnforcement::Cgroup(dir) => format!(
                "lambda memory_mb enforced by cgroup v2 memory.max (per-instance cgroups under {})",
                dir.display()
            ),
            MemoryEnforcement::Watchdog(reason) => format!(
                "lambda memory_mb enforced by a resident-memory watchdog (/proc, every {} ms while busy); cgroup v2 is not available: {reason}",
                WATCH_INTERVAL_BUSY.as_millis()
            ),
        }
    }
}

/// Makes a cgroup whose children may get a memory limit: our own cgroup v2 with the
/// memory controller enabled for its children. The "no internal processes" rule means
/// the processes already in it move into a `gureum-server` leaf first.
fn delegate_cgroup() -> Result<PathBuf, String> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|error| format!("reading /proc/self/cgroup: {error}"))?;
    if own.lines().any(|line| {
        line.split(':')
            .nth(1)
            .is_some_and(|controllers| controllers.split(',').any(|c| c == "memory"))
    }) {
        return Err("the memory controller is on a cgroup v1 hierarchy".into());
    }
    let relative = own
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("no cgroup v2 hierarchy in /proc/self/cgroup")?;
    let dir = Path::new(CGROUP_ROOT).join(relative.trim_start_matches('/'));
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map_err(|error| format!("{}: {error}", dir.join("cgroup.controllers").display()))?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return Err(format!(
            "the memory controller is not delegated to {}",
            dir.display()
        ));
    }
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    if !enabled.split_whitespace().any(|c| c == "memory") {
        let leaf = dir.join("gureum-server");
        std::fs::create_dir_all(&leaf).map_err(|error| format!("{}: {error}", leaf.display()))?;
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            write_file(&leaf.join("cgroup.procs"), pid)?;
        }
        write_file(&dir.join("cgroup.subtree_control"), "+memory")?;
    }
    Ok(dir)
}

fn write_file(path: &Path, value: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|error| format!("writing {value:?} to {}: {error}", path.display()))
}

/// The limit of one instance, prepared before its process starts.
pub(crate) enum InstanceLimit {
    Cgroup { dir: PathBuf },
    Watchdog { bytes: u64 },
}

impl InstanceLimit {
    pub(crate) fn prepare(
        enforcement: &MemoryEnforcement,
        instance: &str,
        memory_mb: u32,
    ) -> std::io::Result<Self> {
        let bytes = u64::from(memory_mb) * MIB;
        match enforcement {
            MemoryEnforcement::Cgroup(root) => {
                let dir = root.join(format!("fn-{instance}"));
                std::fs::create_dir(&dir)?;
                std::fs::write(dir.join("memory.max"), bytes.to_string())?;
                // Swap would turn the limit into slowness instead of a clear failure.
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                Ok(InstanceLimit::Cgroup { dir })
            }
            MemoryEnforcement::Watchdog(_) => Ok(InstanceLimit::Watchdog { bytes }),
        }
    }

    /// Puts the child in its own process group (so the whole tree can be killed). No
    /// `pre_exec` hook on purpose: without one the process is started with
    /// `posix_spawn` (vfork semantics) instead of a `fork` that copies the whole server's
    /// page tables, which cost about 10 ms per cold start.
    pub(crate) fn apply(&self, command: &mut tokio::process::Command) {
        command.process_group(0);
    }

    /// Moves a just-started process into the instance's cgroup. Pages it touched before
    /// (its first microseconds) stay charged to the server's cgroup.
    pub(crate) fn attach(&self, pid: u32) -> std::io::Result<()> {
        match self {
            InstanceLimit::Cgroup { dir, .. } => {
                std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            }
            InstanceLimit::Watchdog { .. } => Ok(()),
        }
    }

    /// Whether the kernel OOM-killed something in this instance's cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        match self {
            InstanceLimit::Cgroup { dir, .. } => std::fs::read_to_string(dir.join("memory.events"))
                .ok()
                .and_then(|events| {
                    events.lines().find_map(|line| {
                        line.strip_prefix("oom_kill ")
                            .and_then(|count| count.trim().parse::<u64>().ok())
                    })
                })
                .is_some_and(|count| count > 0),
            InstanceLimit::Watchdog { .. } => false,
        }
    }

    /// The resident-memory ceiling the watchdog must enforce, if it is the mechanism.
    pub(crate) fn watched_bytes(&self) -> Option<u64> {
        match self {
            InstanceLimit::Watchdog { bytes } => Some(*bytes),
            InstanceLimit::Cgroup { .. } => None,
        }
    }

    /// Removes the instance's cgroup once its processes are gone.
    pub(crate) fn cleanup(&self) {
        if let InstanceLimit::Cgroup { dir, .. } = self {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Kills every process of a process group (an instance's process and its children).
pub(crate) fn kill_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid > 1 {
        // SAFETY: kill(2) takes plain integers; a negative pid names a process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Most processes of one tree the watchdog reads per look (a fork bomb is stopped by
/// the process limit, not here).
const MAX_WATCHED_PROCESSES: usize = 4096;

/// Resident memory of a process and all its descendants, from `/proc` (`None` once the
/// process is gone). All of them: in the sandbox the function runs two levels below
/// the process gureum started (bwrap, its init, then the command).
pub(crate) fn resident_bytes(pid: u32) -> Option<u64> {
    fn vm_rss(pid: u32) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
    /// Children of every thread of `pid` (a child belongs to the thread that forked it).
    fn children(pid: u32) -> Vec<u32> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|list| {
                list.split_whitespace()
                    .filter_map(|child| child.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }
    let mut total = vm_rss(pid)?;
    let mut pending = children(pid);
    let mut seen = 0;
    while let Some(child) = pending.pop() {
        seen += 1;
        if seen > MAX_WATCHED_PROCESSES {
            break;
        }
        total += vm_rss(child).unwrap_or(0);
        pending.extend(children(child));
    }
    Some(total)
}

/// Output that runtimes print when an allocation fails: a handler that catches its own
/// allocation failure (Python's `MemoryError`) is told apart from other errors by it.
pub(crate) fn looks_like_out_of_memory(line: &str) -> bool {
    const SIGNS: &[&str] = &[
        "memory allocation of",
        "MemoryError",
        "out of memory",
        "Out of memory",
        "Cannot allocate memory",
        "Allocation failed",
        "std::bad_alloc",
    ];
    SIGNS.iter().any(|sign| line.contains(sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_gives_a_mechanism_and_says_why() {
        let found = MemoryEnforcement::detect();
        let text = found.describe();
        assert!(text.starts_with("lambda memory_mb enforced by"), "{text}");
    }

    #[test]
    fn reads_resident_memory_of_a_process() {
        let own = resident_bytes(std::process::id()).expect("this process exists");
        assert!(own > 1024 * 1024, "{own}");
        assert_eq!(resident_bytes(u32::MAX - 1), None);
    }

    #[test]
    fn recognizes_allocation_failures_of_common_runtimes() {
        assert!(looks_like_out_of_memory(
            "memory allocation of 1048576 bytes failed"
        ));
        assert!(looks_like_out_of_memory("[ERROR] MemoryError"));
        assert!(looks_like_out_of_memory(
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
        ));
        assert!(!looks_like_out_of_memory("line 3"));
    }
}
