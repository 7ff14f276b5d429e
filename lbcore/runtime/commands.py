"""The runtime API's commands: HAProxy 2.6's syntax, answers and error texts.

Theory of operation: ``COMMANDS`` is the table (keyword words, usage text, level,
handler), as HAProxy's ``cli_kws`` lists are; ``execute`` finds the first entry
whose words prefix the arguments (HAProxy's ``cli_find_kw``), checks the level and
calls the handler, which returns the answer text. Anything not in the table gets
HAProxy's usage message with its fuzzy suggestions (``usage``). The CLI session
(``lbcore.runtime.cli``) adds the blank line that ends each answer.

The texts are HAProxy's (management guide section 9.3 and its src/cli.c,
src/server.c, src/stats.c), pinned by the golden transcripts recorded from a real
HAProxy 2.6 in tests/data/runtime/transcript.json.
"""

import ipaddress
import re

from lbcore.runtime.context import (
    PERMISSION_DENIED,
    CliError,
    Command,
    Context,
    arg,
    find_server,
)
from lbcore.runtime.show import (
    show_backend,
    show_cli_level,
    show_info,
    show_servers_state,
    show_sess,
    show_stat,
    show_version,
    stat_rows,
)
from lbcore.runtime.state import STATIC_ALGORITHMS, BackendEntry, Level, ServerEntry
from lbcore.runtime.usage import usage
from lbcore.server import AdminState, OpState

__all__ = [
    "COMMANDS",
    "Command",
    "Context",
    "execute",
    "find_command",
    "stat_rows",  # the html and prometheus renderers take their rows from here
    "usage",
]


# --- weights ------------------------------------------------------------------------


def get_weight(ctx: Context, args: list[str]) -> str:
    _, srv = find_server(ctx, arg(args, 2))
    return f"{srv.uweight} (initial {srv.iweight})\n"


