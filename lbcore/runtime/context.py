"""What every runtime API command handler shares: its context, errors, lookups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lbcore.runtime.state import BackendEntry, Level, RuntimeState, ServerEntry, SessionInfo


@dataclass(slots=True)
class Context:
    """What a handler may look at: the store, the session's level, the time."""

    state: RuntimeState
    level: Level
    now: float
    session: SessionInfo | None = None


Handler = Callable[[Context, list[str]], str]


@dataclass(frozen=True, slots=True)
class Command:
    words: tuple[str, ...]
    syntax: str  # HAProxy's usage text, left of the colon
    desc: str
    level: Level
    handler: Handler

    @property
    def usage(self) -> str:
        return f"{self.syntax:<40}: {self.desc}"


class CliError(Exception):
    """An answer that ends the command early ("No such server.\\n", ...)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


PERMISSION_DENIED = "Permission denied\n"
HELP_TRAILER = (
    "  help [<command>]                        : list matching or all commands\n"
    "  prompt                                  : toggle interactive mode with prompt\n"
    "  quit                                    : disconnect\n"
)

# --- lookups shared by the server commands ------------------------------------------


def find_server(ctx: Context, arg: str) -> tuple[BackendEntry, ServerEntry]:
    """``<backend>/<server>`` as HAProxy's cli_find_server resolves it."""
    if "/" not in arg:
        raise CliError("Require 'backend/server'.\n")
    bname, sname = arg.split("/", 1)
    backend = ctx.state.backend(bname)
    if backend is None:
        raise CliError("No such backend.\n")
    server = backend.server(sname)
    if server is None:
        raise CliError("No such server.\n")
    return backend, server


def arg(args: list[str], i: int) -> str:
    return args[i] if i < len(args) else ""
