"""``http-request`` and ``http-response`` actions: their words into an ``HttpRule``.

Only the action and its arguments are read here; the ``if|unless`` condition after
them is parsed by the caller (it needs the proxy's ACLs). Arity errors use HAProxy's
wording ("expects exactly 2 arguments", "expects either 'if' or 'unless' ...").
"""

from __future__ import annotations

from lbcore.config import acl as aclmod
from lbcore.config.errors import ConfigError, NotSupportedYet, hint
from lbcore.config.model import HttpRule
from lbcore.config.tokenizer import word_set
from lbcore.config.units import parse_int

ACTIONS = {
    "http-request": ("set-header", "add-header", "del-header", "redirect", "deny", "use-service"),
    "http-response": ("set-header", "add-header", "del-header"),
}
LATER_ACTIONS = word_set(
    "allow auth tarpit return set-path set-pathq set-uri set-query set-method "
    "replace-header replace-value replace-path replace-pathq replace-uri set-var unset-var "
    "set-var-fmt capture track-sc0 track-sc1 track-sc2 sc-inc-gpc sc-inc-gpc0 sc-inc-gpc1 "
    "sc-set-gpt0 set-log-level set-nice set-tos set-mark set-src set-src-port set-dst "
    "set-dst-port cache-use cache-store early-hint add-acl del-acl set-map "
    "del-map silent-drop reject normalize-uri disable-l7-retry wait-for-body "
    "wait-for-handshake strict-mode do-resolve send-spoe-group set-status set-timeout "
    "set-bandwidth-limit sc-add-gpc sc-set-gpt deny redirect"
)
REDIRECT_CODES = (301, 302, 303, 307, 308)
DENY_CODES: tuple[int, ...] = (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429)
DENY_CODES += (500, 501, 502, 503, 504)


def split_rule(args: list[str]) -> tuple[str, list[str], list[str]]:
    """``http-request ACTION ARGS... [if|unless COND...]``: (action, args, condition words).

    Raises for an action lbcore does not know (with a hint) or does not support yet.
    """
    kw = args[0]
    actions = ACTIONS[kw]
    words, cond = aclmod.split_condition(args[1:])
    action = words[0] if words else ""
    if action not in actions:
        if action in LATER_ACTIONS:
            raise NotSupportedYet(f"{kw} {action}")
        raise ConfigError(
            f"unknown '{kw}' action '{action}'{hint(action, actions, LATER_ACTIONS)}"
            f" (expected one of {', '.join(actions)})"
        )
    return action, words[1:], cond


def parse_action(kw: str, action: str, words: list[str]) -> HttpRule:
    """The rule for ``action`` and its ``words`` (without the condition)."""
    what = f"{kw} {action}"
    if action in ("set-header", "add-header"):
        _expect(what, words, 2)
        return HttpRule(action, name=words[0], value=words[1])
    if action == "del-header":
        if len(words) >= 2 and words[1] == "-m":
            raise NotSupportedYet(f"{what} -m")
        _expect(what, words, 1)
        return HttpRule(action, name=words[0])
    if action == "redirect":
        return _redirect(what, words)
    if action == "use-service":
        _expect(what, words, 1)
        if words[0] != "prometheus-exporter":
            raise NotSupportedYet(f"{what} {words[0]}")
        return HttpRule(action, value=words[0])
    return _deny(what, words)


def _expect(what: str, words: list[str], count: int) -> None:
    if len(words) < count or any(w == "" for w in words[:count]):
        raise ConfigError(f"'{what}' expects exactly {count} argument(s)")
    if len(words) > count:
        raise ConfigError(
            f"'{what}' expects either 'if' or 'unless' followed by a condition "
            f"but found '{words[count]}'"
        )


def _redirect(what: str, words: list[str]) -> HttpRule:
    """``redirect location|prefix|scheme VALUE [code N]``."""
    if len(words) < 2 or words[0] not in ("location", "prefix", "scheme"):
        raise ConfigError(f"'{what}' expects 'location', 'prefix' or 'scheme' and a value")
    code, i = 302, 2
    while i < len(words):
        if words[i] != "code":
            if words[i] in ("drop-query", "append-slash", "set-cookie", "clear-cookie"):
                raise NotSupportedYet(f"{what} {words[i]}")
            raise ConfigError(f"'{what}' expects 'code' or 'if'/'unless' but found '{words[i]}'")
        if i + 1 >= len(words):
            raise ConfigError(f"'{what}': 'code' expects a status code")
        code = parse_int(words[i + 1], f"{what}: code", 0, 999)
        if code not in REDIRECT_CODES:
            raise ConfigError(
                f"'{what}': unsupported HTTP code '{code}' (must be one of 301, 302, "
                "303, 307 or 308)"
            )
        i += 2
    return HttpRule("redirect", value=words[1], redirect_kind=words[0], code=code)


def _deny(what: str, words: list[str]) -> HttpRule:
    """``deny [deny_status N | status N]`` (403 by default)."""
    code = 403
    if words:
        if words[0] not in ("deny_status", "status"):
            if words[0] in ("content-type", "errorfile", "errorfiles", "file", "string"):
                raise NotSupportedYet(f"{what} {words[0]}")
            raise ConfigError(f"'{what}' expects 'deny_status' or 'if'/'unless'")
        if len(words) < 2:
            raise ConfigError(f"'{what}': '{words[0]}' expects a status code")
        code = parse_int(words[1], f"{what}: {words[0]}", 0, 999)
        if code not in DENY_CODES:
            raise ConfigError(f"'{what}': unexpected status code '{code}'")
        if len(words) > 2:
            raise NotSupportedYet(f"{what} {words[2]}")
    return HttpRule("deny", code=code)
