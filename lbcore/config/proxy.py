"""Keywords of ``defaults``, ``frontend``, ``backend`` and ``listen`` sections.

Theory of operation: a section is read into a mutable ``ProxyDraft``; when the section
ends the parser freezes it into a ``model.Proxy``. A proxy starts as a copy of the
``defaults`` section in force when it was declared (HAProxy's rule: each ``defaults``
section applies to what follows it, until the next one). Each keyword is a handler in
``KEYWORDS`` with the sections where it is allowed, and those where HAProxy accepts it
but ignores it with a warning (``retries`` in a frontend, say) — there we warn too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from lbcore.config import acl as aclmod
from lbcore.config import checks, http_rules, persist_stats, tls_options
from lbcore.config.addresses import parse_bind_address, parse_server_address
from lbcore.config.errors import ConfigError, NotSupportedYet, hint
from lbcore.config.globals_ import parse_log
from lbcore.config.model import (
    Acl,
    Balance,
    Bind,
    Capture,
    Condition,
    HttpRule,
    LogTarget,
    Mode,
    Options,
    Proxy,
    ProxyKind,
    Server,
    Source,
    StatsPage,
    TcpRule,
    Timeouts,
    UseBackend,
)
from lbcore.config.tokenizer import word_set
from lbcore.config.units import parse_duration, parse_int
from lbcore.persist import CookieSettings


class Context:
    """What a keyword handler needs besides its words: where it is, and a way to warn."""

    def __init__(self, source: Source, warnings: list[str]) -> None:
        self.source = source
        self._warnings = warnings

    def warn(self, message: str) -> None:
        self._warnings.append(f"{self.source}: {message}")


@dataclass(slots=True)
class ProxyDraft:
    """A proxy section being read (or a ``defaults`` section when ``kind`` is None)."""

    name: str
    kind: ProxyKind | None
    source: Source | None = None
    mode: Mode = Mode.TCP
    binds: list[Bind] = field(default_factory=list)
    default_backend: str | None = None
    default_backend_source: Source | None = None
    use_backends: list[UseBackend] = field(default_factory=list)
    acls: list[Acl] = field(default_factory=list)
    acl_names: set[str] = field(default_factory=set)  # declared so far (for conditions)
    timeouts: Timeouts = field(default_factory=Timeouts)
    maxconn: int | None = None
    retries: int = 3
    options: Options = field(default_factory=Options)
    http_request_rules: list[HttpRule] = field(default_factory=list)
    http_response_rules: list[HttpRule] = field(default_factory=list)
    balance: Balance = field(default_factory=Balance)
    servers: list[Server] = field(default_factory=list)
    logs: list[LogTarget] = field(default_factory=list)
    base_options: Options = field(default_factory=Options)  # for "default option X"
    bind_lines: int = 0  # bind lines seen, good or bad (a bad one was reported already)
    bad_lines: int = 0  # lines of this section refused (maybe a bind: don't echo them)

    default_server: list[str] = field(default_factory=list)  # "default-server" options
    http_check: checks.HttpCheckDraft = field(default_factory=checks.HttpCheckDraft)
    tcp_inspect_delay: float | None = None
    tcp_request_content: list[TcpRule] = field(default_factory=list)
    cookie: CookieSettings | None = None
    stats: StatsPage | None = None
    log_format: str | None = None
    capture_request_headers: list[Capture] = field(default_factory=list)
    capture_response_headers: list[Capture] = field(default_factory=list)
    capture_cookie: Capture | None = None
    http_reuse: str = "safe"

    @property
    def section(self) -> str:
        return "defaults" if self.kind is None else self.kind.value

    def inherit(self, name: str, kind: ProxyKind | None, source: Source) -> ProxyDraft:
        """A new section that starts with what this ``defaults`` section set."""
        return ProxyDraft(
            name=name,
            kind=kind,
            source=source,
            mode=self.mode,
            default_backend=self.default_backend if kind is not ProxyKind.BACKEND else None,
            default_backend_source=self.default_backend_source,
            timeouts=self.timeouts,
            maxconn=self.maxconn,
            retries=self.retries,
            options=self.options,
            base_options=self.options,
            balance=self.balance,
            logs=list(self.logs),
            default_server=list(self.default_server),
            http_check=self.http_check.copy(),
            cookie=self.cookie,
            stats=self.stats,
            log_format=self.log_format,
            http_reuse=self.http_reuse,
        )

    def freeze(self) -> Proxy:
        assert self.kind is not None
        return Proxy(
            name=self.name,
            kind=self.kind,
            mode=self.mode,
            binds=tuple(self.binds),
            default_backend=self.default_backend,
            use_backends=tuple(self.use_backends),
            acls=tuple(self.acls),
            timeouts=self.timeouts,
            maxconn=self.maxconn,
            retries=self.retries,
            options=self.options,
            http_request_rules=tuple(self.http_request_rules),
            http_response_rules=tuple(self.http_response_rules),
            balance=self.balance,
            servers=tuple(self.servers),
            logs=tuple(self.logs),
            source=self.source,
            httpchk=checks.merge_http_check(self.http_check),
            tcp_inspect_delay=self.tcp_inspect_delay,
            tcp_request_content=tuple(self.tcp_request_content),
            cookie=self.cookie,
            stats=self.stats,
            log_format=self.log_format,
            capture_request_headers=tuple(self.capture_request_headers),
            capture_response_headers=tuple(self.capture_response_headers),
            capture_cookie=self.capture_cookie,
            http_reuse=self.http_reuse,
        )


Handler = Callable[[ProxyDraft, list[str], Context], None]

D, F, B, L = "defaults", "frontend", "backend", "listen"
ALL = frozenset({D, F, B, L})


def _need(args: list[str], count: int, usage: str) -> None:
    if len(args) < count + 1:
        raise ConfigError(f"'{args[0]}' expects {usage}")


def _no_more(args: list[str], used: int) -> None:
    if len(args) > used:
        raise ConfigError(f"'{args[0]}': unexpected argument '{args[used]}'")


def _condition(d: ProxyDraft, words: list[str], what: str, ctx: Context) -> Condition | None:
    if not words:
        return None
    try:
        return aclmod.parse_condition(words, d.acl_names, ctx.source)
    except ConfigError as exc:
        exc.message = f"{what}: {exc.message}"
        raise


LATER_BIND_OPTIONS = word_set(
    "crl-file npn accept-proxy accept-netscaler-cip "
    "name id v4v6 v6only transparent interface namespace defer-accept tfo backlog maxconn "
    "mss nice process thread level severity-output mode user group uid gid expose-fd "
    "curves ecdhe allow-0rtt generate-certificates tls-ticket-keys "
    "prefer-client-ciphers ca-verify-file ca-ignore-err crt-ignore-err "
    "no-ca-names proto quic-cc-algo quic-force-retry force-sslv3 force-tlsv10 force-tlsv11 "
    "force-tlsv12 force-tlsv13 sigalgs client-sigalgs"
)


def _kw_bind(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    d.bind_lines += 1
    _need(args, 1, "an address such as ':80', '*:80', '[::]:80' or '127.0.0.1:8080'")
    tls = None
    if len(args) > 2:
        option = args[2]
        if option.startswith(",") or args[1].endswith(","):
            raise ConfigError("bind: no blanks around ',' in an address list (a:1,b:2)")
        tls, ssl_on = tls_options.parse_bind_tls(args[2:], LATER_BIND_OPTIONS)
        if tls is not None and not ssl_on:
            ctx.warn("bind: TLS options without 'ssl' are ignored (the listener is plain)")
            tls = None
        if tls is not None and {"h2", "h3"} & set(tls.alpn):
            ctx.warn(
                "bind: lbcore does not speak HTTP/2 yet: 'alpn h2' is not offered, "
                "clients fall back to http/1.1"
            )
    for item in args[1].split(","):
        if not item:
            raise ConfigError(f"bind: empty address in '{args[1]}'")
        for host, port in parse_bind_address(item):
            d.binds.append(Bind(host=host, port=port, source=ctx.source, tls=tls))


def _kw_mode(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 1, "'http' or 'tcp'")
    _no_more(args, 2)
    try:
        d.mode = Mode(args[1])
    except ValueError:
        if args[1] in ("health", "log", "spop"):
            raise NotSupportedYet(f"mode {args[1]}") from None
        raise ConfigError(f"unknown proxy mode '{args[1]}' (expected 'http' or 'tcp')") from None


def _backend_name(name: str) -> str:
    if "%[" in name:
        raise NotSupportedYet(name, "dynamic backend name")
    return name


def _kw_default_backend(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 1, "a backend name")
    _no_more(args, 2)
    d.default_backend = _backend_name(args[1])
    d.default_backend_source = ctx.source


def _kw_use_backend(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    action, cond = aclmod.split_condition(args)
    _need(action, 1, "a backend name, then optionally 'if|unless <condition>'")
    _no_more(action, 2)
    condition = _condition(d, cond, "use_backend", ctx)
    d.use_backends.append(UseBackend(_backend_name(action[1]), condition, ctx.source))


def _kw_acl(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 2, "a name and a criterion: acl NAME CRITERION [FLAGS] [PATTERNS]")
    aclmod.check_acl_name(args[1])
    words = args[2:]
    matcher = aclmod.parse_matcher(words, allow_empty=True)
    if not matcher.patterns and "--" not in words and matcher.fetch not in aclmod.TLS_BOOL_FETCHES:
        ctx.warn(
            f"acl '{args[1]}': no pattern given, so it never matches (add '--' if this is intended)"
        )
    matcher = dataclasses.replace(matcher, source=ctx.source)
    d.acls.append(Acl(name=args[1], matcher=matcher, source=ctx.source))
    d.acl_names.add(args[1])


#: timeout name -> (model field, sections where HAProxy uses it)
TIMEOUTS: dict[str, tuple[str, frozenset[str]]] = {
    "connect": ("connect", frozenset({D, B, L})),
    "client": ("client", frozenset({D, F, L})),
    "server": ("server", frozenset({D, B, L})),
    "http-request": ("http_request", ALL),
    "http-keep-alive": ("http_keep_alive", ALL),
    "queue": ("queue", frozenset({D, B, L})),
    "tunnel": ("tunnel", frozenset({D, B, L})),
    "check": ("check", frozenset({D, B, L})),
}
LATER_TIMEOUTS = frozenset({"tarpit", "client-fin", "server-fin", "client-hs"})


def _kw_timeout(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 1, f"a timeout name ({', '.join(TIMEOUTS)}) and a duration")
    name = args[1]
    if name not in TIMEOUTS:
        if name in LATER_TIMEOUTS:
            raise NotSupportedYet(f"timeout {name}")
        raise ConfigError(
            f"unknown timeout '{name}'{hint(name, TIMEOUTS)} (expected one of "
            f"{', '.join(TIMEOUTS)})"
        )
    _need(args, 2, f"a duration after 'timeout {name}'")
    _no_more(args, 3)
    attr, sections = TIMEOUTS[name]
    # 0 means "no timeout" in HAProxy (an unset tick); the model says None for that
    value = parse_duration(args[2], f"timeout {name}") or None
    if d.section not in sections:
        ctx.warn(f"'timeout {name}' is ignored in a {d.section} section")
    d.timeouts = dataclasses.replace(d.timeouts, **{attr: value})


def _kw_maxconn(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 1, "a number")
    _no_more(args, 2)
    d.maxconn = parse_int(args[1], "maxconn", 0)


def _kw_retries(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 1, "a number")
    _no_more(args, 2)
    d.retries = parse_int(args[1], "retries", 0)


HTTP_REUSE = ("never", "safe", "aggressive", "always")


def _kw_http_reuse(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    """``http-reuse MODE``; HAProxy's own message for a missing or unknown mode."""
    if len(args) < 2 or args[1] not in HTTP_REUSE:
        raise ConfigError("'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'")
    _no_more(args, 2)
    d.http_reuse = args[1]


