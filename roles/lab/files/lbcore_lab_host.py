"""Create, repair, inspect or remove one lab host (and the lab bridge) on this machine.

Why a script and not Ansible tasks: ansible-core has no module for network namespaces,
veth pairs, bridges or `unshare`/`nsenter`, and making a host is a sequence of small
observations and actions (is the namespace there? is the veth's peer inside it? is the host's
init alive? is sshd answering?) that must be idempotent and able to repair any half-built
state. Expressed as `command` tasks with `changed_when` guards, that is dozens of fragile
tasks per host; here it is one idempotent command per host that reports what it changed as
JSON (`{"changed": ..., "actions": [...]}`), so the role stays readable and `present` twice
reports changed=0. Everything that *is* natural in Ansible (installing packages, the lab
directory, the client key, sshd_config, known_hosts) stays in the role's tasks.

Subcommands: `validate` (preflight: root, topology, missing packages), `bridge
present|absent`, `host present|absent|status`, `prune` (hosts no longer in the inventory),
`mountpoints absent`. `--check` reports the actions without taking them (check mode).
The script is one file because Ansible's `script` action ships exactly one.

A host is: a network namespace NETNS with a veth (root side VETH, enslaved to the lab bridge;
peer `eth0` inside, holding the host's address) and `lo` up; a process `lbcore_lab_init.py`
running as PID 1 of new PID, mount and UTS namespaces inside NETNS (see that file); an sshd
started inside those namespaces with nsenter, listening on the host's address; and, on
backends, the lab web app on port 80. Per-host state lives under LAB_DIR/hosts/NAME/, the
host's private directories under LAB_DIR/hosts/NAME/fs/<path>.

Stdlib only. Run as root. Exit status 0 on success, 1 with a message on stderr otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

INIT_SCRIPT = "lbcore_lab_init.py"
WEB_SCRIPT = "lbcore_lab_web.py"
READY_FILE = "run/lbcore-lab-init.ready"
SSHD = "/usr/sbin/sshd"
HOSTNAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
IFNAME_MAX = 15


class LabError(Exception):
    """A failure to report to the operator (the role shows it as the task's message)."""


class Plan:
    """Collects actions; runs them unless in check mode (then only reports them)."""

    def __init__(self, check: bool) -> None:
        self.check = check
        self.actions: list[str] = []

    def do(self, what: str, fn: Callable[[], object]) -> None:
        self.actions.append(what)
        if not self.check:
            fn()


def run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def link(name: str, netns: str | None = None) -> dict | None:
    """`ip -j link show` of one link, or None when it does not exist."""
    cmd = ["ip", "-j", *(["-n", netns] if netns else []), "link", "show", "dev", name]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    links = json.loads(proc.stdout or "[]")
    return links[0] if links else None


def addresses(name: str, netns: str | None = None, primary_only: bool = False) -> list[str]:
    """IPv4 addresses (with prefix length) of one link.

    `primary_only` leaves out secondary addresses: on a host's eth0 those are the site's
    virtual IPs, added by the VRRP agent; the lab must not take them away on a repair.
    """
    cmd = ["ip", "-j", *(["-n", netns] if netns else []), "-4", "addr", "show", "dev", name]
    out = json.loads(run(*cmd) or "[]")
    return [
        f"{a['local']}/{a['prefixlen']}"
        for i in out
        for a in i.get("addr_info", [])
        if not (primary_only and a.get("secondary"))
    ]


def delete_link(name: str) -> None:
    """Delete a link; one that vanished meanwhile is as good as deleted."""
    proc = subprocess.run(["ip", "link", "del", name], capture_output=True, text=True, check=False)
    if proc.returncode != 0 and link(name) is not None:
        raise LabError(f"ip link del {name}: {proc.stderr.strip()}")


def delete_netns(name: str) -> None:
    """Delete a named netns; one that vanished meanwhile is as good as deleted."""
    proc = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True, check=False)
    if proc.returncode != 0 and netns_exists(name):
        raise LabError(f"ip netns del {name}: {proc.stderr.strip()}")


def is_up(info: dict) -> bool:
    return "UP" in info.get("flags", [])


def netns_exists(netns: str) -> bool:
    return os.path.exists(f"/run/netns/{netns}")


