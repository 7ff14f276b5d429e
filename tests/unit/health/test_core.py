"""rise/fall, intervals, slowstart and HAProxy's messages, with a fake clock."""

import pytest

from lbcore.health.core import (
    CheckResult,
    CheckSettings,
    CheckTracker,
    HttpCheck,
    HttpExpect,
    Layer,
    transition_message,
)
from lbcore.server import OpState

OK = CheckResult(Layer.L4OK)
FAIL = CheckResult(Layer.L4CON, info="Connection refused")


def feed(tracker: CheckTracker, results, now: float = 0.0):
    return [tracker.record(r, now + i) for i, r in enumerate(results)]


def test_healthy_server_needs_fall_consecutive_failures_after_first_success():
    t = CheckTracker(CheckSettings(rise=2, fall=3))
    feed(t, [OK])  # confirmed up: now a full `fall` is needed
    transitions = feed(t, [FAIL, FAIL])
    assert transitions == [None, None] and t.up
    assert t.state is OpState.GOING_DOWN and t.progress == "UP 2/3"
    (last,) = feed(t, [FAIL])
    assert last is not None and last.new is OpState.DOWN and not t.up


def test_fresh_server_goes_down_at_first_failed_check_like_haproxy():
    t = CheckTracker(CheckSettings(rise=2, fall=3))
    (tr,) = feed(t, [FAIL])
    assert tr is not None and tr.old is OpState.UP and not t.up


def test_down_server_needs_rise_consecutive_successes():
    t = CheckTracker(CheckSettings(rise=3, fall=2), start_up=False)
    assert feed(t, [OK, OK]) == [None, None]
    assert t.state is OpState.GOING_UP and t.progress == "DOWN 2/3"
    (tr,) = feed(t, [OK])
    assert tr is not None and tr.new is OpState.UP and t.state is OpState.UP


def test_a_failure_while_rising_restarts_the_climb():
    t = CheckTracker(CheckSettings(rise=3, fall=2), start_up=False)
    feed(t, [OK, OK, FAIL, OK, OK])
    assert not t.up
    feed(t, [OK])
    assert t.up


def test_success_while_going_down_restores_full_health():
    t = CheckTracker(CheckSettings(rise=2, fall=3))
    feed(t, [OK, FAIL, FAIL, OK, OK, OK, FAIL, FAIL])
    assert t.up  # the successes refilled health: two failures are not enough


@pytest.mark.parametrize(
    ("history", "expected"),
    [([OK], 2.0), ([FAIL], 7.0), ([OK, FAIL], 0.5)],
)
def test_interval_table_inter_fastinter_downinter(history, expected):
    t = CheckTracker(CheckSettings(inter=2.0, fastinter=0.5, downinter=7.0, rise=2, fall=3))
    feed(t, history)
    assert t.next_check(100.0) == pytest.approx(100.0 + expected)


def test_slowstart_ramps_weight_after_coming_up():
    t = CheckTracker(CheckSettings(rise=1, fall=1, slowstart=10.0), start_up=False)
    assert t.weight_factor(0.0) == 0.0
    t.record(OK, 100.0)
    assert t.weight_factor(105.0) == pytest.approx(0.5)
    assert t.weight_factor(111.0) == 1.0


@pytest.mark.parametrize(
    ("expect", "status", "body", "ok"),
    [
        (None, 200, b"", True),
        (None, 302, b"", True),
        (None, 500, b"", False),
        (HttpExpect("status", "200"), 204, b"", False),
        (HttpExpect("status", "200-399"), 204, b"", True),
        (HttpExpect("status", "200,503"), 503, b"", True),
        (HttpExpect("rstatus", "^2"), 201, b"", True),
        (HttpExpect("rstatus", "^5", negate=True), 500, b"", False),
        (HttpExpect("string", "alive"), 200, b"i am alive", True),
        (HttpExpect("rstring", r"v[0-9]+"), 200, b"version v12", True),
        (HttpExpect("string", "SQL Error", negate=True), 200, b"SQL Error", False),
    ],
)
def test_http_expect(expect, status, body, ok):
    assert HttpCheck(expect=expect).judge(status, body) is ok


def test_http_check_request_adds_host_for_http11_only():
    assert b"Host:" not in HttpCheck().request_bytes("h")
    req = HttpCheck("GET", "/health", "HTTP/1.1", (("X-A", "1"),)).request_bytes("web1")
    assert req.startswith(b"GET /health HTTP/1.1\r\nHost: web1\r\nX-A: 1\r\n")
    assert req.endswith(b"\r\n\r\n")


def test_messages_match_haproxy_26_wording():
    # Lines captured from HAProxy 2.6.12 for the same events (tests/integration/health
    # compares against a live HAProxy as well).
    t = CheckTracker(CheckSettings(rise=2, fall=2))
    down = t.record(CheckResult(Layer.L7STS, 1, 500, "Internal Server Error"), 0.0)
    assert down is not None
    assert transition_message("app", "web2", down, 1, 0) == (
        'Server app/web2 is DOWN, reason: Layer7 wrong status, code: 500, info: "Internal '
        'Server Error", check duration: 1ms. 1 active and 0 backup servers left. '
        "0 sessions active, 0 requeued, 0 remaining in queue."
    )
    t.record(CheckResult(Layer.L7OK, 0, 200, "OK"), 1.0)
    up = t.record(CheckResult(Layer.L7OK, 0, 200, "OK"), 2.0)
    assert up is not None
    assert transition_message("app", "web1", up, 1, 0) == (
        "Server app/web1 is UP, reason: Layer7 check passed, code: 200, check duration: 0ms. "
        "1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
    )


def test_settings_validation():
    with pytest.raises(ValueError):
        CheckSettings(rise=0)
    with pytest.raises(ValueError):
        CheckSettings(inter=0)


def test_core_is_sans_io():
    from pathlib import Path

    import lbcore.health.core as core

    source = Path(core.__file__).read_text()
    for banned in ("import asyncio", "import socket", "import time", "import ssl"):
        assert banned not in source
