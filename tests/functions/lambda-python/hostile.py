"""End-to-end test fixture: a hostile process function (``python3 -m awslambdaric
hostile.handler``) that tries to break out of its sandbox, one attempt per request.

``GET /?try=NAME&...`` answers 200 JSON ``{"escaped": bool, "detail": str}``:
``escaped`` is true when the attempt got what a sandbox must deny.

* ``read&path=P`` -- read file P (absolute, or relative to the working directory).
* ``environ`` -- find another function's environment in ``/proc/*/environ``.
* ``signal&pid=N`` -- ``kill(N, 0)`` on another function's process (host pid N).
* ``ptrace&pid=N`` -- ``PTRACE_ATTACH`` to host pid N.
* ``pgid&pgid=N`` -- join process group N (``setpgid``).
* ``daemon&marker=M`` -- start a ``setsid`` daemon with ``GUREUM_TEST_DAEMON=M`` in its
  environment that sleeps for 10 minutes; ``escaped`` is false (the test looks for it).
* ``fork&n=N`` -- start N sleeping children (a fork bomb, bounded); escaped if all start.
* ``filltmp&mb=N`` -- write N MiB into ``/tmp``; escaped if all of it fits.
* ``writecode`` -- create a file in the code directory.
* ``unshare`` -- create a user namespace.
* ``mount`` -- mount a tmpfs.
* ``setuid`` -- become uid 0.
* ``sleep&ms=N`` -- sleep N ms (past the timeout: the instance is killed).
* ``connect&host=H&port=P`` -- open a TCP connection (the admin listener, PostgreSQL,
  any server on the host's loopback).
* ``relay&host=H&port=P`` -- ask the sandbox's relay socket for a connection to H:P
  directly, and send an HTTP request through it; escaped if anything answers.
* ``fetch&url=U`` -- GET U; "escaped" here means it answered (for allowed hosts).
"""

import ctypes
import json
import os
import signal
import socket
import time
import urllib.request
from urllib.parse import parse_qs

_libc = ctypes.CDLL(None, use_errno=True)


def _answer(escaped, detail):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"escaped": bool(escaped), "detail": str(detail)[:500]}),
    }


def _errno():
    return os.strerror(ctypes.get_errno())


def _read(query):
    path = query["path"]
    try:
        with open(path, "rb") as file:
            data = file.read(64)
        return _answer(True, f"read {len(data)} bytes of {path}")
    except OSError as error:
        return _answer(False, error)


def _environ(query):
    own = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    seen = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        seen += 1
        try:
            with open(f"/proc/{entry}/environ", "rb") as file:
                variables = file.read().split(b"\0")
        except OSError:
            continue
        names = [v for v in variables if v.startswith(b"AWS_LAMBDA_FUNCTION_NAME=")]
        if names and names[0] != f"AWS_LAMBDA_FUNCTION_NAME={own}".encode():
            return _answer(True, f"pid {entry}: {names[0].decode()}")
    return _answer(False, f"{seen} processes visible, none of another function")


def _signal(query):
    try:
        os.kill(int(query["pid"]), 0)
        return _answer(True, "signalled")
    except OSError as error:
        return _answer(False, error)


def _ptrace(query):
    pid = int(query["pid"])
    if _libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        _libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
        return _answer(True, "attached")
    return _answer(False, _errno())


def _pgid(query):
    try:
        os.setpgid(0, int(query["pgid"]))
        return _answer(True, f"now in group {os.getpgid(0)}")
    except OSError as error:
        return _answer(False, error)


def _daemon(query):
    # exec'd, so the marker is in the environment /proc shows.
    environment = dict(os.environ, GUREUM_TEST_DAEMON=query["marker"])
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execve("/bin/sleep", ["sleep", "600"], environment)
        os._exit(0)
    os.wait()
    return _answer(False, "daemon started")


def _fork(query):
    wanted = int(query["n"])
    children = []
    failure = None
    for _ in range(wanted):
        try:
            pid = os.fork()
        except OSError as error:
            failure = error
            break
        if pid == 0:
            # A small process each, so the memory watchdog sees the count, not copies.
            os.execv("/bin/sleep", ["sleep", "30"])
        children.append(pid)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return _answer(len(children) == wanted, f"{len(children)} of {wanted} started: {failure}")


def _filltmp(query):
    wanted = int(query["mb"])
    block = b"x" * (1024 * 1024)
    written = 0
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fill")
    try:
        with open(path, "wb") as file:
            for _ in range(wanted):
                file.write(block)
                file.flush()
                written += 1
            os.fsync(file.fileno())
        detail = f"wrote {written} MiB"
    except OSError as error:
        detail = f"wrote {written} MiB, then {error}"
    finally:
        try:
            os.remove(path)
        except OSError:
            pass
    return _answer(written == wanted and "then" not in detail, detail)


def _writecode(query):
    path = os.path.join(os.environ["LAMBDA_TASK_ROOT"], "planted")
    try:
        with open(path, "w") as file:
            file.write("x")
        os.remove(path)
        return _answer(True, f"wrote {path}")
    except OSError as error:
        return _answer(False, error)


def _in_child(attempt):
    """Runs ``attempt`` (True when it worked) in a child, so that a success (a new
    namespace, another uid) does not change the process that serves the next request."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            worked = attempt()
            detail = "worked" if worked else _errno()
        except OSError as error:
            worked, detail = False, str(error)
        os.write(write_end, json.dumps([worked, detail]).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    worked, detail = json.loads(answer or b'[false, "the child died"]')
    return _answer(worked, detail)


def _unshare(query):
    return _in_child(lambda: _libc.unshare(0x10000000) == 0)  # CLONE_NEWUSER


def _mount(query):
    return _in_child(lambda: _libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0)


def _setuid(query):
    def become_root():
        os.setuid(0)
        return True

    return _in_child(become_root)


def _sleep(query):
    time.sleep(int(query["ms"]) / 1000)
    return _answer(False, "slept")


def _connect(query):
    try:
        with socket.create_connection((query["host"], int(query["port"])), timeout=2):
            return _answer(True, "connected")
    except OSError as error:
        return _answer(False, error)


def _relay(query):
    path = "/run/gureum/net/relay.sock"
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(3)
            conn.connect(path)
            conn.sendall(f"connect {query['host']} {query['port']}\n".encode())
            conn.sendall(b"GET /healthz HTTP/1.0\r\nhost: x\r\n\r\n")
            data = conn.recv(100)
        return _answer(bool(data), f"answered {data!r}")
    except OSError as error:
        return _answer(False, error)


def _fetch(query):
    try:
        with urllib.request.urlopen(query["url"], timeout=5) as answer:
            return _answer(True, answer.read(200).decode(errors="replace"))
    except OSError as error:
        return _answer(False, error)


_ATTEMPTS = {
    "connect": _connect,
    "relay": _relay,
    "fetch": _fetch,
    "sleep": _sleep,
    "read": _read,
    "environ": _environ,
    "signal": _signal,
    "ptrace": _ptrace,
    "pgid": _pgid,
    "daemon": _daemon,
    "fork": _fork,
    "filltmp": _filltmp,
    "writecode": _writecode,
    "unshare": _unshare,
    "mount": _mount,
    "setuid": _setuid,
}


def handler(event, context):
    query = {k: v[0] for k, v in parse_qs(event.get("rawQueryString", "")).items()}
    attempt = _ATTEMPTS.get(query.get("try", ""))
    if attempt is None:
        return _answer(False, f"unknown attempt; one of {sorted(_ATTEMPTS)}")
    return attempt(query)
