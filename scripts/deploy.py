#!/usr/bin/env python3
"""`make deploy`, for now: lbcore in front of two local backends, requests alternating.

What it does, all on 127.0.0.1 with free ports:
  1. starts two small HTTP backends, web1 and web2, each answering its own name;
  2. writes an example HAProxy-dialect config (frontend -> roundrobin backend) and checks
     it with `lbcore check`;
  3. starts `lbcore run -f CONFIG` (a master and its workers);
  4. sends requests through it and shows which backend answered each: they alternate;
  5. reloads lbcore with SIGUSR2 and shows it still serving, then stops everything.

`--serve` keeps it all running until Ctrl-C so you can try it with curl. Later issues grow
this into the full lab deploy (network-namespace hosts, the Ansible collection, the VIP).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CONFIG = """\
# Example lbcore configuration (HAProxy dialect), written by scripts/deploy.py
global
    maxconn 1000
    hard-stop-after 10s

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend www
    bind 127.0.0.1:{port}
    option forwardfor
    default_backend app

backend app
    balance roundrobin
    server web1 127.0.0.1:{web1}
    server web2 127.0.0.1:{web2}
"""


# ---- the demo backends (run in a child process: `deploy.py --backend NAME:PORT ...`) ----


class _Backend(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        body = f"Hello from {name}\n".encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
        self.answer = head % len(body) + body
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        assert self.transport is not None
        while b"\r\n\r\n" in self.buf:  # GET only: one answer per request head
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            self.transport.write(self.answer)
            if b"\r\nconnection: close" in head.lower():
                self.transport.close()
                return


async def _serve_backends(specs: list[str]) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    for spec in specs:
        name, _, port = spec.rpartition(":")
        await loop.create_server(lambda name=name: _Backend(name), "127.0.0.1", int(port))
    print("ready", flush=True)
    await stop


# ---- the demo ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(port: int) -> str:
    """One GET on a new connection; the backend's answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode()
    if " 200 " not in status + " ":
        raise RuntimeError(f"unexpected answer: {status}")
    return body.decode().strip()


def wait_serving(port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lbcore exited with status {proc.returncode}")
        try:
            fetch(port)
            return
        except (OSError, RuntimeError):
            time.sleep(0.1)
    raise RuntimeError(f"lbcore is not serving on 127.0.0.1:{port} after {timeout}s")


def show_requests(port: int, n: int) -> list[str]:
    answers = []
    for i in range(1, n + 1):
        answer = fetch(port)
        answers.append(answer.rsplit(" ", 1)[-1])
        print(f"  request {i}: {answer}")
    return answers


def alternates(names: list[str]) -> bool:
    return set(names) == {"web1", "web2"} and all(a != b for a, b in itertools.pairwise(names))


def demo(args: argparse.Namespace, workdir: Path) -> int:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    port = args.port or free_port()
    web1, web2 = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print(f"==> starting backends web1 (127.0.0.1:{web1}) and web2 (127.0.0.1:{web2})")
        backends = subprocess.Popen(
            [sys.executable, __file__, "--backend", f"web1:{web1}", f"web2:{web2}"],
            stdout=subprocess.PIPE,
        )
        procs.append(backends)
        assert backends.stdout is not None
        if backends.stdout.readline().strip() != b"ready":
            print("backends failed to start", file=sys.stderr)
            return 1

        cfg = workdir / "lbcore.cfg"
        cfg.write_text(CONFIG.format(port=port, web1=web1, web2=web2))
        print(f"==> example configuration {cfg}:\n")
        print("    " + cfg.read_text().replace("\n", "\n    ").rstrip())
        lbcore = [sys.executable, "-m", "lbcore"]
        check = subprocess.run([*lbcore, "check", "-f", str(cfg)], env=env, cwd=REPO)
        if check.returncode != 0:
            return 1

        log_path = workdir / "lbcore.log"
        print(f"==> lbcore run -f {cfg} --workers {args.workers}   (log: {log_path})")
        log = open(log_path, "wb")  # noqa: SIM115 (closed with the process below)
        master = subprocess.Popen(
            [*lbcore, "run", "-f", str(cfg), "--workers", str(args.workers)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(master)
        wait_serving(port, master)

        print(f"==> {args.requests} requests to http://127.0.0.1:{port}/")
        names = show_requests(port, args.requests)
        ok = alternates(names)
        print(f"==> {'they alternate between web1 and web2' if ok else 'NOT alternating!'}")

        print("==> reloading lbcore (SIGUSR2): listeners stay open, new workers take over")
        master.send_signal(signal.SIGUSR2)
        time.sleep(1.0)
        after = show_requests(port, 4)
        ok = ok and set(after) == {"web1", "web2"}

        if args.serve and ok:
            print(f"==> serving on http://127.0.0.1:{port}/ — try: curl 127.0.0.1:{port}")
            print("    Ctrl-C to stop")
            with _ignore_interrupt():
                master.wait()

        print("==> stopping lbcore gracefully (SIGUSR1)")
        if master.poll() is None:
            master.send_signal(signal.SIGUSR1)
            master.wait(timeout=15)
        log.close()
        print("\n--- lbcore master log ---")
        print(log_path.read_text().rstrip())
        print("-------------------------")
        if master.returncode != 0:
            print(f"lbcore exited with status {master.returncode}", file=sys.stderr)
            ok = False
        print("==> deploy demo", "OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class _ignore_interrupt:
    """Ctrl-C in --serve: the terminal signals lbcore too; we just wait for it to exit."""

    def __enter__(self) -> None:
        self.old = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.old)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="frontend port (default: a free one)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="lbcore worker processes (each has its own roundrobin rotation; one shows\n"
        "the alternation exactly)",
    )
    p.add_argument("--requests", type=int, default=6, help="requests to show")
    p.add_argument("--serve", action="store_true", help="keep serving until Ctrl-C")
    p.add_argument("--backend", nargs="+", metavar="NAME:PORT", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.backend:
        asyncio.run(_serve_backends(args.backend))
        return 0
    with tempfile.TemporaryDirectory(prefix="lbcore-deploy-") as tmp:
        return demo(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
