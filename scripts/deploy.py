#!/usr/bin/env python3
"""`make deploy`: the site on the lab, then requests through the VIP spreading over web1..web3.

`make deploy` builds and installs the lbcore.fleet collection and brings the lab up
(`make collection lab-up`), then runs this script, which:
  1. runs `ansible-playbook -i inventories/lab lbcore.fleet.site` (install, balancer and
     VRRP agent on lb1 and lb2);
  2. sends requests from this machine to the VIP (198.18.0.100:80) and shows which backend
     answered each (the lab's web app names its host): they spread over web1..web3.

`--inventory DIR` deploys another lab or fleet; `--no-site` only shows the requests.

`--local` is the earlier demo with no lab and no Ansible, all on 127.0.0.1 with free ports:
two small backends, an example config checked with `lbcore check`, `lbcore run`, requests
alternating, a reload (SIGUSR2) while serving; `--serve` keeps it running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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


# ---- the lab deploy ---------------------------------------------------------------------


def ansible_bin(name: str) -> str:
    """The Ansible command next to this interpreter (the repo's venv), else the one on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def inventory_vip(inventory: Path) -> tuple[str, list[str]]:
    """The VIP of the balancers and the names of the backends, read from the inventory."""
    out = subprocess.run(
        [ansible_bin("ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    data = json.loads(out.stdout)
    backends = sorted(data.get("backends", {}).get("hosts", []))
    balancer = data["balancers"]["hosts"][0]
    hostvars = data["_meta"]["hostvars"][balancer]
    vips = hostvars.get("lbcore_vrrp_vips") or [hostvars["lbcore_lab_vip"]]
    vip = str(vips[0])
    if "{{" in vip:  # a template (e.g. "{{ lbcore_lab_vip }}"): ask Ansible to render it
        vip = str(hostvars["lbcore_lab_vip"])
    return vip, backends


def vip_get(vip: str, port: int, timeout: float = 5.0) -> str:
    """One GET through the VIP on a new connection; the name of the backend that answered."""
    req = urllib.request.Request(f"http://{vip}:{port}/", headers={"Connection": "close"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return str(r.headers.get("X-Served-By") or r.read().decode().strip())


def wait_vip(vip: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            vip_get(vip, port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def lab_deploy(args: argparse.Namespace) -> int:
    inventory = Path(args.inventory).resolve()
    if not args.no_site:
        cmd = [ansible_bin("ansible-playbook"), "-i", str(inventory), "lbcore.fleet.site"]
        print("==> " + " ".join(cmd), flush=True)
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            print("==> deploy FAILED: the site playbook failed", file=sys.stderr)
            return 1
    vip, backends = inventory_vip(inventory)
    print(f"==> {args.requests} requests to http://{vip}:{args.vip_port}/ (the VIP)")
    try:
        wait_vip(vip, args.vip_port)
    except OSError as e:
        print(f"==> deploy FAILED: the VIP does not answer: {e}", file=sys.stderr)
        return 1
    counts: collections.Counter[str] = collections.Counter()
    for i in range(1, args.requests + 1):
        name = vip_get(vip, args.vip_port)
        counts[name] += 1
        print(f"  request {i}: {name}")
    spread = ", ".join(f"{name} {counts[name]}" for name in sorted(counts))
    ok = set(counts) == set(backends)
    print(f"==> answered by: {spread}")
    print("==> deploy", "OK: requests spread over " + ", ".join(backends) if ok else "FAILED")
    return 0 if ok else 1


class _ignore_interrupt:
    """Ctrl-C in --serve: the terminal signals lbcore too; we just wait for it to exit."""

    def __enter__(self) -> None:
        self.old = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.old)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--inventory",
        default=str(REPO / "inventories" / "lab"),
        help="inventory of the fleet to deploy (default: inventories/lab)",
    )
    p.add_argument("--no-site", action="store_true", help="skip the playbook, only show requests")
    p.add_argument("--vip-port", type=int, default=80, help="the VIP's port (default 80)")
    p.add_argument("--local", action="store_true", help="the local demo: no lab, no Ansible")
    p.add_argument("--port", type=int, default=0, help="--local: frontend port (default: free)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="--local: lbcore worker processes (each has its own roundrobin rotation; one\n"
        "shows the alternation exactly)",
    )
    p.add_argument("--requests", type=int, default=0, help="requests to show (9; --local 6)")
    p.add_argument("--serve", action="store_true", help="--local: keep serving until Ctrl-C")
    p.add_argument("--backend", nargs="+", metavar="NAME:PORT", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.backend:
        asyncio.run(_serve_backends(args.backend))
        return 0
    if not args.local:
        args.requests = args.requests or 9
        return lab_deploy(args)
    args.requests = args.requests or 6
    with tempfile.TemporaryDirectory(prefix="lbcore-deploy-") as tmp:
        return demo(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
