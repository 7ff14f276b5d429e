"""A deterministic generator of realistic HAProxy log files, for halog tests and benches.

Each generated line is a syslog-file line (``Mmm dd hh:mm:ss host haproxy[pid]: ...``, the
layout halog expects: five fields before the log) built by lbcore's own formatter from a
:class:`RequestRecord`; the records are yielded with the lines so a test can compute what an
analysis should say from the records themselves, without parsing any text.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass

from lbcore.logs.format import Context, LogFormat
from lbcore.logs.record import NOSRV, RequestRecord

START = 1_795_600_000.0  # a fixed Thursday in Nov 2026, UTC
UTC = dt.UTC

BACKENDS = {
    "www": ["web1", "web2", "web3", "web4"],
    "api": ["api1", "api2", "api-backup"],
    "static": ["st1", "st2"],
}
PATHS = [
    "/",
    "/index.html",
    "/login",
    "/logout",
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/items/42",
    "/static/app.js",
    "/static/style.css",
    "/img/logo.png",
    "/search",
    "/cart",
    "/checkout",
    "/health",
]
STATUS_WEIGHTS = [
    (200, 70),
    (304, 8),
    (301, 3),
    (302, 3),
    (101, 1),
    (404, 6),
    (403, 1),
    (400, 1),
    (500, 2),
    (502, 2),
    (503, 2),
    (504, 1),
]


@dataclass(slots=True)
class Generated:
    line: str
    record: RequestRecord
    http: bool  # an httplog line (False: a tcplog line)


def generate(n: int, seed: int = 1, tcp_ratio: float = 0.03) -> Iterator[Generated]:
    """Yield ``n`` lines; the same seed always gives the same lines."""
    rnd = random.Random(seed)
    ctx = Context(tz=UTC)
    http = LogFormat.httplog(ctx)
    tcp = LogFormat.tcplog(ctx)
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    ips = [f"10.{rnd.randrange(4)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" for _ in range(60)]
    backends = list(BACKENDS)
    t = START
    for i in range(n):
        # mostly steady traffic, with an occasional hole of a few seconds
        t += rnd.expovariate(40.0) if rnd.random() > 0.002 else rnd.uniform(2.0, 9.0)
        rec = _record(rnd, t, ips, backends, statuses, weights)
        is_tcp = rnd.random() < tcp_ratio
        if is_tcp:
            rec.frontend, rec.backend = "fe-tcp", "db"
            rec.server = rnd.choice(["db1", "db2"])
            rec.t_total = max(rec.t_active, 0) + rnd.randrange(0, 50)
            body = tcp.render(rec)
        else:
            body = http.render(rec)
        syslog_t = dt.datetime.fromtimestamp(int(t + rec.t_active / 1000 + 0.5), UTC)
        stamp = f"{syslog_t:%b} {syslog_t.day:2d} {syslog_t:%H:%M:%S}"
        yield Generated(f"{stamp} lb1 haproxy[{4000 + i % 3}]: {body}", rec, not is_tcp)


def _record(
    rnd: random.Random,
    t: float,
    ips: list[str],
    backends: list[str],
    statuses: list[int],
    weights: list[int],
) -> RequestRecord:
    be = rnd.choice(backends)
    srv = rnd.choice(BACKENDS[be])
    status = rnd.choices(statuses, weights)[0]
    path = rnd.choice(PATHS)
    if rnd.random() < 0.3:
        path += f"?id={rnd.randrange(100)}"
    method = rnd.choices(["GET", "POST", "HEAD", "PUT"], [80, 15, 3, 2])[0]
    r = RequestRecord(
        client_ip=rnd.choice(ips),
        client_port=rnd.randrange(1024, 65536),
        accept_ts=t,
        frontend=rnd.choice(["fe-http", "fe-https"]),
        backend=be,
        server=srv,
        t_request=rnd.choice([0, 0, 0, 1, 2, rnd.randrange(0, 300)]),
        t_queue=0 if rnd.random() > 0.05 else rnd.randrange(1, 2000),
        t_connect=rnd.choice([0, 0, 1, 1, 2, 3, rnd.randrange(0, 100)]),
        t_response=int(rnd.lognormvariate(3.0, 1.2)),
        status=status,
        bytes_read=rnd.randrange(150, 60000),
        termination="--",
        actconn=rnd.randrange(1, 500),
        retries=0,
        request_line=f"{method} {path} HTTP/1.1",
    )
    r.ssl = r.frontend == "fe-https"
    r.feconn = rnd.randrange(1, r.actconn + 1)
    r.beconn = rnd.randrange(0, r.feconn + 1)
    r.srv_conn = rnd.randrange(0, r.beconn + 1)
    if r.t_queue > 0:
        r.srv_queue, r.backend_queue = rnd.randrange(0, 20), rnd.randrange(0, 5)
    kind = rnd.random()
    if status >= 500 and kind < 0.4:
        # server errors of several shapes: refused, timeouts, no server at all
        shape = rnd.choice(["SC", "sC", "sH", "SH", "NOSRV", "sQ"])
        if shape == "SC":
            r.t_connect, r.t_response, r.status, r.termination = -1, -1, 503, "SC"
            r.retries = rnd.choice([1, 3])
            r.redispatched = rnd.random() < 0.3
        elif shape == "sC":
            r.t_connect, r.t_response, r.status, r.termination = -1, -1, 503, "sC"
        elif shape == "sH":
            r.t_response, r.status, r.termination = -1, 504, "sH"
        elif shape == "SH":
            r.t_response, r.status, r.termination = -1, 502, "SH"
        elif shape == "sQ":
            r.t_connect, r.t_response, r.status, r.termination = -1, -1, 503, "sQ"
            r.t_queue = rnd.randrange(1000, 5000)
            r.srv_queue = rnd.randrange(1, 30)
        else:
            r.server, r.t_queue, r.t_connect, r.t_response = NOSRV, -1, -1, -1
            r.status, r.termination = 503, "SC"
    elif kind < 0.03:
        r.termination = rnd.choice(["CD", "cD", "CH", "sD", "SD"])
        if r.termination == "CH":
            r.t_response, r.status = -1, -1
    elif kind < 0.045:
        # client sent nothing or garbage: 400/408 without a server
        r.server, r.t_queue, r.t_connect, r.t_response = NOSRV, -1, -1, -1
        r.backend = r.frontend
        if rnd.random() < 0.5:
            r.status, r.termination, r.request_line = 408, "cR", None
            r.t_request = -1
        else:
            r.status, r.termination = 400, "PR"
    elif kind < 0.05:
        r.status, r.server, r.termination = 200, "<STATS>", "LR"
        r.backend, r.t_queue, r.t_connect, r.t_response = r.frontend, -1, -1, -1
    if r.t_response >= 0:
        r.t_active = r.t_request + max(r.t_queue, 0) + max(r.t_connect, 0) + r.t_response
        r.t_active += rnd.randrange(0, 5)
    else:
        r.t_active = r.t_request + rnd.randrange(0, 3000) if r.t_request >= 0 else -1
    if rnd.random() < 0.15:
        r.cookie_client, r.cookie_server = rnd.choice(["NI", "VN", "DI", "IN", "--"])
        r.captured_request_cookie = rnd.choice([None, "SRV=a1", "SRV=b2"])
        r.request_headers = (
            rnd.choice(["www.example.com", "api.example.com", ""]),
            rnd.choice(["curl/8.1", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", ""]),
        )
        r.response_headers = (rnd.choice(["text/html", "application/json", ""]),)
    return r


def write(path: str, n: int, seed: int = 1) -> None:
    with open(path, "w") as f:
        for g in generate(n, seed):
            f.write(g.line + "\n")


if __name__ == "__main__":
    import sys

    for g in generate(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1):
        print(g.line)


def damaged(n: int, seed: int) -> Iterator[str]:
    """Generated lines, a few percent of them damaged the way real log files get damaged:
    cut anywhere (a full disk, a rotated file), runs of spaces, garbage, a field replaced
    by something halog must read its own way (``-``, ``+12``, an empty field, 32-bit
    overflow), an IPv6 client."""
    rnd = random.Random(seed ^ 0x5EED)
    for g in generate(n, seed):
        line = g.line
        x = rnd.random()
        if x < 0.03:
            line = line[: rnd.randrange(len(line))]
        elif x < 0.04:
            line = line.replace(" ", "  ", rnd.randrange(1, 6))
        elif x < 0.05:
            line = "garbage " * rnd.randrange(0, 4)
        elif x < 0.06:
            parts = line.split(" ")
            i = rnd.randrange(len(parts))
            parts[i] = rnd.choice(["-", "+12", "abc", "", "1/2", "-1", "99999999999"])
            line = " ".join(parts)
        elif x < 0.065:
            line = line.replace(line.split(" ")[5], "[2001:db8::1]:443", 1)
        yield line
