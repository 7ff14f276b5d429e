"""Move a running lbcore onto new code, under load, inside a private network namespace.

`python -m tests.ops.swapctl TMPDIR` (run by tests/ops/test_restart_onto_new_code.py under
`unshare --net`, so the sysctl and the addresses are this namespace's alone): brings `lo`
up, sets net.ipv4.tcp_migrate_req=1 as the balancer role does, starts a backend and lbcore
A (`run -D -p PIDFILE`), then while clients make requests on new connections — and one
slow request is in flight through A — starts lbcore B with `-sf A`, the way the role
restarts a balancer whose installed code changed. Prints what happened as JSON.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.conftest import lbcore_cmd, lbcore_env

CONFIG = """\
global
    stats socket {tmp}/admin.sock mode 600 level admin
    pidfile {tmp}/lbcore.pid
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend www
    bind 127.0.0.1:{port}
    default_backend app
backend app
    server web1 127.0.0.1:{web1}
    server web2 127.0.0.1:{web2}
"""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if "delay=" in self.path:
            time.sleep(float(self.path.split("delay=")[1]))
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def get(url: str, timeout: float = 10.0) -> str:
    """The name of the backend server that answered."""
    req = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return str(r.read().decode())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(tmp: Path) -> dict[str, object]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    Path("/proc/sys/net/ipv4/tcp_migrate_req").write_text("1")
    backends = {}
    for name in ("web1", "web2"):
        backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        backend.name = name  # type: ignore[attr-defined]
        threading.Thread(target=backend.serve_forever, daemon=True).start()
        backends[name] = backend
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp / "lbcore.cfg"
    cfg.write_text(
        CONFIG.format(
            tmp=tmp,
            port=port,
            web1=backends["web1"].server_address[1],
            web2=backends["web2"].server_address[1],
        )
    )
    pidfile, log = tmp / "lbcore.pid", tmp / "lbcore.log"
    run = lbcore_cmd("run", "-D", "-p", str(pidfile), "-f", str(cfg), "--log-file", str(log))
    env = lbcore_env()
    subprocess.run(run, env=env, check=True, timeout=60)
    old = int(pidfile.read_text())
    url = f"http://127.0.0.1:{port}/"

    def ctl(command: str) -> str:
        return subprocess.run(
            lbcore_cmd("ctl", "-S", str(tmp / "admin.sock"), command),
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    ctl("set server app/web2 state drain")  # an operator's: the new master must keep it
    ok, errors, stop = [0], [], threading.Event()
    served_after: dict[str, int] = {}

    def client() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                name = get(url)
                ok[0] += 1
                if swapped.is_set():
                    served_after[name] = served_after.get(name, 0) + 1
            except Exception as e:  # every failure is counted and shown
                errors.append(f"{type(e).__name__}: {e}")
            time.sleep(0.005)

    slow: dict[str, object] = {}
    swapped = threading.Event()

    def slow_request() -> None:
        try:
            slow["served_by"] = get(url + "?delay=3", timeout=20)
        except Exception as e:
            slow["error"] = f"{type(e).__name__}: {e}"

    clients = [threading.Thread(target=client) for _ in range(4)]
    for t in clients:
        t.start()
    time.sleep(1.0)
    before = ok[0]
    slow_thread = threading.Thread(target=slow_request)
    slow_thread.start()
    time.sleep(0.5)  # the slow request is in flight through A
    started = time.monotonic()
    swap = subprocess.run([*run, "-sf", str(old)], env=env, timeout=60, capture_output=True)
    new = int(pidfile.read_text())
    swapped.set()
    while alive(old) and time.monotonic() - started < 30:
        time.sleep(0.05)
    old_gone_after = time.monotonic() - started
    time.sleep(1.0)  # traffic on B alone
    stop.set()
    for t in (*clients, slow_thread):
        t.join(timeout=30)
    info = ctl("show info")
    states = ctl("show servers state")
    result = {
        "swap_rc": swap.returncode,
        "swap_stderr": swap.stderr.decode(errors="replace"),
        "old": old,
        "new": new,
        "old_alive": alive(old),
        "old_gone_after_s": round(old_gone_after, 2),
        "new_alive": alive(new),
        "requests_before_swap": before,
        "requests": ok[0],
        "errors": errors,
        "slow": slow,
        "socket_exists": (tmp / "admin.sock").exists(),
        "show_info": info,
        "servers_state": states,
        "served_after_swap": served_after,
        "log": log.read_text(),
    }
    if alive(new):
        os.kill(new, 15)  # the lbcore this driver started
        for _ in range(100):
            if not alive(new):
                break
            time.sleep(0.05)
    for backend in backends.values():
        backend.shutdown()
    return result


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
