"""Fuzzing the HAProxy-dialect config parser (lbcore/config): a rich valid file, mutated.

Properties:

* the parser returns a ``Config`` or raises ``ConfigErrors`` — nothing else escapes;
* every error names ``fuzz.cfg:LINE`` with a line that exists in the file;
* whatever parses is runnable: the worker builds its frontends and backends from it
  (``build_runtime``) without an exception, and its request limits are sane — a file
  ``lbcore check`` accepts must not crash ``lbcore run``.

Example counts (CI): 700 mutated files + 300 files of random keyword lines.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbcore.config.errors import ConfigErrors
from lbcore.config.parser import parse_text
from lbcore.proxy.common import Registry, request_limits
from lbcore.worker import build_runtime

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASE = """\
global
    maxconn 2000
    nbthread 2
    log 127.0.0.1:514 local0 info
    stats socket /run/lbcore/admin.sock mode 600 level admin
    stats timeout 30s
    hard-stop-after 10s
    tune.bufsize 16384
    tune.http.maxhdr 101
    user nobody
    group nogroup

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 5s
    timeout queue 10s

frontend web
    bind 127.0.0.1:8080
    bind [::1]:8080
    maxconn 1000
    option forwardfor
    acl is_api path_beg /api
    acl is_static path_end .css .js
    acl blocked src 10.0.0.0/8
    http-request deny if blocked
    http-request redirect location /new code 301 if { path /old }
    http-request set-header X-Proto http
    http-request del-header X-Internal
    http-response set-header X-Served-By lbcore
    use_backend api if is_api
    use_backend static if is_static || { hdr(host) -i static.example.com }
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 2s fall 3 rise 2
    server a1 127.0.0.1:9001 check weight 10 maxconn 50
    server a2 127.0.0.1:9002 check weight 20
    server a3 127.0.0.1:9003 backup

backend api
    balance leastconn
    server p1 127.0.0.1:9101 check
    server p2 127.0.0.1:9102 check slowstart 10s

backend static
    balance uri
    server s1 127.0.0.1:9201

listen tcp-in
    mode tcp
    bind 127.0.0.1:8443
    balance source
    timeout tunnel 1h
    server t1 127.0.0.1:9443 check
"""
BASE_LINES = BASE.splitlines()

HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "\t",
        "#",
        "\\",
        '"',
        "'",
        "${X}",
        "${NOPE}",
        "$",
        "{",
        "}",
        "||",
        "!",
        "if",
        "unless",
        "0",
        "-1",
        "99999999999999999999",
        "1e9",
        "0x10",
        "5",
        "5s",
        "1.5s",
        "10x",
        "ms",
        "d",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        ":80",
        "[::1]",
        "[::1]:",
        "::1:80",
        "ipv4@",
        "unix@/x",
        "abns@x",
        "*:80",
        "a" * 300,
        "é",
        "\x00",
        "\x7f",
        "/",
        "//",
        "backend",
        "frontend",
        "server",
        "default_backend",
        "use_backend",
        "acl",
        "path_beg",
        "hdr(",
        "hdr()",
        "hdr(host",
        "req.ssl_sni",
        "-i",
        "-m",
        "reg",
        "(",
        ")",
        "%[src]",
        "code",
        "301",
        "999",
        "location",
        "prefix",
        "set-header",
        "deny_status",
        "weight",
        "maxconn",
        "check",
        "inter",
        "rise",
        "fall",
        "backup",
        "cookie",
        "roundrobin",
        "hdr",
        "uri",
        "random",
        "first",
        "leastconn",
        "static-rr",
        "consistent",
        "map-based",
    ]
)


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    lines = list(BASE_LINES)
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(lines) - 1))
        words = lines[i].split()
        op = draw(st.integers(0, 5))
        if op == 0 and words:  # replace a word
            words[draw(st.integers(0, len(words) - 1))] = draw(HOSTILE)
        elif op == 1:  # insert a word
            words.insert(draw(st.integers(0, len(words))), draw(HOSTILE))
        elif op == 2 and words:  # drop a word
            del words[draw(st.integers(0, len(words) - 1))]
        elif op == 3:  # duplicate a line elsewhere (sections, servers, binds twice)
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
            continue
        elif op == 4:  # delete the line
            del lines[i]
            continue
        else:  # splice in raw text
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + draw(st.text(max_size=8)) + lines[i][pos:]
            continue
        lines[i] = "    " + " ".join(words) if lines[i].startswith(" ") else " ".join(words)
    return "\n".join(lines) + "\n"


def check(text: str) -> None:
    nlines = text.count("\n") + 1
    try:
        config = parse_text(text, "fuzz.cfg", env={"X": "1"})
    except ConfigErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.source is not None, error
            assert error.source.file == "fuzz.cfg", str(error)
            assert 1 <= error.source.line <= nlines, str(error)
            assert str(error).startswith(f"fuzz.cfg:{error.source.line}"), str(error)
        return
    # accepted: the worker must be able to run it
    limits = request_limits(config.global_)
    assert 0 < limits.max_head <= config.global_.tune_bufsize
    assert limits.max_headers >= 1
    backends, frontends = build_runtime(config, Registry(config.global_.maxconn))
    assert len(frontends) == len(config.frontends)
    assert set(backends) == set(config.backends)


def test_the_base_file_parses() -> None:
    config = parse_text(BASE, "fuzz.cfg", env={"X": "1"})
    assert {p.name for p in config.frontends} == {"web", "tcp-in"}
    check(BASE)


@pytest.mark.timeout(180)
@settings(FUZZ, max_examples=700)
@given(mutated_config())
def test_mutated_config_is_refused_with_a_place_or_runnable(text: str) -> None:
    check(text)


KEYWORD_LINES = st.lists(
    st.builds(
        lambda kw, args: " ".join([kw, *args]),
        st.sampled_from([ln.split()[0] for ln in BASE_LINES if ln.split()]),
        st.lists(HOSTILE, max_size=5),
    ),
    max_size=20,
)


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=300)
@given(KEYWORD_LINES)
def test_random_keyword_lines(lines: list[str]) -> None:
    check("\n".join(lines) + "\n")
