"""Every malformed line and unknown keyword is refused with its file:line and message.

Rows put one line into a valid template (``samples.render``) and expect exactly one
error, at that line (or ``delta`` lines below it), whose text contains ``message``.
``haproxy_rejects`` marks rows HAProxy refuses too (checked in test_haproxy_oracle.py);
the others are lbcore being stricter on purpose or a keyword of a later issue.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lbcore.config import ConfigErrors, http_rules, parse_text, parse_texts
from lbcore.config import proxy as proxymod
from tests.unit.config.samples import render


@dataclass(frozen=True)
class Err:
    section: str
    text: str
    message: str
    haproxy_rejects: bool = False
    delta: int = 0
    mode: str = "http"

    @property
    def id(self) -> str:
        return f"{self.section}: {self.text}"

    def config(self) -> str:
        return render(self.section, self.text, self.mode)[0]

    def line(self) -> int:
        return render(self.section, self.text, self.mode)[1] + self.delta


R = True  # HAProxy refuses it too
ERRORS = [
    # --- global ---
    Err("global", "frobnicate", "unknown keyword 'frobnicate' in 'global' section", R),
    Err("global", "maxconns 100", "(did you mean 'maxconn'?)", R),
    Err("global", "bind :80", "it belongs in a frontend, backend, listen or defaults", R),
    Err("global", "maxconn", "'maxconn' expects a number", R),
    Err(
        "global",
        "maxconn many",
        "maxconn: expected an integer, got 'many'",
    ),
    Err("global", "nbthread", "'nbthread' expects a number", R),
    Err("global", "nbthread 0", "nbthread: 0 is out of range (1..4096)", R),
    Err("global", "nbproc two", "nbproc: expected an integer, got 'two'"),
    Err("global", "daemon now", "'daemon' takes no argument"),
    Err("global", "user", "'user' expects a user name", R),
    Err("global", "pidfile", "'pidfile' expects a file name", R),
    Err("global", "hard-stop-after soon", "hard-stop-after: invalid duration 'soon'", R),
    Err("global", "log 127.0.0.1", "'log' expects an address and a facility", R),
    Err("global", "log 127.0.0.1 local9", "log: unknown facility 'local9' (did you mean", R),
    Err("global", "log 127.0.0.1 local0 loud", "log: unknown level 'loud'", R),
    Err("global", "log 127.0.0.1 len 10 local0", "log len: 10 is out of range (80..65535)", R),
    Err("global", "log 127.0.0.1 format json local0", "log: unknown format 'json'", R),
    Err("global", "log 127.0.0.1:99999 local0", "log: port: 99999 is out of range", R),
    Err("global", "log 127.0.0.1:syslog local0", "log: port: expected an integer", R),
    Err("global", "log ::1 local0", "log: invalid address '::1' (write [IPv6]:PORT", R),
    Err("global", "log ring@buf local0", "'ring@buf' is not supported yet (log address)"),
    Err("global", "stats socket", "'stats socket' expects a path", R),
    Err("global", "stats sockets /tmp/x", "'stats' expects 'socket PATH", R),
    Err("global", "stats socket /tmp/x mode 999", "expected an octal file mode", R),
    Err("global", "stats socket /tmp/x level root", "stats socket: level 'root'", R),
    Err("global", "stats socket /tmp/x level", "stats socket: 'level' expects a value", R),
    Err("global", "stats socket /tmp/x frob 1", "stats socket: unknown option 'frob'", R),
    Err("global", "stats socket /tmp/x expose-fd all", "'expose-fd' expects 'listeners'", R),
    Err("global", "stats socket ipv4@127.0.0.1 level admin", "missing port in '127.0.0.1'", R),
    Err("global", "stats socket ipv4@127.0.0.1:0", "stats socket: port: 0 is out of range"),
    Err("global", "stats socket /tmp/x uid 0", "'uid' is not supported yet (stats socket option)"),
    Err("global", "stats timeout 1.5s", "stats timeout: invalid duration '1.5s'", R),
    Err("global", "stats timeout 0", "'stats timeout' expects a positive value", R),
    Err("global", "stats maxconn 10", "'stats maxconn' is not supported yet"),
    Err("global", "chroot /tmp", "'chroot' is not supported yet"),
    Err("global", "tune.ssl.lifetime 300", "'tune.ssl.lifetime' is not supported yet"),
    Err("global", "tune.bufsize 12", "tune.bufsize: 12 is out of range (1024..1073741824)"),
    Err("global", 'log "127.0.0.1 local0', "unmatched quote at column 9", R),
    # --- sections ---
    Err("global", "userlist admins", "'userlist' is not supported yet (section)"),
    Err("global", ".if defined(X)", "'.if' is not supported yet"),
    Err("global", "defaults d from nowhere", "no defaults section named 'nowhere'", R),
    Err("global", "frontend", "'frontend' expects a name", R),
    Err("global", "backend a/b", "invalid name 'a/b' for backend", R),
    Err(
        "global",
        "listen x from",
        "'listen x': 'from' expects a defaults section name",
    ),
    # --- bind ---
    Err("frontend", "bind", "'bind' expects an address", R),
    Err("frontend", "bind 127.0.0.1", "bind: missing port in '127.0.0.1'", R),
    Err("frontend", "bind :99999", "bind: port: 99999 is out of range (1..65535)", R),
    Err(
        "frontend",
        "bind :80x",
        "bind: port: expected an integer, got '80x'",
    ),
    Err("frontend", "bind :18011-18010", "bind: invalid port range '18011-18010'", R),
    Err("frontend", "bind 127.0.0.1:18010,,127.0.0.2:18011", "bind: empty address", R),
    Err("frontend", "bind [::1:18010", "bind: invalid address '[::1:18010'", R),
    Err("frontend", "bind ipv4@[::1]:18010", "bind: '::1' is not an ipv4 address", R),
    Err("frontend", "bind unix@/tmp/s.sock", "'unix@/tmp/s.sock' is not supported yet"),
    Err("frontend", "bind /tmp/s.sock", "'/tmp/s.sock' is not supported yet (bind address)"),
    Err("frontend", "bind :18010 ssl", "bind: 'ssl' needs a certificate", R),
    Err("frontend", "bind :18010 ssl crt /x.pem ssl-min-ver TLSv9", "unknown version 'TLSv9'", R),
    Err("frontend", "bind :18010 ssl crt /x.pem verify sometimes", "'verify' expects", R),
    Err("frontend", "bind :18010 ssl crt /x.pem curves P-256", "'curves' is not supported yet"),
    Err("frontend", "bind :18010 accept-proxy", "'accept-proxy' is not supported yet"),
    Err("frontend", "bind :18010 frob", "bind: unknown option 'frob'", R),
    Err("frontend", "bind :18010 sssl", "bind: unknown option 'sssl' (did you mean 'ssl'?)", R),
    Err("frontend", "bind :18010 , :18011", "no blanks around ','", R),
    Err("frontend", "bind :18010, :18011", "no blanks around ','", R),
    Err("defaults", "bind :18010", "'bind' is not allowed in a 'defaults' section", R),
    # --- mode ---
    Err("frontend", "mode", "'mode' expects 'http' or 'tcp'", R),
    Err("frontend", "mode udp", "unknown proxy mode 'udp'", R),
    Err("frontend", "mode http tcp", "'mode': unexpected argument 'tcp'"),
    # --- default_backend / use_backend ---
    Err("frontend", "default_backend", "'default_backend' expects a backend name", R),
    Err("frontend", "default_backend nope", "default_backend names an unknown backend 'nope'", R),
    Err("frontend", "default_backend apii", "unknown backend 'apii' (did you mean 'api'?)", R),
    Err("frontend", "use_backend nope", "use_backend names an unknown backend 'nope'", R),
    Err(
        "frontend",
        "use_backend api if",
        "missing condition after 'if'",
    ),
    Err("frontend", "use_backend api if nope", "no such ACL: 'nope'", R),
    Err("frontend", "use_backend api when x", "'use_backend': unexpected argument 'when'", R),
    Err("frontend", "use_backend api if { path /x", "missing closing '}'", R),
    Err("frontend", "use_backend api if { }", "missing ACL criterion", R),
    Err(
        "frontend",
        "use_backend api if || { path /a }",
        "'||' without a condition before",
    ),
    Err("frontend", "use_backend api if HTTP", "'HTTP' is not supported yet (predefined ACL)"),
    Err("frontend", "use_backend %[req.hdr(host)]", "is not supported yet (dynamic backend"),
    Err("defaults", "use_backend api", "'use_backend' is not allowed in a 'defaults'", R),
    Err(
        "frontend",
        "http-request deny if x\nacl x path /",
        "no such ACL: 'x' (ACLs must be declared before use)",
        R,
    ),
    # --- acl ---
    Err("frontend", "acl", "'acl' expects a name and a criterion", R),
    Err("frontend", "acl x", "'acl' expects a name and a criterion", R),
    Err("frontend", "acl x/y path /", "invalid ACL name 'x/y'", R),
    Err("frontend", "acl x frob /", "unknown ACL criterion 'frob'", R),
    Err("frontend", "acl x Path /", "invalid ACL criterion 'Path'", R),
    Err("frontend", "acl x path(1) /", "'path' takes no argument", R),
    Err("frontend", "acl x path -z /", "unknown ACL flag '-z'", R),
    Err("frontend", "acl x path_reg ^(/", "invalid regular expression '^(/'", R),
    Err("frontend", "acl x src 10.0.0.300", "invalid address or network '10.0.0.300'", R),
    Err("frontend", "acl x hdr /", "'hdr' needs a header name"),
    Err("frontend", "acl x path_dir foo", "'path_dir' is not supported yet (ACL criterion)"),
    Err("frontend", "acl x hdr_dom(host) com", "'hdr_dom' is not supported yet"),
    Err("frontend", "acl x path -m dom foo", "'-m dom' is not supported yet"),
    Err(
        "frontend", "acl x src -m sub 10.", "'-m sub' is not supported yet (match method for 'src')"
    ),
    Err("frontend", "acl x hdr_sub /", "'hdr_sub' needs a header name"),
    Err("frontend", "acl x path_begs /", "(did you mean 'path_beg'?)", R),
    Err("frontend", "acl x path -m", "'-m' expects a match method", R),
    Err("frontend", "acl x path -f /etc/paths", "'-f' is not supported yet (ACL flag)"),
    Err("frontend", "acl x hdr(host,1) a", "'hdr(host,1)' is not supported yet"),
    Err("defaults", "acl x path /", "'acl' is not allowed in a 'defaults' section", R),
    # --- timeouts ---
    Err("frontend", "timeout", "'timeout' expects a timeout name", R),
    Err("frontend", "timeout client", "a duration after 'timeout client'", R),
    Err("frontend", "timeout client 1.5s", "timeout client: invalid duration '1.5s'", R),
    Err("frontend", "timeout client 10x", "timeout client: unknown time unit 'x'", R),
    Err("frontend", "timeout client 25d", "timeout client: timer overflow in '25d'", R),
    Err("frontend", "timeout clinet 5s", "unknown timeout 'clinet' (did you mean 'client'?)", R),
    Err("frontend", "timeout tarpit 5s", "'timeout tarpit' is not supported yet"),
    Err("frontend", "timeout client 5s 6s", "'timeout': unexpected argument '6s'"),
    # --- maxconn, retries ---
    Err(
        "frontend",
        "maxconn lots",
        "maxconn: expected an integer, got 'lots'",
    ),
    Err("frontend", "maxconn", "'maxconn' expects a number", R),
    Err("backend", "retries", "'retries' expects a number", R),
    Err(
        "backend",
        "retries x",
        "retries: expected an integer, got 'x'",
    ),
    # --- http-reuse ---
    Err("backend", "http-reuse", "'http-reuse' only supports 'never', 'safe', 'aggressive'", R),
    Err("backend", "http-reuse sometimes", "'http-reuse' only supports 'never', 'safe',", R),
    Err("listen", "http-reuse safe extra", "'http-reuse': unexpected argument 'extra'", R),
    # --- options ---
    Err("frontend", "option", "'option' expects an option name", R),
    Err("frontend", "option frobnicate", "unknown option 'frobnicate'", R),
    Err(
        "frontend", "option forwardfr", "unknown option 'forwardfr' (did you mean 'forwardfor'?)", R
    ),
    Err("frontend", "no option forwardfor", "'no option forwardfor' is not allowed", R),
    Err("frontend", "no option httplog", "'no option httplog' is not allowed", R),
    Err("frontend", "default option tcplog", "'default option tcplog' is not allowed", R),
    Err("frontend", "option tcp-check", "'option tcp-check' is not supported yet"),
    Err("backend", "option httpchk GET / HTTP/1.1 x", "'option httpchk': unexpected argument", R),
    Err("backend", "option httpchk GET / HTTP/x", "invalid HTTP version 'HTTP/x'"),
    Err("backend", "http-check expect", "'http-check expect' expects [!] status|rstatus", R),
    Err("backend", "http-check expect status", "'http-check expect status' expects a pattern", R),
    Err("backend", "http-check expect status 2x", "invalid status '2x'", R),
    Err("backend", "http-check expect rstring (", "bad regex '('", R),
    Err("backend", "http-check send meth", "'http-check send meth' expects a value", R),
    Err("backend", "http-check send hdr Host", "'http-check send hdr' expects a name", R),
    Err("backend", "http-check send body x", "'http-check send body' is not supported yet"),
    Err("backend", "http-check connect", "'http-check connect' is not supported yet"),
    Err("backend", "http-check frob", "'http-check' expects 'send' or 'expect'", R),
    Err("frontend", "option forwardfor except 127.0.0.0/8", "'option forwardfor except' is not"),
    Err("frontend", "option httplog clf", "'option httplog clf' is not supported yet"),
    Err("frontend", "no log now", "'no log' is not supported yet"),
    # --- log ---
    Err("frontend", "log", "'log' expects 'global' or an address", R),
    Err("frontend", "log global now", "'log': unexpected argument 'now'", R),
    Err("frontend", "log 127.0.0.1:514 kernel", "log: unknown facility 'kernel'", R),
    # --- captures, log-format ---
    Err("frontend", "capture", "'capture' expects 'cookie' or 'request header' or 'resp", R),
    Err("frontend", "capture foo bar", "'capture' expects 'cookie' or 'request header'", R),
    Err("frontend", "capture request Host len 4", "'capture request' expects 'header'", R),
    Err("frontend", "capture request header Host", "'capture request header' expects NAME", R),
    Err("frontend", "capture response header X len", "'capture response header' expects", R),
    Err("frontend", "capture cookie S", "'capture cookie' expects NAME 'len' N", R),
    Err("frontend", "capture request header H len 4 x", "unexpected argument 'x'", R),
    # HAProxy 2.6 takes these (as a 0 or negative length); lbcore refuses them
    Err("frontend", "capture request header H len x", "len: expected an integer, got 'x'"),
    Err("frontend", "capture request header H len 0", "len: 0 is out of range"),
    Err("frontend", "capture cookie A len 4\ncapture cookie B len 4", "only one", delta=1),
    Err("defaults", "capture cookie A len 4", "'capture' is not allowed in a 'defaults'", R),
    Err("frontend", "log-format", "'log-format' expects a format string", R),
    Err("frontend", "log-format %ci %ST", "log-format expects only one argument", R),
    Err("frontend", 'log-format "%ci %bogus"', "no such format variable '%bogus'", R),
    Err("listen", 'log-format "%ci %Tqzz"', "no such format variable '%Tqzz'", R),
    Err("frontend", 'log-format "%ci %"', "truncated line after '%'", R),
    Err("frontend", 'log-format "%ci %{+Q"', "missing '}'", R),
    Err("frontend", 'log-format "%{+Q}"', "log-format:", R),
    Err("frontend", 'log-format "%ci %[src]"', "sample expressions '%[...]' are not supp"),
    Err("defaults", 'log-format "%zz"', "no such format variable '%zz'", R),
    Err("frontend", "option log-separate-errors now", "'option log-separate-errors now'", R),
    # --- http-request / http-response ---
    Err("frontend", "http-request", "'http-request' expects an action", R),
    Err("frontend", "http-request frob", "unknown 'http-request' action 'frob'", R),
    Err("frontend", "http-request set-heder X 1", "(did you mean 'set-header'?)", R),
    Err("frontend", "http-request set-header X", "'http-request set-header' expects exactly 2", R),
    Err(
        "frontend",
        "http-request set-header X a b",
        "expects either 'if' or 'unless' followed by a condition but found 'b'",
        R,
    ),
    Err("frontend", 'http-request set-header "" a', "expects exactly 2 argument(s)", R),
    Err("frontend", "http-request del-header", "'http-request del-header' expects exactly 1", R),
    Err("frontend", "http-request del-header X -m beg", "'http-request del-header -m' is not"),
    Err("frontend", "http-request redirect", "expects 'location', 'prefix' or 'scheme'", R),
    Err("frontend", "http-request redirect to /x", "expects 'location', 'prefix' or 'scheme'", R),
    Err("frontend", "http-request redirect location /x code 305", "unsupported HTTP code '305'", R),
    Err("frontend", "http-request redirect location /x code", "'code' expects a status code", R),
    Err("frontend", "http-request redirect location /x frob", "expects 'code' or 'if'/'unless'", R),
    Err(
        "frontend",
        "http-request redirect location /x drop-query",
        "'http-request redirect drop-query' is not supported yet",
    ),
    Err("frontend", "http-request deny deny_status 999", "unexpected status code '999'", R),
    Err("frontend", "http-request deny deny_status", "'deny_status' expects a status code", R),
    Err("frontend", "http-request deny frob", "expects 'deny_status' or 'if'/'unless'", R),
    Err("frontend", "http-request return status 200", "'http-request return' is not supported"),
    Err("frontend", "http-request set-header X 1 if nope", "set-header: no such ACL: 'nope'", R),
    Err("frontend", "http-response deny", "'http-response deny' is not supported yet"),
    Err("frontend", "http-response redirect location /", "'http-response redirect' is not"),
    Err("frontend", "http-response frob", "unknown 'http-response' action 'frob'", R),
    Err("defaults", "http-request deny", "'http-request' is not allowed in a 'defaults'", R),
    # --- balance ---
    Err(
        "backend",
        "balance",
        "'balance' expects an algorithm",
    ),
    Err("backend", "balance roundrobbin", "unknown balance algorithm 'roundrobbin'", R),
    Err("backend", "balance hdr()", "unknown balance algorithm 'hdr()'", R),
    Err("backend", "balance hdr", "unknown balance algorithm 'hdr'", R),
    Err("backend", "balance url_param id", "'balance url_param' is not supported yet"),
    Err("backend", "balance uri whole", "'balance uri whole' is not supported yet"),
    Err("backend", "balance hdr(host) use_domain_only", "'balance hdr use_domain_only' is not"),
    # --- server ---
    Err("backend", "server", "'server' expects a name and an address", R),
    Err("backend", "server s1", "'server' expects a name and an address", R),
    Err("backend", "server s1 127.0.0.1", "server: missing port in '127.0.0.1'"),
    Err("backend", "server s1 127.0.0.1:http", "server: port: expected an integer", R),
    Err("backend", "server s1 :80", "server: missing address in ':80'"),
    Err("backend", "server s1 127.0.0.1:80 check inter", "server s1: 'inter' expects a value", R),
    Err("backend", "server s1 127.0.0.1:80 check inter 0", "inter: expects a positive delay", R),
    Err("backend", "server s1 127.0.0.1:80 check rise 0", "rise: 0 is out of range", R),
    Err("backend", "server s1 127.0.0.1:80 check fall x", "fall: expected an integer", R),
    Err("backend", "server s1 127.0.0.1:80 check port 0", "port: 0 is out of range"),
    Err("backend", "server s1 127.0.0.1:80 check addr 1.2.3.4:80", "without port"),
    Err("backend", "server s1 127.0.0.1:80 agent-check", "'agent-check' is not supported yet"),
    Err("backend", "default-server chek", "unknown option 'chek' (did you mean 'check'?)", R),
    Err("backend", "server s1 127.0.0.1:80 cookie", "server s1: 'cookie' expects a value", R),
    Err("backend", "server s1 127.0.0.1:80 ssl", "verify is enabled by default but no CA", R),
    Err("backend", "server s1 127.0.0.1:80 ssl verify maybe", "'verify' expects", R),
    Err("backend", "server s1 127.0.0.1:80 check-ssl", "'check-ssl' is not supported yet"),
    Err(
        "backend",
        "server s1 127.0.0.1:80 weight",
        "server s1: 'weight' expects a number",
    ),
    Err("backend", "server s1 127.0.0.1:80 weight 257", "weight: 257 is out of range (0..256)", R),
    Err(
        "backend",
        "server s1 127.0.0.1:80 maxconn x",
        "maxconn: expected an integer",
    ),
    Err(
        "backend",
        "server s1 127.0.0.1:80 weigth 2",
        "unknown option 'weigth' (did you mean 'weight'?)",
        R,
    ),
    Err("backend", "server s/1 127.0.0.1:80", "invalid server name 's/1'", R),
    Err("backend", "server s1 127.0.0.300:80", "server: invalid IPv4 address '127.0.0.300'", R),
    Err("backend", "server s1 [::g]:80", "server: invalid IPv6 address '::g'", R),
    Err("backend", "server s1 bad!host:80", "server: invalid host name 'bad!host'", R),
    Err("frontend", "bind 10.0.0.256:18010", "bind: invalid IPv4 address '10.0.0.256'", R),
    Err(
        "backend",
        "server s0 127.0.0.1:80",
        "backend 'be': another server named 's0' was already defined at t.cfg:",
        R,
        delta=1,
    ),
    Err("frontend", "server s1 127.0.0.1:80", "'server' is not allowed in a 'frontend'", R),
    Err("defaults", "server s1 127.0.0.1:80", "'server' is not allowed in a 'defaults'", R),
    Err("backend", "cookie SRV", "'cookie without insert, rewrite or prefix (passive"),
    Err("backend", "cookie SRV insert frob", "cookie: unknown option 'frob'", R),
    Err("backend", "cookie SRV rewrite maxidle 30m", "'maxidle' and 'maxlife' may only"),
    Err("backend", "cookie SRV insert dynamic", "'cookie dynamic' is not supported yet"),
    Err("frontend", "stats frob", "unknown 'stats' keyword 'frob'", R),
    Err("frontend", "stats auth nocolon", "'stats auth' expects <user>:<password>"),
    Err("frontend", "stats admin", "'stats admin' requires either 'if' or 'unless'", R),
    Err("frontend", "stats refresh 1x", "stats refresh: unknown time unit", R),
    Err("frontend", "stats scope app", "'stats scope' is not supported yet"),
    Err("frontend", "http-request use-service lua.x", "'http-request use-service lua.x' is"),
    # --- unknown keywords in each section kind ---
    *[
        Err(section, "frobnicate", f"unknown keyword 'frobnicate' in '{section}' section", R)
        for section in ("defaults", "frontend", "backend", "listen")
    ],
    Err("frontend", "defualt_backend api", "(did you mean 'default_backend'?)", R),
    Err("frontend", "timout client 5s", "(did you mean 'timeout'?)", R),
    Err("backend", "sever s1 127.0.0.1:80", "(did you mean 'server'?)", R),
    Err("frontend", "nbthread 2", "it belongs in the 'global' section", R),
    Err("frontend", "backnd app", "(did you mean 'backend'?)", R),
    Err("global", "defautls", "(did you mean 'defaults'?)", R),
    Err("frontend", "stick-table type ip size 1m", "'stick-table' is not supported yet"),
    Err("frontend", "tcp-request connection reject", "'tcp-request connection' is not supp"),
    Err("frontend", "tcp-request content accept if { ssl_fc yes }", "boolean fetch"),
    Err("frontend", "contimeout 5000", "unknown keyword 'contimeout'", R),
]


@pytest.mark.parametrize("row", ERRORS, ids=[e.id for e in ERRORS])
def test_refused_with_file_line_and_message(row):
    with pytest.raises(ConfigErrors) as exc:
        parse_text(row.config(), "t.cfg")
    errors = [str(e) for e in exc.value.errors]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"t.cfg:{row.line()}: "), errors
    assert row.message in errors[0]


# Whole configurations whose problem is found only when everything was read.
WHOLE = [
    (
        "out of section",
        "bind :80\n",
        [(1, "unknown keyword 'bind' out of section")],
    ),
    (
        "a bad bind line is not reported twice",
        "frontend f\n bind :99999\n",
        [(2, "port: 99999 is out of range")],
    ),
    (
        "the lines of a refused section are skipped",
        "frontend a/b\n bind :18001\n frob\nfrontend c\n bind :18002\n",
        [(1, "invalid name 'a/b' for frontend")],
    ),
    (
        "no frontend",
        "global\n    maxconn 10\n",
        [(1, "no frontend or listen section: nothing would listen")],
    ),
    (
        "frontend without bind",
        "frontend f\n    mode http\n",
        [(1, "frontend 'f' has no 'bind' line")],
    ),
    (
        "duplicate backend",
        "listen x\n bind :18001\nbackend y\nbackend x\n",
        [(4, "backend 'x' has the same name as listen 'x' declared at t.cfg:1")],
    ),
    (
        "duplicate frontend",
        "frontend f\n bind :18001\nfrontend f\n bind :18002\n",
        [(3, "frontend 'f' has the same name as frontend 'f' declared at t.cfg:1")],
    ),
    (
        "0.0.0.0 is the same address as *",
        "frontend f\n bind 0.0.0.0:18001\nfrontend g\n bind *:18001\n",
        [(4, "bind *:18001 is already used by frontend 'f' at t.cfg:2")],
    ),
    (
        "same bind twice",
        "frontend f\n bind :18001\nfrontend g\n bind *:18001\n",
        [(4, "bind *:18001 is already used by frontend 'f' at t.cfg:2")],
    ),
    (
        "http frontend, tcp backend",
        "frontend f\n mode http\n bind :18001\n default_backend b\nbackend b\n mode tcp\n",
        [(4, "http frontend 'f' tries to use incompatible tcp backend 'b' (t.cfg:5)")],
    ),
    (
        "tcp frontend, http backend",
        "frontend f\n bind :18001\n use_backend b\nbackend b\n mode http\n",
        [(3, "tcp frontend 'f' uses http backend 'b' (t.cfg:4) as its use_backend")],
    ),
    (
        "default_backend from defaults names a missing backend",
        "defaults\n default_backend gone\nfrontend f\n bind :18001\n",
        [(2, "frontend 'f': default_backend names an unknown backend 'gone'")],
    ),
    (
        "ambiguous named defaults",
        "defaults d\ndefaults d\nfrontend f from d\n bind :18001\n",
        [(3, "ambiguous defaults section name 'd' (declared at t.cfg:1 and t.cfg:2)")],
    ),
    (
        "every bad line is reported, in order",
        "global\n maxconn x\nfrontend f\n bind :18001\n frob\n timeout client 1.5s\n"
        "backend b\n server s 127.0.0.1:80 agent-check\n",
        [
            (2, "maxconn: expected an integer"),
            (5, "unknown keyword 'frob'"),
            (6, "invalid duration '1.5s'"),
            (8, "'agent-check' is not supported yet"),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [w[1:] for w in WHOLE], ids=[w[0] for w in WHOLE])
def test_whole_config_errors(text, expected):
    with pytest.raises(ConfigErrors) as exc:
        parse_text(text, "t.cfg")
    errors = [str(e) for e in exc.value.errors]
    assert len(errors) == len(expected), errors
    for got, (line, message) in zip(errors, expected, strict=True):
        assert got.startswith(f"t.cfg:{line}: ") and message in got, (got, line, message)


def test_errors_name_the_file_they_are_in_across_several_files():
    first = "global\n maxconn 10\nfrontend f\n bind :18001\n default_backend b\n"
    second = "backend b\n server s 127.0.0.1:80 frob\n"
    with pytest.raises(ConfigErrors) as exc:
        parse_texts([("one.cfg", first), ("two.cfg", second)])
    assert [str(e) for e in exc.value.errors] == ["two.cfg:2: server s: unknown option 'frob'"]


def test_sections_do_not_continue_into_the_next_file():
    first = "frontend f\n bind :18001\n"
    second = " mode http\n"
    with pytest.raises(ConfigErrors) as exc:
        parse_texts([("one.cfg", first), ("two.cfg", second)])
    assert str(exc.value.errors[0]) == "two.cfg:1: unknown keyword 'mode' out of section"


def test_later_keyword_vocabularies_are_whole_words():
    # the vocabularies are long strings split on spaces: a wrapped line must not cut a word
    for vocab in (
        proxymod.LATER_KEYWORDS,
        proxymod.LATER_OPTIONS,
        http_rules.LATER_ACTIONS,
        proxymod.LATER_SERVER_OPTIONS,
    ):
        assert all(w and not w.endswith("-") and not w.startswith("-") for w in vocab)
    assert "strict-mode" in http_rules.LATER_ACTIONS
    assert "send-proxy-v2-ssl-cn" in proxymod.LATER_SERVER_OPTIONS


def test_warnings_follow_haproxy():
    from lbcore.config import parse_texts

    text = (
        "frontend f\n bind :18001\n mode tcp\n option httplog\n http-request deny\n"
        " default_backend b\nbackend b\n mode tcp\n timeout connect 1s\n"
    )
    _, warnings = parse_texts([("t.cfg", text)])
    assert warnings == [
        "t.cfg:1: frontend 'f': missing timeouts ('timeout client'): idle connections never expire",
        "t.cfg:1: frontend 'f': http-request/http-response rules are ignored in tcp mode",
        "t.cfg:1: frontend 'f': 'option httplog' needs 'mode http'; tcplog is used",
        "t.cfg:7: backend 'b': missing timeouts ('timeout server'): idle connections never expire",
    ]
