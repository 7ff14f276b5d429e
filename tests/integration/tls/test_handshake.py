"""What a full TLS handshake negotiates and costs, lbcore beside HAProxy 2.6 on the same
configuration text, and the raw TLS transport (``lbcore.proxy.tlsraw``) under the
conditions a transport must survive: a 1 MB answer to a client that reads late, a
client that never speaks, one that does not speak TLS, and the close.

``openssl s_client -msg`` is the client: it prints every handshake message, the key
exchange group ("Server Temp Key") and the alerts, so the two proxies' handshakes can
be compared message by message. Certificates are made by the test (trustme).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, lbcore_cmd, lbcore_env
from tests.integration.tls.conftest import Pki
from tests.integration.tls.harness import (
    Backend,
    big_digest,
    client_ctx,
    request,
    tls_connect,
    wait_port,
)

OPENSSL = shutil.which("openssl")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
S_CLIENT = ("-alpn", "http/1.1", "-msg", "-ign_eof")  # every message printed; read to EOF

CONFIG = """\
global
    maxconn 200
    nbthread 1

defaults
    mode http
    timeout connect 2s
    timeout client 2s
    timeout server 10s

frontend tickets
    bind 127.0.0.1:{tickets} ssl crt {pem} alpn http/1.1
    default_backend plain

frontend notickets
    bind 127.0.0.1:{notickets} ssl crt {pem} alpn http/1.1 no-tls-tickets
    default_backend plain

backend plain
    server p1 127.0.0.1:{p1}
