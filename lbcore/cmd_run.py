"""``lbcore run``: load the configuration, bind, (daemonize,) start the master.

Flags follow HAProxy's where they mean the same: ``-f`` (repeatable), ``-D``, ``-p``,
``-c`` (check only), ``-db`` (stay in the foreground even if the config says ``daemon``),
``-W`` (master-worker: accepted, it is the only mode lbcore has), ``-q``, and ``-sf``/``-st``
PID... (once this instance serves, the old one finishes gracefully with SIGUSR1, or stops
now with SIGTERM): the way to move a running balancer onto new code — a new lbcore binds
the same addresses (``SO_REUSEPORT``, :mod:`lbcore.listeners`) while the old one still
serves, then tells it to finish. A reload cannot do it: workers are forked from the
master, which keeps the code it started with. The server admin states operators forced
through the old one's runtime API (drain, maint) are read from its admin stats socket
first and kept, as a reload keeps them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence

from lbcore import daemon
from lbcore.config.model import Config
from lbcore.control_plane import ControlPlane
from lbcore.listeners import BindError, ListenerSet
from lbcore.master import (
    READY_TIMEOUT,
    HaproxyStyleFormatter,
    Loader,
    Master,
    WorkerFn,
    block_signals,
    check_privileges,
    default_worker,
    worker_count,
)
from lbcore.runtime.address import parse_address
from lbcore.runtime.commands import execute
from lbcore.runtime.context import Context
from lbcore.runtime.state import Level, RuntimeState

log = logging.getLogger("lbcore.master")


def load_config(files: Sequence[str]) -> Config:
    """Parse the files exactly as ``lbcore check`` does; warnings go to the log."""
    from lbcore.config import load_config as load

    config, warnings = load(files)
    for warning in warnings:
        log.warning("config : %s", warning)
    return config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lbcore run", description="Run the balancer: a master and its workers."
    )
    p.add_argument(
        "-f",
        dest="files",
        action="append",
        required=True,
        metavar="FILE",
        help="configuration file (repeat for several, read in order)",
    )
    p.add_argument("-D", dest="daemon", action="store_true", help="run in the background")
    p.add_argument("-db", dest="foreground", action="store_true", help="stay in the foreground")
    p.add_argument("-p", dest="pidfile", metavar="PIDFILE", help="write the master's pid here")
    p.add_argument(
        "-c", dest="check", action="store_true", help="check the configuration and exit 0/1"
    )
    p.add_argument("-W", dest="master_worker", action="store_true", help="(always on)")
    p.add_argument("-q", dest="quiet", action="store_true", help="log only warnings and errors")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: nbproc, or one per core)",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=READY_TIMEOUT,
        metavar="SECONDS",
        help="how long a reload waits for every new worker to be ready before it gives "
        f"up and keeps the old ones (default {READY_TIMEOUT:g})",
    )
    p.add_argument(
        "--log-file", metavar="FILE", help="in daemon mode, append the master's log here"
    )
    p.add_argument(
        "-sf",
        dest="finish",
        nargs="+",
        type=int,
        default=[],
        metavar="PID",
        help="once serving, tell these (old) processes to finish gracefully (SIGUSR1)",
    )
    p.add_argument(
        "-st",
        dest="terminate",
        nargs="+",
        type=int,
        default=[],
        metavar="PID",
        help="once serving, tell these (old) processes to stop now (SIGTERM)",
    )
    return p


#: HAProxy's SRV_ADMF_FMAINT / SRV_ADMF_FDRAIN: admin states forced from the CLI.
_FMAINT, _FDRAIN = 0x01, 0x08


def old_admin_states(config: Config, timeout: float = 5.0) -> list[tuple[str, str, str]]:
    """(backend, server, "maint"|"drain") the old instance's runtime API forced, read from
    its admin-level unix stats socket with ``show servers state`` before this instance
    binds that path: a restart onto new code keeps what operators set, as a reload does.
    Nothing if there is no such socket or it does not answer (logged)."""
    for conf in config.global_.stats_sockets:
        kind, path, _ = parse_address(conf.address)
        if kind != "unix" or conf.level != "admin":
            continue
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(path)
                sock.sendall(b"show servers state\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as e:
            log.warning("Cannot read the old process's server states from %s: %s", path, e)
            return []
        forced = []
        for line in b"".join(chunks).decode(errors="replace").splitlines():
            cols = line.split()
            if len(cols) < 7 or line.startswith("#") or not cols[6].isdigit():
                continue
            flags = int(cols[6])
            if flags & _FMAINT:
                forced.append((cols[1], cols[3], "maint"))
            elif flags & _FDRAIN:
                forced.append((cols[1], cols[3], "drain"))
        return forced
    return []


def apply_admin_states(state: RuntimeState, forced: Sequence[tuple[str, str, str]]) -> None:
    """Set the old instance's forced states here, before the first worker is forked (its
    full state then carries them: no request reaches a drained server meanwhile)."""
    ctx = Context(state=state, level=Level.ADMIN, now=time.time())
    for backend, server, admin in forced:
        answer = execute(ctx, ["set", "server", f"{backend}/{server}", "state", admin])
        if answer.strip():
            log.warning("Server %s/%s not set to %s: %s", backend, server, admin, answer.strip())
        else:
            log.info("Server %s/%s kept in %s state from the old process", backend, server, admin)


def signal_old(pids: Sequence[int], signum: signal.Signals) -> None:
    """``-sf``/``-st``: the old instance learns it is replaced only once this one serves."""
    for pid in pids:
        if pid <= 1 or pid == os.getpid():
            log.warning("Not signalling pid %d (-sf/-st)", pid)
            continue
        try:
            os.kill(pid, signum)
            log.info("Sent %s to old process %d", signum.name, pid)
        except ProcessLookupError:
            log.info("Old process %d is already gone", pid)
        except PermissionError:
            log.warning("Cannot signal old process %d: permission denied", pid)


def setup_logging(quiet: bool, timestamps: bool = False) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HaproxyStyleFormatter(timestamps=timestamps))
    root = logging.getLogger("lbcore")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False
    return handler


def main(argv: list[str]) -> int:
    return run(argv)


def run(argv: list[str], worker_fn: WorkerFn = default_worker, loader: Loader = load_config) -> int:
    """``main`` with the worker and the loader as parameters (tests pass their own)."""
    args = build_parser().parse_args(argv)
    if args.workers is not None and args.workers < 1:
        print("lbcore run: --workers must be at least 1", file=sys.stderr)
        return 2
    if not args.ready_timeout > 0:
        print("lbcore run: --ready-timeout must be more than 0", file=sys.stderr)
        return 2
    # Absolute now: a daemon works from "/", and reloads read the files again.
    files = [os.path.abspath(f) for f in args.files]
    handler = setup_logging(args.quiet)
    block_signals()  # until the master's handlers are in place (see master.block_signals)
    try:
        config = loader(files)
        check_privileges(config)
    except Exception as e:
        for line in str(e).splitlines() or [type(e).__name__]:
            log.error("config : %s", line)
        log.error("Fatal errors found in configuration.")
        return 1
    if args.check:
        print("Configuration file is valid")
        return 0

    listeners = ListenerSet()
    try:
        current = listeners.open_for(config)
    except BindError as e:
        log.error("Starting proxies: %s", e)
        return 1

    background = (args.daemon or config.global_.daemon) and not args.foreground
    pidfile = args.pidfile or config.global_.pidfile
    pidfile = os.path.abspath(pidfile) if pidfile else None
    log_file = os.path.abspath(args.log_file) if args.log_file else None
    ready = daemon.Ready(-1)
    if background:
        ready = daemon.daemonize(log_file)
        handler.setFormatter(HaproxyStyleFormatter(timestamps=log_file is not None))
    pid = os.getpid()
    try:
        if pidfile:
            daemon.write_pidfile(pidfile, pid)
    except OSError as e:
        message = f"cannot write pidfile {pidfile}: {e.strerror}"
        log.error("%s", message)
        ready.notify(ok=False, message=message)
        listeners.close_all()
        return 1

    control = ControlPlane(config, worker_count(config, args.workers))
    if args.finish or args.terminate:
        # Before master.start() binds the stats socket's path: it is still the old one's.
        apply_admin_states(control.state, old_admin_states(config))
    master = Master(
        files=files,
        loader=loader,
        config=config,
        listeners=listeners,
        current=current,
        worker_fn=worker_fn,
        workers_override=args.workers,
        close_in_worker=(ready.fd,) if ready.fd >= 0 else (),
        control=control,
        ready_timeout=args.ready_timeout,
    )
    try:
        try:
            master.start()
        except OSError as e:
            message = f"cannot bind stats socket: {e.strerror or e}"
            log.error("Starting proxies: %s", message)
            ready.notify(ok=False, message=message)
            return 1
        if not master.wait_ready(args.ready_timeout):
            why = f"workers not ready after {args.ready_timeout:g}s"
            if args.finish or args.terminate:
                # The old instance serves on: stopping it for workers that cannot
                # serve would be an outage (see master.Master.reload).
                log.error("Starting proxies: %s; old process(es) not signalled", why)
                ready.notify(ok=False, message=why)
                master.stop_now()
                master.run()
                return 1
            log.warning("Starting proxies: %s; still trying", why)
        ready.notify()
        signal_old(args.finish, signal.SIGUSR1)
        signal_old(args.terminate, signal.SIGTERM)
        master.close_in_worker = ()  # the fd is closed now; its number may be reused
        return master.run()
    finally:
        if pidfile:
            daemon.remove_pidfile(pidfile, pid)
