//! The last step inside the sandbox, run as `gureum __sandbox-exec …` by bubblewrap: set
//! the resource limits, become the function's own user (when gureum runs as root), give
//! up every capability for good, set `no_new_privs`, load the seccomp filters, and exec
//! the function's command. Done here, in our own code, rather than by more helper
//! programs, because bwrap takes one seccomp program and the filter needs two (see
//! `seccomp`), and each extra exec would add to every cold start.
//!
//! The steps, in order: bind the relay's listeners (while ports below 1024 are still
//! allowed); set the rlimits ([`crate::MAX_PROCESSES`] and [`crate::MAX_OPEN_FILES`], 1,024
//! each); as root, become the function's uid ([`crate::SANDBOX_UID_BASE`] + an FNV hash of
//! its name, `Sandbox::function_uid`); drop every capability (ambient, bounding,
//! permitted); set `no_new_privs`; load the seccomp filters; fork the relay (it dies with
//! its parent); in a prepared sandbox, wait for [`GO`] on stdin (end of file: exit; the
//! function then gets `/dev/null` as stdin); exec the command in `/var/task`.
#![allow(unsafe_code)] // setrlimit, prctl, setgroups, setresgid, setresuid: each checked.

use std::convert::Infallible;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;

use crate::network::{self, Target};

/// The hidden first argument that makes the `gureum` binary this helper.
pub const EXEC_ARG: &str = "__sandbox-exec";

/// The byte that releases a held sandbox (see [`ExecPlan::hold`]).
pub const GO: u8 = b'g';

/// What the helper does before it execs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecPlan {
    /// Switch to this uid and gid (gureum runs as root: no user namespace maps one).
    pub(crate) user: Option<(u32, u32)>,
    /// `RLIMIT_NPROC`: processes and threads of the function's user.
    pub(crate) max_processes: u64,
    /// `RLIMIT_NOFILE`.
    pub(crate) max_open_files: u64,
    /// The relay's socket and listeners (the sandbox has its own network).
    pub(crate) relay: Option<(PathBuf, Vec<(SocketAddr, Target)>)>,
    /// Wait, with everything but the exec done, until the server writes [`GO`] to
    /// stdin (a prepared sandbox waits for its first request this way).
    pub(crate) hold: bool,
    /// The function's command.
    pub(crate) command: Vec<OsString>,
}

impl ExecPlan {
    /// The helper's arguments, after [`EXEC_ARG`].
    pub(crate) fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some((uid, gid)) = self.user {
            args.extend(["--uid".into(), uid.to_string().into()]);
            args.extend(["--gid".into(), gid.to_string().into()]);
        }
        args.extend([
            "--nproc".into(),
            self.max_processes.to_string().into(),
            "--nofile".into(),
            self.max_open_files.to_string().into(),
        ]);
        if self.hold {
            args.push("--hold".into());
        }
        if let Some((socket, listeners)) = &self.relay {
            args.extend(["--relay".into(), socket.clone().into_os_string()]);
            args.extend(
                network::Plan {
                    listeners: listeners.clone(),
                    hosts: String::new(),
                    skipped: Vec::new(),
                }
                .to_args()
                .into_iter()
                .map(OsString::from),
            );
        }
        args.push("--".into());
        args.extend(self.command.iter().cloned());
        args
    }

    fn parse(args: &[OsString]) -> Result<Self, String> {
        let mut plan = ExecPlan {
            user: None,
            max_processes: 0,
            max_open_files: 0,
            relay: None,
            hold: false,
            command: Vec::new(),
        };
        let mut listeners = Vec::new();
        let (mut uid, mut gid) = (None, None);
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let number = |value: Option<&OsString>| -> Result<u64, String> {
                value
                    .and_then(|value| value.to_str())
                    .and_then(|value| value.parse().ok())
                    .ok_or_else(|| format!("{arg:?} needs a number"))
            };
            match arg.to_str() {
                Some("--uid") => uid = Some(number(rest.next())?),
                Some("--gid") => gid = Some(number(rest.next())?),
                Some("--nproc") => plan.max_processes = number(rest.next())?,
                Some("--nofile") => plan.max_open_files = number(rest.next())?,
                Some("--hold") => plan.hold = true,
                Some("--relay") => {
                    let socket = rest.next().ok_or("--relay needs a socket path")?;
                    plan.relay = Some((PathBuf::from(socket), Vec::new()));
                }
                Some("--listen") => {
                    let value = rest.next().and_then(|value| value.to_str());
                    listeners.push(
                        value
                            .and_then(network::Plan::parse_listen)
                            .ok_or_else(|| format!("--listen {value:?} is not ADDRESS=TARGET"))?,
                    );
                }
                Some("--") => {
                    plan.command = rest.cloned().collect();
                    break;
                }
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        plan.user = match (uid, gid) {
            (Some(uid), Some(gid)) => Some((
                u32::try_from(uid).map_err(|_| "uid out of range")?,
                u32::try_from(gid).map_err(|_| "gid out of range")?,
            )),
            (None, None) => None,
            _ => return Err("--uid and --gid go together".into()),
        };
        if plan.command.is_empty() {
            return Err("no command after --".into());
        }
        match &mut plan.relay {
            Some((_, relayed)) => *relayed = listeners,
            None if !listeners.is_empty() => return Err("--listen needs --relay".into()),
            None => {}
        }
        Ok(plan)
    }
}

