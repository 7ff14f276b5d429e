"""First smoke test of the parser: a realistic config parses into the expected model."""

from lbcore.config import parse_text
from lbcore.config.model import Mode, ProxyKind

SAMPLE = """\
global
    maxconn 2000
    nbthread 2
defaults
    mode http
    timeout connect 5s
    timeout client 30s
frontend web
    bind :8080,[::]:8081
    default_backend app
backend app
    balance leastconn
    server s1 127.0.0.1:9001 weight 10
"""


def test_sample_parses_into_the_model():
    config = parse_text(SAMPLE, "s.cfg")
    assert config.global_.maxconn == 2000
    assert config.global_.workers == 2
    web, app = config.proxies
    assert web.kind is ProxyKind.FRONTEND and web.mode is Mode.HTTP
    assert [(b.host, b.port) for b in web.binds] == [("", 8080), ("::", 8081)]
    assert web.timeouts.connect == 5.0 and web.timeouts.client == 30.0
    assert app.balance.algorithm == "leastconn"
    assert app.servers[0].address == "127.0.0.1:9001" and app.servers[0].weight == 10
