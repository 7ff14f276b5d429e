"""Lab parts the operations scenarios rely on: the web app's release and `--replace`, and
a repair that leaves the VRRP agent's secondary addresses (the VIP) alone."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, need_root

FILES = REPO / "roles" / "lab" / "files"


def version(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    return str(resp.getheader("X-App-Version"))


def wait_version(port: int, want: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            if version(port) == want:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"no answer with version {want}"
        time.sleep(0.05)


def test_a_new_release_takes_a_restart_and_replace_stops_the_old_app(tmp_path: Path) -> None:
    port, state = free_port(), tmp_path / "state"
    base = [sys.executable, str(FILES / "lbcore_lab_web.py"), "--bind", "127.0.0.1"]
    base += ["--port", str(port), "--state-dir", str(state), "--daemon"]
    pids = []
    try:
        subprocess.run(base, check=True, timeout=15)
        wait_version(port, "1")  # no version file: release 1
        old = int((state / "pid").read_text())
        pids.append(old)
        (state / "version").write_text("v2\n")
        assert version(port) == "1"  # read once, at start: a deploy restarts the app
        subprocess.run([*base, "--replace"], check=True, timeout=15)
        wait_version(port, "v2")
        new = int((state / "pid").read_text())
        pids.append(new)
        assert new != old and not os.path.exists(f"/proc/{old}")
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)


@pytest.mark.root
def test_addresses_primary_only_leaves_the_vip_out(tmp_path: Path) -> None:
    need_root()
    sys.path.insert(0, str(FILES))
    try:
        import lbcore_lab_host as helper
    finally:
        sys.path.remove(str(FILES))
    ns = f"lbco-t{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        run = ["ip", "-n", ns]
        subprocess.run(
            [*run, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], check=True
        )
        subprocess.run([*run, "addr", "add", "198.18.9.11/24", "dev", "eth0"], check=True)
        subprocess.run([*run, "addr", "add", "198.18.9.100/24", "dev", "eth0"], check=True)
        assert helper.addresses("eth0", ns) == ["198.18.9.11/24", "198.18.9.100/24"]
        assert helper.addresses("eth0", ns, primary_only=True) == ["198.18.9.11/24"]
        out = json.loads(subprocess.run([*run, "-j", "addr"], capture_output=True).stdout)
        assert any(a.get("secondary") for i in out for a in i.get("addr_info", []))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