/// Runs the helper with the arguments after [`EXEC_ARG`]; returns only on failure, after
/// printing why (the function's log shows it as an init failure).
pub fn exec_main(args: &[OsString]) -> ! {
    let error = match ExecPlan::parse(args) {
        Ok(plan) => match enter(&plan) {
            Ok(never) => match never {},
            Err(error) => error,
        },
        Err(error) => error,
    };
    eprintln!("gureum sandbox: {error}");
    std::process::exit(126)
}

fn enter(plan: &ExecPlan) -> Result<Infallible, String> {
    // Bound while ports below 1024 are still allowed (CAP_NET_BIND_SERVICE).
    let relay = match &plan.relay {
        Some((socket, listeners)) => Some((socket, network::bind(listeners)?)),
        None => None,
    };
    set_limit(libc::RLIMIT_NPROC, plan.max_processes, "processes")?;
    set_limit(libc::RLIMIT_NOFILE, plan.max_open_files, "open files")?;
    if let Some((uid, gid)) = plan.user {
        become_user(uid, gid)?;
    }
    drop_capabilities()?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(last_error("setting no_new_privs"));
    }
    let filters = crate::seccomp::filters().map_err(|error| error.to_string())?;
    for filter in &filters {
        seccompiler::apply_filter(filter)
            .map_err(|error| format!("loading the seccomp filter: {error}"))?;
    }
    if let Some((socket, listeners)) = relay {
        start_relay(socket, listeners)?;
    }
    if plan.hold {
        wait_for_go()?;
    }
    let (program, args) = plan.command.split_first().ok_or("no command")?;
    let error = std::process::Command::new(program).args(args).exec();
    Err(format!(
        "running {program:?} in /var/task: {error} (is it in the code package, executable, and built for this machine?)"
    ))
}

/// Blocks until the server writes [`GO`] to stdin, then gives the function an empty
/// stdin (`/dev/null`), as it would have had. End of file instead means the server
/// dropped this prepared sandbox: exit quietly.
fn wait_for_go() -> Result<(), String> {
    let mut byte = [0u8; 1];
    let read = loop {
        // SAFETY: reads at most one byte into a local buffer that outlives the call.
        let read = unsafe { libc::read(0, byte.as_mut_ptr().cast(), 1) };
        if read < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break read;
    };
    if read != 1 || byte[0] != GO {
        std::process::exit(0);
    }
    let null =
        std::fs::File::open("/dev/null").map_err(|error| format!("opening /dev/null: {error}"))?;
    // SAFETY: dup2 onto stdin of a descriptor this process owns; `null` closes its own.
    if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) } < 0 {
        return Err(last_error("replacing stdin"));
    }
    Ok(())
}

