"""Golden syslog envelopes and a custom ``log-format``, captured from HAProxy 2.6.

One HAProxy sends the same request's log to seven UDP sockets of this test, one per
``log ... format`` (rfc3164 cut by ``len 80``, rfc5424, short, priority, timed, iso, raw),
from a frontend whose ``log-format`` uses most ``%`` variables. lbcore's formatter and
``frame()`` must produce each datagram byte for byte, given what the clock decided (read
back from the line). Captured datagrams are kept in
``tests/data/logs/haproxy26-envelopes.jsonl`` (rewrite with ``LBCORE_UPDATE_GOLDEN=1``) and
checked offline too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lbcore.logs.format import Context, LogFormat
from lbcore.logs.record import RequestRecord
from lbcore.logs.syslog import frame
from tests.conftest import free_port

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "logs" / "haproxy26-envelopes.jsonl"

#: name -> the words after "log 127.0.0.1:PORT" in HAProxy's global section
TARGETS = {
    "local_len80": ("len 80 local0", dict(fmt="local", maxlen=80, facility="local0")),
    "rfc3164": ("format rfc3164 local7", dict(fmt="rfc3164", facility="local7")),
    "rfc5424": ("format rfc5424 local1", dict(fmt="rfc5424", facility="local1")),
    "short": ("format short local2", dict(fmt="short", facility="local2")),
    "priority": ("format priority local3", dict(fmt="priority", facility="local3")),
    "timed": ("format timed local4", dict(fmt="timed", facility="local4")),
    "iso": ("format iso local5", dict(fmt="iso", facility="local5")),
    "raw": ("format raw local6", dict(fmt="raw", facility="local6")),
}

# Spaces are separators: "%%" and literal text in between, flags, %o propagation.
LOG_FORMAT = (
    "%Ts.%ms %ci:%cp %{+X}ci:%{+X}cp %f %ft %b %s %si:%sp %fi:%fp %HM %HU %HP %HQ %HV "
    "%ST %tsc %ts %ac/%fc/%bc/%sc/%rc %sq/%bq %CC %CS %hr %hs %hrl %hsl %{+Q}r %T "
    "lit%%eral %{+Q}o %HM %b %{-Q}s"
)


def _backend() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)

    def serve() -> None:
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            with c:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                c.sendall(
                    b"HTTP/1.1 201 Created\r\nContent-Type: x/y\r\n"
                    b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
                )

    threading.Thread(target=serve, daemon=True).start()
    return s, int(s.getsockname()[1])


def capture(tmp: Path) -> dict[str, str]:
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(exe):
        pytest.skip("HAProxy is not installed (make deps installs haproxy 2.6)")
    sinks = {}
    for name in TARGETS:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.settimeout(5)
        sinks[name] = u
    clf = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    clf.bind(("127.0.0.1", 0))
    clf.settimeout(5)
    be, be_port = _backend()
    fe_port, clf_port = free_port(), free_port()
    logs = "\n".join(
        f"    log 127.0.0.1:{sinks[n].getsockname()[1]} {words}"
        for n, (words, _) in TARGETS.items()
    )
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(
        f"global\n{logs}\n"
        "defaults\n    mode http\n    log global\n    option dontlognull\n"
        "    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
        f"frontend envfe\n    bind 127.0.0.1:{fe_port}\n"
        "    capture request header Host len 32\n"
        "    capture request header X-Empty len 8\n"
        "    capture response header Content-Type len 20\n"
        f'    log-format "{LOG_FORMAT}"\n'
        "    default_backend envbe\n"
        f"frontend clffe\n    bind 127.0.0.1:{clf_port}\n    no log\n"
        f"    log 127.0.0.1:{clf.getsockname()[1]} format raw local0\n"
        "    option httplog clf\n    default_backend envbe\n"
        f"backend envbe\n    server s9 127.0.0.1:{be_port}\n"
    )
    proc = subprocess.Popen([exe, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:  # dontlognull: this probe is not logged
            try:
                socket.create_connection(("127.0.0.1", fe_port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "HAProxy did not start"
                time.sleep(0.05)
        lines = {}
        for port in (fe_port, clf_port):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(
                b"POST /p/a;t?x=1&y=%22 HTTP/1.0\r\nHost: env.test\r\nContent-Length: 0\r\n\r\n"
            )
            while c.recv(4096):
                pass
            c.close()
            if port == fe_port:
                lines = {name: u.recv(65536).decode() for name, u in sinks.items()}
        lines["clf"] = clf.recv(65536).decode()
        return lines
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        be.close()
        clf.close()
        for u in sinks.values():
            u.close()


_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d")
_PID = re.compile(r"haproxy(?:\[| )(\d+)")


def render_all(lines: dict[str, str]) -> dict[str, str]:
    """Rebuild each datagram from a record of the request plus the clock's readings."""
    raw = lines["raw"]
    fields = raw.split(" ")
    ts, _, ms = fields[0].partition(".")
    cport = int(fields[1].rsplit(":", 1)[1])
    be_ip, be_port = fields[7].rsplit(":", 1)
    fe_ip, fe_port = fields[8].rsplit(":", 1)
    rec = RequestRecord(
        client_ip="127.0.0.1",
        client_port=cport,
        accept_ts=int(ts) + int(ms) / 1000,
        frontend="envfe",
        frontend_ip=fe_ip,
        frontend_port=int(fe_port),
        backend="envbe",
        server="s9",
        server_ip=be_ip,
        server_port=int(be_port),
        status=201,
        termination="--",
        actconn=1,
        feconn=1,
        request_headers=("env.test", ""),
        response_headers=("x/y",),
        request_line="POST /p/a;t?x=1&y=%22 HTTP/1.0",
    )
    pid = int(_PID.search(lines["rfc5424"])[1])  # type: ignore[index]
    msg = LogFormat(LOG_FORMAT, Context(pid=pid)).render(rec)
    out = {}
    for name, (_, kw) in TARGETS.items():
        line = lines[name]
        m = _ISO.search(line)
        if m:
            now = dt.datetime.fromisoformat(m[0]).timestamp()
        else:
            hdr = re.match(r"^<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) ", line)
            now = (
                dt.datetime.strptime(
                    f"{dt.date.today().year} {hdr[1]}", "%Y %b %d %H:%M:%S"
                ).timestamp()
                if hdr
                else 0.0
            )
        out[name] = frame(msg, now=now, pid=pid, **kw).decode()  # type: ignore[arg-type]
    return out


