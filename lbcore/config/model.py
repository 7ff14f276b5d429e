"""The typed, frozen model of an HAProxy-dialect configuration.

Theory of operation: the parser (``lbcore.config.parser``) reads the text once and
builds these objects; everything that runs afterwards (workers, health checks, the
runtime API, log formatting) reads only this model, never raw strings from the file.
Every object that came from a line carries its ``Source`` so that later validation
(an unknown backend named by ``use_backend``, say) can still point at file:line.

Durations are seconds as ``float`` (HAProxy's default unit, milliseconds, is converted
by the parser). ``None`` means "not set", which for timeouts means "no timeout".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from lbcore.persist import CookieSettings


@dataclass(frozen=True, slots=True)
class Source:
    """Where a keyword was read: shown in every error about it."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Mode(enum.Enum):
    HTTP = "http"
    TCP = "tcp"


class ProxyKind(enum.Enum):
    FRONTEND = "frontend"
    BACKEND = "backend"
    LISTEN = "listen"  # both a frontend and a backend, as in HAProxy

    @property
    def has_frontend(self) -> bool:
        return self is not ProxyKind.BACKEND

    @property
    def has_backend(self) -> bool:
        return self is not ProxyKind.FRONTEND


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``timeout <name> <duration>`` values in seconds; ``None`` = unset."""

    connect: float | None = None
    client: float | None = None
    server: float | None = None
    http_request: float | None = None
    http_keep_alive: float | None = None
    queue: float | None = None
    tunnel: float | None = None
    check: float | None = None


@dataclass(frozen=True, slots=True)
class LogTarget:
    """``log ADDR [len N] [format F] FACILITY [LEVEL [MINLEVEL]]`` or ``log global``."""

    address: str  # "127.0.0.1:514", "/dev/log", "stdout", "stderr", or "global"
    facility: str = "local0"
    level: str | None = None
    minlevel: str | None = None
    length: int = 1024
    format: str = "rfc3164"
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class StatsSocket:
    """``stats socket PATH|ipv4@ADDR:PORT [mode M] [level L] ...`` from ``global``."""

    address: str  # a filesystem path, or "host:port" for TCP
    mode: int | None = None  # file mode, e.g. 0o600
    level: str = "admin"  # user | operator | admin
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class TlsGlobals:
    """``global`` TLS defaults, as HAProxy applies them to every ``bind``/``server``."""

    crt_base: str | None = None
    ca_base: str | None = None
    bind_ciphers: str | None = None
    bind_ciphersuites: str | None = None
    bind_options: tuple[str, ...] = ()  # words, as if written on each ``bind ... ssl``
    server_ciphers: str | None = None
    server_ciphersuites: str | None = None
    server_options: tuple[str, ...] = ()  # words, as if written on each ``server ... ssl``
    server_verify: str = "required"  # ssl-server-verify
    dh_param: int | None = None  # tune.ssl.default-dh-param (accepted; ECDHE is used)
    dh_param_file: str | None = None  # ssl-dh-param-file: DH parameters for DHE suites


@dataclass(frozen=True, slots=True)
class Global:
    maxconn: int = 4096
    workers: int | None = None  # nbproc/nbthread; None = one per core
    logs: tuple[LogTarget, ...] = ()
    stats_sockets: tuple[StatsSocket, ...] = ()
    user: str | None = None
    group: str | None = None
    pidfile: str | None = None
    daemon: bool = False
    hard_stop_after: float | None = None
    stats_timeout: float | None = None  # idle timeout of stats socket sessions (10 s)
    # HAProxy's buffer tuning: a request head must fit in bufsize - maxrewrite bytes
    # (else 414/431), with at most maxhdr header fields (else 431).
    tune_bufsize: int = 16384
    tune_maxrewrite: int = 1024
    tune_http_maxhdr: int = 101
    # TLS defaults: crt-base, ca-base, ssl-default-bind-*, ssl-default-server-*,
    # ssl-server-verify (applied to bind and server lines by the parser's last step)
    tls: TlsGlobals = field(default_factory=TlsGlobals)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One ACL criterion: a sample fetch, its flags and its patterns.

    ``fetch`` is the name as written (``path``, ``path_beg``, ``path_end``, ``path_reg``,
    ``hdr``, ``hdr_beg``, ``src``, ``method``, and later TLS fetches). ``arg`` is the
    fetch's argument (the header name of ``hdr(host)``), ``ignore_case`` is ``-i``.
    """

    fetch: str
    arg: str | None
    patterns: tuple[str, ...]
    ignore_case: bool = False
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class Acl:
    """``acl NAME criterion [flags] [patterns]``; several lines of one name are OR-ed."""

    name: str
    matcher: Matcher
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class AclTerm:
    """One operand of a condition: a named ACL or an anonymous ``{ ... }`` one."""

    negate: bool
    name: str | None = None  # a named ACL (all its lines are OR-ed)
    anonymous: Matcher | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """``if|unless`` followed by terms: AND within a group, ``||``/``or`` between groups."""

    unless: bool
    groups: tuple[tuple[AclTerm, ...], ...]


