"""The lab's parts without root: the backend web app on loopback, and the topology preflight."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port
from tests.lab.labctl import helper_module

FILES = REPO / "roles" / "lab" / "files"


@pytest.fixture
def web(tmp_path: Path):
    """The lab web app on 127.0.0.1 (not daemonized), answering as `web9`."""
    port = free_port()
    state = tmp_path / "state"
    args = ["--bind", "127.0.0.1", "--port", str(port), "--name", "web9", "--state-dir", str(state)]
    proc = subprocess.Popen([sys.executable, str(FILES / "lbcore_lab_web.py"), *args])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "web app did not start"
            time.sleep(0.05)
    yield port, state
    proc.terminate()
    proc.wait(timeout=10)


def request(port: int, method: str = "GET", path: str = "/", body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, r.read().decode(), r.getheader("X-Served-By")
    finally:
        conn.close()


def test_answers_every_method_with_its_name(web):
    port, _ = web
    assert request(port) == (200, "web9\n", "web9")
    assert request(port, "POST", "/form", b"a=1" * 1000) == (200, "web9\n", "web9")
    assert request(port, "HEAD") == (200, "", "web9")


def test_keeps_the_connection_alive_across_requests(web):
    port, _ = web
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.connect()
    local = conn.sock.getsockname()
    for _ in range(3):
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"web9\n"
        assert conn.sock.getsockname() == local
    conn.close()


def test_query_shapes_one_answer(web):
    port, _ = web
    assert request(port, path="/?status=503")[:2] == (503, "web9\n")
    started = time.monotonic()
    assert request(port, path="/?delay=0.3")[0] == 200
    assert time.monotonic() - started >= 0.3
    status, body, _ = request(port, path="/?bytes=1000")
    assert status == 200 and len(body) == 1000 and body.startswith("web9\n")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        request(port, path="/?status=reset")
    assert request(port)[0] == 200  # one bad answer leaves the server well


def test_state_files_shape_every_answer_until_removed(web):
    port, state = web
    (state / "status").write_text("502\n")
    assert request(port, path="/health")[0] == 502
    (state / "status").unlink()
    (state / "delay").write_text("0.3")
    started = time.monotonic()
    assert request(port, path="/health")[0] == 200
    assert time.monotonic() - started >= 0.3
    (state / "delay").unlink()
    assert request(port)[0] == 200


DEFAULT = {"lb1": "198.18.0.11", "lb2": "198.18.0.12", "web1": "198.18.0.21"}


def validate(hosts: dict[str, str], *extra: str, uid: int = 0) -> tuple[int, dict]:
    args = ["validate", "--subnet", "198.18.0.0/24", "--bridge-address", "198.18.0.1"]
    args += ["--vip", "198.18.0.100", "--prefix", "lbcore-", "--lab-dir", "/var/lib/lbcore-lab"]
    for d in ("/etc/lbcore", "/run", "/tmp"):
        args += ["--private", d]
    for name, ip in hosts.items():
        args += ["--host", f"{name}={ip}"]
    helper = helper_module()
    out = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as mp,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        mp.setattr(helper.os, "geteuid", lambda: uid)
        rc = helper.main(args + list(extra))
    return rc, json.loads(out.getvalue())


def test_preflight_accepts_the_default_topology_and_lists_missing_packages():
    rc, out = validate(DEFAULT, "--package", "dpkg", "--package", "no-such-package-lbcore")
    assert rc == 0
    assert out == {
        "changed": False,
        "actions": [],
        "hosts": 3,
        "subnet": "198.18.0.0/24",
        "missing": ["no-such-package-lbcore"],
    }


def test_preflight_refuses_to_run_as_a_normal_user():
    rc, out = validate(DEFAULT, uid=1000)
    assert rc == 1
    assert "the lab is built by root (running as uid 1000)" in out["error"]


@pytest.mark.parametrize(
    ("hosts", "extra", "message"),
    [
        ({**DEFAULT, "web2": "198.18.0.100"}, (), "198.18.0.100 is already used by lbcore_lab_vip"),
        ({**DEFAULT, "web2": "198.18.0.21"}, (), "already used by host web1"),
        ({**DEFAULT, "web2": "198.18.1.22"}, (), "198.18.1.22 is not a host address"),
        ({**DEFAULT, "web2": "198.18.0.255"}, (), "is not a host address"),
        ({**DEFAULT, "web2": "web2.example"}, (), "is not an IP address"),
        ({**DEFAULT, "backend-number-2": "198.18.0.22"}, (), "longer than 15 characters"),
        ({**DEFAULT, "Web_2": "198.18.0.22"}, (), "names are lowercase"),
        (DEFAULT, ("--lab-dir", "/tmp/lab"), "lies under the private directory /tmp"),
    ],
)
def test_preflight_refuses_a_broken_topology_and_says_why(hosts, extra, message):
    rc, out = validate(hosts, *extra)
    assert rc == 1
    assert message in out["error"]


def test_host_mac_is_fixed_by_the_address_so_a_rebuilt_veth_keeps_it():
    helper = helper_module()
    assert helper.host_mac("198.18.0.11/24") == "02:00:c6:12:00:0b"
    assert helper.host_mac("198.18.0.23/24") == "02:00:c6:12:00:17"


def test_absent_removes_only_the_mount_points_it_made_and_only_when_empty(tmp_path: Path):
    made, full, theirs = (tmp_path / n for n in ("made", "full", "theirs"))
    for d in (made, full, theirs):
        d.mkdir()
    (full / "config").write_text("kept\n")
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "mountpoints").write_text(f"{made}\n{full}\n")  # `theirs` existed before the lab
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert helper_module().main(["mountpoints", "absent", "--lab-dir", str(lab)]) == 0
    assert json.loads(out.getvalue())["actions"] == [
        f"remove mount point {made}",
        f"remove {lab / 'mountpoints'}",
    ]
    assert not made.exists() and full.is_dir() and theirs.is_dir()