def render_clf(line: str) -> str:
    """``option httplog clf``: the same request through a frontend without captures."""
    m = re.match(r'^127\.0\.0\.1 - - \[([^\]]+)\] .*?"" "" (\d+) (\d+) ', line)
    assert m, line
    day = dt.datetime.strptime(m[1], "%d/%b/%Y:%H:%M:%S %z").timestamp()
    rec = RequestRecord(
        client_ip="127.0.0.1",
        client_port=int(m[2]),
        accept_ts=day + int(m[3]) / 1000,
        frontend="clffe",
        backend="envbe",
        server="s9",
        status=201,
        actconn=1,
        feconn=1,
        request_line="POST /p/a;t?x=1&y=%22 HTTP/1.0",
    )
    timers = re.search(r'"s9" (-?\d+) (-?\d+) (-?\d+) (-?\d+) (-?\d+) ', line)
    b = re.search(r" 201 (\d+) ", line)
    assert timers and b
    rec.t_request, rec.t_queue, rec.t_connect, rec.t_response, rec.t_active = map(
        int, timers.groups()
    )
    rec.bytes_read = int(b[1])
    return frame(LogFormat.httplog(clf=True).render(rec), now=0, fmt="raw").decode()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    lines = capture(tmp_path_factory.mktemp("env"))
    if os.environ.get("LBCORE_UPDATE_GOLDEN"):
        GOLDEN.write_text(
            "".join(json.dumps({"target": k, "line": v}) + "\n" for k, v in lines.items())
        )
    return lines


@pytest.mark.slow
def test_envelopes_and_log_format_match_live_haproxy(live: dict[str, str]) -> None:
    ours = render_all(live)
    for name in TARGETS:
        assert ours[name] == live[name], name
    assert render_clf(live["clf"]) == live["clf"]


def test_envelopes_and_log_format_match_stored_golden() -> None:
    stored = {d["target"]: d["line"] for d in map(json.loads, GOLDEN.read_text().splitlines())}
    assert set(stored) == {*TARGETS, "clf"}
    ours = render_all(stored)
    for name in TARGETS:
        assert ours[name] == stored[name], name
    assert render_clf(stored["clf"]) == stored["clf"]