def _proc_read(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _status_field(pid: int, field: str) -> list[str]:
    for line in _proc_read(pid, "status").splitlines():
        if line.startswith(field + ":"):
            return line.split()[1:]
    return []


def _ns_id(path: str) -> tuple[int, int] | None:
    """Identity of a namespace file (/run/netns/NAME or /proc/PID/ns/net)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def live_pids() -> list[int]:
    pids = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    return [p for p in pids if _status_field(p, "State")[:1] not in ([], ["Z"])]


def pids_in(ns_ids: set[tuple[int, int]]) -> list[int]:
    """Live processes (root PID namespace numbers) inside any of these network namespaces."""
    return [p for p in live_pids() if _ns_id(f"/proc/{p}/ns/net") in ns_ids] if ns_ids else []


def netns_pids(netns: str) -> list[int]:
    """Live processes inside the named network namespace."""
    ns = _ns_id(f"/run/netns/{netns}")
    return pids_in({ns}) if ns else []


def cmdline(pid: int) -> list[str]:
    return [a for a in _proc_read(pid, "cmdline").split("\0") if a]


def _is_init(pid: int, script: str | None = None, name: str | None = None) -> bool:
    """Is `pid` a lab host's init (PID 1 of its PID namespace running our init script)?"""
    nspid = _status_field(pid, "NSpid")
    args = cmdline(pid)
    if not (len(nspid) == 2 and nspid[1] == "1" and len(args) > 1):
        return False
    if not args[1].endswith(INIT_SCRIPT) or (script and args[1] != script):
        return False
    return name is None or ("--name" in args[:-1] and args[args.index("--name") + 1] == name)


def find_init(netns: str) -> int | None:
    """The init of the host in this network namespace."""
    return next((p for p in netns_pids(netns) if _is_init(p)), None)


def find_inits_by_name(args: argparse.Namespace) -> list[int]:
    """Every init of this host, wherever it runs: also one whose netns lost its name
    (`ip netns del` while processes were inside) and that no netns lookup can find."""
    script = str(Path(args.lab_dir) / "bin" / INIT_SCRIPT)
    return [p for p in live_pids() if _is_init(p, script, args.name)]


def children_of(netns: str, parent: int) -> list[int]:
    return [p for p in netns_pids(netns) if _status_field(p, "PPid") == [str(parent)]]


def find_service(netns: str, init: int | None, marker: str) -> int | None:
    """A daemon adopted by the host's init whose command line contains `marker`."""
    if init is None:
        return None
    for pid in children_of(netns, init):
        if any(marker in a for a in cmdline(pid)):
            return pid
    return None


def alive(pid: int) -> bool:
    state = _status_field(pid, "State")
    return bool(state) and state[0] != "Z"


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def answers(ip: str, port: int, banner: bytes = b"", timeout: float = 1.0) -> bool:
    """True when something accepts on ip:port (and, if given, greets with `banner`)."""
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            if banner:
                s.settimeout(timeout)
                return s.recv(len(banner)) == banner
            return True
    except OSError:
        return False


def wait_until(what: str, ok: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def nsenter(init: int, *cmd: str) -> str:
    """Run a command inside a host's namespaces (all of them: net, mount, UTS, PID)."""
    return run("nsenter", "--target", str(init), "--net", "--mount", "--uts", "--pid", *cmd)


# ---------------------------------------------------------------------------------- bridge


def bridge_present(args: argparse.Namespace, plan: Plan) -> None:
    info = link(args.bridge)
    if info is None:
        plan.do(
            f"create bridge {args.bridge}",
            lambda: run("ip", "link", "add", args.bridge, "type", "bridge"),
        )
        if plan.check:
            return
    elif info.get("linkinfo", {}).get("info_kind") not in (None, "bridge"):
        raise LabError(f"{args.bridge} exists and is not a bridge")
    have = addresses(args.bridge)
    for addr in have:
        if addr != args.address:
            plan.do(
                f"remove {addr} from {args.bridge}",
                lambda a=addr: run("ip", "addr", "del", a, "dev", args.bridge),
            )
    if args.address not in have:
        plan.do(
            f"add {args.address} to {args.bridge}",
            lambda: run("ip", "addr", "add", args.address, "dev", args.bridge),
        )
    info = link(args.bridge) or {}
    if not is_up(info):
        plan.do(f"set {args.bridge} up", lambda: run("ip", "link", "set", args.bridge, "up"))


def bridge_absent(args: argparse.Namespace, plan: Plan) -> None:
    if link(args.bridge) is not None:
        plan.do(f"delete bridge {args.bridge}", lambda: run("ip", "link", "del", args.bridge))


# ------------------------------------------------------------------------------------ host


def host_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    hostdir = Path(args.lab_dir) / "hosts" / args.name
    return hostdir, hostdir / "fs"


def ensure_dirs(args: argparse.Namespace, plan: Plan) -> None:
    """Per-host private directories, and their mount points in the shared root filesystem."""
    hostdir, fs = host_paths(args)
    if not hostdir.is_dir():
        plan.do(f"create {hostdir}", lambda: hostdir.mkdir(mode=0o755, parents=True))
    wanted = [(fs / p.lstrip("/"), 0o1777 if p == "/tmp" else 0o755) for p in args.private]
    wanted.append((fs / "run" / "sshd", 0o755))  # sshd's privilege separation directory
    for path, mode in wanted:
        if not path.is_dir():
            plan.do(f"create {path}", lambda p=path, m=mode: (p.mkdir(parents=True), p.chmod(m)))
    record = Path(args.lab_dir) / "mountpoints"
    for p in args.private:
        if not os.path.isdir(p):
            # The bind mount needs a target in the root filesystem; remember we made it so
            # that `absent` removes it again (and nothing that was there before).
            def make(p: str = p) -> None:
                os.makedirs(p, mode=0o755)
                with record.open("a", encoding="utf-8") as f:
                    f.write(p + "\n")

            plan.do(f"create mount point {p}", make)
    meta = {"name": args.name, "netns": args.netns, "veth": args.veth, "address": args.address}
    meta_file = hostdir / "host.json"
    if not meta_file.exists() or json.loads(meta_file.read_text()) != meta:
        plan.do(f"record {meta_file}", lambda: meta_file.write_text(json.dumps(meta) + "\n"))


def host_mac(address: str) -> str:
    """A fixed, locally administered MAC made of the host's IPv4 address (02:00:a:b:c:d).

    A veth that is re-created (say, after a crash) keeps the same MAC, so the neighbour
    caches of the root namespace and of the other hosts stay right; a random MAC would leave
    them pointing at the old one until they expire.
    """
    packed = ipaddress.IPv4Interface(address).ip.packed
    return "02:00:" + ":".join(f"{b:02x}" for b in packed)


def ensure_network(args: argparse.Namespace, plan: Plan) -> None:
    ns, veth = args.netns, args.veth
    if not netns_exists(ns):
        plan.do(f"create netns {ns}", lambda: run("ip", "netns", "add", ns))
        if plan.check:
            plan.actions.append(f"create veth {veth} and address {args.address}")
            return
    root_side, peer = link(veth), link("eth0", ns)
    if root_side is not None and peer is None:
        plan.do(f"delete {veth} (its peer is not in {ns})", lambda: run("ip", "link", "del", veth))
        root_side = None
    if peer is not None and root_side is None:
        plan.do(f"delete eth0 in {ns} (stale)", lambda: run("ip", "-n", ns, "link", "del", "eth0"))
    mac = host_mac(args.address)
    if root_side is None:
        plan.do(
            f"create veth {veth} <-> {ns}:eth0",
            lambda: run(
                "ip",
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "address",
                mac,
                "netns",
                ns,
            ),
        )
        if plan.check:
            return
        root_side = link(veth) or {}
    if root_side.get("master") != args.bridge:
        plan.do(
            f"attach {veth} to {args.bridge}",
            lambda: run("ip", "link", "set", veth, "master", args.bridge),
        )
    if not is_up(root_side):
        plan.do(f"set {veth} up", lambda: run("ip", "link", "set", veth, "up"))
    eth0 = link("eth0", ns) or {}
    if eth0.get("address") != mac:
        plan.do(
            f"set {ns}:eth0 address {mac}",
            lambda: run("ip", "-n", ns, "link", "set", "eth0", "address", mac),
        )
    if not is_up(link("lo", ns) or {}):
        plan.do(f"set lo up in {ns}", lambda: run("ip", "-n", ns, "link", "set", "lo", "up"))
    have = addresses("eth0", ns, primary_only=True)
    for addr in have:
        if addr != args.address:
            plan.do(
                f"remove {addr} from {ns}:eth0",
                lambda a=addr: run("ip", "-n", ns, "addr", "del", a, "dev", "eth0"),
            )
    if args.address not in have:
        plan.do(
            f"add {args.address} to {ns}:eth0",
            lambda: run("ip", "-n", ns, "addr", "add", args.address, "dev", "eth0"),
        )
    if not is_up(link("eth0", ns) or {}):
        plan.do(f"set eth0 up in {ns}", lambda: run("ip", "-n", ns, "link", "set", "eth0", "up"))


def start_init(args: argparse.Namespace) -> None:
    hostdir, fs = host_paths(args)
    ready = fs / READY_FILE
    ready.unlink(missing_ok=True)
    cmd = [
        "ip",
        "netns",
        "exec",
        args.netns,
        "unshare",
        "--mount",
        "--pid",
        "--uts",
        "--fork",
        "--mount-proc",
        "--propagation",
        "private",
        "--",
        args.python,
        str(Path(args.lab_dir) / "bin" / INIT_SCRIPT),
        "--name",
        args.name,
        "--root",
        str(fs),
    ]
    for p in args.private:
        cmd += ["--private", p]
    with (hostdir / "console.log").open("ab") as console:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd="/",
        )

    def started() -> bool:
        if proc.poll() is not None:
            tail = (hostdir / "console.log").read_text(errors="replace")[-800:]
            raise LabError(f"init of {args.name} exited ({proc.returncode}): {tail}")
        return ready.exists() and find_init(args.netns) is not None

    wait_until(f"init of {args.name}", started, args.timeout)


def ensure_init(args: argparse.Namespace, plan: Plan) -> int | None:
    init = find_init(args.netns) if netns_exists(args.netns) else None
    if init is None:
        plan.do(f"start init of {args.name}", lambda: start_init(args))
        if not plan.check:
            init = find_init(args.netns)
    else:
        ensure_mounts(args, plan, init)
    return init


def ensure_mounts(args: argparse.Namespace, plan: Plan, init: int) -> None:
    """Re-attach a private directory the host lost. That happens when the mount point is
    removed from the root filesystem (since Linux 3.18, rmdir detaches the mounts over it
    in every other mount namespace): the host would then write into the shared directory."""
    fs = host_paths(args)[1]
    mounted = set()
    for line in _proc_read(init, "mountinfo").splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[3].endswith(f"/hosts/{args.name}/fs{fields[4]}"):
            mounted.add(fields[4])
    for p in args.private:
        if p not in mounted:
            source = str(fs / p.lstrip("/"))
            # (ensure_dirs has already re-created the mount point in the root filesystem)
            plan.do(
                f"mount {source} on {p} in {args.name}",
                lambda p=p, s=source: nsenter(init, "mount", "--bind", s, p),
            )


def host_key(args: argparse.Namespace) -> Path:
    return Path(args.lab_dir) / "hosts" / args.name / "ssh_host_ed25519_key"


def ensure_host_key(args: argparse.Namespace, plan: Plan) -> None:
    key = host_key(args)
    if not key.exists():
        plan.do(
            f"generate host key {key}",
            lambda: run(
                "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", args.name, "-f", str(key)
            ),
        )


def sshd_command(args: argparse.Namespace, ip: str) -> list[str]:
    """One sshd_config for all hosts; what differs per host is given with -o."""
    return [
        SSHD,
        "-f",
        args.sshd_config,
        "-o",
        f"ListenAddress={ip}:{args.ssh_port}",
        "-o",
        f"HostKey={host_key(args)}",
        "-E",
        "/run/sshd.log",
    ]


def ensure_sshd(args: argparse.Namespace, plan: Plan, init: int | None) -> None:
    ip = args.address.split("/")[0]
    pid = find_service(args.netns, init, args.sshd_config)
    if init is None:  # check mode on a host that does not run yet
        plan.actions.append(f"start sshd on {ip}:{args.ssh_port}")
        return
    command = sshd_command(args, ip)

    def start() -> None:
        nsenter(init, command[0], "-t", *command[1:])
        nsenter(init, *command)
        wait_until(
            f"sshd of {args.name} on {ip}:{args.ssh_port}",
            lambda: answers(ip, args.ssh_port, b"SSH-"),
            args.timeout,
        )

    def reload() -> None:
        nsenter(init, command[0], "-t", *command[1:])
        os.kill(pid, signal.SIGHUP)  # sshd re-executes itself and rereads its config
        time.sleep(0.2)
        wait_until(
            f"sshd of {args.name} after reload",
            lambda: answers(ip, args.ssh_port, b"SSH-"),
            args.timeout,
        )

    if pid is None or not answers(ip, args.ssh_port, b"SSH-"):
        if pid is not None:
            plan.do(f"stop unresponsive sshd {pid}", lambda: os.kill(pid, signal.SIGKILL))
        plan.do(f"start sshd on {ip}:{args.ssh_port}", start)
    elif "sshd" in args.reload.split(","):
        plan.do(f"reload sshd {pid}", reload)


def ensure_web(args: argparse.Namespace, plan: Plan, init: int | None) -> None:
    if not args.web_port:
        return
    ip = args.address.split("/")[0]
    script = str(Path(args.lab_dir) / "bin" / WEB_SCRIPT)
    if init is None:
        plan.actions.append(f"start web app on {ip}:{args.web_port}")
        return
    pid = find_service(args.netns, init, script)

    def start() -> None:
        nsenter(init, args.python, script, "--daemon", "--port", str(args.web_port))
        wait_until(f"web app of {args.name}", lambda: answers(ip, args.web_port), args.timeout)

    if pid is not None and ("web" in args.reload.split(",") or not answers(ip, args.web_port)):
        plan.do(
            f"stop web app {pid}",
            lambda: (os.kill(pid, signal.SIGTERM), wait_gone([pid], args.timeout)),
        )
        pid = None
    if pid is None:
        plan.do(f"start web app on {ip}:{args.web_port}", start)


def host_present(args: argparse.Namespace, plan: Plan) -> dict:
    stop_strays(args, plan)
    ensure_dirs(args, plan)
    ensure_host_key(args, plan)
    ensure_network(args, plan)
    init = ensure_init(args, plan)
    ensure_sshd(args, plan, init)
    ensure_web(args, plan, init)
    pub = host_key(args).with_suffix(".pub")
    return {"host_key": " ".join(pub.read_text().split()[:2]) if pub.exists() else None}


def _stop(args: argparse.Namespace, plan: Plan, inits: list[int], ns_ids: set) -> None:
    """Stop these inits (each takes its whole PID namespace down), then anything else
    still inside these network namespaces: SIGTERM, then SIGKILL."""
    for init in inits:
        plan.do(
            f"stop host init {init} of {args.name}",
            lambda i=init: (os.kill(i, signal.SIGTERM), wait_gone([i], args.timeout)),
        )
    others = [p for p in pids_in(ns_ids) if p not in inits] if not plan.check else []
    if others:

        def kill_rest() -> None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for p in wait_gone(others, 0):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, sig)
                if not wait_gone(others, 3.0):
                    return
            if wait_gone(others, 2.0):
                raise LabError(f"processes of {args.name} survived SIGKILL: {others}")

        plan.do(f"stop processes {others} of {args.name}", kill_rest)