@dataclass(frozen=True, slots=True)
class UseBackend:
    backend: str
    condition: Condition | None
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class HttpRule:
    """One ``http-request``/``http-response`` action.

    ``action``: ``set-header``, ``add-header``, ``del-header``, ``redirect``, ``deny``.
    For headers, ``name``/``value`` hold the header; for ``redirect``, ``redirect_kind``
    is ``location``/``prefix``/``scheme``, ``value`` the target and ``code`` the status.
    For ``deny``, ``code`` is the status (``deny_status``, default 403).
    """

    action: str
    name: str | None = None
    value: str | None = None
    redirect_kind: str | None = None
    code: int | None = None
    condition: Condition | None = None
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    """``balance ALGO[(arg)]``: roundrobin, static-rr, leastconn, first, source, uri,
    hdr(name), random."""

    algorithm: str = "roundrobin"
    arg: str | None = None  # the header name for hdr(name)


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """``server ... check [inter T] [fastinter T] [downinter T] [rise N] [fall N]
    [port P] [addr A] [slowstart T]``: present on a ``Server`` only with ``check``.

    Durations in seconds; ``None`` means "as ``inter``" (HAProxy's rule for fastinter
    and downinter). ``port``/``addr`` send the check elsewhere than the traffic.
    """

    inter: float = 2.0
    fastinter: float | None = None
    downinter: float | None = None
    rise: int = 2
    fall: int = 3
    port: int | None = None
    addr: str | None = None
    slowstart: float = 0.0


