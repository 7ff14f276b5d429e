"""The lab, end to end (issue 7's "Must show"): build it, reach it, break it, remove it.

The tests share one lab (building it takes tens of seconds) and run in file order:
present → ping and idempotence → isolation → HTTP → repair → absent. Each test that needs
the lab up re-runs `present` first if an earlier one left it broken, so any test can also run
alone. The module's finalizer runs `absent`, so the machine is left as it was found.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import need_binary, need_root
from tests.lab.labctl import (
    BRIDGE,
    HOSTS,
    LAB_DIR,
    PREFIX,
    PRIVATE_DIRS,
    WEB_HOSTS,
    Ansible,
    ansible_bin,
    changed,
    changed_tasks,
    emergency_cleanup,
    helper_module,
    host_status,
)

LOCK_WAIT = 300
# Setup may first wait for another run's lab to be torn down (see lab_lock).
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(300 + LOCK_WAIT)]
LAB_LOCK = Path("/run/lock" if os.path.isdir("/run/lock") else "/tmp") / "lbcore-lab-tests.lock"

MARKER = "lbcore-lab-test-marker"


def ssh_answers(ip: str, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4) == b"SSH-"
    except OSError:
        return False


def lab_is_up() -> bool:
    return all(ssh_answers(ip) for ip in HOSTS.values())


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def live_lab_processes() -> list[str]:
    """Command lines of live processes that belong to the lab (its dir or its scripts)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and f"{LAB_DIR}/" in cmd:
            found.append(f"{entry}: {cmd.strip()}")
    return found


def lab_links() -> list[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True)
    names = [link["ifname"] for link in json.loads(out.stdout)]
    return [n for n in names if n == BRIDGE or n in {PREFIX + h for h in HOSTS}]


def lab_netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    names = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    return [n for n in names if n in {PREFIX + h for h in HOSTS}]