def stop_processes(args: argparse.Namespace, plan: Plan, netns: list[str]) -> None:
    """Stop every process of the host: in its named netns, and any init of it found by
    name (with everything in that init's netns)."""
    inits = find_inits_by_name(args)
    ns_ids = {_ns_id(f"/run/netns/{n}") for n in netns}
    ns_ids |= {_ns_id(f"/proc/{i}/ns/net") for i in inits}
    ns_ids.discard(None)
    inits = sorted(set(inits) | {p for p in pids_in(ns_ids) if _is_init(p)})
    _stop(args, plan, inits, ns_ids)


def stop_strays(args: argparse.Namespace, plan: Plan) -> None:
    """An earlier incarnation of the host still running outside its named netns (someone
    ran `ip netns del` under it) holds the old veth and address: stop it before rebuilding."""
    current = find_init(args.netns) if netns_exists(args.netns) else None
    strays = [i for i in find_inits_by_name(args) if i != current]
    if strays:
        ns_ids = {_ns_id(f"/proc/{i}/ns/net") for i in strays}
        ns_ids -= {None, _ns_id(f"/run/netns/{args.netns}")}  # never the live host's netns
        _stop(args, plan, strays, ns_ids)


def host_absent(args: argparse.Namespace, plan: Plan) -> None:
    hostdir = host_paths(args)[0]
    meta_file = hostdir / "host.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    names = [n for n in dict.fromkeys([args.netns, meta.get("netns")]) if n]
    stop_processes(args, plan, [n for n in names if netns_exists(n)])
    for netns in names:
        if netns_exists(netns):
            plan.do(f"delete netns {netns}", lambda n=netns: delete_netns(n))
    for veth in dict.fromkeys([args.veth, meta.get("veth")]):
        # Deleting the namespace destroys its eth0 and so the pair; the kernel removes the
        # root side asynchronously, so give it a moment before deleting it by hand.
        if veth and link(veth) is not None:
            deadline = time.monotonic() + 1.0
            while not plan.check and link(veth) is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            if link(veth) is not None:
                plan.do(f"delete link {veth}", lambda v=veth: delete_link(v))
    if hostdir.exists():
        plan.do(f"remove {hostdir}", lambda: shutil.rmtree(hostdir))


