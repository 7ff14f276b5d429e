"""``lbcore vrrpd``: run the VRRP agent, or validate its configuration.

Flags follow keepalived's where they overlap (``-f/--use-file``, ``-D``,
``-p/--pid``, ``-t/--config-test``), so runbooks carry over. Foreground by
default; ``-D`` daemonizes (double fork, pidfile written by the daemon).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import os
import sys

from lbcore.vrrp import conf
from lbcore.vrrp.agent import DEFAULT_STATE_FILE

DEFAULT_CONF = "/etc/lbcore/vrrpd.conf"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lbcore vrrpd", description="VRRP agent (keepalived dialect)")
    p.add_argument("-f", "--use-file", dest="file", default=DEFAULT_CONF, help="configuration file")
    p.add_argument("-D", "--daemon", action="store_true", help="detach and run in the background")
    p.add_argument("-p", "--pid", dest="pidfile", help="write the agent's PID to this file")
    p.add_argument(
        "-t",
        "--check",
        "--config-test",
        dest="check",
        action="store_true",
        help="validate the configuration like the agent would, exit 0/1",
    )
    p.add_argument(
        "-S",
        "--state-file",
        default=DEFAULT_STATE_FILE,
        help=f"JSON state file written on every transition (default {DEFAULT_STATE_FILE})",
    )
    p.add_argument("-l", "--log-file", help="log to this file (default: stderr, syslog with -D)")
    p.add_argument("--debug", action="store_true", help="log dropped packets and other details")
    return p.parse_args(argv)


def check(path: str) -> tuple[conf.Config | None, list[str]]:
    """Load and validate; returns the config (or None) and the error messages."""
    try:
        cfg = conf.load(path)
    except conf.ConfigError as exc:
        return None, [str(exc)]
    problems = conf.script_problems(cfg)
    return (None if problems else cfg), problems


def _setup_logging(args: argparse.Namespace) -> None:
    handler: logging.Handler
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
    elif args.daemon and os.path.exists("/dev/log"):
        handler = logging.handlers.SysLogHandler(
            "/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    fmt = "%(asctime)s lbcore-vrrpd[%(process)d]: %(message)s"
    if isinstance(handler, logging.handlers.SysLogHandler):
        fmt = "lbcore-vrrpd[%(process)d]: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("lbcore")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if args.debug else logging.INFO)


class Launcher:
    """With ``-D``: the command returns only once the daemon runs (0) or failed (1, why).

    The daemon reports through a pipe: ``ok`` once its instances have started, or
    the error that stopped it. If it dies without a word, the launcher sees EOF.
    """

    def __init__(self) -> None:
        self.fd: int | None = None

    def daemonize(self) -> None:
        r, w = os.pipe()
        if os.fork():  # the launcher: wait for the verdict
            os.close(w)
            with os.fdopen(r, "rb") as fh:
                msg = fh.read().decode(errors="replace")
            if msg == "ok":
                os._exit(0)
            sys.stderr.write(msg or "lbcore vrrpd: the daemon exited during startup\n")
            os._exit(1)
        os.close(r)
        os.setsid()
        if os.fork():
            os._exit(0)
        os.chdir("/")
        fd = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        os.close(fd)
        self.fd = w

    def report(self, error: str | None = None) -> None:
        """Tell the launcher (once): ``None`` = running, else the error text."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.fd, b"ok" if error is None else f"lbcore vrrpd: {error}\n".encode())
            os.close(self.fd)
        self.fd = None


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cfg, errors = check(args.file)
    for err in errors:
        print(f"lbcore vrrpd: {err}", file=sys.stderr)
    if cfg is None:
        return 1
    for warning in cfg.warnings:
        print(f"lbcore vrrpd: warning: {warning}", file=sys.stderr)
    if args.check:
        print(f"Configuration file {args.file} is valid ({len(cfg.instances)} vrrp_instance)")
        return 0
    try:
        for path in (args.log_file, args.pidfile):
            if path:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _setup_logging(args)  # before forking: a bad log file is reported here
    except OSError as exc:
        print(f"lbcore vrrpd: {exc}", file=sys.stderr)
        return 1
    launcher = Launcher()
    if args.daemon:
        launcher.daemonize()
    try:
        if args.pidfile:
            with open(args.pidfile, "w") as fh:
                fh.write(f"{os.getpid()}\n")
        return _run(cfg, args.state_file, args.file, launcher)
    except OSError as exc:
        launcher.report(f"cannot write pidfile: {exc}")
        return 1
    finally:
        launcher.report("the daemon stopped during startup")
        if args.pidfile:
            with contextlib.suppress(OSError):
                os.unlink(args.pidfile)


def _run(cfg: conf.Config, state_file: str, conf_path: str, launcher: Launcher) -> int:
    import asyncio

    from lbcore.vrrp.agent import Agent

    log = logging.getLogger("lbcore.vrrpd")
    agent = Agent(cfg, state_file, conf_path, on_ready=launcher.report)
    # The stock event loop, not uvloop: the agent moves a few packets a second, and
    # pyroute2's netlink sockets (AF_NETLINK datagram endpoints) need asyncio's own loop.
    try:
        return int(asyncio.run(agent.run()))
    except conf.ConfigError as exc:
        error = str(exc)
    except PermissionError as exc:
        error = f"{exc} (the agent needs root: raw sockets and netlink)"
    except OSError as exc:  # e.g. an interface that does not exist
        error = f"cannot start: {exc}"
    log.error("%s", error)
    launcher.report(error)
    return 1
