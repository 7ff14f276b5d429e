"""Build small but complete configurations around one line under test.

Every valid row of the keyword table becomes a whole configuration that both lbcore and
HAProxy (``haproxy -c``) must accept, so the template is a config HAProxy is happy with:
timeouts set, a listener, a server in every backend.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from lbcore.config.model import Config, Proxy

TEMPLATE = """\
global
{global}
defaults
    mode {mode}
    timeout connect 5s
    timeout client 5s
    timeout server 5s
{defaults}
frontend fe{sfx}
    bind 127.0.0.1:18001
    default_backend be{sfx}
{frontend}
backend be{sfx}
{backend}
    server s0 127.0.0.1:18009
backend api{sfx}
    server a0 127.0.0.1:18009
listen ls{sfx}
    bind 127.0.0.1:18002
{listen}
    server l0 127.0.0.1:18009
"""

SECTIONS = ("global", "defaults", "frontend", "backend", "listen")


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def render(
    section: str,
    text: str,
    mode: str = "http",
    more: dict[str, str] | None = None,
    sfx: str = "",
) -> tuple[str, int]:
    """The config with ``text`` (indented) in ``section`` and the lines of ``more`` in
    theirs; and the line number of the first line of ``text``. ``sfx`` is appended to
    the template's proxy names (and to the backend names the rows use), so that several
    rendered configs can be concatenated into one file."""
    fields = {name: "" for name in SECTIONS} | {k: _indent(v) for k, v in (more or {}).items()}
    fields[section] = _indent(text)
    if sfx:
        fields = {k: re.sub(r"\b(api|be)\b", rf"\g<1>{sfx}", v) for k, v in fields.items()}
    marker = "\x00"
    with_marker = TEMPLATE.format(**(fields | {section: marker}), mode=mode, sfx=sfx)
    line = with_marker[: with_marker.index(marker)].count("\n") + 1
    config = TEMPLATE.format(**fields, mode=mode, sfx=sfx)
    # empty placeholders leave blank lines, which is fine for HAProxy and for us
    return config, line


def fe(c: Config) -> Proxy:
    return c.proxies[0]


def be(c: Config) -> Proxy:
    return c.proxies[1]


def ls(c: Config) -> Proxy:
    return c.proxies[3]


def strip(value: Any) -> Any:
    """``value`` with every ``source`` field set to None, recursively (the rows' expected
    values do not spell out line numbers; a separate test checks them)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            changes[f.name] = None if f.name == "source" else strip(item)
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(strip(v) for v in value)
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


@dataclass(frozen=True)
class Row:
    """One supported keyword form: where it goes, what it is, what the model must hold."""

    section: str
    text: str
    get: Any  # Config -> value
    expected: Any
    mode: str = "http"
    more: dict[str, str] | None = None  # lines for other sections of the template
    haproxy: bool = True  # False: lbcore's dialect differs on purpose (reason in a comment)

    @property
    def id(self) -> str:
        return f"{self.section}: {self.text.splitlines()[-1]}"

    def config(self, sfx: str = "") -> str:
        return render(self.section, self.text, self.mode, self.more, sfx)[0]
