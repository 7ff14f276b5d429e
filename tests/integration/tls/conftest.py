"""One lbcore (``lbcore run``, two workers) serving every TLS scenario of this package,
with its certificates and servers, started once per module."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from tests.conftest import free_port, lbcore_cmd, lbcore_env
from tests.integration.tls.harness import Backend, Site, ca_file, make_site, server_ctx, wait_port


@dataclass
class Pki:
    tmp: Path
    ca: trustme.CA
    ca_path: Path
    a: Site  # RSA, a.test
    b: Site  # ECDSA, b.test
    c: Site  # RSA, *.c.test
    other_ca_path: Path
    wrong_a: Site  # a.test, but from another CA
    client: Site  # a client certificate for mutual TLS
    pt_a: Site  # the passthrough servers' own certificates
    pt_b: Site


@pytest.fixture(scope="package")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tmp = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    other = trustme.CA()
    return Pki(
        tmp=tmp,
        ca=ca,
        ca_path=ca_file(ca, tmp),
        a=make_site(ca, tmp, "a.test"),
        b=make_site(ca, tmp, "b.test", ecdsa=True),
        c=make_site(ca, tmp, "*.c.test"),
        other_ca_path=ca_file(other, tmp, "other-ca.pem"),
        wrong_a=make_site(other, tmp, "a.test", tag="wrong-a"),
        client=make_site(ca, tmp, "client.lbcore.test", tag="client"),
        pt_a=make_site(ca, tmp, "a.test", tag="pt-a"),
        pt_b=make_site(ca, tmp, "b.test", ecdsa=True, tag="pt-b"),
    )


@dataclass
class Lbcore:
    """A running ``lbcore run -f CFG``; stderr (its log) in a file."""

    cfg: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]
    log_path: Path
    backends: dict[str, Backend] = field(default_factory=dict)
    sink: socket.socket | None = None  # the syslog sink of the lab's access logs

    def log_lines(self, want: str, timeout: float = 5.0) -> list[str]:
        """Access log lines received so far, waiting until one contains ``want``."""
        assert self.sink is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sink.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.received.append(self.sink.recv(65536).decode("latin-1"))
            except TimeoutError:
                break
            if any(want in line for line in self.received):
                break
        return list(self.received)

    received: list[str] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_lbcore(tmp: Path, text: str, ports: dict[str, int], wait: str) -> Lbcore:
    cfg = tmp / "lbcore.cfg"
    cfg.write_text(text)
    log_path = tmp / "lbcore.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            lbcore_cmd("run", "-f", str(cfg)),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=lbcore_env(),
            cwd=tmp,
        )
    lb = Lbcore(cfg, ports, proc, log_path)
    try:
        wait_port(ports[wait], alive=lb.alive)
    except AssertionError:
        lb.stop()
        raise AssertionError(f"lbcore did not start:\n{lb.log()}") from None
    return lb


CONFIG = """\
global
    maxconn 1000
    nbthread 2
    hard-stop-after 20s
    log 127.0.0.1:{sink} local0

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend https
    bind 127.0.0.1:{https} ssl crt {a} crt {b} crt {c} alpn http/1.1
    bind 127.0.0.1:{http}
    http-request redirect scheme https code 301 unless {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-SNI-B yes if {{ ssl_fc_sni -i b.test }}
    http-request set-header X-SSL-Info sni=%[ssl_fc_sni];ssl=%[ssl_fc]
    http-request set-header X-Client-Cert yes if {{ ssl_c_used }}
    http-response set-header Strict-Transport-Security "max-age=31536000; includeSubDomains"
    log global
    option httplog
    default_backend plain

frontend strict
    bind 127.0.0.1:{strict} ssl crt-list {crtlist} strict-sni
    default_backend plain

frontend versions
    bind 127.0.0.1:{min12} ssl crt {a} ssl-min-ver TLSv1.2
    bind 127.0.0.1:{min13} ssl crt {a} ssl-min-ver TLSv1.3
    bind 127.0.0.1:{max12} ssl crt {b} ssl-max-ver TLSv1.2 ciphers ECDHE-ECDSA-AES128-GCM-SHA256
    bind 127.0.0.1:{mtls} ssl crt {a} ca-file {ca} verify optional
    http-request set-header X-Client-Cert yes if {{ ssl_c_used }}
    default_backend plain

backend plain
    balance roundrobin
    server p1 127.0.0.1:{p1}
    server p2 127.0.0.1:{p2}

frontend reencrypt
    bind 127.0.0.1:{reenc}
    log global
    option httplog
    use_backend tls_bad if {{ path_beg /bad }}
    use_backend tls_mtls if {{ path_beg /mtls }}
    use_backend tls_nocert if {{ path_beg /nocert }}
    use_backend tls_host if {{ path_beg /host }}
    default_backend tls_good

backend tls_good
    server g1 127.0.0.1:{g1} ssl verify required ca-file {ca} sni str(a.test)

backend tls_bad
    retries 0
    server w1 127.0.0.1:{w1} ssl verify required ca-file {ca} sni str(a.test)

backend tls_mtls
    server m1 127.0.0.1:{m1} ssl verify required ca-file {ca} sni str(a.test) crt {client}

backend tls_nocert
    retries 0
    server m1 127.0.0.1:{m1} ssl verify required ca-file {ca} sni str(a.test)

backend tls_host
    server h1 127.0.0.1:{g1} ssl verify required ca-file {ca} sni req.hdr(host)

frontend passthrough
    mode tcp
    bind 127.0.0.1:{pt}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    use_backend pt_a if {{ req.ssl_sni -i a.test }}
    use_backend pt_b if {{ req.ssl_sni -i b.test }}
    default_backend pt_a

frontend tcp_tls
    mode tcp
    bind 127.0.0.1:{tcptls} ssl crt {a} crt {b}
    use_backend tcp_p2 if {{ ssl_fc_sni -i b.test }}
    default_backend tcp_p1

backend tcp_p1
    mode tcp
    server p1 127.0.0.1:{p1}

backend tcp_p2
    mode tcp
    server p2 127.0.0.1:{p2}

backend pt_a
    mode tcp
    server ta 127.0.0.1:{ta}

backend pt_b
    mode tcp
    server tb 127.0.0.1:{tb}
"""


@pytest.fixture(scope="package")
def lab(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lbcore]:
    tmp = tmp_path_factory.mktemp("lab")
    backends = {
        "p1": Backend("p1"),
        "p2": Backend("p2"),
        "g1": Backend("g1", server_ctx(pki.a)),
        "w1": Backend("w1", server_ctx(pki.wrong_a)),
        "m1": Backend("m1", server_ctx(pki.a, client_ca=pki.ca_path)),
        "ta": Backend("ta", server_ctx(pki.pt_a)),
        "tb": Backend("tb", server_ctx(pki.pt_b)),
    }
    for b in backends.values():
        b.start()
    crtlist = tmp / "crt-list.txt"
    crtlist.write_text(f"# default first\n{pki.a.pem}\n{pki.b.pem} [alpn http/1.1] b.test\n")
    ports = {k: free_port() for k in ("https", "http", "strict", "min12", "min13", "max12")}
    ports |= {k: free_port() for k in ("mtls", "reenc", "pt", "tcptls")}
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    text = CONFIG.format(
        sink=sink.getsockname()[1],
        **ports,
        **{k: b.port for k, b in backends.items()},
        a=pki.a.pem,
        b=pki.b.pem,
        c=pki.c.pem,
        ca=pki.ca_path,
        client=pki.client.pem,
        crtlist=crtlist,
    )
    lb = start_lbcore(tmp, text, ports, wait="pt")
    lb.backends = backends
    lb.sink = sink
    try:
        for name in ports:
            wait_port(ports[name], alive=lb.alive)
        yield lb
    finally:
        lb.stop()
        sink.close()
        for b in backends.values():
            b.stop()
