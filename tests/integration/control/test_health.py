"""Must-show 1: health checks in the real ``lbcore run``, once per server, in HAProxy's words.

Timing design: ``inter`` and ``downinter`` are 2 s while ``fastinter`` is 100 ms, so a
transition runs at 100 ms steps and is followed by a quiet 2 s. Right after a server
changes state, the number of checks it took is stable long enough to be read exactly:
``fall`` failed checks to go DOWN (chkfail, or the backend's own request count for HTTP
checks), ``rise`` passed ones to come back (the backend counts their connections).
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, need_binary
from tests.integration.control.harness import Backend, Lb, eventually, http_get

CONFIG = """\
global
    stats socket @SOCK@ mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s
frontend www
    bind 127.0.0.1:@PORT@
    default_backend app
backend app
{options}
    server web1 127.0.0.1:{p1} check inter 2s fastinter 100 downinter 2s rise 2 fall 3
    server web2 127.0.0.1:{p2} check inter 2s fastinter 100 downinter 2s rise 2 fall 3
"""

DOWN_L4 = re.compile(
    r"\[WARNING\]  \(\d+\) : Server app/web1 is DOWN, reason: Layer4 connection problem, "
    r'info: "Connection refused", check duration: \d+ms\. 1 active and 0 backup servers '
    r"left\. 0 sessions active, 0 requeued, 0 remaining in queue\."
)
UP_L4 = re.compile(
    r"\[WARNING\]  \(\d+\) : Server app/web1 is UP, reason: Layer4 check passed, check "
    r"duration: \d+ms\. 2 active and 0 backup servers online\. 0 sessions requeued, 0 total "
    r"in queue\."
)


def status(lb: Lb, server: str) -> str:
    return lb.stat()[f"app/{server}"]["status"]


@pytest.mark.timeout(60)
def test_closed_port_goes_down_after_fall_checks_and_back_after_rise(
    lb: Lb, make_backend: type[Backend]
) -> None:
    web1, web2 = make_backend("web1"), make_backend("web2")
    syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    syslog.bind(("127.0.0.1", 0))
    syslog.settimeout(0.2)
    text = CONFIG.format(options="", p1=web1.port, p2=web2.port)
    text = text.replace("global\n", f"global\n    log 127.0.0.1:{syslog.getsockname()[1]} local0\n")
    lb.write(text.replace("defaults\n", "defaults\n    log global\n"))
    lb.start("--workers", "2")
    eventually(lambda: lb.stat()["app/web1"]["check_status"] == "L4OK", 10, "first check")

    web1.close()
    eventually(lambda: status(lb, "web1") == "DOWN", 10, "web1 DOWN")
    row = lb.stat()["app/web1"]
    assert row["chkfail"] == "3", row  # exactly `fall` failed checks took it down
    assert row["check_status"] == "L4CON"
    assert row["chkdown"] == "1"
    assert status(lb, "web2") == "UP"
    eventually(lambda: DOWN_L4.search(lb.log()), 5, "the DOWN log line")

    # A DOWN server gets no requests: every one goes to web2, none fails.
    answers = [http_get(lb.port) for _ in range(20)]
    assert answers == [(200, "web2\n")] * 20

    before = web1.counts()[0]  # the port is closed: nothing can connect meanwhile
    web1.open()
    eventually(lambda: status(lb, "web1") == "UP", 10, "web1 UP again")
    assert web1.counts()[0] - before == 2  # exactly `rise` passed checks brought it back
    eventually(lambda: UP_L4.search(lb.log()), 5, "the UP log line")
    served = {http_get(lb.port)[1] for _ in range(10)}
    assert served == {"web1\n", "web2\n"}

    # The same events went to syslog (log global): DOWN at alert, UP at notice (local0).
    events = []
    with syslog:
        while True:
            try:
                data = syslog.recv(65536).decode()
            except TimeoutError:
                break
            if "Server app/web1" in data:
                events.append(data)
    assert len(events) == 2, events
    assert events[0].startswith("<129>") and "Server app/web1 is DOWN, reason:" in events[0]
    assert events[1].startswith("<133>") and "Server app/web1 is UP, reason:" in events[1]


@pytest.mark.timeout(60)
def test_http_check_expecting_200_marks_a_500_server_down(
    lb: Lb, make_backend: type[Backend]
) -> None:
    web1, web2 = make_backend("web1"), make_backend("web2")
    options = "    option httpchk GET /health HTTP/1.1\n    http-check expect status 200"
    lb.write(CONFIG.format(options=options, p1=web1.port, p2=web2.port))
    lb.start("--workers", "2")
    eventually(lambda: lb.stat()["app/web1"]["check_status"] == "L7OK", 10, "first check")
    assert lb.stat()["app/web1"]["check_code"] == "200"

    assert web1.answered[500] == 0
    web1.status = 500
    eventually(lambda: status(lb, "web1") == "DOWN", 10, "web1 DOWN")
    assert web1.answered[500] == 3  # `fall` check requests answered 500 took it down
    row = lb.stat()["app/web1"]
    assert (row["check_status"], row["check_code"]) == ("L7STS", "500")
    eventually(lambda: "Server app/web1 is DOWN, reason: Layer7 wrong status" in lb.log(), 5)
    assert 'code: 500, info: "Oops"' in lb.log()
    assert [http_get(lb.port) for _ in range(10)] == [(200, "web2\n")] * 10

    before = web1.answered[200]  # no 200 can be answered before the flip
    web1.status = 200
    eventually(lambda: status(lb, "web1") == "UP", 10, "web1 UP")
    assert web1.answered[200] - before == 2  # `rise` passed checks


@pytest.mark.timeout(60)
def test_checks_run_once_per_server_whatever_the_worker_count(
    lb: Lb, make_backend: type[Backend]
) -> None:
    web1, web2 = make_backend("web1"), make_backend("web2")
    text = CONFIG.format(options="", p1=web1.port, p2=web2.port)
    lb.write(text.replace("inter 2s fastinter 100 downinter 2s", "inter 100"))
    lb.start("--workers", "2")
    eventually(lambda: lb.stat()["app/web2"]["check_status"] == "L4OK", 10, "first checks")
    start = time.monotonic()
    c1, c2 = web1.counts()[0], web2.counts()[0]
    time.sleep(2.0)
    elapsed = time.monotonic() - start
    n1, n2 = web1.counts()[0] - c1, web2.counts()[0] - c2
    expected = elapsed / 0.1  # one check every 100 ms, if checks run once per server
    # Per worker (2 workers) would be 2x expected; a loaded machine makes fewer.
    for n in (n1, n2):
        assert 0.3 * expected <= n <= 1.3 * expected, (n1, n2, expected)
    workers = lb.proc.workers() if lb.proc else set()
    assert len(workers) == 2


@pytest.mark.timeout(60)
def test_down_log_line_is_haproxys(tmp_path: Path, lb: Lb, make_backend: type[Backend]) -> None:
    """The same configuration in HAProxy 2.6 and lbcore: the same DOWN line for an HTTP
    check answered 500 (durations and pids masked)."""
    haproxy = need_binary("haproxy")
    web1, web2 = make_backend("web1", status=500), make_backend("web2")
    options = "    option httpchk GET /health\n    http-check expect status 200"
    text = CONFIG.format(options=options, p1=web1.port, p2=web2.port)
    lb.write(text)
    lb.start("--workers", "1")
    hcfg = tmp_path / "haproxy.cfg"
    hcfg.write_text(
        text.replace("@SOCK@", str(tmp_path / "h.sock")).replace("@PORT@", str(free_port()))
    )
    hlog = tmp_path / "haproxy.log"
    with open(hlog, "w") as out:
        proc = subprocess.Popen([haproxy, "-db", "-f", str(hcfg)], stdout=out, stderr=out)
        try:
            eventually(lambda: "web1 is DOWN" in hlog.read_text(), 10, "HAProxy's DOWN line")
            eventually(lambda: "web1 is DOWN" in lb.log(), 10, "lbcore's DOWN line")
        finally:
            proc.terminate()
            proc.wait(10)

    def line(text: str) -> str:
        found = next(ln for ln in text.splitlines() if "web1 is DOWN" in ln)
        found = re.sub(r"\(\d+\)", "(PID)", found)
        return re.sub(r"duration: \d+ms", "duration: Nms", found)

    expected = line(hlog.read_text()).replace('info: "Internal Server Error"', 'info: "Oops"')
    assert line(lb.log()) == expected
