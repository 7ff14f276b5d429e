"""Golden transcripts of the runtime API, recorded from a real HAProxy 2.6.

Theory of operation: ``STEPS`` is one fixed sequence of (socket level, raw input)
pairs run in order against ``tests/data/runtime/haproxy.cfg``; each step opens a new
connection to the stats socket of that level, sends its bytes, half-closes and reads
the answer to EOF (what ``socat stdio`` does). The sequence mutates state (drain,
weights, addresses...), so later ``show`` steps observe earlier changes. The answers
are stored in ``tests/data/runtime/transcript.json``; lbcore's tests replay the same
steps and compare field by field after ``compare.normalize`` masks what is not
deterministic (PIDs, uptimes, dates, memory, versions, times since a change).

Regenerate with::

    python -m tests.integration.runtime.golden     # needs /usr/sbin/haproxy
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "runtime"
CONFIG_TEMPLATE = DATA / "haproxy.cfg"
TRANSCRIPT = DATA / "transcript.json"

#: (level, raw input). Level picks the socket: admin, operator or user.
STEPS: list[tuple[str, str]] = [
    ("admin", "help\n"),
    ("admin", "show version\n"),
    ("admin", "show info\n"),
    ("admin", "show info typed\n"),
    ("admin", "show info json\n"),
    ("admin", "show backend\n"),
    ("admin", "show stat\n"),
    ("admin", "show stat typed\n"),
    ("admin", "show stat json\n"),
    ("admin", "show stat db 6 -1 typed\n"),
    ("admin", "show stat -1 1 -1\n"),
    ("admin", "show stat -1 2 -1\n"),
    ("admin", "show stat -1 4 -1\n"),
    ("admin", "show stat -1 7 -1\n"),
    ("admin", "show stat app -1 -1\n"),
    ("admin", "show stat 3 4 2\n"),
    ("admin", "show stat db 6 -1\n"),
    ("admin", "show stat nope -1 -1\n"),
    ("admin", "show servers state\n"),
    ("admin", "show servers state static\n"),
    ("admin", "show servers state nope\n"),
    ("admin", "show sess\n"),
    ("admin", "get weight app/web1\n"),
    ("admin", "get weight app/nope\n"),
    ("admin", "get weight nope/web1\n"),
    ("admin", "get weight app\n"),
    ("admin", "get weight\n"),
    # drain, then look at every view of it
    ("admin", "set server app/web1 state drain\n"),
    ("admin", "show stat -1 6 -1\n"),
    ("admin", "show servers state app\n"),
    ("admin", "set server app/web1 state maint\n"),
    ("admin", "show stat app -1 -1\n"),
    ("admin", "show servers state app\n"),
    ("admin", "set server app/web1 state ready\n"),
    ("admin", "show servers state app\n"),
    ("admin", "set server app/web1 state bogus\n"),
    ("admin", "set server app/web1 state\n"),
    ("admin", "set server app/nope state ready\n"),
    ("admin", "set server nope/x state ready\n"),
    ("admin", "set server app/web1\n"),
    ("admin", "set server app/web1 foo\n"),
    # weights
    ("admin", "set server app/web1 weight 15\n"),
    ("admin", "get weight app/web1\n"),
    ("admin", "set server app/web1 weight 50%\n"),
    ("admin", "get weight app/web1\n"),
    ("admin", "set weight app/web2 7\n"),
    ("admin", "get weight app/web2\n"),
    ("admin", "set weight app/web2 300\n"),
    ("admin", "set weight app/web2 abc\n"),
    ("admin", "set weight app/web2 7x\n"),
    ("admin", "set weight app/web2 -5%\n"),
    ("admin", "set weight app/web2\n"),
    ("admin", "set weight app/spare 0\n"),
    ("admin", "set weight static/s2 200%\n"),
    ("admin", "get weight static/s2\n"),
    ("admin", "set server static/s1 weight 0\n"),
    ("admin", "show stat -1 6 -1\n"),
    # the deprecated enable/disable pair community.general.haproxy sends
    ("admin", "disable server app/web2\n"),
    ("admin", "show servers state app\n"),
    ("admin", "show stat app 4 -1\n"),
    ("admin", "show stat up\n"),
    ("admin", "show stat no-maint\n"),
    ("admin", "show stat up typed\n"),
    ("admin", "enable server app/web2\n"),
    ("admin", "enable server app/web3\n"),
    ("admin", "show servers state app\n"),
    ("admin", "set server app/web3 state drain\n"),
    ("admin", "disable server app/web3\n"),
    ("admin", "show servers state app\n"),
    ("admin", "show stat app 4 -1\n"),
    ("admin", "disable server app/nope\n"),
    ("admin", "enable server nope/web1\n"),
    ("admin", "disable server app\n"),
    ("admin", "disable health app/web1\n"),
    ("admin", "enable health app/web1\n"),
    ("admin", "disable health app/nope\n"),
    # addresses
    ("admin", "set server app/web1 addr 127.0.0.2 port 18099\n"),
    ("admin", "set server app/web1 addr 127.0.0.2\n"),
    ("admin", "set server app/web1 addr 127.0.0.2 port 18081\n"),
    ("admin", "set server app/web1 addr 127.0.0.3 port 18081\n"),
    ("admin", "set server app/web1 addr 127.0.0.3 port 18081\n"),
    ("admin", "set server app/web1 addr 127.0.0.1\n"),
    ("admin", "set server app/web1 addr\n"),
    ("admin", "set server app/web1 addr foo\n"),
    ("admin", "show servers state app\n"),
    ("admin", "shutdown sessions server app/web1\n"),
    ("admin", "shutdown sessions server app/nope\n"),
    ("admin", "shutdown sessions server nope/x\n"),
    # several commands per line, escapes, blank and unknown input
    ("admin", "get weight app/web1; get weight static/s2\n"),
    ("admin", "get weight app/web1;get weight app/x;show version\n"),
    ("admin", "get weight app/web1\\;x\n"),
    ("admin", "get  weight   app/web1 \r\n"),
    ("admin", "get weight app/web1\nget weight app/web2\n"),
    ("admin", "get weight app/web1"),
    ("admin", "get weight app/web1;quit;show version\n"),
    ("admin", "quit\n"),
    ("admin", "foo\n"),
    ("admin", "show foo\n"),
    ("admin", "set foo\n"),
    ("admin", "show\n"),
    ("admin", "get\n"),
    ("admin", "\n"),
    ("admin", "help show\n"),
    ("admin", "help set server\n"),
    # edges
    ("admin", "show stat 99 -1 -1\n"),
    ("admin", "show stat www 2 -1\n"),
    ("admin", "show stat app -1\n"),
    ("admin", "show stat #3 4 -1\n"),
    ("admin", "show servers state www\n"),
    ("admin", "show servers state #4\n"),
    ("admin", "get weight www/x\n"),
    ("admin", "get weight #3/#2\n"),
    ("admin", "get weight app/#9\n"),
    ("admin", "set server db/db1 weight 5\n"),
    ("admin", "get weight db/db1\n"),
    ("admin", "set server app/web1 addr ::1\n"),
    ("admin", "set server app/web1 addr 127.0.0.1 port abc\n"),
    ("admin", "set server app/web1 addr 127.0.0.1 port 0\n"),
    ("admin", "set server app/web1 addr 127.0.0.1 port 70000\n"),
    ("admin", "set server app/web1 addr 127.0.0.1 port 18081\n"),
    ("admin", "show servers state app\n"),
    ("admin", "help get\n"),
    ("admin", "get weight app/web1 extra\n"),
    ("admin", "show backend extra\n"),
    ("admin", "SHOW INFO\n"),
    # interactive mode
    ("admin", "prompt\nget weight app/web1\nshow backend\nquit\n"),
    ("admin", "prompt\nget weight app/web1;get weight static/s2\nprompt\nshow backend\n"),
    # levels
    ("user", "show stat -1 2 -1\n"),
    ("user", "show stat\n"),
    ("user", "show cli level\n"),
    ("operator", "show stat db -1 -1\n"),
    ("operator", "show cli level\n"),
    ("admin", "show cli level\n"),
    ("admin", "operator; show cli level; set weight app/web1 3; user; show cli level\n"),
    ("user", "operator\n"),
    ("user", "show info\n"),
    ("user", "show servers state static\n"),
    ("user", "get weight app/web1\n"),
    ("user", "show sess\n"),
    ("user", "set server app/web1 state drain\n"),
    ("user", "disable server app/web1\n"),
    ("operator", "show sess\n"),
    ("operator", "set weight app/web1 3\n"),
    ("operator", "shutdown sessions server app/web1\n"),
    ("operator", "enable health app/web1\n"),
    # the composite lines community.general.haproxy sends
    (
        "admin",
        "get weight app/web1; disable agent app/web1; disable health app/web1; "
        "disable server app/web1; shutdown sessions server app/web1\n",
    ),
    ("admin", "show stat app 4 1\n"),
    ("admin", "set server app/web2 state drain\n"),
    (
        "admin",
        "get weight app/web2; enable server app/web2; enable agent app/web2; "
        "enable health app/web2; set weight app/web2 50%\n",
    ),
    ("admin", "get weight app/web1; enable server app/web1; set weight app/web1 10\n"),
    ("admin", "disable agent app/nope\n"),
    # forced health (no checks configured)
    ("admin", "set server static/s2 health down\n"),
    ("admin", "show stat static -1 -1\n"),
    ("admin", "show servers state static\n"),
    ("admin", "set server static/s2 health stopping\n"),
    ("admin", "show stat static -1 -1\n"),
    ("admin", "show servers state static\n"),
    ("admin", "set server static/s2 health up\n"),
    ("admin", "show stat static 4 -1\n"),
    ("admin", "set server static/s2 health sideways\n"),
    ("admin", "set server static/s1 health down\n"),
    ("admin", "set server static/s2 health down\n"),
    ("admin", "show stat static 2 -1\n"),
    ("admin", "set server static/s1 health up\n"),
    ("admin", "set server static/s2 health up\n"),
    ("admin", "show stat\n"),
    ("admin", "show stat typed\n"),
    ("user", "show stat json\n"),
    ("admin", "show servers state\n"),
]


def render_config(directory: str, port_www: int, port_db: int) -> str:
    """The fixed config with this run's socket directory and listening ports."""
    text = CONFIG_TEMPLATE.read_text()
    return (
        text.replace("@DIR@", directory)
        .replace("@PORT_WWW@", str(port_www))
        .replace("@PORT_DB@", str(port_db))
    )


