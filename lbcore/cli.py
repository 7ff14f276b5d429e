"""The ``lbcore`` command: one entry point, one module per subcommand.

Each subcommand lives in its own module and is imported only when used, so
``lbcore check`` stays fast and a subcommand's dependencies (uvloop, pyroute2)
are not loaded by the others. A subcommand module exposes ``main(argv) -> int``.
"""

from __future__ import annotations

import importlib
import sys

from lbcore import __version__

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("lbcore.cmd_run", "run the balancer (master + workers)"),
    "check": ("lbcore.cmd_check", "validate configuration files, exit 0/1"),
    "ctl": ("lbcore.runtime.ctl", "send runtime API commands to an admin socket"),
    "halog": ("lbcore.logs.halog", "analyze HAProxy-format logs (halog's flags)"),
    "vrrpd": ("lbcore.vrrp.cli", "run the VRRP agent (keepalived dialect)"),
    "vrrp": ("lbcore.vrrp.status", "show VRRP instance states"),
}


def usage() -> str:
    lines = ["usage: lbcore COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["  version  print the version"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name in ("version", "-v", "--version"):
        print(f"lbcore {__version__}")
        return 0
    if name not in SUBCOMMANDS:
        print(f"lbcore: unknown command '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    result: int = module.main(rest)
    return result
