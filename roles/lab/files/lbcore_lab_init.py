"""PID 1 of one lab host: make the host's private filesystem view, then reap and wait.

Theory of operation. `lbcore_lab_host.py` starts this script as
`ip netns exec NETNS unshare --mount --pid --uts --fork --mount-proc -- python3 THIS ...`,
so it runs as PID 1 of a fresh PID namespace, in fresh mount and UTS namespaces, inside the
host's network namespace. It then

1. sets the host name (the UTS namespace is private, so `hostname` answers `lb1`);
2. bind-mounts each per-host directory `ROOT/<path>` over `<path>` (/etc/lbcore, /run,
   /tmp, ...); unshare made every mount private, so nothing leaks to the root namespace;
3. writes `/run/lbcore-lab-init.ready` so the helper knows the host is ready;
4. stays alive as the namespace's init: it reaps orphans (daemons started later with
   nsenter, such as sshd or lbcore, end up as its children) and keeps the namespaces alive.

Services (sshd, the lab web app, later lbcore) are *not* children of a supervisor that
restarts them: a host whose sshd died stays broken until `present` repairs it, exactly as a
real host would. SIGTERM stops the whole host: every process in the namespace gets SIGTERM,
then SIGKILL after a grace period. Stdlib only; it runs under Debian's /usr/bin/python3.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

READY_FILE = "/run/lbcore-lab-init.ready"
GRACE_SECONDS = 5.0


def _reap_all(deadline: float) -> None:
    """Reap children until none is left or the deadline passes."""
    while time.monotonic() < deadline:
        try:
            pid = os.waitpid(-1, os.WNOHANG)[0]
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def _stop_host(signum: int, frame: object) -> None:
    """Stop every process of this host (kill(-1) from PID 1 reaches the whole namespace)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGTERM)
    _reap_all(time.monotonic() + GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)
    _reap_all(time.monotonic() + 1.0)
    os._exit(0)


def _setup(name: str, root: str, private_dirs: list[str]) -> None:
    socket.sethostname(name)
    for path in private_dirs:
        source = os.path.join(root, path.lstrip("/"))
        # The target exists in the shared root filesystem: the helper made it before.
        subprocess.run(["mount", "--bind", source, path], check=True)
    with open(READY_FILE, "w", encoding="ascii") as ready:
        ready.write(f"{name}\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="host name (UTS namespace)")
    parser.add_argument("--root", required=True, help="directory holding the per-host dirs")
    parser.add_argument("--private", action="append", default=[], help="path made private")
    args = parser.parse_args(argv)
    if os.getpid() != 1:
        print("lbcore-lab-init: must run as PID 1 of a new PID namespace", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_host)
    signal.signal(signal.SIGINT, _stop_host)
    _setup(args.name, args.root, args.private)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