@dataclass(frozen=True, slots=True)
class HttpCheckSpec:
    """``option httpchk [METHOD URI [VERSION]]`` plus ``http-check send``/``expect``.

    ``expect_kind`` is None for HAProxy's default verdict (any 2xx or 3xx status),
    else ``status``, ``rstatus``, ``string`` or ``rstring`` with ``expect_pattern``;
    ``expect_negate`` is the ``!`` before it.
    """

    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: tuple[tuple[str, str], ...] = ()
    expect_kind: str | None = None
    expect_pattern: str = ""
    expect_negate: bool = False


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The TLS options of one ``bind ... ssl`` line (or one ``crt-list`` entry's overrides).

    Only words here: certificates are read and checked by ``lbcore.tls.context``
    (``load_config`` does it once so that ``lbcore check`` reports a bad file at the
    bind's line; each worker loads them again, so a reload picks up replaced files).
    """

    crts: tuple[str, ...] = ()  # PEM files or directories, in order
    crt_lists: tuple[str, ...] = ()
    alpn: tuple[str, ...] = ()
    min_version: str | None = None
    max_version: str | None = None
    ciphers: str | None = None
    ciphersuites: str | None = None  # TLS 1.3; see ``lbcore.tls.context._apply``
    no_versions: tuple[str, ...] = ()  # e.g. ("no-tlsv11",)
    strict_sni: bool = False
    ca_file: str | None = None
    verify: str = "none"  # none | optional | required
    tickets: bool = True  # session tickets (``no-tls-tickets`` turns them off)
    prefer_client_ciphers: bool = False
    dh_param_file: str | None = None  # from global ssl-dh-param-file


@dataclass(frozen=True, slots=True)
class ServerTls:
    """``server ... ssl [verify none|required] [ca-file F] [sni EXPR] [crt PEM] ...``.

    ``sni`` is the sample expression as written: ``str(NAME)`` or ``req.hdr(host)``.
    ``verify`` defaults to ``ssl-server-verify`` (required), as in HAProxy.
    """

    verify: str | None = None  # None until the parser applies ssl-server-verify
    ca_file: str | None = None
    sni: str | None = None
    crt: str | None = None
    alpn: tuple[str, ...] = ()
    min_version: str | None = None
    max_version: str | None = None
    ciphers: str | None = None
    verifyhost: str | None = None
    no_versions: tuple[str, ...] = ()  # no-tlsv10... (from the line or the global defaults)
    tickets: bool = True


@dataclass(frozen=True, slots=True)
class Server:
    """``server NAME ADDR:PORT [weight N] [maxconn N] [backup] [disabled] [check ...]``."""

    name: str
    host: str
    port: int
    weight: int = 1
    maxconn: int = 0  # 0 = unlimited
    backup: bool = False
    disabled: bool = False
    source: Source | None = None
    check: CheckSpec | None = None  # None: the server is not health-checked
    tls: ServerTls | None = None  # None: plain TCP to the server
    cookie: str | None = None  # ``cookie VALUE``: the persistence cookie naming it

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Bind:
    host: str  # "" or "*" = all IPv4 addresses; "::" for IPv6
    port: int
    source: Source | None = None
    tls: TlsSettings | None = None  # ``ssl`` on the line: TLS is terminated here


@dataclass(frozen=True, slots=True)
class TcpRule:
    """``tcp-request content accept|reject [if|unless COND]``."""

    action: str  # accept | reject
    condition: Condition | None = None
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """``option`` flags that apply to a proxy (inherited from ``defaults``)."""

    redispatch: bool = False
    forwardfor: bool = False
    http_server_close: bool = False
    httplog: bool = False
    tcplog: bool = False
    dontlognull: bool = False
    log_separate_errors: bool = False  # abnormal requests logged at "err", not "info"
    #: use every usable backup server at once, not only the first (HAProxy's
    #: ``option allbackups``)
    allbackups: bool = False
    #: accept bytes beyond ASCII in a request target (HAProxy's ``option
    #: accept-invalid-http-request``; lbcore relaxes only that check)
    accept_invalid_http_request: bool = False


@dataclass(frozen=True, slots=True)
class Capture:
    """``capture request header NAME len N``, ``capture response header NAME len N`` or
    ``capture cookie NAME len N``: what a frontend copies into its log lines (``%hr``,
    ``%hs``, ``%CC``/``%CS``), truncated to ``length`` characters."""

    name: str
    length: int
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class StatsPage:
    """``stats enable|uri|realm|auth|refresh|admin|hide-version`` of one proxy.

    ``auth`` holds ``(user, password)`` pairs (empty: no authentication asked);
    ``admin`` the conditions of ``stats admin if|unless ...`` lines (any true one
    allows the admin actions; none: read only).
    """

    uri: str = "/haproxy?stats"
    realm: str = "HAProxy Statistics"
    auth: tuple[tuple[str, str], ...] = ()
    refresh: float | None = None
    admin: tuple[Condition, ...] = ()
    hide_version: bool = False
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class Proxy:
    """A ``frontend``, ``backend`` or ``listen`` section after ``defaults`` were applied."""

    name: str
    kind: ProxyKind
    mode: Mode = Mode.TCP  # HAProxy's default when neither defaults nor section sets it
    binds: tuple[Bind, ...] = ()
    default_backend: str | None = None
    use_backends: tuple[UseBackend, ...] = ()
    acls: tuple[Acl, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    maxconn: int | None = None
    retries: int = 3
    options: Options = field(default_factory=Options)
    http_request_rules: tuple[HttpRule, ...] = ()
    http_response_rules: tuple[HttpRule, ...] = ()
    balance: Balance = field(default_factory=Balance)
    servers: tuple[Server, ...] = ()
    logs: tuple[LogTarget, ...] = ()
    source: Source | None = None
    httpchk: HttpCheckSpec | None = None  # None: checks are TCP connects
    tcp_inspect_delay: float | None = None  # ``tcp-request inspect-delay``
    tcp_request_content: tuple[TcpRule, ...] = ()
    cookie: CookieSettings | None = None  # ``cookie NAME insert|rewrite|prefix ...``
    stats: StatsPage | None = None  # the stats page, when ``stats ...`` lines enable it
    log_format: str | None = None  # ``log-format``: replaces option httplog/tcplog
    capture_request_headers: tuple[Capture, ...] = ()
    capture_response_headers: tuple[Capture, ...] = ()
    capture_cookie: Capture | None = None  # one per frontend, as in HAProxy
    #: ``http-reuse``: which requests may take another client's idle server connection
    #: (never | safe | aggressive | always; HAProxy's default is safe)
    http_reuse: str = "safe"


@dataclass(frozen=True, slots=True)
class Config:
    """A whole configuration: ``global`` plus every proxy in file order."""

    global_: Global
    proxies: tuple[Proxy, ...]
    files: tuple[str, ...] = ()

    @property
    def frontends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.kind.has_frontend)

    @property
    def backends(self) -> dict[str, Proxy]:
        return {p.name: p for p in self.proxies if p.kind.has_backend}
