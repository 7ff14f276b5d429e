"""lbcore.fleet.backend_server, run by ansible against a real admin socket (HAProxy 2.6
here as the oracle; the same module drives lbcore's socket in the lab tests)."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from tests.collection.haproxy_oracle import haproxy
from tests.collection.util import load_module_utils


@pytest.fixture
def oracle(tmp_path):
    yield from haproxy(tmp_path)


def admin_of(oracle, server):
    client = load_module_utils("runtime_api").RuntimeClient(oracle.socket)
    return client.server("app", server)


def test_drain_waits_for_sessions_and_enable_is_idempotent(run_module, oracle):
    args = {"socket": oracle.socket, "backend": "app", "server": "web2", "state": "drain"}
    rc, res = run_module("backend_server", args, check=True)
    assert rc == 0 and res["changed"] and res["after"]["admin_state"] == "drain"
    assert admin_of(oracle, "web2").admin == "ready"  # check mode changed nothing

    # three slow requests in flight, one on each server (roundrobin)
    done = []

    def slow():
        with urllib.request.urlopen(f"http://127.0.0.1:{oracle.port}/slow/3", timeout=20) as r:
            done.append(r.read().decode())

    threads = [threading.Thread(target=slow) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert admin_of(oracle, "web2").sessions == 1
    started = time.monotonic()
    rc, res = run_module("backend_server", dict(args, wait=True, wait_timeout=20), diff=True)
    waited = time.monotonic() - started
    assert rc == 0, res
    assert res["changed"] and res["before"]["admin_state"] == "ready"
    assert res["after"]["admin_state"] == "drain" and res["sessions"] == 0
    assert waited >= 1.5  # it returned only once the in-flight request had finished
    for t in threads:
        t.join()
    assert sorted(done) == ["web1", "web2", "web3"]  # the drained request finished

    # new requests go elsewhere
    seen = set()
    for _ in range(6):
        with urllib.request.urlopen(f"http://127.0.0.1:{oracle.port}/", timeout=5) as r:
            seen.add(r.read().decode())
    assert seen == {"web1", "web3"}

    enable = dict(args, state="enabled", wait=True)
    rc, res = run_module("backend_server", enable)
    assert rc == 0 and res["changed"] and res["after"]["admin_state"] == "ready"
    rc, res = run_module("backend_server", enable)
    assert rc == 0 and not res["changed"]


def test_maint_and_weight(run_module, oracle):
    base = {"socket": oracle.socket, "backend": "app", "server": "web3"}
    rc, res = run_module("backend_server", dict(base, state="maint"))
    assert rc == 0 and res["changed"] and admin_of(oracle, "web3").admin == "maint"
    rc, res = run_module("backend_server", dict(base, state="enabled", weight="0"))
    assert rc == 0 and res["after"]["weight"] == 0
    rc, res = run_module("backend_server", dict(base, state="enabled", weight="100%"))
    assert rc == 0 and res["changed"] and res["after"]["weight"] == 1


def test_unknown_server_or_backend_fails_clearly(run_module, oracle):
    rc, res = run_module(
        "backend_server", {"socket": oracle.socket, "backend": "app", "server": "nope"}
    )
    assert rc != 0 and "No such server" in res["msg"]
    rc, res = run_module(
        "backend_server", {"socket": oracle.socket, "backend": "nope", "server": "web1"}
    )
    assert rc != 0 and "No such backend" in res["msg"]


def test_bad_weight_changes_nothing(run_module, oracle):
    rc, res = run_module(
        "backend_server",
        {
            "socket": oracle.socket,
            "backend": "app",
            "server": "web1",
            "state": "drain",
            "weight": "999",
        },
    )
    assert rc != 0 and "between 0 and 256" in res["msg"]
    assert admin_of(oracle, "web1").admin == "ready"


def test_missing_socket_fails_clearly(run_module, tmp_path):
    rc, res = run_module(
        "backend_server",
        {"socket": str(tmp_path / "none.sock"), "backend": "app", "server": "web1"},
    )
    assert rc != 0 and "cannot connect" in res["msg"]
