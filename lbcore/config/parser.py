"""The HAProxy-dialect parser: text in, a frozen ``model.Config`` out.

Theory of operation: the text is read line by line; ``tokenizer.tokenize`` turns a line
into words; the first word either opens a section (``global``, ``defaults``,
``frontend``, ``backend``, ``listen``) or is a keyword handled by the current section
(``globals_`` for global, ``proxy`` for the others). A bad line becomes a
``ConfigError`` carrying its file:line and parsing goes on, so that one run reports
every problem, as ``haproxy -c`` does. When all files are read, ``validate`` checks
what needs the whole configuration (backends named by ``use_backend`` exist, modes
agree, names are unique), and ``ConfigErrors`` is raised if anything was wrong.

This module does no I/O: ``parse_text``/``parse_texts`` take the text (and the
environment for ``"${VAR}"`` expansion); ``lbcore.config.load`` reads the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lbcore.config import proxy as proxymod
from lbcore.config.errors import ConfigError, ConfigErrors, NotSupportedYet, hint
from lbcore.config.globals_ import GLOBAL_KEYWORDS, LATER_GLOBAL
from lbcore.config.model import Config, Global, ProxyKind, Source
from lbcore.config.proxy import Context, ProxyDraft
from lbcore.config.tokenizer import tokenize, word_set
from lbcore.config.validate import validate

PROXY_SECTIONS = {
    "frontend": ProxyKind.FRONTEND,
    "backend": ProxyKind.BACKEND,
    "listen": ProxyKind.LISTEN,
}
SECTIONS = ("global", "defaults", *PROXY_SECTIONS)
LATER_SECTIONS = word_set(
    "peers resolvers userlist mailers cache program http-errors ring log-forward crt-store "
    "traces dynbuf-pool namespace_list fcgi-app"
)
_SKIP = "<skipped>"  # lines of a section whose header was refused or is not supported
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class _Parser:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[ConfigError] = []
        self.warnings: list[str] = []
        self.global_ = Global()
        self.defaults = ProxyDraft(name="", kind=None)  # HAProxy's built-in defaults
        self.named_defaults: dict[str, list[ProxyDraft]] = {}
        self.proxies: list[ProxyDraft] = []
        self.section: str | None = None
        self.current: ProxyDraft | None = None

    def feed(self, text: str, filename: str) -> None:
        self.section, self.current = None, None  # a section never spans two files
        # lines end at "\n" only, as in HAProxy (str.splitlines would also cut at \f, \x1c...)
        for number, line in enumerate(text.split("\n"), start=1):
            source = Source(filename, number)
            try:
                env = {**self.env, ".FILE": filename, ".LINE": str(number)}
                env[".SECTION"] = self.section or ""
                words = tokenize(line, env)
                if words:
                    self._line(words, source)
            except ConfigError as exc:
                self.errors.append(exc.at(source))
                if self.current is not None:
                    self.current.bad_lines += 1

    def _line(self, words: list[str], source: Source) -> None:
        keyword = words[0]
        if keyword in SECTIONS:
            self._open_section(words, source)
        elif keyword in LATER_SECTIONS:
            self.section, self.current = _SKIP, None
            raise NotSupportedYet(keyword, "section")
        elif keyword.startswith("."):
            raise NotSupportedYet(keyword, "conditional blocks and directives")
        elif self.section == _SKIP:
            return  # the section's header was reported; its lines would only repeat that
        elif self.section is None:
            raise ConfigError(
                f"unknown keyword '{keyword}' out of section{hint(keyword, SECTIONS)}"
            )
        elif self.section == "global":
            self._global(words, source)
        else:
            assert self.current is not None
            self._proxy(self.current, words, source)

    def _open_section(self, words: list[str], source: Source) -> None:
        keyword = words[0]
        self.section, self.current = _SKIP, None  # until the header is known to be good
        if keyword == "global":
            self.section = keyword
            if len(words) > 1:
                raise ConfigError(f"'global' takes no argument, got '{words[1]}'")
            return
        name, base = self._section_name(words)
        if keyword == "defaults":
            self.current = base.inherit(name, None, source)
            self.defaults = self.current
            if name:
                self.named_defaults.setdefault(name, []).append(self.current)
        else:
            if not name:
                raise ConfigError(f"'{keyword}' expects a name")
            self.current = base.inherit(name, PROXY_SECTIONS[keyword], source)
            self.proxies.append(self.current)
        self.section = keyword  # only now: the section and its draft are both set

    def _section_name(self, words: list[str]) -> tuple[str, ProxyDraft]:
        """``SECTION [NAME] [from DEFAULTS]``: the name and the defaults it starts from."""
        name = words[1] if len(words) > 1 and words[1] != "from" else ""
        rest = words[2:] if name else words[1:]
        if name and not set(name) <= _NAME_CHARS:
            raise ConfigError(
                f"invalid name '{name}' for {words[0]} (letters, digits, '-', '_', '.', ':')"
            )
        if not rest:
            if words[0] == "defaults":
                # a new anonymous or named defaults section starts from scratch
                return name, ProxyDraft(name="", kind=None)
            return name, self.defaults
        if rest == ["from"]:
            raise ConfigError(f"'{words[0]} {name}': 'from' expects a defaults section name")
        if rest[0] != "from" or len(rest) != 2:
            raise ConfigError(f"'{words[0]} {name}' expects at most 'from DEFAULTS' after it")
        candidates = self.named_defaults.get(rest[1], [])
        if not candidates:
            raise ConfigError(f"{words[0]} '{name}': no defaults section named '{rest[1]}'")
        if len(candidates) > 1:
            places = " and ".join(str(c.source) for c in candidates)
            raise ConfigError(
                f"{words[0]} '{name}': ambiguous defaults section name '{rest[1]}' "
                f"(declared at {places})"
            )
        return name, candidates[0]

    def _global(self, words: list[str], source: Source) -> None:
        keyword = words[0]
        handler = GLOBAL_KEYWORDS.get(keyword)
        if handler is None:
            if keyword in LATER_GLOBAL or keyword.startswith("tune."):
                raise NotSupportedYet(keyword)
            if keyword in proxymod.KEYWORDS:
                tip = " (it belongs in a frontend, backend, listen or defaults section)"
            else:
                tip = hint(keyword, GLOBAL_KEYWORDS, LATER_GLOBAL, SECTIONS)
            raise ConfigError(f"unknown keyword '{keyword}' in 'global' section{tip}")
        self.global_ = handler(self.global_, words, source)

    def _proxy(self, draft: ProxyDraft, words: list[str], source: Source) -> None:
        ctx = Context(source, self.warnings)
        keyword = words[0]
        if keyword in ("no", "default") and len(words) > 1:
            if words[1] == "option":
                proxymod.set_option(draft, words[1:], ctx, prefix=keyword)
                return
            if keyword == "no" and words[1] == "log" and len(words) == 2:
                draft.logs.clear()
                return
            raise NotSupportedYet(f"{keyword} {words[1]}")
        entry = proxymod.KEYWORDS.get(keyword)
        if entry is None:
            if keyword in proxymod.LATER_KEYWORDS:
                raise NotSupportedYet(keyword)
            if keyword in GLOBAL_KEYWORDS or keyword in LATER_GLOBAL:
                tip = " (it belongs in the 'global' section)"
            else:
                tip = hint(keyword, proxymod.KEYWORDS, proxymod.LATER_KEYWORDS, SECTIONS)
            raise ConfigError(f"unknown keyword '{keyword}' in '{draft.section}' section{tip}")
        if draft.section in entry.ignored:
            ctx.warn(f"'{keyword}' is ignored in a {draft.section} section (as in HAProxy)")
            return
        if draft.section not in entry.allowed:
            raise ConfigError(f"'{keyword}' is not allowed in a '{draft.section}' section")
        entry.handler(draft, words, ctx)

    def finish(self, files: tuple[str, ...]) -> Config:
        config = Config(
            global_=self.global_,
            proxies=tuple(p.freeze() for p in self.proxies),
            files=files,
        )
        errors, warnings = validate(config, self.proxies, parse_failed=bool(self.errors))
        self.errors += errors
        self.warnings += warnings
        if self.errors:
            rank = {name: i for i, name in enumerate(files)}

            def order(error: ConfigError) -> tuple[int, int]:
                # file order, then line order; an error with no place goes last
                if error.source is None:
                    return (len(files), 0)
                return (rank.get(error.source.file, len(files)), error.source.line)

            raise ConfigErrors(sorted(self.errors, key=order))
        return config


def parse_texts(
    texts: Iterable[tuple[str, str]], env: Mapping[str, str] | None = None
) -> tuple[Config, list[str]]:
    """Parse ``(filename, text)`` pairs in order as one configuration (like several
    ``-f``); return the config and the warnings, or raise ``ConfigErrors``."""
    parser = _Parser(env or {})
    names: list[str] = []
    for filename, text in texts:
        names.append(filename)
        parser.feed(text, filename)
    return parser.finish(tuple(names)), parser.warnings


def parse_text(
    text: str, filename: str = "<string>", env: Mapping[str, str] | None = None
) -> Config:
    """Parse one configuration text; raise ``ConfigErrors`` listing every problem."""
    return parse_texts([(filename, text)], env)[0]
