"""Keywords of the ``global`` section, and the ``log`` line shared with proxies."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable

from lbcore.config.addresses import split_host_port
from lbcore.config.errors import ConfigError, NotSupportedYet, hint
from lbcore.config.model import Global, LogTarget, Source, StatsSocket
from lbcore.config.tokenizer import word_set
from lbcore.config.units import os_string, parse_duration, parse_file_mode, parse_int, parse_port

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7"
)  # fmt: skip
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
LOG_FORMATS = ("rfc3164", "rfc5424", "short", "raw", "timed", "iso", "priority", "local")


def parse_log(args: list[str], source: Source) -> LogTarget:
    """``log ADDRESS [len N] [format F] FACILITY [LEVEL [MINLEVEL]]``."""
    usage = "'log' expects an address and a facility: log ADDRESS [len N] [format F] FACILITY"
    if len(args) < 3:
        raise ConfigError(usage)
    address = args[1]
    if address.startswith(("ring@", "fd@", "unix@", "sample")):
        raise NotSupportedYet(address, "log address")
    _check_log_address(address)
    length, fmt = 1024, "rfc3164"
    i = 2
    while i + 1 < len(args) and args[i] in ("len", "format", "sample"):
        if args[i] == "len":
            length = parse_int(args[i + 1], "log len", 80, 65535)
        elif args[i] == "format":
            fmt = args[i + 1]
            if fmt not in LOG_FORMATS:
                raise ConfigError(f"log: unknown format '{fmt}' ({', '.join(LOG_FORMATS)})")
        else:
            raise NotSupportedYet("log sample")
        i += 2
    rest = args[i:]
    if not rest:
        raise ConfigError(usage)
    if rest[0] not in FACILITIES:
        raise ConfigError(f"log: unknown facility '{rest[0]}'{hint(rest[0], FACILITIES)}")
    for level in rest[1:3]:
        if level not in LEVELS:
            raise ConfigError(f"log: unknown level '{level}' (expected one of {', '.join(LEVELS)})")
    if len(rest) > 3:
        raise ConfigError(f"log: unexpected argument '{rest[3]}'")
    return LogTarget(
        address=os_string(address) if address.startswith("/") else address,
        facility=rest[0],
        level=rest[1] if len(rest) > 1 else None,
        minlevel=rest[2] if len(rest) > 2 else None,
        length=length,
        format=fmt,
        source=source,
    )


def _check_log_address(address: str) -> None:
    """A syslog target: ``stdout``, ``stderr``, a socket path, or ``[family@]host[:port]``
    (UDP, port 514 by default)."""
    if address in ("stdout", "stderr") or address.startswith("/"):
        return
    plain = re.sub(r"^(ipv4|ipv6|udp|udp4|udp6)@", "", address)
    if plain.count(":") >= 2 and not plain.startswith("["):
        # a bare IPv6 address: as in HAProxy, the part after the last colon is the port
        host, _, port = plain.rpartition(":")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(
                f"log: invalid address '{address}' (write [IPv6]:PORT or IPv6:PORT)"
            ) from None
        parse_port(port, "log")
        return
    match = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[\w.-]+)(?::(.*))?", plain)
    if match is None:
        raise ConfigError(f"log: invalid address '{address}'")
    if match.group(2) is not None:
        parse_port(match.group(2), "log")


def _one(args: list[str], usage: str) -> str:
    if len(args) != 2:
        raise ConfigError(f"'{args[0]}' expects {usage}")
    return args[1]


def _flag(args: list[str]) -> bool:
    if len(args) != 1:
        raise ConfigError(f"'{args[0]}' takes no argument")
    return True


def _stats(g: Global, args: list[str], source: Source) -> Global:
    if len(args) == 3 and args[1] == "timeout":
        timeout = parse_duration(args[2], "stats timeout")
        if timeout <= 0:
            raise ConfigError("'stats timeout' expects a positive value")
        return dataclasses.replace(g, stats_timeout=timeout)
    if len(args) < 2 or args[1] != "socket":
        if len(args) >= 2 and args[1] in ("timeout", "maxconn", "bind-process"):
            raise NotSupportedYet(f"stats {args[1]}")
        raise ConfigError("'stats' expects 'socket PATH [mode M] [level L]' in global")
    if len(args) < 3:
        raise ConfigError("'stats socket' expects a path or an ADDRESS:PORT")
    address = args[2]
    if address.startswith(("ipv4@", "ipv6@")):
        _, host, port = split_host_port(address, "stats socket")
        address = f"{host}:{parse_port(port, 'stats socket')}"
    elif address.startswith("unix@"):
        address = address[len("unix@") :]
    elif address.startswith(("abns@", "fd@", "sockpair@")):
        raise NotSupportedYet(address, "stats socket address")
    # HAProxy's default level is "operator", whatever the model's default says
    sock = StatsSocket(address=os_string(address), level="operator", source=source)
    i = 3
    while i < len(args):
        opt = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if opt in ("mode", "level", "expose-fd") and value is None:
            raise ConfigError(f"stats socket: '{opt}' expects a value")
        if opt == "mode" and value is not None:
            sock = dataclasses.replace(sock, mode=parse_file_mode(value, "stats socket mode"))
        elif opt == "level" and value is not None:
            if value not in ("user", "operator", "admin"):
                raise ConfigError(
                    f"stats socket: level '{value}' (expected user, operator or admin)"
                )
            sock = dataclasses.replace(sock, level=value)
        elif opt == "expose-fd":
            if value != "listeners":
                raise ConfigError("stats socket: 'expose-fd' expects 'listeners'")
            # nothing to do: lbcore's master always owns and hands over the listeners
        elif opt in ("user", "group", "uid", "gid", "process", "thread", "name", "accept-proxy"):
            raise NotSupportedYet(opt, "stats socket option")
        else:
            raise ConfigError(f"stats socket: unknown option '{opt}' (expected mode or level)")
        i += 2
    return dataclasses.replace(g, stats_sockets=(*g.stats_sockets, sock))


def _workers(g: Global, args: list[str], source: Source) -> Global:
    return dataclasses.replace(g, workers=parse_int(_one(args, "a number"), args[0], 1, 4096))


GlobalHandler = Callable[[Global, list[str], Source], Global]

GLOBAL_KEYWORDS: dict[str, GlobalHandler] = {
    "maxconn": lambda g, a, s: dataclasses.replace(
        g, maxconn=parse_int(_one(a, "a number"), "maxconn", 1)
    ),
    "nbproc": _workers,
    "nbthread": _workers,
    "log": lambda g, a, s: dataclasses.replace(g, logs=(*g.logs, parse_log(a, s))),
    "stats": _stats,
    "user": lambda g, a, s: dataclasses.replace(g, user=os_string(_one(a, "a user name"))),
    "group": lambda g, a, s: dataclasses.replace(g, group=os_string(_one(a, "a group name"))),
    "pidfile": lambda g, a, s: dataclasses.replace(g, pidfile=os_string(_one(a, "a file name"))),
    "daemon": lambda g, a, s: dataclasses.replace(g, daemon=_flag(a)),
    "tune.bufsize": lambda g, a, s: dataclasses.replace(
        g, tune_bufsize=parse_int(_one(a, "a size in bytes"), "tune.bufsize", 1024, 1 << 30)
    ),
    "tune.maxrewrite": lambda g, a, s: dataclasses.replace(
        g, tune_maxrewrite=parse_int(_one(a, "a size in bytes"), "tune.maxrewrite", 0, 1 << 30)
    ),
    "tune.http.maxhdr": lambda g, a, s: dataclasses.replace(
        # HAProxy's bounds for this keyword
        g,
        tune_http_maxhdr=parse_int(_one(a, "a number"), "tune.http.maxhdr", 1, 32767),
    ),
    "hard-stop-after": lambda g, a, s: dataclasses.replace(
        # 0 disables it, as in HAProxy
        g,
        hard_stop_after=parse_duration(_one(a, "a duration"), "hard-stop-after") or None,
    ),
}

LATER_GLOBAL = word_set(
    "chroot uid gid ca-base crt-base ssl-default-bind-ciphers ssl-default-bind-ciphersuites "
    "ssl-default-bind-options ssl-default-server-ciphers ssl-default-server-ciphersuites "
    "ssl-default-server-options ssl-dh-param-file tune.ssl.default-dh-param master-worker "
    "server-state-file server-state-base spread-checks log-send-hostname log-tag node "
    "description lua-load setenv presetenv unsetenv resetenv cpu-map maxsslconn maxconnrate "
    "maxsessrate ulimit-n quiet zero-warning expose-experimental-directives "
    "insecure-fork-wanted h1-case-adjust external-check mworker-max-reloads "
    "close-spread-time grace localpeer set-dumpable strict-limits"
)
