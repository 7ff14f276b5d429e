"""Checks that need the whole configuration, run after every line was parsed.

Each finding is a ``ConfigError`` pointing at the line to fix. Where HAProxy has the
same check (duplicate names, an HTTP frontend using a TCP backend) the message follows
HAProxy's; where lbcore is stricter (a frontend with no ``bind``, two frontends on one
address) it says why.
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.config.errors import ConfigError, hint
from lbcore.config.model import Config, Mode, Proxy, Source
from lbcore.config.proxy import ProxyDraft


def validate(
    config: Config, drafts: Sequence[ProxyDraft], parse_failed: bool = False
) -> tuple[list[ConfigError], list[str]]:
    """``(errors, warnings)`` about the configuration as a whole.

    ``parse_failed``: some line was refused already; findings that would only echo it
    (nothing listens because the only ``bind`` line was bad) are left out.
    """
    errors: list[ConfigError] = []
    warnings = _warnings(config.proxies)
    errors += _unique_names(config.proxies)
    errors += _binds(config.proxies, drafts)
    backends = config.backends
    for proxy, draft in zip(config.proxies, drafts, strict=True):
        targets: list[tuple[str, Source | None, str]] = [
            (u.backend, u.source, "use_backend") for u in proxy.use_backends
        ]
        if proxy.default_backend is not None and proxy.kind.has_frontend:
            where = draft.default_backend_source or proxy.source
            targets.append((proxy.default_backend, where, "default_backend"))
        for name, source, keyword in targets:
            backend = backends.get(name)
            if backend is None:
                tip = hint(name, backends)
                errors.append(
                    ConfigError(
                        f"{proxy.kind.value} '{proxy.name}': {keyword} names an unknown "
                        f"backend '{name}'{tip}",
                        source,
                    )
                )
            elif proxy.mode is Mode.HTTP and backend.mode is Mode.TCP:
                errors.append(
                    ConfigError(
                        f"http {proxy.kind.value} '{proxy.name}' tries to use incompatible "
                        f"tcp backend '{name}' ({backend.source}) as its {keyword} "
                        "(see 'mode')",
                        source,
                    )
                )
            elif proxy.mode is Mode.TCP and backend.mode is Mode.HTTP:
                errors.append(
                    ConfigError(
                        f"tcp {proxy.kind.value} '{proxy.name}' uses http backend '{name}' "
                        f"({backend.source}) as its {keyword}: upgrading a tcp connection "
                        "to http is not supported yet (set 'mode http' on both)",
                        source,
                    )
                )
    if not config.frontends and not parse_failed:
        errors.append(
            ConfigError(
                "no frontend or listen section: nothing would listen",
                Source(config.files[-1], 1) if config.files else None,
            )
        )
    return errors, warnings


def _warnings(proxies: Sequence[Proxy]) -> list[str]:
    """What HAProxy warns about: missing timeouts, HTTP features in a tcp-mode proxy."""
    warnings = []
    for p in proxies:
        where = f"{p.source}: {p.kind.value} '{p.name}'"
        missing = []
        if p.kind.has_frontend and p.timeouts.client is None:
            missing.append("client")
        if p.kind.has_backend:
            missing += [n for n in ("connect", "server") if getattr(p.timeouts, n) is None]
        if missing:
            names = ", ".join(f"'timeout {n}'" for n in missing)
            warnings.append(f"{where}: missing timeouts ({names}): idle connections never expire")
        if p.mode is not Mode.TCP:
            continue
        if p.http_request_rules or p.http_response_rules:
            warnings.append(f"{where}: http-request/http-response rules are ignored in tcp mode")
        if p.options.httplog and p.kind.has_frontend:
            warnings.append(f"{where}: 'option httplog' needs 'mode http'; tcplog is used")
    return warnings


def _unique_names(proxies: Sequence[Proxy]) -> list[ConfigError]:
    """Frontends share one namespace and backends another (a frontend and a backend
    may have the same name, as in HAProxy)."""
    errors = []
    seen_fe: dict[str, Proxy] = {}
    seen_be: dict[str, Proxy] = {}
    for proxy in proxies:
        for capable, seen in (
            (proxy.kind.has_frontend, seen_fe),
            (proxy.kind.has_backend, seen_be),
        ):
            if not capable:
                continue
            other = seen.get(proxy.name)
            if other is not None and other is not proxy:
                errors.append(
                    ConfigError(
                        f"{proxy.kind.value} '{proxy.name}' has the same name as "
                        f"{other.kind.value} '{other.name}' declared at {other.source}",
                        proxy.source,
                    )
                )
                break
            seen[proxy.name] = proxy
    return errors


def _binds(proxies: Sequence[Proxy], drafts: Sequence[ProxyDraft]) -> list[ConfigError]:
    errors = []
    bound: dict[tuple[str, int], tuple[Proxy, Source | None]] = {}
    for proxy, draft in zip(proxies, drafts, strict=True):
        if not proxy.kind.has_frontend:
            continue
        if not draft.bind_lines and not draft.bad_lines:
            errors.append(
                ConfigError(
                    f"{proxy.kind.value} '{proxy.name}' has no 'bind' line (declare it as a "
                    "backend if this was intended)",
                    proxy.source,
                )
            )
        for bind in proxy.binds:
            # "0.0.0.0" and "" (also "*") are the same socket
            key = ("" if bind.host == "0.0.0.0" else bind.host, bind.port)
            if key in bound:
                other, where = bound[key]
                errors.append(
                    ConfigError(
                        f"bind {bind.host or '*'}:{bind.port} is already used by "
                        f"{other.kind.value} '{other.name}' at {where}",
                        bind.source,
                    )
                )
            else:
                bound[key] = (proxy, bind.source)
    return errors