def parse_weight(be: BackendEntry, srv: ServerEntry, text: str) -> int:
    """HAProxy's server_parse_weight_change_request, messages included (two of them
    lack the final newline in HAProxy, so their answer has no blank line)."""
    if not text:
        raise CliError("Require <weight> or <weight%>.\n")
    i = 1 if text[:1] in "+-" else 0
    while i < len(text) and text[i].isdigit():
        i += 1
    digits, rest = text[:i], text[i:]
    if not digits or digits in "+-":
        raise CliError("Empty weight string empty or preceded by garbage")
    w = int(digits)
    if rest == "%":
        if w < 0:
            raise CliError("Relative weight must be positive.\n")
        w = min(srv.iweight * min(w, 25600) // 100, 256)
    elif w < 0 or w > 256:
        raise CliError("Absolute weight can only be between 0 and 256 inclusive.\n")
    elif rest:
        raise CliError("Trailing garbage in weight string")
    if w and w != srv.iweight and be.proxy.balance.algorithm in STATIC_ALGORITHMS:
        raise CliError(
            "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
        )
    return w


def set_weight(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, arg(args, 2))
    ctx.state.set_weight(be, srv, parse_weight(be, srv, arg(args, 3)), ctx.now)
    return ""


# --- server state -------------------------------------------------------------------

SET_SERVER_USAGE = (
    "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | "
    "agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n"
)
_STATES = {"ready": AdminState.READY, "drain": AdminState.DRAIN, "maint": AdminState.MAINT}


def set_server(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, arg(args, 2))
    what = arg(args, 3)
    if what == "state":
        new = _STATES.get(arg(args, 4))
        if new is None:
            raise CliError("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n")
        ctx.state.set_admin(be, srv, new, ctx.now)
        return ""
    if what == "weight":
        ctx.state.set_weight(be, srv, parse_weight(be, srv, arg(args, 4)), ctx.now)
        return ""
    if what == "addr":
        return set_addr(ctx, be, srv, args[4:])
    if what == "health":
        return _set_health(ctx, be, srv, arg(args, 4))
    raise CliError(SET_SERVER_USAGE)


def _strtol_port(text: str) -> int | None:
    """The port as HAProxy parses it: C strtol, the whole text must be a number
    (empty is 0), then truncated to 16 bits (70000 becomes 4464)."""
    if text and re.fullmatch(r"[+-]?[0-9]+", text) is None:
        return None
    value = max(-(2**63), min(int(text or "0"), 2**63 - 1))
    return value & 0xFFFF


def set_addr(ctx: Context, be: BackendEntry, srv: ServerEntry, args: list[str]) -> str:
    """``set server B/S addr IP [port P]`` with HAProxy's change report: the address
    is applied first, so a bad port still leaves the new address in place."""
    if not args or not args[0]:
        raise CliError("set server <b>/<s> addr requires an address and optionally a port.\n")
    host = args[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise CliError(f"Invalid addr '{host}' by 'stats socket command'\n") from None
    parts = []
    if host != srv.host:
        parts.append(f"IP changed from '{srv.host}' to '{host}'")
    else:
        parts.append("no need to change the addr")
    port = srv.port
    if len(args) >= 2 and args[1] == "port":
        text = arg(args, 2)
        new_port = _strtol_port(text)
        if new_port is None:
            parts.append(f"problem converting port '{text}' to an int")
        elif new_port != srv.port:
            parts.append(f"port changed from '{srv.port}' to '{new_port}'")
            port = new_port
        else:
            parts.append("no need to change the port")
    ctx.state.set_addr(be, srv, host, port)
    return ", ".join(parts) + " by 'stats socket command'\n"


_HEALTH = {"up": OpState.UP, "stopping": OpState.STOPPING, "down": OpState.DOWN}


def _set_health(ctx: Context, be: BackendEntry, srv: ServerEntry, word: str) -> str:
    state = _HEALTH.get(word)
    if state is None:
        raise CliError("'set server <srv> health' expects 'up', 'stopping', or 'down'.\n")
    ctx.state.force_health(be, srv, state, ctx.now)
    return ""


def disable_server(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, arg(args, 2))
    ctx.state.set_admin(be, srv, AdminState.MAINT, ctx.now)
    return ""


def enable_server(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, arg(args, 2))
    ctx.state.set_admin(be, srv, AdminState.READY, ctx.now)
    return ""


def disable_health(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, arg(args, 2))
    ctx.state.set_health(be, srv, False)
    return ""


def enable_health(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, arg(args, 2))
    if srv.check is None:
        raise CliError("Health check was not configured on this server, cannot enable.\n")
    ctx.state.set_health(be, srv, True)
    return ""


def disable_agent(ctx: Context, args: list[str]) -> str:
    find_server(ctx, arg(args, 2))  # lbcore has no agent checks: nothing to stop
    return ""


def enable_agent(ctx: Context, args: list[str]) -> str:
    find_server(ctx, arg(args, 2))
    raise CliError("Agent was not configured on this server, cannot enable.\n")


def shutdown_sessions_server(ctx: Context, args: list[str]) -> str:
    be, srv = find_server(ctx, arg(args, 3))
    ctx.state.shutdown_sessions(be, srv)
    return ""


# --- session level ------------------------------------------------------------------


def lower_to_user(ctx: Context, args: list[str]) -> str:
    ctx.level = Level.USER
    return ""


def lower_to_operator(ctx: Context, args: list[str]) -> str:
    if ctx.level < Level.OPERATOR:
        raise CliError(PERMISSION_DENIED)
    ctx.level = Level.OPERATOR
    return ""


U, OP, A = Level.USER, Level.OPERATOR, Level.ADMIN

COMMANDS: tuple[Command, ...] = (
    Command(("disable", "agent"), "disable agent", "disable agent checks", A, disable_agent),
    Command(("enable", "agent"), "enable agent", "enable agent checks", A, enable_agent),
    Command(("disable", "health"), "disable health", "disable health checks", A, disable_health),
    Command(
        ("disable", "server"),
        "disable server (DEPRECATED)",
        "disable a server for maintenance (use 'set server' instead)",
        A,
        disable_server,
    ),
    Command(("enable", "health"), "enable health", "enable health checks", A, enable_health),
    Command(
        ("enable", "server"),
        "enable server  (DEPRECATED)",
        "enable a disabled server (use 'set server' instead)",
        A,
        enable_server,
    ),
    Command(
        ("get", "weight"),
        "get weight <bk>/<srv>",
        "report a server's current weight",
        U,
        get_weight,
    ),
    Command(
        ("operator",),
        "operator",
        "lower the level of the current CLI session to operator",
        U,
        lower_to_operator,
    ),
    Command(
        ("set", "server"),
        "set server <bk>/<srv> [opts]",
        "change a server's state, weight, address or ssl",
        A,
        set_server,
    ),
    Command(
        ("set", "weight"),
        "set weight <bk>/<srv>  (DEPRECATED)",
        "change a server's weight (use 'set server' instead)",
        A,
        set_weight,
    ),
    Command(
        ("show", "backend"),
        "show backend",
        "list backends in the current running config",
        U,
        show_backend,
    ),
    Command(
        ("show", "cli", "level"),
        "show cli level",
        "display the level of the current CLI session",
        U,
        show_cli_level,
    ),
    Command(
        ("show", "info"),
        "show info [desc|json|typed|float]*",
        "report information about the running process",
        U,
        show_info,
    ),
    Command(
        ("show", "servers", "state"),
        "show servers state [<backend>]",
        "dump volatile server information (all or for a single backend)",
        U,
        show_servers_state,
    ),
    Command(
        ("show", "sess"),
        "show sess [id]",
        "report the list of current sessions or dump this exact session",
        OP,
        show_sess,
    ),
    Command(
        ("show", "stat"),
        "show stat [desc|json|no-maint|typed|up]*",
        "report counters for each proxy and server",
        U,
        show_stat,
    ),
    Command(
        ("show", "version"),
        "show version",
        "show version of the current process",
        U,
        show_version,
    ),
    Command(
        ("shutdown", "sessions", "server"),
        "shutdown sessions server <bk>/<srv>",
        "kill sessions on a server",
        A,
        shutdown_sessions_server,
    ),
    Command(
        ("user",), "user", "lower the level of the current CLI session to user", U, lower_to_user
    ),
)


def find_command(args: list[str], table: tuple[Command, ...] = COMMANDS) -> Command | None:
    for cmd in table:
        if len(args) >= len(cmd.words) and tuple(args[: len(cmd.words)]) == cmd.words:
            return cmd
    return None


def execute(ctx: Context, args: list[str]) -> str:
    """Run one command (already split into words); return its answer text."""
    if args and args[0] == "help":
        return usage(args, COMMANDS)
    cmd = find_command(args)
    if cmd is None:
        return usage(args, COMMANDS)
    if ctx.level < cmd.level:
        return PERMISSION_DENIED
    try:
        return cmd.handler(ctx, args)
    except CliError as err:
        return err.text
