"""Issue 8 on the lab: `site` from bare hosts, reloads under load, failed renders that
replace nothing, ad-hoc drain on both balancers, admin states across reloads; and (issue 9)
a rebuilt lbcore of the same version installed and running without a failed request.

One lab for the module, from bare hosts to the site by `lbcore.fleet.site`
(tests/fleet/conftest.py). The tests run in file order on it, each leaving the site serving
with every server enabled for the next. Must-show 5 (`molecule test`: the site from bare
hosts, idempotent, verified) is the default scenario of `molecule test --all`
(tests/ops/test_molecule_all.py checks its converge, idempotence and verify).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fleet.fleetctl import (
    BACKENDS,
    BALANCERS,
    Fleet,
    Load,
    get,
    spread,
    wait_answering,
)
from tests.lab.labctl import changed_tasks, failures

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]

CONFIG = "/etc/lbcore/lbcore.cfg"
PIDFILE = "/run/lbcore/lbcore.pid"
# The balancer role alone (tags), for the tests about its config: a quicker site run.
BALANCER_ONLY = ("--tags", "lbcore_balancer")
DRAIN = {"backend": "app", "server": "web2", "state": "drain", "wait": True}


@pytest.fixture
def fleet(converged: tuple[Fleet, tuple[int, dict]]) -> Fleet:
    fleet, (rc, out) = converged
    if rc != 0:
        pytest.fail(f"the site failed on bare hosts: {failures(out)}")
    wait_answering(fleet.url())
    return fleet


def holders_of_vip(fleet: Fleet) -> list[str]:
    rc, res = fleet.adhoc("balancers", "ansible.builtin.command", "ip -o -4 addr show dev eth0")
    assert rc == 0, res
    return sorted(h for h, r in res.items() if f" {fleet.lab.vip}/" in r["stdout"])


def state_of(fleet: Fleet, host: str) -> tuple[str, str]:
    """(md5 of the balancer config, master pid) on one balancer."""
    out = fleet.sh(host, f"md5sum {CONFIG} | cut -d' ' -f1; cat {PIDFILE}")
    digest, pid = out.split()
    return digest, pid


def admin_socket_served(fleet: Fleet) -> bool:
    rc, _ = fleet.adhoc("lb1", "lbcore.fleet.lb_info")
    return rc == 0


@pytest.fixture
def runtime_api(fleet: Fleet) -> Iterator[Fleet]:
    if not admin_socket_served(fleet):
        pytest.skip("lbcore run does not serve its admin socket on this checkout yet")
    yield fleet
    # Leave every server enabled for the next test, whatever this one did.
    fleet.adhoc("balancers", "lbcore.fleet.backend_server", "backend=app server=web2")


# ---- 1. site from bare hosts --------------------------------------------------------


def test_site_from_bare_hosts_serves_the_vip_spread_over_the_backends(
    fleet: Fleet, converged: tuple[Fleet, tuple[int, dict]]
) -> None:
    _, (_, out) = converged
    changed = {h: s["changed"] for h, s in out["stats"].items()}
    assert set(changed) == set(BALANCERS), changed  # the site touches the balancers only
    assert all(n > 0 for n in changed.values()), changed
    assert holders_of_vip(fleet) == ["lb1"]  # the highest priority holds it, alone
    counts = spread(fleet.url(), 30)
    assert set(counts) == set(BACKENDS), counts
    assert all(n >= 5 for n in counts.values()), counts  # roundrobin: 10 each


def test_deploy_script_shows_requests_through_the_vip_spreading(fleet: Fleet) -> None:
    """What `make deploy` prints after the site run (here --no-site: the site is up)."""
    deploy = [sys.executable, str(REPO / "scripts" / "deploy.py")]
    done = subprocess.run(
        [*deploy, "--inventory", str(fleet.inventory), "--no-site"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"requests to http://{fleet.lab.vip}:80/ (the VIP)" in done.stdout
    assert "deploy OK: requests spread over web1, web2, web3" in done.stdout, done.stdout


# ---- 3. reloads: graceful under load; a bad render replaces nothing ------------------------


def test_config_change_reloads_without_dropping_a_request(fleet: Fleet) -> None:
    before = {h: state_of(fleet, h) for h in BALANCERS}
    with Load(fleet.url(), threads=4, max_requests=20_000, max_seconds=240) as load:
        time.sleep(1.0)
        out = fleet.site("-e", '{"lbcore_balancer_maxconn": 4000}', *BALANCER_ONLY)
        time.sleep(1.0)
    after = {h: state_of(fleet, h) for h in BALANCERS}
    reloads = [t for t in changed_tasks(out) if "Signal lbcore to reload" in t]
    assert len(reloads) == 2, changed_tasks(out)
    for host in BALANCERS:
        assert after[host][0] != before[host][0], f"{host}: config not replaced"
        assert after[host][1] == before[host][1], f"{host}: lbcore was restarted, not reloaded"
    assert "maxconn 4000" in fleet.sh("lb1", f"cat {CONFIG}")
    assert not load.errors, f"{len(load.errors)} of {load.total} failed: {load.errors[:5]}"
    assert load.total > 100 and set(load.ok) == set(BACKENDS), load.ok


BROKEN_TEMPLATE = """global
    maxconn {{ lbcore_balancer_maxconn }
"""


@pytest.mark.parametrize(
    ("extra", "failing_task"),
    [
        # lbcore check refuses it: the template renders, validation fails
        ('{"lbcore_balancer_balance": "no-such-algorithm"}', "Render the balancer configuration"),
        # a broken template (a Jinja syntax error in the operator's own template)
        ('{"lbcore_balancer_template": "TEMPLATE"}', "Render the balancer configuration"),
        # a variable that is not defined, used in another: refused before any task runs
        ('{"lbcore_balancer_frontend_extra": ["{{ no_such_variable }}"]}', "Validating arguments"),
        # a variable of the wrong type: the role's argument spec refuses it
        ('{"lbcore_balancer_maxconn": "lots"}', "Validating arguments against arg spec"),
    ],
    ids=["lbcore-check-refuses", "broken-template", "undefined-variable", "bad-type"],
)
def test_bad_config_fails_the_play_and_the_old_one_keeps_serving(
    fleet: Fleet, extra: str, failing_task: str, tmp_path: Path
) -> None:
    template = tmp_path / "broken.cfg.j2"
    template.write_text(BROKEN_TEMPLATE)
    extra = extra.replace("TEMPLATE", str(template))
    before = {h: state_of(fleet, h) for h in BALANCERS}
    rc, out = fleet.playbook("site", "-e", extra, *BALANCER_ONLY)
    assert rc != 0
    failed = failures(out)
    assert failed and all(failing_task in f for f in failed), failed
    assert {h: state_of(fleet, h) for h in BALANCERS} == before  # same file, same master
    assert not [t for t in changed_tasks(out) if "reload" in t.lower()], changed_tasks(out)
    assert set(spread(fleet.url(), 9)) == set(BACKENDS)


# ---- 2. ad-hoc drain on every balancer --------------------------------------------------


def slow_sessions(fleet: Fleet, seconds: float) -> tuple[list[threading.Thread], dict]:
    """Three slow requests through each balancer at once: roundrobin sends one to each
    backend, so web2 has a session on both balancers. Returns the threads and a dict
    filled with (balancer, backend) -> time the answer arrived."""
    done: dict[tuple[str, str], float] = {}

    def one(balancer: str) -> None:
        name = get(fleet.url(balancer, f"/?delay={seconds}"), timeout=seconds + 30)
        done[(balancer, name)] = time.monotonic()

    threads = [threading.Thread(target=one, args=(b,)) for b in BALANCERS for _ in BACKENDS]
    for t in threads:
        t.start()
        time.sleep(0.05)  # in order, so roundrobin deals them out one per backend
    return threads, done


def test_drain_changes_both_balancers_and_waits_for_web2s_sessions(runtime_api: Fleet) -> None:
    fleet = runtime_api
    threads, done = slow_sessions(fleet, 8.0)
    time.sleep(1.5)  # the requests are in flight
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", DRAIN)
    returned = time.monotonic()
    for t in threads:
        t.join(timeout=60)
    assert rc == 0, res
    for host in BALANCERS:
        r = res[host]
        assert r["changed"] is True, (host, r)
        assert r["before"]["admin_state"] == "ready" and r["after"]["admin_state"] == "drain"
        assert r["sessions"] == 0, (host, r)
    # web2's slow sessions were served to the end, and the module returned after them.
    assert {(b, "web2") for b in BALANCERS} <= set(done), done
    assert returned >= max(done[(b, "web2")] for b in BALANCERS) - 0.5, (returned, done)
    # New requests go elsewhere, through either balancer.
    for balancer in (None, *BALANCERS):
        counts = spread(fleet.url(balancer), 12)
        assert "web2" not in counts and set(counts) == {"web1", "web3"}, (balancer, counts)


def test_enabled_brings_web2_back_and_a_second_enabled_changes_nothing(
    runtime_api: Fleet,
) -> None:
    fleet = runtime_api
    fleet.adhoc("balancers", "lbcore.fleet.backend_server", DRAIN)
    enable = {"backend": "app", "server": "web2", "state": "enabled", "wait": True}
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", enable)
    assert rc == 0 and all(res[h]["changed"] for h in BALANCERS), res
    assert all(res[h]["after"]["status"] == "UP" for h in BALANCERS), res
    assert set(spread(fleet.url(), 9)) == set(BACKENDS)
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", enable)
    assert rc == 0 and not any(res[h]["changed"] for h in BALANCERS), res


def test_check_mode_reports_the_change_and_makes_none(runtime_api: Fleet) -> None:
    fleet = runtime_api
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", DRAIN, "--check")
    assert rc == 0, res
    for host in BALANCERS:
        assert res[host]["changed"] is True, res[host]
        assert res[host]["after"]["admin_state"] == "drain", res[host]
        assert res[host]["commands"] == ["set server app/web2 state drain"], res[host]
    rc, info = fleet.adhoc("balancers", "lbcore.fleet.lb_info")
    assert rc == 0
    for host in BALANCERS:
        web2 = info[host]["backends"]["app"]["servers"]["web2"]
        assert web2["admin_state"] == "ready", (host, web2)
    assert "web2" in spread(fleet.url(), 9)


def test_unknown_server_fails_with_a_clear_message(runtime_api: Fleet) -> None:
    fleet = runtime_api
    args = {"backend": "app", "server": "web9", "state": "drain"}
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", args)
    assert rc != 0
    for host in BALANCERS:
        assert res[host].get("failed"), res[host]
        msg = res[host]["msg"]
        assert "app/web9" in msg and ("no such" in msg.lower() or "unknown" in msg.lower()), msg


# ---- 4. admin states survive a site run that reloads ---------------------------------------


def test_admin_states_survive_a_reloading_site_run(runtime_api: Fleet) -> None:
    fleet = runtime_api
    maint = {"backend": "app", "server": "web2", "state": "maint"}
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", maint)
    assert rc == 0 and all(res[h]["changed"] for h in BALANCERS), res
    before = {h: state_of(fleet, h) for h in BALANCERS}
    out = fleet.site("-e", '{"lbcore_balancer_maxconn": 4001}')
    assert len([t for t in changed_tasks(out) if "Signal lbcore to reload" in t]) == 2
    assert all(state_of(fleet, h)[1] == before[h][1] for h in BALANCERS)  # reloaded
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", maint)
    assert rc == 0 and not any(res[h]["changed"] for h in BALANCERS), res  # still maint
    for balancer in (None, *BALANCERS):
        assert "web2" not in spread(fleet.url(balancer), 9)


# ---- 5. a rebuilt lbcore of the same version (issue 9) -------------------------------------

MARKER_FILE = "/opt/lbcore/venv/lib/python3*/site-packages/lbcore/__init__.py"


def rebuilt_wheels(fleet: Fleet, tmp: Path, marker: str) -> Path:
    """The collection's bundled wheels, with lbcore's replaced by a wheel of the same
    version built from this checkout plus one line (`BUILD_MARKER = marker`)."""
    bundled = (
        Path(fleet.ansible.env["ANSIBLE_COLLECTIONS_PATH"])
        / "ansible_collections/lbcore/fleet/roles/install/files/wheels"
    )
    src = tmp / "src"
    shutil.copytree(
        REPO / "lbcore",
        src / "lbcore",  # the sources only: the build compiles them again (setup.py)
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "_native.json"),
    )
    for name in ("pyproject.toml", "README.md", "setup.py", "native-modules.txt"):
        shutil.copy(REPO / name, src / name)
    init = src / "lbcore" / "__init__.py"
    init.write_text(init.read_text() + f'\nBUILD_MARKER = "{marker}"\n')
    wheels = tmp / "wheels"
    shutil.copytree(bundled, wheels, ignore=shutil.ignore_patterns("lbcore-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(src)],
        check=True,
        capture_output=True,
        timeout=600,  # mypyc compiles the hot modules: ~1.5 min on a quiet machine
    )
    old = {p.name for p in bundled.glob("lbcore-*.whl")}
    new = {p.name for p in wheels.glob("lbcore-*.whl")}
    assert new == old, (old, new)  # the same file name: the same version
    return wheels


def test_a_rebuilt_wheel_of_the_same_version_is_installed_and_runs_without_a_failed_request(
    runtime_api: Fleet, tmp_path: Path
) -> None:
    """The install role reinstalls a rebuilt lbcore of the same version (its contents
    differ), and the balancer role moves the running lbcore onto it: a new master beside
    the old one (`run -sf`), which finishes gracefully. Not one request through the VIP
    fails meanwhile, and web2, drained by an operator before, stays drained. The same
    wheels again change nothing (no reinstall, no restart)."""
    fleet = runtime_api
    marker = f"rebuilt-{time.time_ns()}"
    wheels = rebuilt_wheels(fleet, tmp_path, marker)
    extra = json.dumps({"lbcore_install_wheels_src": str(wheels)})
    drain = {"backend": "app", "server": "web2", "state": "drain"}
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", drain)
    assert rc == 0 and all(res[h]["changed"] for h in BALANCERS), res
    before = {h: state_of(fleet, h) for h in BALANCERS}
    with Load(fleet.url(), threads=4, max_requests=20_000, max_seconds=300) as load:
        time.sleep(1.0)
        out = fleet.site("-e", extra)
        time.sleep(2.0)
    changed = changed_tasks(out)
    for task in ("Install the bundled lbcore version", "Restart lbcore onto the installed code"):
        assert len([t for t in changed if task in t]) == 2, changed
    assert not [t for t in changed if "Signal lbcore to reload" in t], changed
    after = {h: state_of(fleet, h) for h in BALANCERS}
    for host in BALANCERS:
        # (The config may change too, back to the defaults an earlier test overrode: the
        # restarted lbcore reads it, so no reload follows.)
        assert after[host][1] != before[host][1], f"{host}: lbcore was not restarted"
        out_host = fleet.sh(
            host,
            f"grep -c {marker} {MARKER_FILE}; "
            f"for i in $(seq 100); do kill -0 {before[host][1]} 2>/dev/null || break; sleep 0.2;"
            f" done; kill -0 {before[host][1]} 2>/dev/null && echo old-alive || echo old-gone; "
            f"grep -c 'Sent SIGUSR1 to old process {before[host][1]}' /var/log/lbcore/lbcore.log",
        )
        assert out_host.split() == ["1", "old-gone", "1"], (host, out_host)
    assert not load.errors, f"{len(load.errors)} of {load.total} failed: {load.errors[:5]}"
    assert load.total > 100 and set(load.ok) == {"web1", "web3"}, load.ok  # web2 drained
    rc, res = fleet.adhoc("balancers", "lbcore.fleet.backend_server", drain)
    assert rc == 0 and not any(res[h]["changed"] for h in BALANCERS), res  # still drained
    # The same wheels again: nothing to install, nothing to restart.
    again = changed_tasks(fleet.site("-e", extra))
    assert again == [], again
    assert {h: state_of(fleet, h) for h in BALANCERS} == after