/// Forks the relay (`network::relay`), which dies with this process: after the exec
/// below, with the function.
fn start_relay(
    socket: &std::path::Path,
    listeners: Vec<(std::net::TcpListener, Target)>,
) -> Result<(), String> {
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: this process has one thread (nothing here starts any), so the child may
    // run anything; it only returns into `network::relay`.
    match unsafe { libc::fork() } {
        -1 => Err(last_error("starting the network relay")),
        0 => {
            // SAFETY: prctl and getppid with integer arguments.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                if libc::getppid() != parent {
                    libc::_exit(0);
                }
            }
            network::relay(listeners, socket)
        }
        _ => Ok(()),
    }
}

/// No capability left in any set, and none to be had again: ambient cleared, bounding
/// set emptied (while CAP_SETPCAP allows it), then effective, permitted and inheritable
/// zeroed.
fn drop_capabilities() -> Result<(), String> {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    for capability in 0..=63 {
        // SAFETY: prctl with integer arguments; negative past the last capability.
        let held = unsafe { libc::prctl(libc::PR_CAPBSET_READ, capability, 0, 0, 0) };
        if held < 0 {
            break;
        }
        // SAFETY: as above.
        if held == 1 && unsafe { libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) } != 0 {
            return Err(last_error("emptying the capability bounding set"));
        }
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset with pointers to locals of the layout the kernel expects for
    // version 3 (a header and two data words), which outlive the call.
    if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } != 0 {
        return Err(last_error("dropping capabilities"));
    }
    Ok(())
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64, what: &str) -> Result<(), String> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: the pointer is to a local that outlives the call.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(last_error(&format!("limiting {what} to {value}")));
    }
    Ok(())
}

/// From root to the function's user with no way back: the capability bounding set
/// emptied first (that needs CAP_SETPCAP, which setresuid would take), then groups,
/// gid and uid. Leaving uid 0 clears the permitted and effective capabilities.
fn become_user(uid: u32, gid: u32) -> Result<(), String> {
    for capability in 0..=63 {
        // SAFETY: prctl with integer arguments; EINVAL past the last capability the
        // kernel knows ends the loop.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) } != 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(last_error("emptying the capability bounding set"));
        }
    }
    // SAFETY: setgroups with an empty list (a null pointer is allowed for size 0).
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(last_error("dropping supplementary groups"));
    }
    // SAFETY: integer arguments only.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(last_error(&format!("switching to gid {gid}")));
    }
    // SAFETY: integer arguments only.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(last_error(&format!("switching to uid {uid}")));
    }
    // SAFETY: getuid/geteuid cannot fail.
    if unsafe { libc::getuid() } != uid || unsafe { libc::geteuid() } != uid {
        return Err(format!("still not uid {uid} after setresuid"));
    }
    Ok(())
}

fn last_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_survives_its_own_arguments() {
        for user in [None, Some((1_073_741_824, 1_073_741_824))] {
            let plan = ExecPlan {
                user,
                max_processes: 1024,
                max_open_files: 1024,
                relay: user.map(|_| {
                    (
                        PathBuf::from("/run/gureum/net/relay.sock"),
                        network::Plan::new(&[("db".into(), 5432)]).listeners,
                    )
                }),
                hold: user.is_some(),
                command: vec!["python3".into(), "-m".into(), "--uid".into()],
            };
            assert_eq!(ExecPlan::parse(&plan.to_args()), Ok(plan));
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let parse = |args: &[&str]| {
            ExecPlan::parse(&args.iter().map(OsString::from).collect::<Vec<_>>()).unwrap_err()
        };
        assert!(parse(&["--uid", "x", "--", "a"]).contains("--uid"));
        assert!(parse(&["--uid", "1", "--", "a"]).contains("together"));
        assert!(parse(&["--nproc", "1"]).contains("no command"));
        assert!(parse(&["--what"]).contains("--what"));
    }
}
