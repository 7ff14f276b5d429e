"""``lbcore halog`` on a generated log: each analysis against (a) an expectation computed here
from the generator's records — never from the text — and (b) the real halog's stdout, byte
for byte, when Debian's /usr/bin/halog is installed.

The expectations spell out what halog measures, as learnt by running it: the status is
field 5 (the bytes, on a tcplog line), ``-srv`` lists a TCP line's server but cannot parse
its three timers, per-URL time is Tr (else Ta) and per-client time is Tq (else Ta), ties in
sorted tables come out in descending key order, and so on.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lbcore.logs import halog
from tests.conftest import lbcore_cmd, lbcore_env
from tests.unit.logs.loggen import Generated, generate

N_LINES = 20_000
SEED = 5
U64 = 1 << 64
PCTS = [*range(1, 21), *range(30, 101, 10), *range(150, 851, 50), *range(900, 981, 10)]
PCTS += list(range(981, 1001))


@dataclass
class Log:
    items: list[Generated]
    path: Path
    data: bytes


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    items = list(generate(N_LINES, SEED))
    data = "".join(g.line + "\n" for g in items).encode()
    path = tmp_path_factory.mktemp("halog") / "haproxy.log"
    path.write_bytes(data)
    return Log(items, path, data)


_cache: dict[tuple[str, ...], tuple[bytes, str]] = {}


def lb_halog(log: Log, *args: str) -> bytes:
    """Run lbcore halog in-process (the CLI path is tested once, below)."""
    return lb_halog_both(log, *args)[0]


def lb_halog_both(log: Log, *args: str) -> tuple[bytes, str]:
    """stdout and stderr (with the closing summary main() adds)."""
    key = args
    if key not in _cache:
        out, err = io.BytesIO(), io.StringIO()
        o = halog.parse_args(list(args))
        sm = halog.run(o, io.BytesIO(log.data), out, err)
        _cache[key] = (out.getvalue(), err.getvalue() + halog.summary(o, sm))
    return _cache[key]


def real_halog(log: Log, *args: str) -> bytes:
    return real_halog_both(log, *args)[0]


def real_halog_both(log: Log, *args: str) -> tuple[bytes, str]:
    exe = shutil.which("halog")
    if exe is None:
        pytest.skip("HAProxy's halog is not installed (Debian: haproxy package)")
    with open(log.path, "rb") as f:
        p = subprocess.run([exe, *args], stdin=f, capture_output=True, check=True)
    return p.stdout, p.stderr.decode("latin-1")


def rows(out: bytes) -> list[list[str]]:
    return [line.split(" ") for line in out.decode().splitlines()]


# ----------------------------------------------------------------- what halog sees per line


def status_field(g: Generated) -> int:
    return g.record.status if g.http else g.record.bytes_read


def timers5(g: Generated) -> list[int]:
    r = g.record
    return [r.t_request, r.t_queue, r.t_connect, r.t_response, r.t_active]


def term4(g: Generated) -> str:
    r = g.record
    return r.termination + r.cookie_client + r.cookie_server


def url_of(g: Generated) -> str:
    line = g.record.request_line
    if line is None:
        return '"<BADREQ>"'
    uri = line.split(" ")[1]
    return uri.split("?")[0].split(";")[0]


def accept(g: Generated) -> dt.datetime:
    return dt.datetime.fromtimestamp(g.record.accept_ts, dt.UTC)


# ------------------------------------------------------------------------ expectations


def exp_status(items: list[Generated]) -> list[list[str]]:
    c = Counter(status_field(g) for g in items)
    return [[str(s), str(c[s])] for s in sorted(c)]


def exp_termcodes(items: list[Generated], cookie: bool) -> list[list[str]]:
    c = Counter(term4(g)[2:4] if cookie else term4(g)[:2] for g in items if g.http)
    return [[k, str(c[k])] for k in sorted(c)]


def exp_srv(items: list[Generated]) -> list[list[str]]:
    per: dict[str, list[int]] = {}
    for g in items:
        r = g.record
        s = per.setdefault(f"{r.backend}/{r.server}", [0] * 12)
        if not g.http:
            continue  # listed, but its Tw/Tc/Tt cannot be read as five timers
        tq, tw, tc, tr, ta = timers5(g)
        st = r.status
        s[st // 100 - 1 if 100 <= st <= 599 else 5] += 1
        s[6] += 1
        s[7] += all(t >= 0 for t in (tq, tw, tc, tr, ta))
        if tc >= 0:
            s[8], s[9] = s[8] + tc, s[9] + 1
        if tr >= 0:
            s[10], s[11] = s[10] + tr, s[11] + 1
    out = [
        [
            "#srv_name",
            "1xx",
            "2xx",
            "3xx",
            "4xx",
            "5xx",
            "other",
            "tot_req",
            "req_ok",
            "pct_ok",
            "avg_ct",
            "avg_rt",
        ]
    ]
    for name in sorted(per, key=lambda n: n.encode()):
        s = per[name]
        pct = f"{s[7] * 100 / s[6]:.1f}" if s[6] else "0.0"
        ct = s[8] // s[9] if s[9] else 0
        rt = s[10] // s[11] if s[11] else 0
        out.append([name, *map(str, s[:8]), pct, str(ct), str(rt)])
    return out


def exp_per_key(items: list[Generated], by_url: bool, sort: str) -> list[list[str]]:
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for g in items:
        if not g.http:
            continue
        tq, tw, tc, tr, ta = timers5(g)
        key = url_of(g) if by_url else g.record.client_ip
        main = tr if by_url else tq
        err = min(tq, tw, tc, tr, ta) < 0 if by_url else (tq < 0 or ta < 0)
        a = acc[key]
        a[0] += 1
        a[1] += err
        a[2] += main if main >= 0 else ta
        a[3] += main if main >= 0 else 0
        a[4] += g.record.bytes_read
    table = []
    for key, (req, err, ttot, oktot, btot) in acc.items():
        ttot %= U64
        okavg = oktot // (req - err) if req > err else 0
        cols = {"req": req, "err": err, "ttot": ttot, "tavg": ttot // req, "oktot": oktot}
        cols |= {"okavg": okavg, "bavg": btot // req, "btot": btot}
        table.append((cols, key))
    if sort == "url":
        table.sort(key=lambda t: t[1].encode(), reverse=True)
    else:
        table.sort(key=lambda t: (t[0][sort], t[1].encode()), reverse=True)
    head = ["#req", "err", "ttot", "tavg", "oktot", "okavg", "bavg", "btot", "src"]
    return [head] + [[*(str(v) for v in cols.values()), key] for cols, key in table]


def exp_pct(items: list[Generated]) -> list[list[str]]:
    cols: list[list[int]] = [[], [], [], []]
    for g in items:
        if not g.http or min(timers5(g)) < 0:
            continue
        tq, tw, tc, tr, ta = timers5(g)
        for col, v in zip(cols, (tq, tc, tr, ta - tq - tw - tc - tr), strict=True):
            col.append(v)
    n = len(cols[0])
    for col in cols:
        col.sort()
    out = []
    for p in PCTS:
        count = int(n * (p / 1000.0))  # halog ranks in floating point (2700 * 0.35 < 945)
        at = max(count - 1, 0)
        out.append([f"{p / 10:.1f}", str(count), *(str(c[at]) for c in cols), ""])
    return out


def exp_holes(items: list[Generated], delay: int, count: int) -> list[list[str]]:
    per_ms: Counter[int] = Counter()
    for g in items:
        a = accept(g)
        per_ms[((a.hour * 60 + a.minute) * 60 + a.second) * 1000 + a.microsecond // 1000] += 1
    out, prev = [], None
    for ms in sorted(per_ms):
        if prev is not None and ms - prev >= delay and per_ms[ms] >= count:
            t = dt.timedelta(milliseconds=ms)
            hms = f"{t.seconds // 3600:02d}:{t.seconds // 60 % 60:02d}:{t.seconds % 60:02d}"
            out.append([f"{hms}.{ms % 1000:03d}", str(ms), str(ms - prev), str(per_ms[ms])])
        prev = ms
    return out


def exp_header(block: int, field: int) -> Callable[[list[Generated]], list[list[str]]]:
    """-hdr: one line per HTTP line, the captured value or empty; TCP lines have none."""

    def expect(items: list[Generated]) -> list[list[str]]:
        out = []
        for g in items:
            if not g.http:
                continue
            blocks = [g.record.request_headers, g.record.response_headers]
            values = blocks[block - 1] if g.record.request_headers else ()
            value = values[field - 1] if field <= len(values) else ""
            out.append(value.split(" "))
        return out

    return expect


def exp_count(pred: Callable[[Generated], bool]) -> Callable[[list[Generated]], list[list[str]]]:
    return lambda items: [[str(sum(1 for g in items if pred(g)))]]


def is_error(g: Generated) -> bool:
    st = status_field(g)
    return st < 0 or 500 <= st <= 599


T0 = 1_795_600_000 + 120
T1 = T0 + 180

CASES: dict[tuple[str, ...], Callable[[list[Generated]], list[list[str]]]] = {
    ("-st",): exp_status,
    ("-tc",): lambda items: exp_termcodes(items, cookie=False),
    ("-cc",): lambda items: exp_termcodes(items, cookie=True),
    ("-srv",): exp_srv,
    ("-srv", "-H"): lambda items: exp_srv([g for g in items if g.http]),
    ("-ic",): lambda items: exp_per_key(items, False, "req"),
    ("-pct",): exp_pct,
    ("-ad", "1000"): lambda items: exp_holes(items, 1000, 0),
    ("-ad", "50", "-ac", "2"): lambda items: exp_holes(items, 50, 2),
    ("-ac", "3"): lambda items: exp_holes(items, 0, 3),
    ("-c",): exp_count(lambda g: True),
    ("-c", "-H"): exp_count(lambda g: g.http),
    ("-c", "-e"): exp_count(is_error),
    ("-c", "-E"): exp_count(lambda g: not is_error(g)),
    ("-c", "-v", "-e"): exp_count(lambda g: not is_error(g)),
    ("-c", "-rt", "100"): exp_count(lambda g: g.http and g.record.t_response >= 100),
    ("-c", "-RT", "10"): exp_count(lambda g: g.http and g.record.t_response < 10),
    ("-c", "-hs", "400:499"): exp_count(lambda g: 400 <= status_field(g) <= 499),
    ("-c", "-HS", "200:399"): exp_count(lambda g: not 200 <= status_field(g) <= 399),
    ("-c", "-hs", "503"): exp_count(lambda g: status_field(g) == 503),
    ("-c", "-tcn", "sH"): exp_count(lambda g: g.http and term4(g)[:2] == "sH"),
    ("-c", "-TCN", "--"): exp_count(lambda g: g.http and term4(g)[:2] != "--"),
    ("-c", "-time", f"{T0}:{T1}"): exp_count(lambda g: T0 <= int(g.record.accept_ts) <= T1),
    ("-c", "-m", "123"): lambda items: [["123"]],
    ("-srv", "-e", "-H"): lambda items: exp_srv([g for g in items if g.http and is_error(g)]),
    ("-st", "-rt", "50"): lambda items: exp_status(
        [g for g in items if g.http and g.record.t_response >= 50]
    ),
    ("-tc", "-hs", "500:599"): lambda items: exp_termcodes(
        [g for g in items if 500 <= status_field(g) <= 599], cookie=False
    ),
    ("-srv", "-m", "5"): lambda items: exp_srv(items)[:6],
    ("-u", "-q"): lambda items: exp_per_key(items, True, "url"),
    ("-hdr", "1:2", "-q"): exp_header(1, 2),
    ("-hdr", "2:1", "-q"): exp_header(2, 1),
}
for flag, key in halog.URL_SORTS.items():
    CASES[(flag,)] = lambda items, key=key: exp_per_key(items, True, key)


@pytest.mark.parametrize("args", list(CASES), ids=" ".join)
def test_analysis_matches_computed_expectation(log: Log, args: tuple[str, ...]) -> None:
    got = rows(lb_halog(log, *args))
    want = CASES[args](log.items)
    assert len(got) == len(want)
    for g_row, w_row in zip(got, want, strict=True):
        assert g_row == w_row  # column by column


@pytest.mark.parametrize(
    "args",
    [*CASES, ("-u", "-query"), ("-q",), ("-H",), ("-q", "-m", "7"), ("-ue", "-m", "4")],
    ids=" ".join,
)
def test_output_equals_real_halog(log: Log, args: tuple[str, ...]) -> None:
    """stdout byte for byte, and stderr (reports and summary) too."""
    assert lb_halog_both(log, *args) == real_halog_both(log, *args)


@pytest.mark.parametrize(("host", "skip"), [("", "0"), ("lb1 ", "1"), ("x y lb1 ", "3")])
def test_skip_fields_as_halog_counts_them(log: Log, host: str, skip: str) -> None:
    """halog's "-s N" skips N + 4 fields: a log without host name is read with -s 0."""
    lines = [g.line.replace(" lb1 ", " " + host, 1) for g in log.items[:2000]]
    data = "".join(line + "\n" for line in lines).encode()
    out = io.BytesIO()
    halog.run(halog.parse_args(["-s", skip, "-srv"]), io.BytesIO(data), out, io.StringIO())
    got = rows(out.getvalue())
    assert got == exp_srv(log.items[:2000])
    exe = shutil.which("halog")
    if exe is not None:
        want = subprocess.run([exe, "-s", skip, "-srv"], input=data, capture_output=True)
        assert rows(want.stdout) == got


