"""The configurations the benchmark runs: nginx backends and one proxy config.

HAProxy and lbcore read the *same* proxy configuration text (lbcore speaks the
HAProxy dialect; ``nbthread`` is HAProxy's thread count and lbcore's worker count),
so "equivalent configs" is true by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SMALL_BODY = b"lbcore bench: a small response body, 100 bytes.\n" + b"x" * 51 + b"\n"
BIG_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Ports:
    web: tuple[int, int]  # the two nginx backends
    http: int  # proxy frontend, mode http
    tcp: int  # proxy listen, mode tcp
    syslog: int  # UDP port of the log sink
    https: int = 0  # proxy frontend, mode http over TLS (0: none)


def write_docroot(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "small").write_bytes(SMALL_BODY)
    # Not zeros: a proxy must not win by something compressible or sparse.
    chunk = bytes(range(256)) * 4
    (root / "1m").write_bytes(chunk * (BIG_SIZE // len(chunk)))
    for p in (root, root / "small", root / "1m"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def nginx_conf(prefix: Path, ports: Ports) -> str:
    """nginx as our own process: its own prefix, pid, logs and temp dirs; no access log."""
    servers = "\n".join(
        f"""    server {{
        listen 127.0.0.1:{port} backlog=4096 reuseport;
        root {prefix}/www;
        location / {{ }}
    }}"""
        for port in ports.web
    )
    return f"""# written by tests/bench: two small backends on loopback
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    open_file_cache max=16 inactive=600s;
    open_file_cache_valid 600s;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{servers}
}}
"""


def write_tls_cert(path: Path) -> Path:
    """A self-signed ECDSA P-256 certificate + key in one PEM, as HAProxy loads them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.lbcore.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("bench.lbcore.test")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o644)
    return path


def proxy_conf(
    ports: Ports, workers: int, log: bool, pem: Path | None = None, http_reuse: str | None = None
) -> str:
    """One config for both proxies: an HTTP frontend and a TCP listener over two servers,
    and with ``pem`` an HTTPS frontend (TLS terminated, plain HTTP to the servers).
    ``http_reuse`` sets the HTTP backend's ``http-reuse`` (both proxies read it); without
    it both use the default, ``safe``, which never sends a session's first request over
    another session's idle connection: with a connection per request, each request
    opens a server connection. ``always`` lets every request take a pooled one."""
    log_global = f"    log 127.0.0.1:{ports.syslog} local0\n" if log else ""
    log_http = "    log global\n    option httplog\n" if log else ""
    log_tcp = "    log global\n    option tcplog\n" if log else ""
    w1, w2 = ports.web
    https = ""
    if pem is not None and ports.https:
        https = (
            f"frontend fe_https\n    bind 127.0.0.1:{ports.https} ssl crt {pem} alpn http/1.1\n"
            f"{log_http}    default_backend be_http\n\n"
        )
    return f"""# written by tests/bench: the same text is given to HAProxy and to lbcore
global
    nbthread {workers}
    maxconn 8000
{log_global}
defaults
    mode http
    maxconn 8000
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend fe_http
    bind 127.0.0.1:{ports.http}
{log_http}    default_backend be_http

backend be_http
    balance roundrobin
{f"    http-reuse {http_reuse}{chr(10)}" if http_reuse else ""}    server web1 127.0.0.1:{w1}
    server web2 127.0.0.1:{w2}

{https}listen tcp_bulk
    mode tcp
    bind 127.0.0.1:{ports.tcp}
{log_tcp}    balance roundrobin
    server web1 127.0.0.1:{w1}
    server web2 127.0.0.1:{w2}
"""
