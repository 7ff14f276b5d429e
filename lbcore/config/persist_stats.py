"""``cookie`` (persistence) and the proxy's ``stats`` keywords (the stats page).

``cookie NAME insert|rewrite|prefix [indirect] [nocache] [postonly] [preserve]
[httponly] [secure] [domain D]... [maxidle T] [maxlife T]`` becomes a
``lbcore.persist.CookieSettings``; ``server ... cookie VALUE`` is read with the other
server options (``lbcore.config.proxy``). HAProxy's passive mode (no method word) and
``dynamic``/``attr`` are refused as not supported yet.

``stats enable|uri|realm|auth|refresh|admin|hide-version`` accumulate into one
``model.StatsPage`` per proxy (any of them enables the page, as in HAProxy, where
``stats uri`` alone is enough); a ``defaults`` section's page is inherited.
"""

from __future__ import annotations

import dataclasses

from lbcore.config.errors import ConfigError, NotSupportedYet
from lbcore.config.model import Condition, StatsPage
from lbcore.config.units import parse_duration
from lbcore.persist import CookieSettings

_FLAGS = ("indirect", "nocache", "postonly", "preserve", "httponly", "secure")
_MODES = ("insert", "rewrite", "prefix")


def parse_cookie(args: list[str]) -> CookieSettings:
    """The words of a ``cookie`` line (``args[0]`` is ``cookie``)."""
    if len(args) < 2:
        raise ConfigError("'cookie' expects <cookie_name> as argument")
    name = args[1]
    mode: str | None = None
    flags: dict[str, bool] = {}
    domains: list[str] = []
    maxidle = maxlife = None
    i = 2
    while i < len(args):
        word = args[i]
        if word in _MODES:
            if mode is not None and mode != word:
                raise ConfigError(f"cookie: '{mode}' and '{word}' are mutually exclusive")
            mode = word
        elif word in _FLAGS:
            flags[word] = True
        elif word in ("domain", "maxidle", "maxlife"):
            if i + 1 >= len(args):
                raise ConfigError(f"cookie: '{word}' expects a value")
            value = args[i + 1]
            if word == "domain":
                domains.append(value)
            else:
                seconds = parse_duration(value, f"cookie {word}", default_unit="s")
                if word == "maxidle":
                    maxidle = seconds
                else:
                    maxlife = seconds
            i += 2
            continue
        elif word in ("dynamic", "attr"):
            raise NotSupportedYet(f"cookie {word}")
        else:
            raise ConfigError(
                f"cookie: unknown option '{word}' (expected insert, rewrite, prefix, indirect, "
                "nocache, postonly, preserve, httponly, secure, domain, maxidle or maxlife)"
            )
        i += 1
    if mode is None:
        raise NotSupportedYet("cookie without insert, rewrite or prefix (passive mode)")
    if mode != "insert" and (maxidle is not None or maxlife is not None):
        raise ConfigError("cookie: 'maxidle' and 'maxlife' may only be used with 'insert'")
    if mode != "insert" and (flags.get("postonly") or flags.get("preserve")):
        raise ConfigError("cookie: 'postonly' and 'preserve' may only be used with 'insert'")
    return CookieSettings(
        name,
        mode,
        domains=tuple(domains),
        maxidle=maxidle,
        maxlife=maxlife,
        **flags,
    )


def stats_keyword(
    page: StatsPage | None, args: list[str], condition: Condition | None
) -> StatsPage:
    """Apply one proxy ``stats`` line to the page so far (``condition``: of ``admin``)."""
    if len(args) < 2:
        raise ConfigError(
            "'stats' expects 'enable', 'uri', 'realm', 'auth', 'refresh', 'admin' or 'hide-version'"
        )
    page = page or StatsPage()
    what = args[1]
    if what == "enable":
        return page
    if what == "hide-version":
        return dataclasses.replace(page, hide_version=True)
    if what == "admin":
        if condition is None:
            raise ConfigError(
                "'stats admin' requires either 'if' or 'unless' followed by a condition"
            )
        return dataclasses.replace(page, admin=(*page.admin, condition))
    if what in ("scope", "show-desc", "show-legends", "show-node", "show-modules", "http-request"):
        raise NotSupportedYet(f"stats {what}")
    if what in ("socket", "timeout", "maxconn", "bind-process"):
        raise ConfigError(f"'stats {what}' is only allowed in the 'global' section")
    if what not in ("uri", "realm", "auth", "refresh"):
        raise ConfigError(f"unknown 'stats' keyword '{what}'")
    if len(args) < 3:
        raise ConfigError(f"'stats {what}' expects a value")
    if len(args) > 3:
        raise ConfigError(f"'stats {what}': unexpected argument '{args[3]}'")
    value = args[2]
    if what == "uri":
        return dataclasses.replace(page, uri=value)
    if what == "realm":
        return dataclasses.replace(page, realm=value)
    if what == "auth":
        user, sep, password = value.partition(":")
        if not sep or not user:
            raise ConfigError("'stats auth' expects <user>:<password>")
        return dataclasses.replace(page, auth=(*page.auth, (user, password)))
    return dataclasses.replace(page, refresh=parse_duration(value, "stats refresh", "s"))