def host_status(args: argparse.Namespace) -> dict:
    ip = args.address.split("/")[0]
    init = find_init(args.netns) if netns_exists(args.netns) else None
    script = str(Path(args.lab_dir) / "bin" / WEB_SCRIPT)
    return {
        "name": args.name,
        "netns": netns_exists(args.netns),
        "veth": link(args.veth) is not None,
        "init_pid": init,
        "sshd_pid": find_service(args.netns, init, args.sshd_config),
        "web_pid": find_service(args.netns, init, script),
        "pids": netns_pids(args.netns),
        "ssh": answers(ip, args.ssh_port, b"SSH-"),
    }


# ------------------------------------------------------------------------------ lab-level


def mounted_anywhere(path: str) -> bool:
    """Is something mounted on `path` in any mount namespace of this machine?"""
    seen = set()
    for pid in live_pids():
        ns = _ns_id(f"/proc/{pid}/ns/mnt")
        if ns is None or ns in seen:
            continue
        seen.add(ns)
        for line in _proc_read(pid, "mountinfo").splitlines():
            fields = line.split()
            if len(fields) > 4 and fields[4] == path:
                return True
    return False


def prune(args: argparse.Namespace, plan: Plan) -> None:
    """Remove every recorded host not in --keep (a host dropped from the inventory)."""
    hosts = Path(args.lab_dir) / "hosts"
    names = sorted(p.name for p in hosts.iterdir() if p.is_dir()) if hosts.is_dir() else []
    for name in names:
        if name not in args.keep:
            one = argparse.Namespace(
                name=name,
                lab_dir=args.lab_dir,
                netns=args.netns_prefix + name,
                veth=args.veth_prefix + name,
                timeout=args.timeout,
            )
            host_absent(one, plan)


