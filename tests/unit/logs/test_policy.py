"""Which requests are logged and at which level, from the proxy's options."""

from __future__ import annotations

import datetime as dt

from lbcore.config.model import Mode, Options, Proxy, ProxyKind
from lbcore.logs.format import Context
from lbcore.logs.policy import LogPolicy
from lbcore.logs.record import RequestRecord

CTX = Context(tz=dt.UTC)


def _proxy(mode: Mode, **opts: bool) -> Proxy:
    return Proxy("fe", ProxyKind.FRONTEND, mode=mode, options=Options(**opts))


def _ok() -> RequestRecord:
    return RequestRecord(
        client_ip="10.0.0.1",
        frontend="fe",
        backend="be",
        server="s1",
        status=200,
        t_request=0,
        t_queue=0,
        t_connect=1,
        t_response=2,
        t_active=3,
        bytes_uploaded=80,
        request_line="GET / HTTP/1.1",
    )


def test_no_log_option_means_no_request_log() -> None:
    assert LogPolicy.for_proxy(_proxy(Mode.HTTP)).decide(_ok()) is None


def test_httplog_on_http_and_tcplog_fallback_on_tcp() -> None:
    msg, level = LogPolicy.for_proxy(_proxy(Mode.HTTP, httplog=True), CTX).decide(_ok())  # type: ignore[misc]
    assert msg.endswith('"GET / HTTP/1.1"') and level == "info"
    msg, _ = LogPolicy.for_proxy(_proxy(Mode.TCP, httplog=True), CTX).decide(_ok())  # type: ignore[misc]
    assert msg.endswith(" 0/0") and "/-1 0 --" in msg  # tcplog: Tw/Tc/Tt ... termination


def test_dontlognull_drops_only_silent_connections() -> None:
    policy = LogPolicy.for_proxy(_proxy(Mode.HTTP, httplog=True, dontlognull=True), CTX)
    silent = RequestRecord(frontend="fe", backend="fe", status=400, termination="CR")
    assert policy.decide(silent) is None
    assert policy.decide(_ok()) is not None


def test_separate_errors_and_dontlog_normal() -> None:
    p = LogPolicy.for_proxy(
        _proxy(Mode.HTTP, httplog=True), CTX, dontlog_normal=True, separate_errors=True
    )
    assert p.decide(_ok()) is None
    for change in ({"status": 503}, {"termination": "sH"}, {"retries": 1}):
        r = _ok()
        for k, v in change.items():
            setattr(r, k, v)
        decided = p.decide(r)
        assert decided is not None and decided[1] == "err", change


def test_log_format_wins() -> None:
    p = LogPolicy.for_proxy(_proxy(Mode.HTTP, httplog=True), CTX, log_format="%ci %ST")
    assert p.decide(_ok()) == ("10.0.0.1 200", "info")


def test_httplog_clf() -> None:
    p = LogPolicy.for_proxy(_proxy(Mode.HTTP, httplog=True), CTX, clf=True)
    msg, _ = p.decide(_ok())  # type: ignore[misc]
    assert msg.startswith("10.0.0.1 - - [") and '"GET / HTTP/1.1" 200 0 "" ""' in msg
