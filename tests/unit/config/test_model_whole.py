"""Whole configurations: defaults inheritance, sources (file:line) on every object, the
sans-I/O rule, and robustness on arbitrary input."""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lbcore.config
from lbcore.config import ConfigErrors, load_config, parse_text
from lbcore.config.model import Mode, ProxyKind, Source

CFG = Path(__file__).parent / "cfg"


def test_each_defaults_section_applies_to_what_follows_it():
    config, _ = load_config([str(CFG / "multi-defaults.cfg")])
    by_name = {(p.kind, p.name): p for p in config.proxies}
    www = by_name[(ProxyKind.FRONTEND, "www")]
    app = by_name[(ProxyKind.BACKEND, "app")]
    raw = by_name[(ProxyKind.LISTEN, "raw")]
    www2 = by_name[(ProxyKind.FRONTEND, "www2")]
    app2 = by_name[(ProxyKind.BACKEND, "app2")]
    # the first (named) defaults section
    assert www.mode is Mode.HTTP and www.options.forwardfor and www.timeouts.client == 30.0
    assert app.balance.algorithm == "leastconn"
    # the second, anonymous one starts from scratch: nothing of the first is kept
    assert raw.mode is Mode.TCP and not raw.options.forwardfor
    assert raw.timeouts.client == 10.0 and raw.balance.algorithm == "roundrobin"
    # "from web-defaults" picks the named one again, after the anonymous one
    assert www2.mode is Mode.HTTP and www2.options.forwardfor and www2.timeouts.connect == 5.0
    assert app2.balance.algorithm == "leastconn"


OVERRIDES = (
    "defaults\n mode http\n timeout client 5s\n retries 2\n"
    "frontend a\n bind :18001\n timeout client 1s\n default_backend b\n"
    "backend b\n retries 4\n"
    "frontend c\n bind :18002\n default_backend b\n"
)


def test_a_proxy_overrides_what_it_inherits_without_changing_its_siblings():
    config = parse_text(OVERRIDES, "t.cfg")
    a, b, c = config.proxies
    assert (a.timeouts.client, c.timeouts.client) == (1.0, 5.0)
    assert (b.retries, a.retries) == (4, 2)


def test_every_object_knows_its_file_and_line():
    path = str(CFG / "web.cfg")
    config, _ = load_config([path])
    lines = Path(path).read_text().splitlines()

    def line_of(source: Source | None) -> str:
        assert source is not None and source.file == path
        return lines[source.line - 1].strip()

    g = config.global_
    assert line_of(g.logs[0].source).startswith("log 127.0.0.1:514")
    assert line_of(g.stats_sockets[0].source).startswith("stats socket")
    web = config.proxies[0]
    assert line_of(web.source) == "frontend web"
    assert [line_of(b.source) for b in web.binds] == [
        "bind :8080,[::]:8081",
        "bind :8080,[::]:8081",
        "bind 127.0.0.1:8082",
    ]
    assert line_of(web.acls[0].source).startswith("acl is_api")
    assert line_of(web.acls[0].matcher.source).startswith("acl is_api")
    assert line_of(web.use_backends[0].source).startswith("use_backend api")
    deny = web.http_request_rules[0]
    assert line_of(deny.source).startswith("http-request deny")
    anonymous = deny.condition.groups[0][0].anonymous
    assert anonymous is not None and line_of(anonymous.source).startswith("http-request deny")
    assert line_of(web.http_response_rules[0].source).startswith("http-response")
    assert line_of(web.logs[0].source) == "log global"  # from defaults
    api = config.backends["api"]
    assert [line_of(s.source).split()[1] for s in api.servers] == ["a1", "a2"]
    assert str(api.servers[0].source) == f"{path}:{api.servers[0].source.line}"


CORE = [
    "tokenizer",
    "parser",
    "acl",
    "addresses",
    "globals_",
    "proxy",
    "http_rules",
    "tls_options",
    "units",
    "validate",
    "errors",
]
IO_MODULES = {"os", "io", "socket", "asyncio", "subprocess", "time", "pathlib", "ssl"}


def test_the_parser_core_does_no_io():
    # only lbcore.config.load reads files; the rest takes text and returns a model
    package = Path(lbcore.config.__file__).parent
    for name in CORE:
        tree = ast.parse((package / f"{name}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & IO_MODULES, (name, imported & IO_MODULES)
        assert "open(" not in (package / f"{name}.py").read_text(), name


WORDS = st.sampled_from(
    str.split(
        "global defaults frontend backend listen bind mode http tcp default_backend use_backend "
        "acl if unless || or ! { } path path_beg hdr(host) src method -i timeout client server "
        "connect 5s 1.5s 10x option no redispatch forwardfor http-request set-header deny "
        "redirect location code 301 deny_status balance roundrobin hdr( server s1 a "
        "127.0.0.1:80 :80 [::]:80 ipv6@ weight 0 300 maxconn backup check log global local0 "
        "stats socket /tmp/x level admin nbthread \" ' \\ # ${X} $ ,"
    )
)
LINES = st.lists(st.lists(WORDS, max_size=8).map(" ".join), max_size=25).map("\n".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=LINES | st.text(max_size=300))
def test_arbitrary_input_is_refused_or_parsed_never_crashes(text):
    try:
        config = parse_text(text, "fuzz.cfg", env={"X": "1"})
    except ConfigErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert str(error).startswith("fuzz.cfg:"), str(error)
    else:
        assert config.frontends