def mountpoints_absent(args: argparse.Namespace, plan: Plan) -> None:
    record = Path(args.lab_dir) / "mountpoints"
    if not record.exists():
        return
    for p in dict.fromkeys(record.read_text().split()):
        # Another lab on this machine (another lab dir) may still bind-mount over it: since
        # Linux 3.18, rmdir would silently detach that lab's mounts, so leave it be.
        if os.path.isdir(p) and not os.listdir(p) and not mounted_anywhere(p):
            plan.do(f"remove mount point {p}", lambda p=p: os.rmdir(p))
    plan.do(f"remove {record}", record.unlink)


def validate(args: argparse.Namespace) -> dict:
    """Preflight: root, the topology is consistent; report missing Debian packages."""
    errors = []
    if os.geteuid() != 0:
        errors.append(f"the lab is built by root (running as uid {os.geteuid()})")
    try:
        subnet = ipaddress.ip_network(args.subnet)
    except ValueError as e:
        raise LabError(f"lbcore_lab_subnet {args.subnet!r}: {e}") from e
    reserved = {}
    for label, value in (
        ("lbcore_lab_bridge_address", args.bridge_address),
        ("lbcore_lab_vip", args.vip),
    ):
        addr = ipaddress.ip_address(value)
        if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
            errors.append(f"{label} {value} is not a host address of {subnet}")
        reserved[addr] = label
    for item in args.host:
        name, _sep, value = item.partition("=")
        if not HOSTNAME_RE.match(name):
            errors.append(f"host {name!r}: names are lowercase letters, digits and '-'")
        if len(args.prefix + name) > IFNAME_MAX:
            errors.append(
                f"host {name!r}: {args.prefix}{name} is longer than {IFNAME_MAX} "
                "characters (a Linux interface name); shorten it or the prefix"
            )
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            errors.append(f"host {name!r}: ansible_host {value!r} is not an IP address")
            continue
        if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
            errors.append(f"host {name!r}: {addr} is not a host address of {subnet}")
        if addr in reserved:
            errors.append(f"host {name!r}: {addr} is already used by {reserved[addr]}")
        reserved[addr] = f"host {name}"
    lab_dir = os.path.normpath(args.lab_dir)
    if not os.path.isabs(lab_dir):
        errors.append(f"lbcore_lab_dir {args.lab_dir!r} is not an absolute path")
    for p in args.private:
        p = os.path.normpath(p)
        if not os.path.isabs(p) or p == "/":
            errors.append(f"private directory {p!r}: give an absolute path other than /")
        elif os.path.commonpath([p, lab_dir]) == p:
            errors.append(
                f"lbcore_lab_dir {lab_dir} lies under the private directory {p}: "
                "the hosts could not see it"
            )
    if errors:
        raise LabError("; ".join(errors))
    return {"hosts": len(args.host), "subnet": str(subnet), "missing": missing(args.package)}