@pytest.fixture(scope="module")
def ansible(tmp_path_factory: pytest.TempPathFactory):
    need_root()
    for tool in ("ip", "unshare", "nsenter", "sshd", "ssh", "ssh-keygen"):
        need_binary(tool)
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("the lab hosts run Debian's /usr/bin/python3, which is missing")
    if ansible_bin("ansible-playbook") is None:
        pytest.skip("ansible-core is not installed (make venv installs it)")
    return Ansible.build(tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module")
def lab_lock():
    """The lab is one per machine: wait while another test run (another checkout) uses it."""
    with LAB_LOCK.open("a") as lock:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test run held {LAB_LOCK} for {LOCK_WAIT}s")
                time.sleep(1)
        yield
        fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def fresh(ansible: Ansible, lab_lock: None):
    """A machine with no lab on it; `absent` again when the module is done, whatever happened.

    Yields the mount points that existed before, so the absent test knows which ones the lab
    made (and must remove) and which were there already (and must stay).
    """
    ansible.playbook("absent")
    before = {d for d in PRIVATE_DIRS if os.path.isdir(d)}
    yield before
    if lab_netns() or lab_links() or LAB_DIR.exists() or live_lab_processes():
        try:
            ansible.playbook("absent")
        finally:
            if lab_netns() or lab_links() or LAB_DIR.exists():
                emergency_cleanup()


@pytest.fixture(scope="module")
def first_present(ansible: Ansible, fresh: set[str]) -> dict:
    """`present` on a machine without a lab, after a `--check` run (kept as out["check"])."""
    check = ansible.playbook("present", "--check")
    check["left"] = [*lab_netns(), *lab_links(), *([str(LAB_DIR)] if LAB_DIR.exists() else [])]
    started = time.monotonic()
    out = ansible.playbook("present")
    out["elapsed"] = time.monotonic() - started
    out["check"] = check
    return out


@pytest.fixture
def lab(ansible: Ansible, first_present: dict) -> Ansible:
    """The lab, up: rebuilt with `present` if an earlier test left it down."""
    if not lab_is_up():
        ansible.playbook("present")
    return ansible


def test_present_builds_five_hosts_that_ansible_pings_over_ssh(lab: Ansible, first_present):
    assert changed(first_present) > 0
    print(f"first present: {first_present['elapsed']:.1f}s")
    pongs = lab.adhoc("all", "ansible.builtin.ping")
    assert sorted(pongs) == sorted(HOSTS)
    for host, result in pongs.items():
        assert result.get("ping") == "pong", (host, result)
        assert not result.get("unreachable"), (host, result)
    # Over real SSH, from the root namespace's bridge address to the host's own address.
    env = lab.adhoc("all", "ansible.builtin.shell", "echo $SSH_CONNECTION")
    for host, result in env.items():
        client, _, server, port = result["stdout"].split()
        assert (client, server, port) == ("198.18.0.1", HOSTS[host], "22"), host


def test_second_present_changes_nothing(lab: Ansible):
    started = time.monotonic()
    out = lab.playbook("present")
    print(f"second present: {time.monotonic() - started:.1f}s")
    assert changed(out) == 0, changed_tasks(out)


def test_check_mode_reports_what_it_would_build_and_builds_nothing(first_present):
    check = first_present["check"]
    assert changed(check) > 0
    assert any("create netns lbcore-web2" in t for t in changed_tasks(check))
    assert check["left"] == []  # no namespace, link or lab directory made


def test_check_mode_on_a_built_lab_reports_no_change(lab: Ansible):
    out = lab.playbook("present", "--check")
    assert changed(out) == 0, changed_tasks(out)


# A probe each host runs (under its own /usr/bin/python3, over SSH): what it can see.
PROBE = f"""
import json, os, socket, subprocess
procs = []
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            procs.append(open("/proc/%s/cmdline" % p, "rb").read().replace(b"\\0", b" ").decode())
        except OSError:
            pass
print(json.dumps({{
    "hostname": socket.gethostname(),
    "links": json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True).stdout),
    "markers": {{d: open(os.path.join(d, "{MARKER}")).read().strip()
                for d in {list(PRIVATE_DIRS)!r} if os.path.exists(os.path.join(d, "{MARKER}"))}},
    "procs": procs,
}}))
"""


def test_hosts_are_isolated_files_addresses_names_processes(lab: Ansible):
    write = " && ".join(f"echo lb1 > {d}/{MARKER}" for d in PRIVATE_DIRS)
    wrote = lab.adhoc("lb1", "ansible.builtin.shell", write)
    assert wrote["lb1"].get("rc") == 0, wrote
    try:
        argv = {"argv": ["/usr/bin/python3", "-c", PROBE]}
        seen = lab.adhoc("all", "ansible.builtin.command", argv)
        # The root namespace sees none of it; the files live in lb1's own directories.
        for d in PRIVATE_DIRS:
            assert not os.path.exists(os.path.join(d, MARKER)), d
            kept = LAB_DIR / "hosts" / "lb1" / "fs" / d.lstrip("/") / MARKER
            assert kept.read_text() == "lb1\n"
    finally:
        remove = " ".join(f"{d}/{MARKER}" for d in PRIVATE_DIRS)
        lab.adhoc("lb1", "ansible.builtin.shell", f"rm -f {remove}")
    assert sorted(seen) == sorted(HOSTS)
    for host, result in seen.items():
        view = json.loads(result["stdout"])
        assert view["hostname"] == host
        # Files: lb1 sees what it wrote in each private directory; nobody else does.
        expected = {d: "lb1" for d in PRIVATE_DIRS} if host == "lb1" else {}
        assert view["markers"] == expected, host
        # Addresses: lo and eth0 only; eth0 holds the host's own address and no other.
        links = {link["ifname"]: link for link in view["links"]}
        assert sorted(links) == ["eth0", "lo"], (host, sorted(links))
        inet = [
            f"{a['local']}/{a['prefixlen']}"
            for link in view["links"]
            for a in link["addr_info"]
            if a["family"] == "inet"
        ]
        assert sorted(inet) == sorted(["127.0.0.1/8", f"{HOSTS[host]}/24"]), host
        inet6 = [a for lk in view["links"] for a in lk["addr_info"] if a["family"] == "inet6"]
        assert [a for a in inet6 if a.get("scope") == "global"] == [], host
        # Processes: PID namespace of its own, with the host's own init and nobody else's.
        inits = [p for p in view["procs"] if "lbcore_lab_init.py" in p]
        assert len(inits) == 1 and f"--name {host} " in inits[0], (host, inits)
        web = [p for p in view["procs"] if "lbcore_lab_web.py" in p]
        assert len(web) == (1 if host in WEB_HOSTS else 0), (host, web)
        assert len(view["procs"]) < 20, (host, view["procs"])


def test_http_from_root_namespace_reaches_each_web_host_by_name(lab: Ansible):
    for host in WEB_HOSTS:
        status, body, headers = http_get(f"http://{HOSTS[host]}/")
        assert (status, body) == (200, f"{host}\n")
        assert headers["X-Served-By"] == host


def test_balancers_reach_every_web_host_across_the_bridge(lab: Ansible):
    """Host to host (what the balancers will do), not only root namespace to host."""
    urls = [f"http://{HOSTS[h]}/" for h in WEB_HOSTS]
    fetch = (
        "import urllib.request as u; "
        f"print(*(u.urlopen(x).read().decode().strip() for x in {urls!r}))"
    )
    seen = lab.adhoc(
        "balancers", "ansible.builtin.command", {"argv": ["/usr/bin/python3", "-c", fetch]}
    )
    assert {h: r.get("stdout") for h, r in seen.items()} == dict.fromkeys(
        ["lb1", "lb2"], " ".join(WEB_HOSTS)
    )


def test_web_app_answers_slowly_or_fails_when_told(lab: Ansible):
    ip = HOSTS["web2"]
    assert http_get(f"http://{ip}/?status=503")[:2] == (503, "web2\n")
    started = time.monotonic()
    assert http_get(f"http://{ip}/?delay=0.5")[0] == 200
    assert time.monotonic() - started >= 0.5
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        http_get(f"http://{ip}/?status=reset")
    # Whole-server modes (what a health check sees) are files in the host's private /run.
    state = LAB_DIR / "hosts" / "web2" / "fs" / "run" / "lbcore-lab-web"
    (state / "status").write_text("500\n")
    try:
        assert http_get(f"http://{ip}/health")[0] == 500
        assert http_get(f"http://{HOSTS['web1']}/health")[0] == 200  # other hosts unaffected
    finally:
        (state / "status").unlink()
    assert http_get(f"http://{ip}/health")[0] == 200


def test_present_repairs_a_killed_sshd_a_lost_veth_or_netns_and_a_dead_host(lab: Ansible):
    # Break four hosts four ways: web2 loses its sshd, lb2 its veth, web3 everything, and
    # lb1 the name of its netns (it runs on, unreachable for the tools, holding its address).
    web2 = host_status("web2")
    lb1 = host_status("lb1")
    os.kill(web2["sshd_pid"], signal.SIGKILL)
    subprocess.run(["ip", "link", "del", PREFIX + "lb2"], check=True)
    # lb2 also loses a private directory (as when another party rmdirs the mount point).
    lb2_init = str(host_status("lb2")["init_pid"])
    subprocess.run(["nsenter", "-t", lb2_init, "-m", "umount", "/var/log/lbcore"], check=True)
    os.kill(host_status("web3")["init_pid"], signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", PREFIX + "lb1"], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        ssh_answers(HOSTS[h], 0.3) for h in ("web2", "lb2", "web3")
    ):
        time.sleep(0.1)
    for host in ("web2", "lb2", "web3"):
        assert not ssh_answers(HOSTS[host]), f"{host} still answers SSH after being broken"
    assert host_status("web2")["init_pid"] == web2["init_pid"]  # the host itself lives on

    out = lab.playbook("present")
    repaired = changed_tasks(out)
    assert changed(out) > 0
    assert any("start sshd" in t and "web2" in t for t in repaired), repaired
    assert any("create veth" in t and "lb2" in t for t in repaired), repaired
    assert any("on /var/log/lbcore in lb2" in t for t in repaired), repaired
    assert any("start init" in t and "web3" in t for t in repaired), repaired
    assert host_status("web2")["init_pid"] == web2["init_pid"]  # repaired, not rebuilt
    assert any(f"stop host init {lb1['init_pid']} of lb1" in t for t in repaired), repaired
    assert host_status("lb1")["init_pid"] not in (None, lb1["init_pid"])  # rebuilt

    pongs = lab.adhoc("all", "ansible.builtin.ping")
    assert {h: r.get("ping") for h, r in pongs.items()} == dict.fromkeys(HOSTS, "pong")
    assert http_get(f"http://{HOSTS['web3']}/")[:2] == (200, "web3\n")


def test_absent_leaves_nothing_behind_and_is_idempotent(lab: Ansible, fresh: set[str]):
    # Leave the lab half-built and untidy first: a dead host, a host without its netns
    # (as after a crash), and a stray process in a host's netns outside its PID namespace.
    os.kill(host_status("web3")["init_pid"], signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", PREFIX + "lb1"], check=True)
    stray = subprocess.Popen(["ip", "netns", "exec", PREFIX + "web1", "sleep", "600"])
    try:
        out = lab.playbook("absent")
        assert stray.wait(timeout=10) is not None  # absent stopped it
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()
    assert changed(out) > 0

    assert lab_netns() == []
    assert lab_links() == []
    deadline = time.monotonic() + 10
    while live_lab_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_lab_processes() == []
    assert not LAB_DIR.exists()
    for d in set(PRIVATE_DIRS) - fresh:
        # Mount points the lab created in the root filesystem are gone (unless another lab on
        # this machine, with its own lab dir, mounts over one right now). That it keeps those
        # it did not create: test_absent_removes_only_the_mount_points_it_made_...
        assert not os.path.isdir(d) or helper_module().mounted_anywhere(d), d
    for ip in HOSTS.values():
        assert not ssh_answers(ip, 0.3)

    again = lab.playbook("absent")
    assert changed(again) == 0, changed_tasks(again)