"""


@dataclass
class Pair:
    """lbcore and HAProxy running the same configuration text, each on its own ports."""

    lbcore: dict[str, int]
    haproxy: dict[str, int]
    backend: Backend
    lbcore_proc: subprocess.Popen[bytes]
    lbcore_log: Path


@pytest.fixture(scope="module")
def pair(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("handshake")
    backend = Backend("p1").start()
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, dict[str, int]] = {}
    lb_log = tmp / "lbcore.log"
    try:
        for side in ("lbcore", "haproxy"):
            ports[side] = {"tickets": free_port(), "notickets": free_port()}
            cfg = tmp / f"{side}.cfg"
            cfg.write_text(CONFIG.format(pem=pki.b.pem, p1=backend.port, **ports[side]))
            if side == "haproxy":
                if not os.path.exists(HAPROXY):
                    pytest.skip("haproxy is not installed (make deps installs it)")
                out = subprocess.DEVNULL
                argv = [HAPROXY, "-db", "-f", str(cfg)]
                procs.append(subprocess.Popen(argv, stdout=out, stderr=out))
            else:
                with open(lb_log, "wb") as log:
                    procs.append(
                        subprocess.Popen(
                            lbcore_cmd("run", "-f", str(cfg)),
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=lbcore_env(),
                            cwd=tmp,
                        )
                    )
            proc = procs[-1]
            for port in ports[side].values():
                wait_port(port, alive=lambda p=proc: p.poll() is None)  # type: ignore[misc]
        yield Pair(ports["lbcore"], ports["haproxy"], backend, procs[0], lb_log)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        backend.stop()


@dataclass(frozen=True)
class Handshake:
    """What ``openssl s_client -msg`` saw of one connection."""

    protocol: str
    cipher: str
    group: str  # the key exchange ("Server Temp Key")
    alpn: str
    peer_signature: str
    tickets: tuple[str, ...]  # the NewSessionTicket messages' lengths, in order
    close_notify: bool  # the server ended with a close_notify alert
    answered: bool  # an HTTP response came back


def s_client(port: int) -> Handshake:
    assert OPENSSL is not None
    done = subprocess.run(
        [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "b.test", *S_CLIENT],
        input=b"GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n",
        capture_output=True,
        timeout=20,
    )
    out = done.stdout.decode("latin-1")

    def field(pattern: str) -> str:
        m = re.search(pattern, out, re.M)
        return m.group(1).strip() if m else ""

    return Handshake(
        protocol=field(r"^\s*Protocol\s*: (\S+)"),
        cipher=field(r"^\s*Cipher\s*: (\S+)"),
        group=field(r"^Server Temp Key: ([^,]+)"),
        alpn=field(r"^ALPN protocol: (\S+)"),
        peer_signature=field(r"^Peer signature type: (\S+)"),
        tickets=tuple(
            re.findall(r"^<<< TLS 1.3, Handshake \[length (\w+)\], NewSessionTicket", out, re.M)
        ),
        close_notify=bool(re.search(r"^<<< .*Alert.*close_notify", out, re.M)),
        answered="HTTP/1.1 200" in out,
    )


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
@pytest.mark.parametrize(("frontend", "stateless"), [("tickets", True), ("notickets", False)])
def test_a_full_handshake_negotiates_what_haproxys_does(
    pair: Pair, frontend: str, stateless: bool
) -> None:
    """Same version, suite, group, signature, ALPN and session tickets — OpenSSL's
    default two, stateless (the session, encrypted: a few hundred bytes), or with
    ``no-tls-tickets`` stateful (a session ID into the server's cache: 57 bytes) — and a
    close_notify at the end."""
    ours = s_client(pair.lbcore[frontend])
    theirs = s_client(pair.haproxy[frontend])
    assert theirs.answered and ours.answered
    assert ours == theirs
    assert ours.protocol == "TLSv1.3"
    assert ours.group == "X25519"
    assert ours.alpn == "http/1.1"
    assert ours.peer_signature == "ECDSA"
    assert len(ours.tickets) == 2
    sizes = [int(t, 16) for t in ours.tickets]
    assert all(n > 100 for n in sizes) if stateless else sizes == [0x39, 0x39]
    assert ours.close_notify


def test_a_1mb_answer_reaches_a_client_that_reads_late(pair: Pair, pki: Pki) -> None:
    """The TLS writes outgrow the socket buffers: OpenSSL's unfinished write is retried
    with the same bytes on the next output edge, and nothing is lost or reordered."""
    size = 1 << 20
    with tls_connect(pair.lbcore["tickets"], "b.test", client_ctx(pki.ca_path)) as s:
        s.sendall(f"GET /big/{size}/0 HTTP/1.1\r\nHost: b.test\r\n\r\n".encode())
        time.sleep(0.5)  # let lbcore fill the socket and queue the rest
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        head, _, body = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        h = hashlib.sha256()
        got = len(body)
        h.update(body)
        while got < size:
            chunk = s.recv(65536)
            assert chunk, f"closed after {got} bytes"
            h.update(chunk)
            got += len(chunk)
        assert got == size
        assert h.hexdigest() == big_digest(size)
        # and the connection is still usable
        status, _h, _b = request(s, host="b.test")
        assert status == 200


def test_a_client_that_never_speaks_is_closed_after_timeout_client(pair: Pair) -> None:
    with socket.create_connection(("127.0.0.1", pair.lbcore["tickets"]), timeout=10) as s:
        start = time.monotonic()
        assert s.recv(100) == b""  # closed without a word
        waited = time.monotonic() - start
    assert 1.5 < waited < 8, waited  # timeout client 2s (the timer wheel: 10 ms late)


def test_a_client_that_is_not_tls_is_dropped_and_others_are_served(pair: Pair, pki: Pki) -> None:
    with socket.create_connection(("127.0.0.1", pair.lbcore["tickets"]), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert not data.startswith(b"HTTP/")
    with tls_connect(pair.lbcore["tickets"], "b.test", client_ctx(pki.ca_path)) as s:
        status, _h, _b = request(s, host="b.test")
        assert status == 200
    assert pair.lbcore_proc.poll() is None


def test_the_server_closes_with_a_close_notify(pair: Pair, pki: Pki) -> None:
    """A ``Connection: close`` answer ends with close_notify, not a bare FIN: the client
    sees a clean end of the TLS stream (no ``SSLEOFError``)."""
    raw = socket.create_connection(("127.0.0.1", pair.lbcore["tickets"]), timeout=5)
    s = client_ctx(pki.ca_path).wrap_socket(
        raw, server_hostname="b.test", suppress_ragged_eofs=False
    )
    with s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ssl.SSLEOFError:
                pytest.fail("the TLS stream ended without close_notify")
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.root  # strace attaches to the worker: needs CAP_SYS_PTRACE
def test_a_handshake_costs_the_worker_about_haproxys_system_calls(pair: Pair, pki: Pki) -> None:
    """OpenSSL reads and writes the socket itself, as in HAProxy: a record's header and
    its body are two reads (HAProxy, on the bench: 12 ``recvfrom`` per handshake +
    request, lbcore 12 ``read``), and nothing of uvloop's per-connection setup is left
    on the client side (its ``setsockopt(TCP_NODELAY)`` — the socket inherits it from
    the listener — and ``getpeername``; the one of each left is the server-side
    connection's). Counted by ``strace -c``, exact whatever the load; waits for
    events are left out. With ``LBCORE_RAW_TLS=0`` (uvloop's SSL layer): 5 reads,
    2 ``setsockopt``, 2 ``getpeername``."""
    from tests.bench.syscalls import parse_strace_c

    strace = shutil.which("strace")
    if strace is None or os.geteuid() != 0:
        pytest.skip("needs strace and root")
    workers = _children(pair.lbcore_proc.pid)
    assert len(workers) == 1
    ctx = client_ctx(pki.ca_path)
    port = pair.lbcore["tickets"]
    n = 100
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        tracer = subprocess.Popen(
            [strace, "-c", "-f", "-o", out.name, "-p", str(workers[0])],
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)  # attached before the first connection
            for _ in range(n):
                with tls_connect(port, "b.test", ctx) as s:
                    status, _h, _b = request(s, host="b.test", headers={"Connection": "close"})
                    assert status == 200
            time.sleep(0.5)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
        calls = parse_strace_c(Path(out.name).read_text())
    waits = {"epoll_wait", "epoll_pwait", "epoll_pwait2"}
    per = {k: c / n for k, (c, _e) in calls.items() if k not in waits}
    total = sum(per.values())
    print(f"{total:.1f} system calls per connection: {per}")
    assert total <= 50, f"{total:.1f} system calls per connection: {per}"
    assert per.get("ioctl", 0) <= 1.05, per  # once non-blocking, for OpenSSL
    assert 6 <= per.get("read", 0) <= 16, per  # OpenSSL's reads, not a BIO's
    assert per.get("setsockopt", 0) <= 1.05, per
    assert per.get("getpeername", 0) <= 1.05, per


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
def test_a_tls12_clients_renegotiation_is_refused_as_by_haproxy(pair: Pair) -> None:
    """Client-initiated renegotiation (a CPU cost a client could impose at will, and
    CVE-2009-3555's ground) is refused by both: OpenSSL 3's default for servers, which
    HAProxy enforces too. ``R`` asks ``openssl s_client`` to renegotiate."""
    assert OPENSSL is not None
    for side in (pair.lbcore, pair.haproxy):
        done = subprocess.run(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{side['tickets']}", "-tls1_2"],
            input=b"R\n",
            capture_output=True,
            timeout=20,
        )
        out = (done.stdout + done.stderr).decode("latin-1")
        assert "RENEGOTIATING" in out
        assert "no renegotiation" in out, out[-2000:]
