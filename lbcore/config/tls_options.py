"""The TLS words of ``bind`` and ``server`` lines: ``ssl crt ... alpn ... verify ...``.

Only the words are read here (no file is opened): ``bind`` options become a
``model.TlsSettings``, ``server`` options a ``model.ServerTls``. The certificates they
name are loaded and checked by ``lbcore.config.load`` (through ``lbcore.tls``) so that
``lbcore check`` reports a missing or broken file at the line that names it.
"""

from __future__ import annotations

from lbcore.config.errors import ConfigError, NotSupportedYet, hint
from lbcore.config.model import ServerTls, TlsSettings

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
_BIND_FLAGS = ("ssl", "strict-sni", "no-tls-tickets", *NO_VERSION_FLAGS)
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
SERVER_TLS_WORDS = frozenset({"ssl", "no-ssl", *_SERVER_VALUE})


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
        if tls.verify == "required" and not tls.ca_file:
            raise ConfigError(
                f"server {name}: verify is enabled by default but no CA file specified: "
                "add 'ca-file FILE', or 'verify none' if you are certain to trust the "
                "server's certificate (HAProxy refuses this too)"
            )
        _check_order(tls.min_version, tls.max_version, f"server {name}")
        return tls


def _check_sni(name: str, expr: str) -> None:
    """``sni`` takes a sample expression; lbcore knows ``str(NAME)`` and ``req.hdr(host)``."""
    if expr.startswith("str(") and expr.endswith(")") and len(expr) > 5:
        return
    if expr in ("req.hdr(host)", "hdr(host)", "req.hdr(Host)", "hdr(Host)", "ssl_fc_sni"):
        return
    raise NotSupportedYet(f"sni {expr}", "lbcore takes str(NAME), req.hdr(host) or ssl_fc_sni")