#: option name -> (Options field, sections where it applies, may take "no"/"default")
OPTIONS: dict[str, tuple[str, frozenset[str], bool]] = {
    "redispatch": ("redispatch", frozenset({D, B, L}), True),
    "forwardfor": ("forwardfor", ALL, False),
    "http-server-close": ("http_server_close", ALL, True),
    "http-keep-alive": ("http_server_close", ALL, True),
    "httplog": ("httplog", frozenset({D, F, L}), False),
    "tcplog": ("tcplog", frozenset({D, F, L}), False),
    "dontlognull": ("dontlognull", frozenset({D, F, L}), True),
    "log-separate-errors": ("log_separate_errors", frozenset({D, F, L}), True),
    "allbackups": ("allbackups", frozenset({D, B, L}), True),
    "accept-invalid-http-request": ("accept_invalid_http_request", frozenset({D, F, L}), True),
}
LATER_OPTIONS = word_set(
    "tcp-check ssl-hello-chk mysql-check pgsql-check redis-check smtpchk ldap-check "
    "external-check log-health-checks httpclose http-buffer-request abortonclose "
    "persist prefer-last-server splice-auto splice-request splice-response tcpka clitcpka "
    "srvtcpka accept-invalid-http-response checkcache contstats "
    "disable-h2-upgrade http-no-delay http-pretend-keepalive http-use-proxy-header "
    "http-restrict-req-hdr-names independent-streams logasap nolinger "
    "originalto socket-stats spop-check tcp-smart-accept tcp-smart-connect transparent "
    "idle-close-on-response http-ignore-probes h1-case-adjust-bogus-client "
    "h1-case-adjust-bogus-server httpslog forceclose http-tunnel"
)


