"""Checks that need the whole configuration, run after every line was parsed.

Each finding is a ``ConfigError`` pointing at the line to fix. Where HAProxy has the
same check (duplicate names, an HTTP frontend using a TCP backend) the message follows
HAProxy's; where lbcore is stricter (a frontend with no ``bind``, two frontends on one
address) it says why.
"""

from __future__ import annotations

from collections.abc import Sequence

from lbcore.config.errors import ConfigError
from lbcore.config.model import Config, Mode, Proxy, Source
from lbcore.config.proxy import ProxyDraft


def validate(config: Config, drafts: Sequence[ProxyDraft]) -> list[ConfigError]:
    errors: list[ConfigError] = []
    errors += _unique_names(config.proxies)
    errors += _binds(config.proxies)
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
                hint = _close(name, backends)
                errors.append(
                    ConfigError(
                        f"{proxy.kind.value} '{proxy.name}': {keyword} names an unknown "
                        f"backend '{name}'{hint}",
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
    if not config.frontends:
        errors.append(
            ConfigError(
                "no frontend or listen section: nothing would listen",
                Source(config.files[-1], 1) if config.files else None,
            )
        )
    return errors


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


def _binds(proxies: Sequence[Proxy]) -> list[ConfigError]:
    errors = []
    bound: dict[tuple[str, int], tuple[Proxy, Source | None]] = {}
    for proxy in proxies:
        if not proxy.kind.has_frontend:
            continue
        if not proxy.binds:
            errors.append(
                ConfigError(
                    f"{proxy.kind.value} '{proxy.name}' has no 'bind' line (declare it as a "
                    "backend if this was intended)",
                    proxy.source,
                )
            )
        for bind in proxy.binds:
            key = (bind.host, bind.port)
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


def _close(name: str, known: dict[str, Proxy]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
