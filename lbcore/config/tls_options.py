"""The TLS words of ``bind`` and ``server`` lines: ``ssl crt ... alpn ... verify ...``.

Only the words are read here (no file is opened): ``bind`` options become a
``model.TlsSettings``, ``server`` options a ``model.ServerTls``. The certificates they
name are loaded and checked by ``lbcore.config.load`` (through ``lbcore.tls``) so that
``lbcore check`` reports a missing or broken file at the line that names it.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable

from lbcore.config.errors import ConfigError, NotSupportedYet, hint
from lbcore.config.model import Config, Global, ServerTls, Source, TlsGlobals, TlsSettings
from lbcore.config.units import parse_int

VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
NO_VERSION_FLAGS = ("no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13")
VERIFY = ("none", "optional", "required")

#: bind options taking one value -> TlsSettings field
_BIND_VALUE = {
    "crt": "crts",
    "crt-list": "crt_lists",
    "alpn": "alpn",
    "ssl-min-ver": "min_version",
    "ssl-max-ver": "max_version",
    "ciphers": "ciphers",
    "ciphersuites": "ciphersuites",
    "ca-file": "ca_file",
    "verify": "verify",
}
_BIND_FLAGS = ("ssl", "strict-sni", "no-tls-tickets", "prefer-client-ciphers", *NO_VERSION_FLAGS)
BIND_TLS_OPTIONS = (*_BIND_VALUE, *_BIND_FLAGS)


def _version(word: str, value: str) -> str:
    if value not in VERSIONS:
        raise ConfigError(
            f"'{word}' : unknown version '{value}' (expected one of {', '.join(VERSIONS)})"
        )
    return value


def parse_bind_tls(words: list[str], later: frozenset[str]) -> tuple[TlsSettings | None, bool]:
    """The options after a bind address: ``(settings, ssl_on)``.

    ``settings`` is None when no TLS word was given. ``later`` are HAProxy's other bind
    options, refused as "not supported yet" (an unknown word gets a hint).
    """
    values: dict[str, object] = {}
    crts: list[str] = []
    crt_lists: list[str] = []
    no_versions: list[str] = []
    ssl_on = False
    i = 0
    while i < len(words):
        word = words[i]
        if word in _BIND_VALUE:
            if i + 1 >= len(words) or not words[i + 1]:
                raise ConfigError(f"bind: '{word}' expects a value")
            value = words[i + 1]
            if word == "crt":
                crts.append(value)
            elif word == "crt-list":
                crt_lists.append(value)
            elif word == "alpn":
                values["alpn"] = tuple(p for p in value.split(",") if p)
            elif word in ("ssl-min-ver", "ssl-max-ver"):
                values[_BIND_VALUE[word]] = _version(word, value)
            elif word == "verify":
                if value not in VERIFY:
                    raise ConfigError(
                        f"bind: 'verify' expects 'none', 'optional' or 'required', got '{value}'"
                    )
                values["verify"] = value
            else:
                values[_BIND_VALUE[word]] = value
            i += 2
            continue
        if word == "ssl":
            ssl_on = True
        elif word == "strict-sni":
            values["strict_sni"] = True
        elif word == "no-tls-tickets":
            values["tickets"] = False
        elif word == "prefer-client-ciphers":
            values["prefer_client_ciphers"] = True
        elif word in NO_VERSION_FLAGS:
            no_versions.append(word)
        elif word in later:
            raise NotSupportedYet(word, "bind option")
        else:
            raise ConfigError(f"bind: unknown option '{word}'{hint(word, BIND_TLS_OPTIONS, later)}")
        i += 1
    if not words:
        return None, False
    settings = TlsSettings(
        crts=tuple(crts),
        crt_lists=tuple(crt_lists),
        no_versions=tuple(no_versions),
        **values,  # type: ignore[arg-type]
    )
    if ssl_on and not (crts or crt_lists):
        raise ConfigError("bind: 'ssl' needs a certificate: add 'crt FILE|DIR' or 'crt-list FILE'")
    if settings.verify != "none" and not settings.ca_file:
        raise ConfigError(f"bind: 'verify {settings.verify}' needs a 'ca-file'")
    _check_order(settings.min_version, settings.max_version, "bind")
    return settings, ssl_on


def _check_order(low: str | None, high: str | None, where: str) -> None:
    if low and high and VERSIONS.index(low) > VERSIONS.index(high):
        raise ConfigError(f"{where}: ssl-min-ver {low} is above ssl-max-ver {high}")


#: server options with a value -> ServerTls field
_SERVER_VALUE = {
    "verify": "verify",
    "ca-file": "ca_file",
    "sni": "sni",
    "crt": "crt",
    "alpn": "alpn",
    "ssl-min-ver": "min_version",
    "ssl-max-ver": "max_version",
    "ciphers": "ciphers",
    "verifyhost": "verifyhost",
}
SERVER_TLS_WORDS = frozenset({"ssl", "no-ssl", "no-tls-tickets", *NO_VERSION_FLAGS, *_SERVER_VALUE})


class ServerTlsDraft:
    """TLS words of one ``server`` line (after ``default-server``'s), read in order."""

    def __init__(self) -> None:
        self.ssl = False
        self.values: dict[str, object] = {}

    def option(self, name: str, words: list[str], i: int) -> int:
        """Consume the TLS option at ``words[i]``: how many words it used (0: not ours)."""
        word = words[i]
        if word == "ssl":
            self.ssl = True
            return 1
        if word in NO_VERSION_FLAGS:
            known: tuple[str, ...] = self.values.get("no_versions", ())  # type: ignore[assignment]
            self.values["no_versions"] = (*known, word)
            return 1
        if word == "no-tls-tickets":
            self.values["tickets"] = False
            return 1
        if word == "no-ssl":
            self.ssl = False
            return 1
        if word not in _SERVER_VALUE:
            return 0
        if i + 1 >= len(words) or not words[i + 1]:
            raise ConfigError(f"server {name}: '{word}' expects a value")
        value = words[i + 1]
        if word == "verify" and value not in ("none", "required"):
            raise ConfigError(
                f"server {name}: 'verify' expects 'none' or 'required', got '{value}'"
            )
        if word in ("ssl-min-ver", "ssl-max-ver"):
            value = _version(word, value)
        if word == "sni":
            _check_sni(name, value)
        if word == "alpn":
            self.values["alpn"] = tuple(p for p in value.split(",") if p)
        else:
            self.values[_SERVER_VALUE[word]] = value
        return 2

    def freeze(self, name: str) -> ServerTls | None:
        if not self.ssl:
            return None
        tls = ServerTls(**self.values)  # type: ignore[arg-type]
        _check_order(tls.min_version, tls.max_version, f"server {name}")
        return tls


def _check_sni(name: str, expr: str) -> None:
    """``sni`` takes a sample expression; lbcore knows ``str(NAME)`` and ``req.hdr(host)``."""
    if expr.startswith("str(") and expr.endswith(")") and len(expr) > 5:
        return
    if expr in ("req.hdr(host)", "hdr(host)", "req.hdr(Host)", "hdr(Host)", "ssl_fc_sni"):
        return
    raise NotSupportedYet(f"sni {expr}", "lbcore takes str(NAME), req.hdr(host) or ssl_fc_sni")


# ---- global TLS defaults -------------------------------------------------------


def _one(args: list[str], what: str) -> str:
    if len(args) != 2 or not args[1]:
        raise ConfigError(f"'{args[0]}' expects {what}")
    return args[1]


def _set(attr: str, what: str) -> Callable[[Global, list[str], Source], Global]:
    def handler(g: Global, args: list[str], source: Source) -> Global:
        tls = dataclasses.replace(g.tls, **{attr: _one(args, what)})  # type: ignore[arg-type]
        return dataclasses.replace(g, tls=tls)

    return handler


def _bind_options(g: Global, args: list[str], source: Source) -> Global:
    words = args[1:]
    parse_bind_tls(["ssl", "crt", "-", *words], frozenset())  # refuses a bad word now
    return dataclasses.replace(g, tls=dataclasses.replace(g.tls, bind_options=tuple(words)))


def _server_options(g: Global, args: list[str], source: Source) -> Global:
    words = args[1:]
    draft = ServerTlsDraft()
    i = 0
    while i < len(words):
        used = draft.option("(ssl-default-server-options)", words, i)
        if not used or words[i] in ("ssl", "no-ssl", "crt", "ca-file", "sni"):
            raise NotSupportedYet(f"ssl-default-server-options {words[i]}")
        i += used
    return dataclasses.replace(g, tls=dataclasses.replace(g.tls, server_options=tuple(words)))


def _server_verify(g: Global, args: list[str], source: Source) -> Global:
    value = _one(args, "'none' or 'required'")
    if value not in ("none", "required"):
        raise ConfigError(f"'ssl-server-verify' expects 'none' or 'required', got '{value}'")
    return dataclasses.replace(g, tls=dataclasses.replace(g.tls, server_verify=value))


def _dh_param(g: Global, args: list[str], source: Source) -> Global:
    bits = parse_int(_one(args, "a number of bits"), args[0], 1024, 16384)
    return dataclasses.replace(g, tls=dataclasses.replace(g.tls, dh_param=bits))


GLOBAL_KEYWORDS: dict[str, Callable[[Global, list[str], Source], Global]] = {
    "crt-base": _set("crt_base", "a directory"),
    "ca-base": _set("ca_base", "a directory"),
    "ssl-default-bind-ciphers": _set("bind_ciphers", "a cipher list"),
    "ssl-default-bind-ciphersuites": _set("bind_ciphersuites", "a ciphersuite list"),
    "ssl-default-bind-options": _bind_options,
    "ssl-default-server-ciphers": _set("server_ciphers", "a cipher list"),
    "ssl-default-server-ciphersuites": _set("server_ciphersuites", "a ciphersuite list"),
    "ssl-default-server-options": _server_options,
    "ssl-server-verify": _server_verify,
    "ssl-dh-param-file": _set("dh_param_file", "a file name"),
    "tune.ssl.default-dh-param": _dh_param,
}


def _base(base: str | None, path: str | None) -> str | None:
    if path is None or base is None or posixpath.isabs(path):
        return path
    return posixpath.join(base, path)


def _bind_defaults(tls: TlsSettings, g: TlsGlobals) -> TlsSettings:
    """A bind's settings with the global defaults under what the line itself says."""
    defaults, _ = parse_bind_tls(["ssl", "crt", "-", *g.bind_options], frozenset())
    assert defaults is not None
    blank = TlsSettings()
    changes: dict[str, object] = {}
    for name in ("min_version", "max_version", "ciphers", "ciphersuites"):
        if getattr(tls, name) == getattr(blank, name):
            value = getattr(defaults, name)
            if name == "ciphers" and value is None:
                value = g.bind_ciphers
            if name == "ciphersuites" and value is None:
                value = g.bind_ciphersuites
            changes[name] = value
    if not defaults.tickets:
        changes["tickets"] = False
    if defaults.prefer_client_ciphers:
        changes["prefer_client_ciphers"] = True
    changes["no_versions"] = tuple(dict.fromkeys((*defaults.no_versions, *tls.no_versions)))
    changes["crts"] = tuple(_base(g.crt_base, c) or c for c in tls.crts)
    changes["crt_lists"] = tuple(_base(g.crt_base, c) or c for c in tls.crt_lists)
    changes["ca_file"] = _base(g.ca_base, tls.ca_file)
    changes["dh_param_file"] = g.dh_param_file
    return dataclasses.replace(tls, **changes)  # type: ignore[arg-type]


def _server_defaults(name: str, tls: ServerTls, g: TlsGlobals) -> ServerTls:
    draft = ServerTlsDraft()
    i = 0
    while i < len(g.server_options):
        i += draft.option(name, list(g.server_options), i)
    d = draft.values
    inherited: tuple[str, ...] = d.get("no_versions", ())  # type: ignore[assignment]
    changes: dict[str, object] = {
        "verify": tls.verify or g.server_verify,
        "ca_file": _base(g.ca_base, tls.ca_file),
        "crt": _base(g.crt_base, tls.crt),
        "ciphers": tls.ciphers or g.server_ciphers,
        "min_version": tls.min_version or d.get("min_version"),
        "max_version": tls.max_version or d.get("max_version"),
        "no_versions": tuple(dict.fromkeys((*inherited, *tls.no_versions))),
        "tickets": tls.tickets and d.get("tickets", True),
    }
    return dataclasses.replace(tls, **changes)  # type: ignore[arg-type]


def apply_globals(config: Config) -> tuple[Config, list[ConfigError]]:
    """Bind and server TLS settings with ``global``'s TLS defaults applied, and the
    checks that need them (a verified server needs a CA file)."""
    g = config.global_.tls
    errors: list[ConfigError] = []
    proxies = []
    for proxy in config.proxies:
        binds = tuple(
            dataclasses.replace(b, tls=_bind_defaults(b.tls, g)) if b.tls is not None else b
            for b in proxy.binds
        )
        servers = []
        for server in proxy.servers:
            if server.tls is not None:
                tls = _server_defaults(server.name, server.tls, g)
                if tls.verify == "required" and not tls.ca_file:
                    errors.append(
                        ConfigError(
                            f"server {server.name}: verify is enabled by default but no CA "
                            "file specified: add 'ca-file FILE', or 'verify none' if you are "
                            "certain to trust the server's certificate (HAProxy refuses "
                            "this too; 'ssl-server-verify none' in global changes the default)",
                            server.source,
                        )
                    )
                server = dataclasses.replace(server, tls=tls)
            servers.append(server)
        proxies.append(dataclasses.replace(proxy, binds=binds, servers=tuple(servers)))
    return dataclasses.replace(config, proxies=tuple(proxies)), errors
