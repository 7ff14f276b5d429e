"""Every supported keyword and form, parsed into the model: one row per form.

The same rows feed ``test_haproxy_oracle.py``: HAProxy must accept each configuration.
"""

import pytest

from lbcore.config import ConfigErrors, parse_text
from lbcore.config.model import (
    Acl,
    AclTerm,
    Balance,
    Bind,
    Capture,
    CheckSpec,
    Condition,
    HttpCheckSpec,
    HttpRule,
    LogTarget,
    Matcher,
    Mode,
    Options,
    Server,
    StatsPage,
    StatsSocket,
    UseBackend,
)
from lbcore.persist import CookieSettings
from tests.unit.config.samples import Row, be, fe, ls, strip


def glob(attr):
    return lambda c: getattr(c.global_, attr)


def t(name):
    return lambda p: getattr(p.timeouts, name)


def cond(*groups, unless=False):
    return Condition(unless=unless, groups=tuple(tuple(g) for g in groups))


def named(name, negate=False):
    return AclTerm(negate=negate, name=name)


def anon(fetch, *patterns, arg=None, i=False, negate=False):
    return AclTerm(negate=negate, anonymous=Matcher(fetch, arg, tuple(patterns), i))


def last_rule(p):
    return p.http_request_rules[-1]


def server(name):
    return lambda c: next(s for p in c.proxies for s in p.servers if s.name == name)


