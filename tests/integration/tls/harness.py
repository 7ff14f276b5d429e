"""Certificates, HTTP(S) servers and TLS clients for the TLS integration tests.

Everything is made here: a CA and site certificates with trustme (RSA and ECDSA),
HTTP/1.1 servers in threads (plain or TLS, optionally asking for a client
certificate) that answer with what they saw, and clients that choose their SNI.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

BIG_CHUNK = 64 * 1024


@dataclass
class Site:
    name: str
    pem: Path  # cert + chain + key, as HAProxy wants it
    cert_der: bytes


def make_site(ca: trustme.CA, tmp: Path, *names: str, ecdsa: bool = False, tag: str = "") -> Site:
    kt = trustme.KeyType.ECDSA if ecdsa else trustme.KeyType.RSA
    cert = ca.issue_cert(*names, key_type=kt)
    path = tmp / f"{(tag or names[0]).replace('*', 'star')}.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    der = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).public_bytes(Encoding.DER)
    return Site(names[0], path, der)


def ca_file(ca: trustme.CA, tmp: Path, name: str = "ca.pem") -> Path:
    path = tmp / name
    ca.cert_pem.write_to_path(str(path))
    return path


# ---- servers -------------------------------------------------------------------


@dataclass
class Backend:
    """A threaded HTTP/1.1 server answering JSON about the request it got."""

    name: str
    ctx: ssl.SSLContext | None = None
    port: int = 0
    peers: list[tuple[str, int]] = field(default_factory=list)
    accepts: int = 0  # TCP connections accepted (whatever came of them)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Backend:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                backend.peers.append(self.client_address)
                if self.path.startswith("/big/"):
                    parts = self.path.split("/")
                    self._big(int(parts[2]), int(parts[3]) / 1000 if len(parts) > 3 else 0.02)
                    return
                client_cn = None
                if isinstance(self.connection, ssl.SSLSocket):
                    cert = self.connection.getpeercert()
                    if cert:
                        names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
                        client_cn = str(names[0]) if names else "present"
                body = json.dumps(
                    {
                        "server": backend.name,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "peer": list(self.client_address),
                        "client_cert": client_cn,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _big(self, size: int, pace: float) -> None:
                """``size`` bytes, 64 KiB per ``pace`` seconds: a download of a few seconds."""
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                sent = 0
                while sent < size:
                    n = min(BIG_CHUNK, size - sent)
                    self.wfile.write(pattern(sent, n))
                    sent += n
                    time.sleep(pace)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, object]:
                sock, addr = self.socket.accept()
                backend.accepts += 1
                if backend.ctx is not None:
                    sock = backend.ctx.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                    sock.settimeout(10)
                return sock, addr

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # failed handshakes are part of the tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def pattern(offset: int, n: int) -> bytes:
    """Deterministic bytes of the big download (position-dependent)."""
    block = bytes(range(256)) * (BIG_CHUNK // 256 + 2)
    start = offset % 256
    return block[start : start + n]


def big_digest(size: int) -> str:
    h = hashlib.sha256()
    sent = 0
    while sent < size:
        n = min(BIG_CHUNK, size - sent)
        h.update(pattern(sent, n))
        sent += n
    return h.hexdigest()


def server_ctx(site: Site, client_ca: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(site.pem))
    if client_ca is not None:
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# ---- clients -------------------------------------------------------------------


def client_ctx(ca: Path | None, check: bool = True) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None and check:
        ctx.load_verify_locations(str(ca))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_connect(
    port: int, sni: str | None, ctx: ssl.SSLContext, timeout: float = 5.0
) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def request(
    sock: socket.socket, path: str = "/", host: str = "x", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on an open (TLS or plain) socket, keep-alive."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    resp = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
    resp.begin()
    body = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def peer_der(sock: ssl.SSLSocket) -> bytes:
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return der


def wait_port(port: int, timeout: float = 15.0, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert alive(), "lbcore exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")