def set_option(d: ProxyDraft, args: list[str], ctx: Context, prefix: str = "") -> None:
    """``option NAME``, ``no option NAME`` (``prefix`` "no") or ``default option NAME``
    (``prefix`` "default": back to what the proxy's defaults section said)."""
    _need(args, 1, "an option name")
    name = args[1]
    if name == "httpchk":
        _option_httpchk(d, args, ctx, prefix)
        return
    if name not in OPTIONS:
        if name in LATER_OPTIONS:
            raise NotSupportedYet(f"option {name}")
        raise ConfigError(f"unknown option '{name}'{hint(name, OPTIONS, LATER_OPTIONS)}")
    attr, sections, negatable = OPTIONS[name]
    if prefix and not negatable:
        raise ConfigError(f"'{prefix} option {name}' is not allowed (HAProxy refuses it too)")
    if len(args) > 2:
        raise NotSupportedYet(f"option {name} {args[2]}")
    if d.section not in sections:
        ctx.warn(f"'option {name}' is ignored in a {d.section} section")
    if prefix == "default":
        value = getattr(d.base_options, attr)
    else:
        # option http-keep-alive is the opposite of http-server-close (the last one wins)
        value = (prefix != "no") != (name == "http-keep-alive")
    d.options = dataclasses.replace(d.options, **{attr: value})
    if name in ("httplog", "tcplog"):
        d.log_format = None  # the last of log-format / option httplog / tcplog wins