OPT = Options()
ROWS = [
    # --- global ---
    Row("global", "maxconn 100", glob("maxconn"), 100),
    Row("global", "nbthread 4", glob("workers"), 4),
    # nbproc: removed from HAProxy in 2.5; lbcore keeps it as the worker count
    Row("global", "nbproc 3", glob("workers"), 3, haproxy=False),
    Row("global", "log 127.0.0.1:514 local0", glob("logs"), (LogTarget("127.0.0.1:514"),)),
    Row(
        "global",
        "log /dev/log local1 info notice",
        glob("logs"),
        (LogTarget("/dev/log", "local1", "info", "notice"),),
    ),
    Row(
        "global",
        "log stdout len 2048 format raw daemon",
        glob("logs"),
        (LogTarget("stdout", "daemon", length=2048, format="raw"),),
    ),
    Row(
        "global",
        "log udp@127.0.0.1:514 local0\nlog ipv6@[::1]:514 local0\nlog ::1:514 local0",
        lambda c: [lt.address for lt in c.global_.logs],
        ["udp@127.0.0.1:514", "ipv6@[::1]:514", "::1:514"],
    ),
    Row(
        "global",
        "log 127.0.0.1 local0\nlog 127.0.0.2:5140 local2 err",
        lambda c: [(lt.address, lt.facility, lt.level) for lt in c.global_.logs],
        [("127.0.0.1", "local0", None), ("127.0.0.2:5140", "local2", "err")],
    ),
    Row(
        "global",
        "stats socket /tmp/lbcore-t.sock",
        glob("stats_sockets"),
        (StatsSocket("/tmp/lbcore-t.sock", level="operator"),),
    ),
    Row(
        "global",
        "stats socket /tmp/lbcore-t.sock mode 600 level admin",
        glob("stats_sockets"),
        (StatsSocket("/tmp/lbcore-t.sock", mode=0o600, level="admin"),),
    ),
    Row(
        "global",
        "stats socket /tmp/lbcore-t.sock level user mode 0660 expose-fd listeners",
        glob("stats_sockets"),
        (StatsSocket("/tmp/lbcore-t.sock", mode=0o660, level="user"),),
    ),
    Row(
        "global",
        "stats socket ipv4@127.0.0.1:19999 level operator\nstats socket ipv6@[::1]:19998",
        glob("stats_sockets"),
        (
            StatsSocket("127.0.0.1:19999", level="operator"),
            StatsSocket("::1:19998", level="operator"),
        ),
    ),
    Row(
        "global",
        "stats socket unix@/tmp/lbcore-u.sock",
        lambda c: c.global_.stats_sockets[0].address,
        "/tmp/lbcore-u.sock",
    ),
    Row("global", "stats timeout 30s", glob("stats_timeout"), 30.0),
    Row("global", "user nobody", glob("user"), "nobody"),
    Row("global", "group nogroup", glob("group"), "nogroup"),
    Row("global", "pidfile /tmp/lbcore-t.pid", glob("pidfile"), "/tmp/lbcore-t.pid"),
    Row("global", "daemon", glob("daemon"), True),
    Row("global", "hard-stop-after 30s", glob("hard_stop_after"), 30.0),
    Row("global", "hard-stop-after 1500", glob("hard_stop_after"), 1.5),
    Row("global", "hard-stop-after 0", glob("hard_stop_after"), None),
    # --- bind ---
    Row(
        "frontend",
        "bind :18010",
        lambda c: fe(c).binds[1:],
        (Bind("", 18010),),
    ),
    Row("frontend", "bind *:18010", lambda c: fe(c).binds[1:], (Bind("", 18010),)),
    Row("frontend", "bind [::]:18010", lambda c: fe(c).binds[1:], (Bind("::", 18010),)),
    Row("frontend", "bind :::18010", lambda c: fe(c).binds[1:], (Bind("::", 18010),)),
    Row("frontend", "bind [::1]:18010", lambda c: fe(c).binds[1:], (Bind("::1", 18010),)),
    Row("frontend", "bind ipv6@:18010", lambda c: fe(c).binds[1:], (Bind("::", 18010),)),
    Row("frontend", "bind ipv4@:18010", lambda c: fe(c).binds[1:], (Bind("", 18010),)),
    Row(
        "frontend",
        "bind ipv4@127.0.0.1:18010",
        lambda c: fe(c).binds[1:],
        (Bind("127.0.0.1", 18010),),
    ),
    Row(
        "frontend",
        "bind 127.0.0.1:18010,127.0.0.2:18011,[::1]:18012",
        lambda c: fe(c).binds[1:],
        (Bind("127.0.0.1", 18010), Bind("127.0.0.2", 18011), Bind("::1", 18012)),
    ),
    Row(
        "frontend",
        "bind 127.0.0.1:18010-18012",
        lambda c: [b.port for b in fe(c).binds[1:]],
        [18010, 18011, 18012],
    ),
    Row(
        "listen",
        "bind 127.0.0.3:18010\nbind localhost:18011",
        lambda c: ls(c).binds,
        (Bind("127.0.0.1", 18002), Bind("127.0.0.3", 18010), Bind("localhost", 18011)),
    ),
    # --- mode ---
    Row("backend", "mode http", lambda c: be(c).mode, Mode.HTTP),
    Row("listen", "mode tcp", lambda c: ls(c).mode, Mode.TCP),
    Row("defaults", "mode tcp", lambda c: {p.mode for p in c.proxies}, {Mode.TCP}, mode="tcp"),
    # --- default_backend, use_backend ---
    Row("frontend", "default_backend api", lambda c: fe(c).default_backend, "api"),
    Row("listen", "default_backend api", lambda c: ls(c).default_backend, "api"),
    Row("frontend", "use_backend api", lambda c: fe(c).use_backends, (UseBackend("api", None),)),
    Row(
        "frontend",
        "acl a path /x\nuse_backend api if a",
        lambda c: fe(c).use_backends,
        (UseBackend("api", cond([named("a")])),),
    ),
    Row(
        "frontend",
        "acl a path /x\nuse_backend api unless a",
        lambda c: fe(c).use_backends[0].condition,
        cond([named("a")], unless=True),
    ),
    Row(
        "frontend",
        "acl a path /x\nacl b method POST\nuse_backend api if a !b || b OR !a",
        lambda c: fe(c).use_backends[0].condition,
        cond([named("a"), named("b", True)], [named("b")], [named("a", True)]),
    ),
    Row(
        "frontend",
        "acl a path /x\nuse_backend api if ! a",
        lambda c: fe(c).use_backends[0].condition,
        cond([named("a", True)]),
    ),
    Row(
        "frontend",
        "acl a path /x\nuse_backend api if !!a",
        lambda c: fe(c).use_backends[0].condition,
        cond([named("a")]),
    ),
    Row(
        "frontend",
        "use_backend api if { path_beg /api/ } !{ src 10.0.0.0/8 }",
        lambda c: fe(c).use_backends[0].condition,
        cond([anon("path_beg", "/api/"), anon("src", "10.0.0.0/8", negate=True)]),
    ),
    Row(
        "frontend",
        "use_backend api if { hdr(host) -i api.example.com www.example.com }",
        lambda c: fe(c).use_backends[0].condition,
        cond([anon("hdr", "api.example.com", "www.example.com", arg="host", i=True)]),
    ),
    Row(
        "frontend",
        "use_backend api if METH_POST || LOCALHOST",
        lambda c: fe(c).use_backends[0].condition,
        cond([anon("method", "POST")], [anon("src", "127.0.0.1/8", "::1")]),
    ),
    Row(
        "frontend",
        "acl a path /a\nacl b path /b\nuse_backend api if a\nuse_backend be if b",
        lambda c: [(u.backend, u.condition.groups[0][0].name) for u in fe(c).use_backends],
        [("api", "a"), ("be", "b")],
    ),
    # --- acl criteria and flags ---
    *[
        Row(
            "frontend",
            f"acl x {criterion}",
            lambda c: strip(fe(c).acls),
            (Acl("x", matcher),),
        )
        for criterion, matcher in [
            ("path /index.html /", Matcher("path", None, ("/index.html", "/"))),
            ("path_beg /static/", Matcher("path_beg", None, ("/static/",))),
            ("path_end .css .js", Matcher("path_end", None, (".css", ".js"))),
            (r"path_reg ^/api/v[0-9]+/", Matcher("path_reg", None, (r"^/api/v[0-9]+/",))),
            ("hdr(host) -i example.com", Matcher("hdr", "host", ("example.com",), True)),
            ("hdr(X-Forwarded-Proto) https", Matcher("hdr", "X-Forwarded-Proto", ("https",))),
            ("hdr_beg(host) -i www.", Matcher("hdr_beg", "host", ("www.",), True)),
            (
                "src 127.0.0.1 10.0.0.0/8 ::1",
                Matcher("src", None, ("127.0.0.1", "10.0.0.0/8", "::1")),
            ),
            ("src 10.0.0.0/255.0.0.0", Matcher("src", None, ("10.0.0.0/255.0.0.0",))),
            ("method GET HEAD", Matcher("method", None, ("GET", "HEAD"))),
            ("path -i -m beg /API", Matcher("path_beg", None, ("/API",), True)),
            ("hdr(host) -m beg www.", Matcher("hdr_beg", "host", ("www.",))),
            ("path -m reg ^/x$", Matcher("path_reg", None, ("^/x$",))),
            ("path -m str /exact", Matcher("path", None, ("/exact",))),
            ("path -- -dash", Matcher("path", None, ("-dash",))),
            ("path_sub /api/", Matcher("path_sub", None, ("/api/",))),
            ("path -m sub /api/", Matcher("path_sub", None, ("/api/",))),
            ("url /a?b=1", Matcher("url", None, ("/a?b=1",))),
            ("url_beg -i /A", Matcher("url_beg", None, ("/A",), True)),
            ("url_end .php?x", Matcher("url_end", None, (".php?x",))),
            ("url_sub debug=1", Matcher("url_sub", None, ("debug=1",))),
            ("url_reg [?&]id=[0-9]+", Matcher("url_reg", None, ("[?&]id=[0-9]+",))),
            ("url -m beg /static", Matcher("url_beg", None, ("/static",))),
            ("hdr_end(host) -i .example.com", Matcher("hdr_end", "host", (".example.com",), True)),
            ("hdr_sub(user-agent) curl", Matcher("hdr_sub", "user-agent", ("curl",))),
            ("hdr_reg(host) ^www[0-9]\\.", Matcher("hdr_reg", "host", ("^www[0-9]\\.",))),
            ("hdr(host) -m sub example", Matcher("hdr_sub", "host", ("example",))),
            ("path_beg", Matcher("path_beg", None, ())),  # never matches (HAProxy warns)
        ]
    ],
    Row(
        "frontend",
        "acl x path /a\nacl x path /b",
        lambda c: [a.matcher.patterns for a in fe(c).acls],
        [("/a",), ("/b",)],
    ),
    Row("backend", "acl x path /a", lambda c: be(c).acls[0].name, "x"),
    # --- timeouts ---
    *[
        Row(
            section,
            f"timeout {name} {text}",
            lambda c, f=field, g=get: getattr(g(c).timeouts, f),
            v,
        )
        for section, get in (("frontend", fe), ("backend", be), ("listen", ls))
        for name, field, text, v in [
            ("connect", "connect", "2s", 2.0),
            ("client", "client", "1m", 60.0),
            ("server", "server", "1500", 1.5),
            ("http-request", "http_request", "10s", 10.0),
            ("http-keep-alive", "http_keep_alive", "500ms", 0.5),
            ("queue", "queue", "3s", 3.0),
            ("tunnel", "tunnel", "1h", 3600.0),
            ("check", "check", "2s", 2.0),
        ]
        if (section, name)
        not in {
            ("frontend", "connect"),
            ("frontend", "server"),
            ("frontend", "queue"),
            ("frontend", "tunnel"),
            ("frontend", "check"),
            ("backend", "client"),
        }
    ],
    Row(
        "defaults",
        "timeout queue 7s\ntimeout tunnel 2d\ntimeout http-request 250us",
        lambda c: [
            (p.timeouts.queue, p.timeouts.tunnel, p.timeouts.http_request) for p in c.proxies
        ],
        [(7.0, 172800.0, 0.00025)] * 4,
    ),
    Row(
        "backend",
        "timeout server 1d",
        lambda c: (be(c).timeouts.server, fe(c).timeouts.server),
        (86400.0, 5.0),
    ),
    Row(
        "backend",
        "timeout server 0",
        lambda c: (be(c).timeouts.server, fe(c).timeouts.server),
        (None, 5.0),  # 0 is "no timeout" in HAProxy, None in the model
    ),
    # --- maxconn, retries ---
    Row("frontend", "maxconn 500", lambda c: fe(c).maxconn, 500),
    Row("listen", "maxconn 50", lambda c: ls(c).maxconn, 50),
    Row("defaults", "maxconn 300", lambda c: [fe(c).maxconn, ls(c).maxconn], [300, 300]),
    Row("backend", "retries 5", lambda c: be(c).retries, 5),
    Row("backend", "retries 0", lambda c: be(c).retries, 0),
    Row("defaults", "retries 1", lambda c: [p.retries for p in c.proxies], [1, 1, 1, 1]),
    # --- http-reuse (HAProxy's default: safe) ---
    Row("backend", "retries 3", lambda c: be(c).http_reuse, "safe"),  # not set: the default
    Row("backend", "http-reuse never", lambda c: be(c).http_reuse, "never"),
    Row("backend", "http-reuse safe", lambda c: be(c).http_reuse, "safe"),
    Row("backend", "http-reuse aggressive", lambda c: be(c).http_reuse, "aggressive"),
    Row("listen", "http-reuse always", lambda c: ls(c).http_reuse, "always"),
    Row(
        "defaults",
        "http-reuse never",
        lambda c: [be(c).http_reuse, ls(c).http_reuse],
        ["never", "never"],
    ),
    Row("frontend", "http-reuse always", lambda c: fe(c).http_reuse, "safe"),  # warned
    # --- options ---
    Row("backend", "option redispatch", lambda c: be(c).options, Options(redispatch=True)),
    Row("frontend", "option forwardfor", lambda c: fe(c).options, Options(forwardfor=True)),
    Row("backend", "option forwardfor", lambda c: be(c).options.forwardfor, True),
    Row("frontend", "option http-server-close", lambda c: fe(c).options.http_server_close, True),
    Row(
        "frontend",
        "option http-server-close\noption http-keep-alive",
        lambda c: fe(c).options.http_server_close,
        False,
    ),
    Row("backend", "option allbackups", lambda c: be(c).options, Options(allbackups=True)),
    Row(
        "frontend",
        "option accept-invalid-http-request",
        lambda c: fe(c).options,
        Options(accept_invalid_http_request=True),
    ),
    Row("listen", "option allbackups", lambda c: ls(c).options.allbackups, True),
    Row(
        "defaults",
        "option allbackups",
        lambda c: [p.options.allbackups for p in c.proxies],
        [True, True, True, True],
    ),
    Row(
        "backend",
        "no option allbackups",
        lambda c: (be(c).options.allbackups, ls(c).options.allbackups),
        (False, True),
        more={"defaults": "option allbackups"},
    ),
    Row("frontend", "option httplog", lambda c: fe(c).options, Options(httplog=True)),
    Row("frontend", "option tcplog", lambda c: fe(c).options.tcplog, True, mode="tcp"),
    Row("frontend", "option dontlognull", lambda c: fe(c).options.dontlognull, True),
    Row(
        "defaults",
        "option redispatch\noption dontlognull\noption httplog",
        lambda c: be(c).options,
        Options(redispatch=True, dontlognull=True, httplog=True),
    ),
    Row(
        "defaults",
        "option redispatch\noption forwardfor",
        lambda c: [p.options.redispatch for p in c.proxies],
        [True, True, True, True],
    ),
    # "no option X" in a proxy undoes what its defaults section set
    *[
        Row(
            "frontend",
            f"no option {name}",
            lambda c, f=field: getattr(fe(c).options, f),
            False,
        )
        for name, field in [
            ("http-server-close", "http_server_close"),
            ("dontlognull", "dontlognull"),
        ]
    ],
    Row("backend", "no option redispatch", lambda c: be(c).options.redispatch, False),
    Row(
        "frontend",
        "no option http-server-close\nno option dontlognull",
        lambda c: (fe(c).options, be(c).options),
        (Options(), Options(http_server_close=True, dontlognull=True)),
        more={"defaults": "option http-server-close\noption dontlognull"},
    ),
    # "default option X" on plain flags: documented by HAProxy, but 2.6's parser refuses
    # it ("cannot handle unexpected argument"); it works for redispatch (next rows)
    Row(
        "frontend",
        "option http-server-close\ndefault option http-server-close",
        lambda c: (fe(c).options.http_server_close, be(c).options.http_server_close),
        (False, False),
        haproxy=False,
    ),
    Row(
        "backend",
        "no option redispatch\ndefault option redispatch",
        lambda c: be(c).options.redispatch,
        True,
        more={"defaults": "option redispatch"},
    ),
    Row(
        "defaults",
        "option dontlognull",
        lambda c: [p.options.dontlognull for p in c.proxies],
        [True, True, True, True],
    ),
    Row(
        "defaults",
        "option redispatch",
        lambda c: be(c).options.redispatch,
        True,
    ),
    Row(
        "frontend",
        "option dontlognull\ndefault option dontlognull",
        lambda c: fe(c).options.dontlognull,
        False,
        haproxy=False,  # as above
    ),
    Row(
        "frontend",
        "no option http-keep-alive",
        lambda c: fe(c).options.http_server_close,
        True,
    ),
    # --- log in proxies ---
    Row("frontend", "log global", lambda c: strip(fe(c).logs), (LogTarget("global"),)),
    Row(
        "frontend",
        "log 127.0.0.1:514 local3 warning",
        lambda c: strip(fe(c).logs),
        (LogTarget("127.0.0.1:514", "local3", "warning"),),
    ),
    Row("defaults", "log global", lambda c: [len(p.logs) for p in c.proxies], [1, 1, 1, 1]),
    # --- captures, log-format, log-separate-errors ---
    Row(
        "frontend",
        "capture request header Host len 15\ncapture request header User-Agent len 64",
        lambda c: strip(fe(c).capture_request_headers),
        (Capture("Host", 15), Capture("User-Agent", 64)),
    ),
    Row(
        "listen",
        "capture response header Content-Type len 20",
        lambda c: strip(ls(c).capture_response_headers),
        (Capture("Content-Type", 20),),
    ),
    Row(
        "frontend",
        "capture cookie SRV= len 32",
        lambda c: strip(fe(c).capture_cookie),
        Capture("SRV=", 32),
    ),
    # longer than tune.http.cookielen: HAProxy truncates to 63, with a warning
    Row("frontend", "capture cookie S len 99", lambda c: fe(c).capture_cookie.length, 63),
    # HAProxy ignores captures in backends (with a warning)
    Row(
        "backend", "capture request header Host len 5", lambda c: be(c).capture_request_headers, ()
    ),
    Row(
        "frontend",
        'log-format "%ci:%cp [%tr] %ft %b/%s %ST %B %{+Q}r"',
        lambda c: fe(c).log_format,
        "%ci:%cp [%tr] %ft %b/%s %ST %B %{+Q}r",
    ),
    Row("frontend", r"log-format %ci\ %ST", lambda c: fe(c).log_format, "%ci %ST"),
    Row(
        "defaults",
        'log-format "%ci %ST"',
        lambda c: (fe(c).log_format, ls(c).log_format),
        ("%ci %ST", "%ci %ST"),
    ),
    # the last of log-format and option httplog/tcplog wins
    Row(
        "frontend",
        'option httplog\nlog-format "%ci"',
        lambda c: (fe(c).log_format, fe(c).options.httplog),
        ("%ci", False),
    ),
    Row(
        "frontend",
        'log-format "%ci"\noption httplog',
        lambda c: (fe(c).log_format, fe(c).options.httplog),
        (None, True),
    ),
    Row("backend", 'log-format "%ci"', lambda c: be(c).log_format, None),  # ignored, warned
    Row(
        "frontend", "option log-separate-errors", lambda c: fe(c).options.log_separate_errors, True
    ),
    Row(
        "frontend",
        "no option log-separate-errors",
        lambda c: (fe(c).options.log_separate_errors, be(c).options.log_separate_errors),
        (False, True),
        more={"defaults": "option log-separate-errors"},
    ),
    # --- http-request / http-response ---
    Row(
        "frontend",
        "http-request set-header X-Forwarded-Proto https",
        lambda c: strip(last_rule(fe(c))),
        HttpRule("set-header", "X-Forwarded-Proto", "https"),
    ),
    Row(
        "frontend",
        'http-request add-header X-Via "lbcore %[src]"',
        lambda c: strip(last_rule(fe(c))),
        HttpRule("add-header", "X-Via", "lbcore %[src]"),
    ),
    Row(
        "backend",
        "http-request del-header X-Secret",
        lambda c: strip(last_rule(be(c))),
        HttpRule("del-header", "X-Secret"),
    ),
    Row(
        "frontend",
        "http-request redirect location /moved",
        lambda c: strip(last_rule(fe(c))),
        HttpRule("redirect", value="/moved", redirect_kind="location", code=302),
    ),
    Row(
        "frontend",
        "http-request redirect prefix https://example.com code 301",
        lambda c: strip(last_rule(fe(c))),
        HttpRule("redirect", value="https://example.com", redirect_kind="prefix", code=301),
    ),
    Row(
        "frontend",
        "http-request redirect scheme https code 308 unless { hdr(x-proto) https }",
        lambda c: strip(last_rule(fe(c))),
        HttpRule(
            "redirect",
            value="https",
            redirect_kind="scheme",
            code=308,
            condition=cond([anon("hdr", "https", arg="x-proto")], unless=True),
        ),
    ),
    *[
        Row(
            "frontend",
            f"http-request redirect location /r code {code}",
            lambda c: last_rule(fe(c)).code,
            code,
        )
        for code in (301, 302, 303, 307, 308)
    ],
    Row(
        "frontend",
        "http-request deny if { path_beg /admin }",
        lambda c: strip(last_rule(fe(c))),
        HttpRule("deny", code=403, condition=cond([anon("path_beg", "/admin")])),
    ),
    Row(
        "frontend",
        "http-request deny deny_status 429 if { src 192.0.2.0/24 }",
        lambda c: last_rule(fe(c)).code,
        429,
    ),
    Row(
        "listen",
        "http-request deny status 404 if { method TRACE }",
        lambda c: last_rule(ls(c)).code,
        404,
    ),
    Row(
        "frontend",
        "acl adm path_beg /admin\nhttp-request set-header X-Admin 1 if adm",
        lambda c: last_rule(fe(c)).condition,
        cond([named("adm")]),
    ),
    Row(
        "backend",
        "http-response set-header Cache-Control no-cache",
        lambda c: strip(be(c).http_response_rules),
        (HttpRule("set-header", "Cache-Control", "no-cache"),),
    ),
    Row(
        "frontend",
        "http-response del-header Server\nhttp-response add-header X-Served-By lbcore",
        lambda c: strip(fe(c).http_response_rules),
        (HttpRule("del-header", "Server"), HttpRule("add-header", "X-Served-By", "lbcore")),
    ),
    Row(
        "frontend",
        "http-request set-header A 1\nhttp-request del-header B\nhttp-request deny",
        lambda c: [r.action for r in fe(c).http_request_rules],
        ["set-header", "del-header", "deny"],
    ),
    # --- balance ---
    *[
        Row("backend", f"balance {text}", lambda c: be(c).balance, expected)
        for text, expected in [
            ("roundrobin", Balance("roundrobin")),
            ("static-rr", Balance("static-rr")),
            ("leastconn", Balance("leastconn")),
            ("first", Balance("first")),
            ("source", Balance("source")),
            ("uri", Balance("uri")),
            ("hdr(host)", Balance("hdr", "host")),
            ("hdr(X-User)", Balance("hdr", "X-User")),
            ("random", Balance("random")),
            ("random(3)", Balance("random", "3")),
        ]
    ],
    Row(
        "defaults",
        "balance leastconn",
        lambda c: [be(c).balance, ls(c).balance],
        [Balance("leastconn")] * 2,
    ),
    # --- server ---
    Row(
        "backend",
        "server s1 127.0.0.1:18020",
        lambda c: strip(be(c).servers[0]),
        Server("s1", "127.0.0.1", 18020),
    ),
    Row(
        "backend",
        "server s1 127.0.0.1:18020 weight 10 maxconn 100",
        server("s1"),
        Server("s1", "127.0.0.1", 18020, weight=10, maxconn=100),
    ),
    Row("backend", "server s1 127.0.0.1:18020 weight 0", lambda c: server("s1")(c).weight, 0),
    Row("backend", "server s1 127.0.0.1:18020 weight 256", lambda c: server("s1")(c).weight, 256),
    Row("backend", "server s1 127.0.0.1:18020 backup", lambda c: server("s1")(c).backup, True),
    Row("backend", "server s1 127.0.0.1:18020 disabled", lambda c: server("s1")(c).disabled, True),
    Row(
        "listen",
        "server s1 127.0.0.1:18020 backup disabled weight 5",
        lambda c: (lambda s: (s.backup, s.disabled, s.weight))(server("s1")(c)),
        (True, True, 5),
    ),
    Row("backend", "server s1 [::1]:18020", lambda c: server("s1")(c).address, "::1:18020"),
    Row("backend", "server s1 ::1:18020", lambda c: server("s1")(c).host, "::1"),
    Row("backend", "server s1 ipv6@::1:18020", lambda c: server("s1")(c).host, "::1"),
    # --- health checks (issue 3) ---
    Row("backend", "server s1 127.0.0.1:18020", lambda c: server("s1")(c).check, None),
    Row("backend", "server s1 127.0.0.1:18020 check", lambda c: server("s1")(c).check, CheckSpec()),
    Row(
        "backend",
        "server s1 127.0.0.1:18020 check inter 500 fastinter 100ms downinter 3s rise 4 fall 5",
        lambda c: server("s1")(c).check,
        CheckSpec(inter=0.5, fastinter=0.1, downinter=3.0, rise=4, fall=5),
    ),
    Row(
        "backend",
        "server s1 127.0.0.1:18020 check port 18099 addr 127.0.0.2 slowstart 10s",
        lambda c: server("s1")(c).check,
        CheckSpec(port=18099, addr="127.0.0.2", slowstart=10.0),
    ),
    # options without "check" are accepted and do nothing, as in HAProxy
    Row(
        "backend",
        "server s1 127.0.0.1:18020 inter 1s rise 1",
        lambda c: server("s1")(c).check,
        None,
    ),
    Row(
        "backend", "server s1 127.0.0.1:18020 check no-check", lambda c: server("s1")(c).check, None
    ),
    Row(
        "backend",
        "default-server check inter 1s fall 2\nserver s1 127.0.0.1:18020 rise 3",
        lambda c: server("s1")(c).check,
        CheckSpec(inter=1.0, fall=2, rise=3),
    ),
    Row(
        "backend",
        "default-server check\nserver s1 127.0.0.1:18020 no-check",
        lambda c: server("s1")(c).check,
        None,
    ),
    Row(
        "defaults",
        "default-server inter 3s check",
        lambda c: server("s0")(c).check,
        CheckSpec(inter=3.0),
    ),
    Row("backend", "option httpchk", lambda c: be(c).httpchk, HttpCheckSpec()),
    Row("backend", "option httpchk /health", lambda c: be(c).httpchk, HttpCheckSpec(uri="/health")),
    Row(
        "backend",
        "option httpchk GET /health HTTP/1.1",
        lambda c: be(c).httpchk,
        HttpCheckSpec("GET", "/health", "HTTP/1.1"),
    ),
    Row(
        "backend",
        r'option httpchk HEAD / "HTTP/1.1\r\nHost:\ www"',
        lambda c: be(c).httpchk,
        HttpCheckSpec("HEAD", "/", "HTTP/1.1", (("Host", "www"),)),
    ),
    Row(
        "backend",
        "option httpchk\nhttp-check send meth GET uri /ok ver HTTP/1.1 hdr Host example.org\n"
        "http-check expect status 200-299",
        lambda c: be(c).httpchk,
        HttpCheckSpec("GET", "/ok", "HTTP/1.1", (("Host", "example.org"),), "status", "200-299"),
    ),
    Row(
        "backend",
        "option httpchk GET /\nhttp-check expect ! rstring ^err",
        lambda c: be(c).httpchk,
        HttpCheckSpec("GET", "/", expect_kind="rstring", expect_pattern="^err", expect_negate=True),
    ),
    Row(
        "defaults",
        "option httpchk GET /d\nhttp-check expect string ok",
        lambda c: be(c).httpchk,
        HttpCheckSpec("GET", "/d", expect_kind="string", expect_pattern="ok"),
    ),
    Row("backend", "http-check expect status 200", lambda c: be(c).httpchk, None),
    Row("backend", "timeout check 2s", lambda c: be(c).timeouts.check, 2.0),
    Row("backend", "server s1 localhost:18020", lambda c: server("s1")(c).host, "localhost"),
    Row(
        "backend",
        "server s1 127.0.0.1:18021\nserver s2 127.0.0.1:18022",
        lambda c: [s.name for s in be(c).servers],
        ["s1", "s2", "s0"],
    ),
    # --- cookie persistence, the stats page, use-service ---
    Row(
        "backend",
        "cookie SRV insert indirect nocache httponly secure domain .a.example maxidle 30m "
        "maxlife 1h\nserver s1 127.0.0.1:18023 cookie w1",
        lambda c: (be(c).cookie, server("s1")(c).cookie),
        (
            CookieSettings(
                "SRV",
                "insert",
                indirect=True,
                nocache=True,
                httponly=True,
                secure=True,
                domains=(".a.example",),
                maxidle=1800.0,
                maxlife=3600.0,
            ),
            "w1",
        ),
    ),
    Row("backend", "cookie JSESSIONID prefix", lambda c: be(c).cookie.mode, "prefix"),
    Row("defaults", "cookie SRV rewrite", lambda c: be(c).cookie.mode, "rewrite"),
    Row("backend", "cookie SRV insert postonly preserve", lambda c: be(c).cookie.postonly, True),
    Row(
        "frontend",
        "stats enable\nstats uri /st\nstats realm Site\\ stats\nstats auth a:b\n"
        "stats auth c:d\nstats refresh 10s\nstats admin if LOCALHOST\nstats hide-version",
        lambda c: fe(c).stats,
        StatsPage(
            uri="/st",
            realm="Site stats",
            auth=(("a", "b"), ("c", "d")),
            refresh=10.0,
            admin=(cond([anon("src", "127.0.0.1/8", "::1")]),),
            hide_version=True,
        ),
    ),
    Row("listen", "stats uri /", lambda c: ls(c).stats.uri, "/"),
    Row("frontend", "stats admin if TRUE", lambda c: len(fe(c).stats.admin), 1),
    Row(
        "frontend",
        "http-request use-service prometheus-exporter if { path /metrics }",
        lambda c: last_rule(fe(c)),
        HttpRule(
            "use-service",
            value="prometheus-exporter",
            condition=cond([anon("path", "/metrics")]),
        ),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_keyword_parses_into_the_model(row):
    config = parse_text(row.config(), "t.cfg")
    assert strip(row.get(config)) == strip(row.expected)


def test_lines_end_at_newline_only():
    # a form feed is white space inside a line, not a line break (line numbers stay right)
    with pytest.raises(ConfigErrors) as exc:
        parse_text("frontend f\n bind :18001 \f\n frob\n", "t.cfg")
    assert [str(e).split(": ")[0] for e in exc.value.errors] == ["t.cfg:3"]


def test_every_parsed_rule_compiles_in_the_http_engine():
    # the contract with lbcore.http: whatever the parser accepts, the proxy can run
    from lbcore.http.acl import compile_condition
    from lbcore.http.rules import compile_rules

    compiled = 0
    for row in ROWS:
        config = parse_text(row.config(), "t.cfg")
        for proxy in config.proxies:
            for use in proxy.use_backends:
                compile_condition(use.condition, proxy.acls)
                compiled += 1
            compile_rules(proxy.http_request_rules, proxy.acls)
            compile_rules(proxy.http_response_rules, proxy.acls)
            for acl in proxy.acls:  # each named ACL's matcher
                compile_condition(cond([named(acl.name)]), proxy.acls)
                compiled += 1
    assert compiled > 50