def ask(path: str, data: bytes, timeout: float = 5.0) -> bytes:
    """One connection: send, half-close, read to EOF (like ``socat stdio``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def record(haproxy: str = "/usr/sbin/haproxy", attempts: int = 3) -> list[dict[str, str]]:
    """Start HAProxy on the fixed config, run every step, stop it; return the answers.

    A free port can be taken by another process's outgoing connection before HAProxy
    binds it (other tests load the machine): then try again on new ports.
    """
    for attempt in range(attempts):
        try:
            return _record_once(haproxy)
        except HaproxyDidNotStart:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class HaproxyDidNotStart(RuntimeError):
    pass


def _record_once(haproxy: str) -> list[dict[str, str]]:
    directory = tempfile.mkdtemp(prefix="lbcore-rt-golden-")
    proc: subprocess.Popen[bytes] | None = None
    try:
        cfg = Path(directory) / "haproxy.cfg"
        cfg.write_text(render_config(directory, _free_port(), _free_port()))
        log = Path(directory) / "haproxy.log"
        with log.open("wb") as errors:  # a file, not a pipe: HAProxy never blocks on it
            proc = subprocess.Popen(
                [haproxy, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=errors
            )
        admin = os.path.join(directory, "admin.sock")
        deadline = time.monotonic() + 10
        while not os.path.exists(admin):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = log.read_text(errors="replace")
                raise HaproxyDidNotStart(f"haproxy did not start: {err}")
            time.sleep(0.02)
        out = []
        for level, data in STEPS:
            answer = ask(os.path.join(directory, f"{level}.sock"), data.encode())
            out.append({"level": level, "input": data, "answer": answer.decode()})
        return out
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def load() -> list[dict[str, str]]:
    data: list[dict[str, str]] = json.loads(TRANSCRIPT.read_text())
    return data


def main() -> int:
    haproxy = sys.argv[1] if len(sys.argv) > 1 else "/usr/sbin/haproxy"
    steps = record(haproxy)
    TRANSCRIPT.write_text(json.dumps(steps, indent=1) + "\n")
    print(f"wrote {len(steps)} steps to {TRANSCRIPT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
