"""Daemon mode (``-D``) and pidfiles.

Theory of operation: the classic double fork (fork, ``setsid``, fork) detaches the master
from the terminal and its session, so it can never get a controlling terminal again. The
one twist is that the command a supervisor (an init script, Ansible, a test) ran must not
return before the balancer is serving: the original process waits on a pipe until the
daemon reports "ready" — after the listeners are bound, the pidfile written and the
workers forked — and exits 0, or prints the daemon's error and exits 1. Listeners are
bound *before* daemonizing so a bind error still reaches the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys

_READY = b"1"
_FAILED = b"0"


class Ready:
    """The daemon's end of the readiness pipe: call :meth:`notify` exactly once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def notify(self, ok: bool = True, message: str = "") -> None:
        if self.fd < 0:
            return
        data = _READY if ok else _FAILED + message.encode(errors="replace")
        with contextlib.suppress(OSError):
            os.write(self.fd, data)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1


def daemonize(log_file: str | None = None) -> Ready:
    """Detach. Returns in the daemon (the grandchild); the calling process waits for
    :meth:`Ready.notify` and exits with its verdict, never returning."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    r, w = os.pipe()
    if os.fork() > 0:
        os.close(w)
        _wait_ready(r)  # exits
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    redirect_stdio(log_file)
    return Ready(w)


def _wait_ready(fd: int) -> None:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    data = b"".join(chunks)
    if data.startswith(_READY):
        os._exit(0)
    message = data[1:].decode(errors="replace") or "the daemon exited before it was ready"
    os.write(2, f"lbcore: {message}\n".encode())
    os._exit(1)


def redirect_stdio(log_file: str | None) -> None:
    """stdin from /dev/null; stdout and stderr to ``log_file`` (appended) or /dev/null."""
    null = os.open(os.devnull, os.O_RDWR)
    out = null
    if log_file is not None:
        out = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for fd in {null, out}:
        if fd > 2:
            os.close(fd)


def write_pidfile(path: str, pid: int) -> None:
    """Write ``pid`` atomically: a reader sees the old file or the whole new one."""
    tmp = f"{path}.{pid}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


def remove_pidfile(path: str, pid: int) -> None:
    """Remove the pidfile if it still names ``pid`` (a newer instance may own it)."""
    try:
        with open(path) as f:
            if f.read().strip() != str(pid):
                return
        os.unlink(path)
    except OSError:
        pass