def _option_httpchk(d: ProxyDraft, args: list[str], ctx: Context, prefix: str) -> None:
    if d.kind is ProxyKind.FRONTEND:
        ctx.warn("'option httpchk' is ignored in a frontend section")
    if prefix == "no":
        d.http_check.option = None
    elif prefix == "default":
        raise NotSupportedYet("default option httpchk")
    else:
        d.http_check.option = checks.option_httpchk(args)


def _kw_http_check(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    checks.http_check(d.http_check, args)


def _kw_default_server(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    # Parsed now against a placeholder server so that a bad option is reported on
    # this line; kept as words and put in front of each later server's own options.
    _parse_server_options("default-server", [*d.default_server, *args[1:]], 0)
    d.default_server += args[1:]


def _kw_option(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    set_option(d, args, ctx)


def _kw_log_format(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    """``log-format STRING``: one word (quote it or escape its spaces, as HAProxy asks),
    compiled now so that an unknown variable is reported at its line."""
    _need(args, 1, "a format string")
    if len(args) > 2:
        raise ConfigError("log-format expects only one argument, don't forget to escape spaces!")
    from lbcore.logs.format import LogFormat, LogFormatError  # only for configs using it

    try:
        LogFormat(args[1])
    except LogFormatError as exc:
        raise ConfigError(f"log-format: {exc}") from None
    d.log_format = args[1]
    d.options = dataclasses.replace(d.options, httplog=False, tcplog=False)


#: ``tune.http.cookielen``'s default: HAProxy truncates longer cookie captures to this.
COOKIE_CAPTURE_MAX = 63


def _kw_capture(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    """``capture cookie NAME len N`` / ``capture request|response header NAME len N``."""
    kind = args[1] if len(args) > 1 else ""
    if kind == "cookie":
        words = args[2:]
        what = "capture cookie"
    elif kind in ("request", "response"):
        if len(args) < 3 or args[2] != "header":
            raise ConfigError(f"'capture {kind}' expects 'header' NAME 'len' N")
        words = args[3:]
        what = f"capture {kind} header"
    else:
        raise ConfigError("'capture' expects 'cookie' or 'request header' or 'response header'")
    if len(words) < 3 or words[1] != "len":
        raise ConfigError(f"'{what}' expects NAME 'len' N")
    _no_more([what, *words], 4)
    length = parse_int(words[2], f"{what} len", 1)
    cap = Capture(words[0], length, ctx.source)
    if kind == "cookie":
        if d.capture_cookie is not None:
            raise ConfigError(
                f"only one 'capture cookie' per frontend (one at {d.capture_cookie.source})"
            )
        if length > COOKIE_CAPTURE_MAX:
            ctx.warn(f"capture cookie: length {length} truncated to {COOKIE_CAPTURE_MAX}")
            cap = Capture(words[0], COOKIE_CAPTURE_MAX, ctx.source)
        d.capture_cookie = cap
    elif kind == "request":
        d.capture_request_headers.append(cap)
    else:
        d.capture_response_headers.append(cap)


def _kw_log(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 1, "'global' or an address and a facility")
    if args[1] == "global":
        _no_more(args, 2)
        d.logs.append(LogTarget(address="global", source=ctx.source))
        return
    d.logs.append(parse_log(args, ctx.source))


BALANCE_PLAIN = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri")
LATER_BALANCE = frozenset({"url_param", "rdp-cookie", "hash"})


def _kw_balance(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    algos = ", ".join((*BALANCE_PLAIN, "hdr(name)", "random"))
    _need(args, 1, f"an algorithm ({algos})")
    algo, arg = args[1], None
    if "(" in algo and algo.endswith(")"):
        algo, arg = algo[:-1].split("(", 1)
    if algo in LATER_BALANCE:
        raise NotSupportedYet(f"balance {algo}")
    if (algo in BALANCE_PLAIN and arg is None) or (algo == "hdr" and arg):
        pass
    elif algo == "random" and (arg is None or arg.isdigit()):
        if arg is not None:
            parse_int(arg, "balance random draws", 1, 100)
    else:
        raise ConfigError(f"unknown balance algorithm '{args[1]}' (expected one of {algos})")
    if len(args) > 2:
        raise NotSupportedYet(f"balance {algo} {args[2]}")
    d.balance = Balance(algorithm=algo, arg=arg)


LATER_SERVER_OPTIONS = word_set(
    "check-ssl check-sni check-alpn send-proxy send-proxy-v2 send-proxy-v2-ssl "
    "send-proxy-v2-ssl-cn agent-check agent-port agent-inter agent-addr agent-send observe "
    "on-error on-marked-down on-marked-up track resolvers resolve-prefer "
    "resolve-net resolve-opts init-addr id redir error-limit maxqueue minconn "
    "no-ssl source tfo pool-max-conn pool-purge-delay pool-low-conn proto "
    "check-send-proxy no-backup non-stick namespace socks4 ws ciphers ciphersuites curves "
    "ssl-reuse no-ssl-reuse tls-tickets no-tls-tickets crl-file "
    "force-sslv3 force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13 no-sslv3 no-tlsv10 "
    "no-tlsv11 no-tlsv12 no-tlsv13 npn check-proto check-via-socks4 "
    "set-proxy-v2-tlv-fmt shard usesrc log-proto max-reuse allow-0rtt"
)
SERVER_OPTIONS = (
    "weight",
    "maxconn",
    "backup",
    "disabled",
    "enabled",
    "cookie",
    *checks.CHECK_FLAG_OPTIONS,
    *checks.CHECK_VALUE_OPTIONS,
    *tls_options.SERVER_TLS_WORDS,
)


@dataclass(slots=True)
class _ServerOptions:
    weight: int = 1
    maxconn: int = 0
    backup: bool = False
    disabled: bool = False
    check: checks.CheckDraft = field(default_factory=checks.CheckDraft)
    tls: tls_options.ServerTlsDraft = field(default_factory=tls_options.ServerTlsDraft)
    cookie: str | None = None


def _parse_server_options(name: str, words: list[str], start: int) -> _ServerOptions:
    """The options of a ``server`` line (or of ``default-server``) from ``words[start:]``."""
    opts = _ServerOptions()
    i = start
    while i < len(words):
        word = words[i]
        if word in ("weight", "maxconn"):
            if i + 1 >= len(words):
                raise ConfigError(f"server {name}: '{word}' expects a number")
            if word == "weight":
                opts.weight = parse_int(words[i + 1], f"server {name}: weight", 0, 256)
            else:
                opts.maxconn = parse_int(words[i + 1], f"server {name}: maxconn", 0)
            i += 2
            continue
        if word == "cookie":
            if i + 1 >= len(words) or not words[i + 1]:
                raise ConfigError(f"server {name}: 'cookie' expects a value")
            opts.cookie = words[i + 1]
            i += 2
            continue
        used = checks.server_option(name, words, i, opts.check) or opts.tls.option(name, words, i)
        if used:
            i += used
            continue
        if word == "backup":
            opts.backup = True
        elif word == "disabled":
            opts.disabled = True
        elif word == "enabled":
            opts.disabled = False
        elif word in LATER_SERVER_OPTIONS:
            raise NotSupportedYet(word, "server option")
        else:
            raise ConfigError(
                f"server {name}: unknown option '{word}'"
                f"{hint(word, SERVER_OPTIONS, LATER_SERVER_OPTIONS)}"
            )
        i += 1
    return opts


def _kw_server(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 2, "a name and an address: server NAME ADDRESS:PORT [options]")
    name = args[1]
    if not aclmod.ACL_NAME.match(name):
        raise ConfigError(f"invalid server name '{name}'")
    host, port = parse_server_address(args[2])
    opts = _parse_server_options(name, [*d.default_server, *args[3:]], 0)
    for other in d.servers:
        if other.name == name:
            raise ConfigError(
                f"{d.section} '{d.name}': another server named '{name}' was already "
                f"defined at {other.source}, please use distinct names"
            )
    d.servers.append(
        Server(
            name,
            host,
            port,
            opts.weight,
            opts.maxconn,
            opts.backup,
            opts.disabled,
            source=ctx.source,
            check=opts.check.freeze(),
            tls=opts.tls.freeze(name),
            cookie=opts.cookie,
        )
    )


def _kw_http_rule(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    _need(args, 1, "an action")
    action, words, cond = http_rules.split_rule(args)
    rule = http_rules.parse_action(args[0], action, words)
    condition = _condition(d, cond, f"{args[0]} {action}", ctx)
    rule = dataclasses.replace(rule, condition=condition, source=ctx.source)
    (d.http_request_rules if args[0] == "http-request" else d.http_response_rules).append(rule)


def _kw_tcp_request(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    """``tcp-request inspect-delay T`` and ``tcp-request content accept|reject [cond]``."""
    _need(args, 1, "'inspect-delay' or 'content'")
    what = args[1]
    if what == "inspect-delay":
        _need(args, 2, "a duration after 'tcp-request inspect-delay'")
        _no_more(args, 3)
        d.tcp_inspect_delay = parse_duration(args[2], "tcp-request inspect-delay") or None
        return
    if what != "content":
        if what in ("connection", "session"):
            raise NotSupportedYet(f"tcp-request {what}")
        raise ConfigError(
            f"unknown 'tcp-request' keyword '{what}' (expected 'inspect-delay' or 'content')"
        )
    action, cond = aclmod.split_condition(args[2:])
    if not action:
        raise ConfigError("'tcp-request content' expects 'accept' or 'reject'")
    if action[0] not in ("accept", "reject"):
        raise NotSupportedYet(f"tcp-request content {action[0]}")
    _no_more([*args[:2], *action], 3)
    condition = _condition(d, cond, f"tcp-request content {action[0]}", ctx)
    if d.mode is Mode.HTTP:
        ctx.warn("'tcp-request content' rules run only in mode tcp in lbcore; ignored")
    d.tcp_request_content.append(TcpRule(action[0], condition, ctx.source))


def _kw_cookie(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    d.cookie = persist_stats.parse_cookie(args)


def _kw_stats(d: ProxyDraft, args: list[str], ctx: Context) -> None:
    words, cond = aclmod.split_condition(args)
    condition = _condition(d, cond, "stats admin", ctx) if cond else None
    if cond and words[1:2] != ["admin"]:
        raise ConfigError(f"'stats {args[1] if len(args) > 1 else ''}' takes no condition")
    d.stats = persist_stats.stats_keyword(d.stats, words, condition)


@dataclass(frozen=True, slots=True)
class Keyword:
    handler: Handler
    allowed: frozenset[str]
    ignored: frozenset[str] = frozenset()  # HAProxy accepts it there, warns and ignores it


KEYWORDS: dict[str, Keyword] = {
    "bind": Keyword(_kw_bind, frozenset({F, L}), frozenset({B})),
    "mode": Keyword(_kw_mode, ALL),
    "default_backend": Keyword(_kw_default_backend, frozenset({D, F, L}), frozenset({B})),
    "use_backend": Keyword(_kw_use_backend, frozenset({F, L}), frozenset({B})),
    "acl": Keyword(_kw_acl, frozenset({F, B, L})),
    "timeout": Keyword(_kw_timeout, ALL),
    "maxconn": Keyword(_kw_maxconn, frozenset({D, F, L}), frozenset({B})),
    "retries": Keyword(_kw_retries, frozenset({D, B, L}), frozenset({F})),
    "http-reuse": Keyword(_kw_http_reuse, frozenset({D, B, L}), frozenset({F})),
    "option": Keyword(_kw_option, ALL),
    "log": Keyword(_kw_log, ALL),
    "balance": Keyword(_kw_balance, frozenset({D, B, L}), frozenset({F})),
    "server": Keyword(_kw_server, frozenset({B, L})),
    "http-request": Keyword(_kw_http_rule, frozenset({F, B, L})),
    "http-response": Keyword(_kw_http_rule, frozenset({F, B, L})),
    "default-server": Keyword(_kw_default_server, frozenset({D, B, L})),
    "http-check": Keyword(_kw_http_check, frozenset({D, B, L}), frozenset({F})),
    "tcp-request": Keyword(_kw_tcp_request, frozenset({F, L}), frozenset({B})),
    "cookie": Keyword(_kw_cookie, frozenset({D, B, L}), frozenset({F})),
    "stats": Keyword(_kw_stats, ALL),
    "log-format": Keyword(_kw_log_format, frozenset({D, F, L}), frozenset({B})),
    "capture": Keyword(_kw_capture, frozenset({F, L}), frozenset({B})),
}

LATER_KEYWORDS = word_set(
    "stick-table stick tcp-response errorfile errorloc "
    "errorloc302 errorloc303 errorfiles http-error compression filter "
    "fullconn hash-type hash-balance-factor server-template "
    "monitor-uri monitor unique-id-format unique-id-header log-format-sd log-tag "
    "rate-limit redirect description id disabled enabled dispatch force-persist "
    "ignore-persist persist source email-alert http-after-response grace backlog "
    "bind-process declare load-server-state-from-file max-keep-alive-queue external-check "
    "use-server http-send-name-header retry-on server-state-file-name dynamic-cookie-key "
    "ignore-persist"
)
