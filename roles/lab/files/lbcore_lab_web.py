"""The lab's backend app: an HTTP server that answers with the name of the host it runs on.

Tests see which backend served a request from the body (`web2\\n`) or the `X-Served-By`
header. The app can be told to misbehave, per request or for the whole server:

- per request, with query parameters: `?delay=SECONDS` answers after a pause (a long
  session, for drain tests), `?status=CODE` answers with that status, `?status=reset` closes
  the connection without answering, `?bytes=N` pads the body to N bytes;
- for every request (what health checks see), with files in the state directory
  (/run/lbcore-lab-web by default, private to the host): `delay` holds seconds, `status`
  holds a code or `reset`. Removing the file restores normal answers.

Every answer carries `X-App-Version`: the release this process runs, read once at start
from `--app-version` or the state directory's `version` file (default `1`). A new version
takes a restart, as a real deploy does: the lab's `app_deploy` tasks (roles/lab) write the
file and restart the app, which is what `rolling_update` runs on the lab by default.

The server speaks HTTP/1.1 with keep-alive, one thread per connection. Stdlib only: it runs
under Debian's /usr/bin/python3 inside the lab host.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_STATE_DIR = "/run/lbcore-lab-web"
MAX_DELAY = 600.0
MAX_BYTES = 16 * 1024 * 1024


def _read_setting(state_dir: str, name: str) -> str | None:
    try:
        with open(os.path.join(state_dir, name), encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


class Handler(BaseHTTPRequestHandler):
    """Answers every method on every path the same way, shaped by query and state files."""

    protocol_version = "HTTP/1.1"
    server_version = "lbcore-lab-web"
    host_name = socket.gethostname()
    state_dir = DEFAULT_STATE_DIR
    app_version = "1"

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: benchmarks and drain tests send many requests."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(min(length, MAX_BYTES))
        query = parse_qs(urlsplit(self.path).query)
        delay = query.get("delay", [None])[0] or _read_setting(self.state_dir, "delay")
        status = query.get("status", [None])[0] or _read_setting(self.state_dir, "status")
        size = query.get("bytes", [None])[0]
        if delay:
            with contextlib.suppress(ValueError):
                time.sleep(min(max(float(delay), 0.0), MAX_DELAY))
        if status == "reset":
            self.close_connection = True
            # SO_LINGER on, timeout 0: close() sends RST, as a crashing backend would.
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            return
        try:
            code = int(status) if status else 200
        except ValueError:
            code = 500
        body = f"{self.host_name}\n".encode()
        if size and size.isdigit():
            body = body.ljust(min(int(size), MAX_BYTES), b".")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", self.host_name)
        self.send_header("X-App-Version", self.app_version)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = _answer


def _daemonize(pidfile: str) -> None:
    """Classic double fork, so the starter (nsenter) returns and init adopts the server."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    with open(pidfile, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")


def _replace(pidfile: str, timeout: float = 10.0) -> None:
    """Stop the app a pidfile names (SIGTERM, SIGKILL after `timeout`), so a new one binds."""
    try:
        with open(pidfile, encoding="ascii") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    if pid == os.getpid():
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--name", default=None, help="name to answer (default: hostname)")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    parser.add_argument("--daemon", action="store_true", help="detach; write state-dir/pid")
    parser.add_argument(
        "--app-version", default=None, help="release to announce (default: state-dir/version)"
    )
    parser.add_argument(
        "--replace", action="store_true", help="stop the app state-dir/pid names first"
    )
    args = parser.parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    Handler.state_dir = args.state_dir
    Handler.app_version = (
        args.app_version or _read_setting(args.state_dir, "version") or Handler.app_version
    )
    if args.name:
        Handler.host_name = args.name
    if args.replace:
        _replace(os.path.join(args.state_dir, "pid"))
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    if args.daemon:
        _daemonize(os.path.join(args.state_dir, "pid"))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