def test_expectations_are_not_vacuous(log: Log) -> None:
    """The generated log exercises what the analyses distinguish."""
    items = log.items
    assert sum(not g.http for g in items) > 100  # tcplog lines mixed in
    assert sum(is_error(g) for g in items) > 500
    assert {term4(g)[:2] for g in items if g.http} >= {"--", "SC", "sC", "sH", "CD", "cR"}
    assert sum(g.record.request_line is None for g in items) > 20  # <BADREQ>
    assert len(exp_holes(items, 1000, 0)) > 10
    assert len(exp_per_key(items, True, "url")) > 10


def test_cli_quiet_and_summary(log: Log) -> None:
    """Through the real command line: rows on stdout, halog's summary on stderr unless -q."""
    with open(log.path, "rb") as f:
        p = subprocess.run(
            lbcore_cmd("halog", "-srv", "-H"), stdin=f, capture_output=True, env=lbcore_env()
        )
    assert p.returncode == 0
    assert rows(p.stdout) == exp_srv([g for g in log.items if g.http])
    assert p.stderr.decode().strip().startswith(f"{N_LINES} lines in, ")
    with open(log.path, "rb") as f:
        q = subprocess.run(
            lbcore_cmd("halog", "-q", "-srv", "-H"), stdin=f, capture_output=True, env=lbcore_env()
        )
    assert q.stdout == p.stdout and q.stderr == b""


def test_no_action_is_a_usage_error() -> None:
    p = subprocess.run(lbcore_cmd("halog"), input=b"", capture_output=True, env=lbcore_env())
    assert p.returncode == 1
    assert b"No action specified." in p.stderr and b"Usage:" in p.stderr


def test_reader_going_away_is_not_an_error(log: Log) -> None:
    """``lbcore halog -q -H < log | head -1``: no traceback when head exits."""
    with open(log.path, "rb") as f:
        p = subprocess.Popen(
            lbcore_cmd("halog", "-q", "-H"),
            stdin=f,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=lbcore_env(),
        )
        assert p.stdout is not None and p.stderr is not None
        first = p.stdout.readline()
        p.stdout.close()
        err = p.stderr.read()
        assert p.wait(timeout=30) == 0
    assert first.startswith(b"Nov ")
    assert b"Traceback" not in err