def missing(packages: list[str]) -> list[str]:
    """Which Debian packages are not installed (so the role installs only those)."""
    if not packages:
        return []
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {
        line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" installed")
    }
    return [p for p in packages if p not in installed]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    parser.add_argument("--timeout", type=float, default=15.0)
    sub = parser.add_subparsers(dest="what", required=True)

    v = sub.add_parser("validate", help="check the topology (preflight)")
    v.add_argument("--subnet", required=True)
    v.add_argument("--bridge-address", required=True)
    v.add_argument("--vip", required=True)
    v.add_argument("--prefix", default="")
    v.add_argument("--lab-dir", required=True)
    v.add_argument("--private", action="append", default=[])
    v.add_argument("--host", action="append", default=[], metavar="NAME=IP")
    v.add_argument("--package", action="append", default=[], help="a Debian package needed")

    b = sub.add_parser("bridge", help="the lab bridge in the root namespace")
    b.add_argument("state", choices=["present", "absent"])
    b.add_argument("--bridge", required=True)
    b.add_argument("--address", default="", help="ADDRESS/PREFIXLEN")

    h = sub.add_parser("host", help="one lab host")
    h.add_argument("state", choices=["present", "absent", "status"])
    h.add_argument("--name", required=True)
    h.add_argument("--address", default="", help="ADDRESS/PREFIXLEN")
    h.add_argument("--lab-dir", required=True)
    h.add_argument("--netns", required=True)
    h.add_argument("--veth", required=True)
    h.add_argument("--bridge", default="")
    h.add_argument("--private", action="append", default=[], help="a per-host directory")
    h.add_argument("--ssh-port", type=int, default=22)
    h.add_argument("--sshd-config", default="", help="default: LAB_DIR/sshd_config")
    h.add_argument("--web-port", type=int, default=0, help="run the lab web app (0: no)")
    h.add_argument("--python", default="/usr/bin/python3")
    h.add_argument("--reload", default="", help="comma list: sshd,web")

    r = sub.add_parser("prune", help="remove recorded hosts that are not to be kept")
    r.add_argument("--lab-dir", required=True)
    r.add_argument("--keep", action="append", default=[], metavar="NAME")
    r.add_argument("--netns-prefix", required=True)
    r.add_argument("--veth-prefix", required=True)

    m = sub.add_parser("mountpoints", help="remove the mount points the lab created")
    m.add_argument("state", choices=["absent"])
    m.add_argument("--lab-dir", required=True)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.what == "host" and not args.sshd_config:
        args.sshd_config = str(Path(args.lab_dir) / "sshd_config")
    plan = Plan(args.check)
    try:
        if args.what == "validate":
            result = validate(args)
        elif args.what == "bridge":
            (bridge_present if args.state == "present" else bridge_absent)(args, plan)
            result = {}
        elif args.what == "host" and args.state == "status":
            result = host_status(args)
        elif args.what == "host" and args.state == "present":
            result = host_present(args, plan)
        elif args.what == "host":
            host_absent(args, plan)
            result = {}
        elif args.what == "prune":
            prune(args, plan)
            result = {}
        else:
            mountpoints_absent(args, plan)
            result = {}
    except LabError as e:
        print(json.dumps({"changed": bool(plan.actions), "actions": plan.actions, "error": str(e)}))
        print(f"lbcore-lab: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"changed": bool(plan.actions), "actions": plan.actions, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
