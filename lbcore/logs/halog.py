"""``lbcore halog``: HAProxy's log analyzer, same flags, same output, streaming.

Theory of operation: lines are read from stdin as bytes, one at a time, and never kept:
each analysis folds a line into a small aggregate (a counter per status, per server, per
URL, per client address, a histogram per timer) and prints the aggregate at the end. Memory
is therefore bounded by the number of *distinct* keys (servers, URLs, addresses, timer
values, milliseconds of the day for ``-ad``), not by the size of the log: a 1 GB log with a
few thousand URLs uses a few megabytes. (halog itself keeps every timer of every line for
``-pct``; a histogram gives the same percentiles.)

Fields are counted the way halog counts them: runs of spaces separate fields, ``-s N``
fields (default 5: ``Mmm dd hh:mm:ss host proc[pid]:``) are skipped, then field 0 is the
client address, 1 the accept date, 3 ``backend/server``, 4 the timers, 5 the status,
6 the bytes, 9 the termination state, 11 the queues, and the request is the text from the
first double quote after that. Like halog, a TCP line is not special-cased: its third timer
field is simply missing (``-srv`` counts it as a parsing error) and its bytes sit where the
status would be. Behaviour was learnt by running halog on crafted inputs (see
``tests/unit/logs/test_halog.py``), including its orderings: ties in the ``-u*``/``-ic``
tables come out in descending key order, ``-m`` limits the rows of table outputs but the
input lines of the others, and ``-ad``/``-ac`` work on the time of day, sorted.
"""

from __future__ import annotations

import io
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

USAGE = """\
Usage:
  lbcore halog [-h|--help] for long help
  lbcore halog [input_filters]* [modifiers]* [output_format] < log
    inp = [-e|-E] [-H] [-Q|-QS] [-rt|-RT <time>] [-ad <delay>] [-ac <count>]
          [-hs|-HS [min][:[max]]] [-tcn|-TCN <termcode>] [-time [min][:max]]
    mod = [-q] [-v] [-m <lines>] [-s <skipflds>] [-query]
    out = {-c|-u|-uc|-ue|-ua|-ut|-uao|-uto|-uba|-ubt|-cc|-pct|-st|-tc|-srv|-ic}
"""

F_SRC, F_DATE, F_SRV, F_TIMERS, F_STATUS, F_BYTES, F_TERM, F_QUEUE = 0, 1, 3, 4, 5, 6, 9, 11
F_REST = 12  # captured headers and the request, kept in one piece
U64 = 1 << 64
#: halog's percentile rows, in tenths of a percent
PCTS = (
    list(range(1, 21))
    + list(range(30, 101, 10))
    + list(range(150, 851, 50))
    + list(range(900, 981, 10))
    + list(range(981, 1001))
)
URL_SORTS = {
    "-u": "url",
    "-uc": "req",
    "-ue": "err",
    "-ua": "tavg",
    "-ut": "ttot",
    "-uao": "okavg",
    "-uto": "oktot",
    "-uba": "bavg",
    "-ubt": "btot",
}
OUTPUTS = {"-c", "-cc", "-pct", "-st", "-tc", "-srv", "-ic", *URL_SORTS}
_MONTHS = {
    m: i + 1 for i, m in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
}


class UsageError(Exception):
    pass


class Truncated(Exception):
    """The line ends before a field the analysis needs (halog says "Truncated line")."""


class ParseError(Exception):
    """A field is there but unusable (halog counts a "parsing error")."""


class Skip(Exception):
    """The analysis ignores this line: it is neither output nor an error."""


def _wrap32(v: int) -> int:
    """halog reads numbers into 32-bit integers."""
    if -0x80000000 <= v <= 0x7FFFFFFF:
        return v
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def atoi(b: bytes) -> int:
    """A status or byte count as halog reads it: an optional ``-`` and the leading digits,
    0 when there are none (a ``+``, as in logasap's ``+2750``, reads as 0), in 32 bits."""
    if b.isdigit():
        return _wrap32(int(b))
    neg = b[:1] == b"-"
    i = j = 1 if neg else 0
    while j < len(b) and 48 <= b[j] <= 57:
        j += 1
    if j == i:
        return 0
    v = int(b[i:j])
    return _wrap32(-v if neg else v)


def _timer(p: bytes) -> int:
    """One timer: an optional sign and the leading digits; an empty one is an error."""
    if p.isdigit():
        return _wrap32(int(p))
    if not p:
        raise ParseError
    sign = p[:1]
    i = j = 1 if sign in (b"-", b"+") else 0
    while j < len(p) and 48 <= p[j] <= 57:
        j += 1
    v = int(p[i:j]) if j > i else 0
    return _wrap32(-v if sign == b"-" else v)


def _int32(text: str) -> int:
    v = int(text or "0") & 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def timers(fields: list[bytes], n: int) -> list[int]:
    """The first ``n`` slash-separated timers, ``+`` prefixes allowed."""
    field = fields[F_TIMERS]
    parts = field.split(b"/", n)
    if len(parts) < n:
        raise ParseError
    del parts[n:]
    try:
        vals = list(map(int, parts))
    except ValueError:
        return [_timer(p) for p in parts]
    # int() reads "1_0" as 10 and has no 32-bit limit; halog has both
    if b"_" in field or max(vals) > 0x7FFFFFFF or min(vals) < -0x80000000:
        return [_timer(p) for p in parts]
    return vals


_URL = re.compile(rb'"[^ ]* +([^ ?;]*)')
_URL_QUERY = re.compile(rb'"[^ ]* +([^ ]*)')


def request_url(fields: list[bytes], keep_query: bool) -> bytes:
    """The URL of the quoted request: the word after the method, up to ``?`` or ``;``
    unless ``-query``; without a space after the quote, the quoted text itself
    (``"<BADREQ>"``). The request is the first field after the queues that starts with
    a double quote (captured headers ``{...}`` come before it)."""
    if len(fields) <= F_REST:
        raise Truncated
    rest = fields[F_REST].rstrip(b" ")
    if rest[:1] != b'"':
        q = rest.find(b' "')
        if q < 0:
            raise Truncated
        rest = rest[q + 1 :]
    m = (_URL_QUERY if keep_query else _URL).match(rest)
    return m.group(1) if m else rest


_DATE_START = re.compile(rb"\[\d")
_DATE = re.compile(rb"\[(\d+)/([^/]*)/(\d+)(?::(\d*)(?::(\d*)(?::(\d*)(?:\.(\d*))?)?)?)?")


def _date(fields: list[bytes]) -> tuple[bytes, ...]:
    """``[dd/Mon/yyyy:hh:mm:ss.mmm]`` split, tolerating a cut date as halog does (missing
    parts read as 0, ``.3`` as 3 ms)."""
    d = fields[F_DATE]
    if len(d) >= 25 and d[3:4] == d[7:8] == b"/" and d[12:13] == d[15:16] == b":":
        return d[1:3], d[4:7], d[8:12], d[13:15], d[16:18], d[19:21], d[22:25]
    m = _DATE.match(d)
    if m is None:
        raise ParseError
    return tuple(g or b"" for g in m.groups())


def _num(b: bytes) -> int:
    if b.isdigit():
        return int(b)
    j = 0
    while j < len(b) and 48 <= b[j] <= 57:
        j += 1
    return int(b[:j]) if j else 0


def accept_ms_of_day(fields: list[bytes]) -> tuple[int, int, int, int]:
    parts = _date(fields)
    if fields[F_DATE][12:13] != b":" and b":" not in fields[F_DATE]:
        raise ParseError  # no time of day at all
    return _num(parts[3]), _num(parts[4]), _num(parts[5]), _num(parts[6])


def accept_epoch(fields: list[bytes]) -> int:
    """The accept date as a Unix time, read in the local time zone as halog does."""
    day, mon, year, h, m, sec, _ = _date(fields)
    month = _MONTHS.get(mon)
    if month is None:
        raise ParseError
    tm = (_num(year), month, _num(day), _num(h), _num(m), _num(sec), 0, 0, -1)
    try:
        return int(time.mktime(tm))
    except (OverflowError, ValueError):
        raise ParseError from None


# ---------------------------------------------------------------------------- options


@dataclass
class Options:
    output: str | None = None
    quiet: bool = False
    invert: bool = False
    max_lines: int | None = None
    skip: int = 5
    keep_query: bool = False
    accept_delay: int | None = None
    accept_count: int | None = None
    filters: list[tuple[int, Callable[[list[bytes]], bool]]] = field(default_factory=list)


def parse_args(argv: list[str]) -> Options:
    o = Options()
    args = list(argv)

    def value(flag: str) -> str:
        if not args:
            raise UsageError(f"{flag} needs a value")
        return args.pop(0)

    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            raise UsageError("")
        if a == "-q":
            o.quiet = True
        elif a == "-v":
            o.invert = True
        elif a == "-query":
            o.keep_query = True
        elif a == "-m":
            o.max_lines = int(value(a))
        elif a == "-s":
            o.skip = int(value(a))
        elif a == "-ad":
            o.accept_delay = int(value(a))
        elif a == "-ac":
            o.accept_count = int(value(a))
        elif a in OUTPUTS:
            if o.output is not None:
                raise UsageError("only one output format may be used")
            o.output = a
        elif a == "-H":
            o.filters.append((F_TIMERS, _is_http))
        elif a in ("-e", "-E"):
            o.filters.append((F_STATUS, _errors(a == "-e")))
        elif a in ("-rt", "-RT"):
            o.filters.append((F_TIMERS, _response_time(int(value(a)), a == "-rt")))
        elif a in ("-Q", "-QS"):
            o.filters.append((F_QUEUE, _queued(a == "-QS")))
        elif a in ("-tcn", "-TCN"):
            o.filters.append((F_TERM, _termcode(value(a).encode(), a == "-tcn")))
        elif a in ("-hs", "-HS"):
            lo, hi = _range(value(a), status=True)
            o.filters.append((F_STATUS, _status_in(lo, hi, a == "-hs")))
        elif a == "-time":
            lo, hi = _range(value(a), status=False)
            o.filters.append((F_DATE, _time_in(lo, hi)))
        else:
            raise UsageError(f"unknown option '{a}'")
    if o.output is None and (o.accept_delay is not None or o.accept_count is not None):
        o.output = "-ad"
    if o.output is None and not o.filters and not o.quiet:
        raise UsageError("No action specified.")
    return o


Filter = Callable[[list[bytes]], bool]


def _is_http(f: list[bytes]) -> bool:
    """TR/Tw/Tc/Tr/Ta, where tcplog has Tw/Tc/Tt: something follows a third slash."""
    t = f[F_TIMERS]
    c = t.count(b"/")
    return c >= 4 or (c == 3 and t[-1:] != b"/")


def _errors(want: bool) -> Filter:
    def match(f: list[bytes]) -> bool:
        st = atoi(f[F_STATUS])
        return (st < 0 or 500 <= st <= 599) == want

    return match


def _response_time(limit: int, above: bool) -> Filter:
    return lambda f: (timers(f, 4)[3] >= limit) == above


def _queued(server_only: bool) -> Filter:
    """Queued: a server queue that is not a number or not 0, or (-Q) a backend queue
    that reads as non-zero."""

    def match(f: list[bytes]) -> bool:
        sq, _, bq = f[F_QUEUE].partition(b"/")
        if not sq[:1].isdigit() or atoi(sq) != 0:
            return True
        return not server_only and atoi(bq) != 0

    return match


def _termcode(code: bytes, want: bool) -> Filter:
    return lambda f: (f[F_TERM][:2] == code) == want


def _status_in(lo: int, hi: int, want: bool) -> Filter:
    return lambda f: (lo <= atoi(f[F_STATUS]) <= hi) == want


def _time_in(lo: int, hi: int) -> Filter:
    return lambda f: lo <= accept_epoch(f) <= hi


def _range(text: str, status: bool) -> tuple[int, int]:
    """``[min][:[max]]``. halog reads an absent -hs max as unbounded, an absent -time max
    as 0 (matching nothing), and time bounds as 32-bit integers."""
    if ":" not in text:
        v = int(text) if status else _int32(text)
        return (v, v) if status else (v, 1 << 62)
    lo, hi = text.split(":", 1)
    if status:
        return int(lo or 0), int(hi) if hi else 1 << 62
    return _int32(lo), _int32(hi)


# ---------------------------------------------------------------------------- analyses


class Analysis:
    """Folds matching lines; ``rows()`` yields the output lines (without newline)."""

    table = True  # -m limits the printed rows (else the matched input lines)
    needs = -1  # highest field index used

    def add(self, line: bytes, f: list[bytes]) -> None:
        raise NotImplementedError

    def rows(self) -> Iterable[str]:
        raise NotImplementedError


class PrintLines(Analysis):
    table = False

    def __init__(self, out: BinaryIO) -> None:
        self.out = out

    def add(self, line: bytes, f: list[bytes]) -> None:
        self.out.write(line + b"\n")

    def rows(self) -> Iterable[str]:
        return ()


class CountLines(Analysis):
    table = False

    def __init__(self) -> None:
        self.n = 0

    def add(self, line: bytes, f: list[bytes]) -> None:
        self.n += 1

    def rows(self) -> Iterable[str]:
        yield str(self.n)


class Statuses(Analysis):
    needs = F_STATUS

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()

    def add(self, line: bytes, f: list[bytes]) -> None:
        self.counts[atoi(f[F_STATUS])] += 1

    def rows(self) -> Iterable[str]:
        for st in sorted(self.counts):
            yield f"{st} {self.counts[st]}"


class TermCodes(Analysis):
    needs = F_TERM

    def __init__(self, cookie: bool, skip: int) -> None:
        self.sl = slice(2, 4) if cookie else slice(0, 2)
        self.split_at = skip + F_TERM
        self.counts: Counter[bytes] = Counter()
        self.pending: bytes | None = None

    def add(self, line: bytes, f: list[bytes]) -> None:
        term = f[F_TERM]
        if len(term) < self.sl.stop:
            # halog copies the bytes that follow a short field: the separator, or past the
            # end of the line what its buffer holds there: the line's terminating NUL,
            # then the next line's first bytes (a newline and a NUL after the last line).
            rest = line.split(None, self.split_at)[-1]
            if len(rest) < self.sl.stop:
                self.pending = rest + b"\0"
                return
            term = rest
        self.counts[term[self.sl]] += 1

    def resolve(self, following: bytes) -> None:
        """Complete a short code with the bytes halog would read next."""
        assert self.pending is not None
        self.counts[(self.pending + following)[self.sl]] += 1
        self.pending = None

    def rows(self) -> Iterable[str]:
        for code in sorted(self.counts):
            yield f"{code.decode('latin-1')} {self.counts[code]}"


class Servers(Analysis):
    """``-srv``: req_ok counts lines whose five timers are all set (not a status test).

    As halog does: a server is listed as soon as its name is read; a line with readable
    timers counts for req_ok, avg_ct and avg_rt (and pct_ok's denominator) even if its
    status is missing, and its status class is the status's first character (``1``-``5``,
    anything else is "other"); tot_req is the sum of the classes.
    """

    needs = F_SRV
    HEADER = "#srv_name 1xx 2xx 3xx 4xx 5xx other tot_req req_ok pct_ok avg_ct avg_rt"
    _CLASS = {ord(c): i for i, c in enumerate("12345")}

    def __init__(self) -> None:
        # name -> [1xx..5xx, other, timed, ok, ct_sum, ct_n, rt_sum, rt_n]
        self.srv: dict[bytes, list[int]] = {}

    def add(self, line: bytes, f: list[bytes]) -> None:
        s = self.srv.get(f[F_SRV])
        if s is None:
            s = self.srv[f[F_SRV]] = [0] * 12
        if len(f) <= F_TIMERS:
            raise Truncated
        tq, tw, tc, tr, ta = timers(f, 5)  # a parse error leaves the server listed, empty
        s[6] += 1
        if tq >= 0 and tw >= 0 and tc >= 0 and tr >= 0 and ta >= 0:
            s[7] += 1
        if tc >= 0:
            s[8] += tc
            s[9] += 1
        if tr >= 0:
            s[10] += tr
            s[11] += 1
        if len(f) <= F_STATUS:
            raise Truncated
        st = f[F_STATUS]
        s[self._CLASS.get(st[0], 5) if st else 5] += 1

    def rows(self) -> Iterable[str]:
        yield self.HEADER
        for name in sorted(self.srv):
            s = self.srv[name]
            tot = sum(s[:6])
            pct = s[7] * 100.0 / (tot or 1)  # halog's figure, even when it exceeds 100
            ct = s[8] // s[9] if s[9] else 0
            rt = s[10] // s[11] if s[11] else 0
            yield (
                f"{name.decode('latin-1')} {s[0]} {s[1]} {s[2]} {s[3]} {s[4]} {s[5]} "
                f"{tot} {s[7]} {pct:.1f} {ct} {rt}"
            )


class PerKey(Analysis):
    """``-u*`` (per URL) and ``-ic`` (per client address): the same eight columns.

    What halog measures differs between the two, as observed: per URL the time of a
    request is Tr (Ta when Tr is unset), it adds to ``oktot`` when Tr is set, and the
    request is an error when any of its five timers is unset; per client the time is Tq
    (Ta when unset), ``oktot`` takes it when Tq is set, and only an unset Tq or Ta is an
    error. ``okavg`` divides ``oktot`` by the non-error requests. Sums are unsigned 64-bit.
    """

    needs = F_TIMERS
    HEADER = "#req err ttot tavg oktot okavg bavg btot src"

    def __init__(self, key: Callable[[bytes, list[bytes]], bytes], sort: str, by_url: bool) -> None:
        self.key = key
        self.sort = sort
        self.by_url = by_url
        self.stats: dict[bytes, list[int]] = {}  # req, err, ttot, oktot, btot

    def add(self, line: bytes, f: list[bytes]) -> None:
        tq, tw, tc, tr, ta = timers(f, 5)
        k = self.key(line, f)
        if self.by_url:
            main, err = tr, min(tq, tw, tc, tr, ta) < 0
        else:
            main, err = tq, tq < 0 or ta < 0
        s = self.stats.get(k)
        if s is None:
            s = self.stats[k] = [0, 0, 0, 0, 0]
        s[0] += 1
        if err:
            s[1] += 1
        if main >= 0:
            s[2] += main
            s[3] += main
        else:
            s[2] += ta
        if len(f) > F_BYTES:  # a line cut after its timers still counts, with 0 bytes
            s[4] += atoi(f[F_BYTES])

    def rows(self) -> Iterable[str]:
        yield self.HEADER
        table = []
        for k, (req, err, ttot, oktot, btot) in self.stats.items():
            ttot %= U64
            btot %= U64
            tavg = ttot // req
            okavg = oktot // (req - err) if req > err else 0
            bavg = btot // req
            cols = (req, err, ttot, tavg, oktot, okavg, bavg, btot)
            table.append((cols, k))
        idx = {"req": 0, "err": 1, "ttot": 2, "tavg": 3, "oktot": 4, "okavg": 5}
        idx |= {"bavg": 6, "btot": 7}
        if self.sort == "url":
            table.sort(key=lambda row: row[1], reverse=True)
        else:
            i = idx[self.sort]
            table.sort(key=lambda row: (row[0][i], row[1]), reverse=True)
        for cols, k in table:
            yield " ".join(map(str, cols)) + " " + k.decode("latin-1")


class Percentiles(Analysis):
    """``-pct``: Tq, Tc, Tr and Td (= Ta - Tq - Tw - Tc - Tr) of the requests with all five
    timers set, each column ranked on its own. Histograms, not lists: bounded memory."""

    table = False
    needs = F_TIMERS

    def __init__(self) -> None:
        self.hist: list[Counter[int]] = [Counter(), Counter(), Counter(), Counter()]
        self.n = 0

    def add(self, line: bytes, f: list[bytes]) -> None:
        tq, tw, tc, tr, ta = timers(f, 5)
        if min(tq, tw, tc, tr, ta) < 0:
            raise Skip
        self.n += 1
        h = self.hist
        h[0][tq] += 1
        h[1][tc] += 1
        h[2][tr] += 1
        h[3][ta - (tq + tw + tc + tr)] += 1

    def rows(self) -> Iterable[str]:
        if not self.n:
            return
        # halog computes the rank in floating point: N * 0.35 is 944.99... for N = 2700
        counts = [int(self.n * (p / 1000.0)) for p in PCTS]
        ranks = [max(c - 1, 0) for c in counts]
        cols = [_values_at(h, ranks) for h in self.hist]
        for i, p in enumerate(PCTS):
            count = counts[i]
            yield f"{p // 10}.{p % 10} {count} {cols[0][i]} {cols[1][i]} {cols[2][i]} {cols[3][i]} "


def _values_at(hist: Counter[int], ranks: list[int]) -> list[int]:
    """The value at each (ascending) rank of the sorted multiset ``hist``."""
    out: list[int] = []
    keys = sorted(hist)
    seen, ki = 0, 0
    for r in ranks:
        while seen + hist[keys[ki]] <= r:
            seen += hist[keys[ki]]
            ki += 1
        out.append(keys[ki])
    return out


class AcceptHoles(Analysis):
    """``-ad``/``-ac``: lines per millisecond of the day, sorted; report each millisecond
    at least ``delay`` after the previous one seen, holding at least ``count`` lines."""

    needs = F_DATE

    def __init__(self, delay: int | None, count: int | None) -> None:
        # With -ad, the first millisecond (nothing before it) is never reported; with
        # -ac alone it is, with a delta of 0.
        self.first = delay is None
        self.delay, self.count = delay or 0, count or 0
        self.per_ms: Counter[int] = Counter()

    def add(self, line: bytes, f: list[bytes]) -> None:
        if len(f) == F_DATE + 1 and len(f[F_DATE]) < 26:
            raise Truncated  # the line ends inside its date: halog ignores it
        h, m, s, ms = accept_ms_of_day(f)
        self.per_ms[((h * 60 + m) * 60 + s) * 1000 + ms] += 1

    def rows(self) -> Iterable[str]:
        prev = None
        for ms in sorted(self.per_ms):
            n = self.per_ms[ms]
            if prev is None and not self.first:
                prev = ms
                continue
            delta = ms - prev if prev is not None else 0
            if delta >= self.delay and n >= self.count:
                s, milli = divmod(ms, 1000)
                hms = f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{milli:03d}"
                yield f"{hms} {ms} {delta} {n}"
            prev = ms


def _client_key(skip: int) -> Callable[[bytes, list[bytes]], bytes]:
    def key(line: bytes, f: list[bytes]) -> bytes:
        src = f[F_SRC]
        if b":" in src:
            return src.rpartition(b":")[0]
        return line.split(None, skip)[-1]  # halog's key then runs to the end of the line

    return key


def make_analysis(o: Options, out: BinaryIO) -> Analysis:
    if o.output is None:
        return PrintLines(out)
    if o.output == "-c":
        return CountLines()
    if o.output == "-st":
        return Statuses()
    if o.output in ("-tc", "-cc"):
        return TermCodes(cookie=o.output == "-cc", skip=o.skip)
    if o.output == "-srv":
        return Servers()
    if o.output == "-pct":
        return Percentiles()
    if o.output == "-ad":
        return AcceptHoles(o.accept_delay, o.accept_count)
    if o.output == "-ic":
        return PerKey(_client_key(o.skip), "req", False)
    keep = o.keep_query
    return PerKey(lambda line, f: request_url(f, keep), URL_SORTS[o.output], True)


# ---------------------------------------------------------------------------- driver


@dataclass
class Summary:
    lines_in: int = 0
    lines_out: int = 0
    errors: int = 0


def run(o: Options, src: BinaryIO, out: BinaryIO, err: TextIO) -> Summary:
    """Stream ``src`` through the filters into one analysis; write its rows to ``out``."""
    analysis = make_analysis(o, out)
    need = max([analysis.needs, F_DATE] + [i for i, _ in o.filters])
    split_at = o.skip + F_REST  # fields past the queues stay in one piece
    skip = o.skip
    add = analysis.add
    filters = [fn for _, fn in o.filters]
    invert = o.invert
    limit_input = o.max_lines if not analysis.table else None
    sm = Summary()
    if isinstance(analysis, CountLines) and not filters:
        for _ in src:  # like halog: a bare count reads no field at all
            sm.lines_in += 1
        analysis.n = sm.lines_out = sm.lines_in
        if limit_input is not None:
            analysis.n = sm.lines_out = min(sm.lines_in, limit_input)
        src = io.BytesIO()
    terms = analysis if isinstance(analysis, TermCodes) else None
    for raw in src:
        sm.lines_in += 1
        if terms is not None and terms.pending is not None:
            terms.resolve(raw)
        line = raw[:-1] if raw[-1:] == b"\n" else raw
        f = line.split(None, split_at)[skip:]
        n = len(f)
        if n <= F_DATE or not _DATE_START.match(f[F_DATE]):  # "[" and a digit
            sm.errors += 1
            continue
        try:
            if n <= need:
                raise Truncated
            if filters:
                ok = True
                for fn in filters:
                    if not fn(f):
                        ok = False
                        break
                if ok == invert:
                    continue
            elif invert:
                continue
            add(line, f)
        except Truncated:
            if not o.quiet:
                err.write(f"Truncated line {sm.lines_in}: {line.decode('latin-1')}\n")
            continue
        except ParseError:
            sm.errors += 1
            continue
        except Skip:
            continue
        sm.lines_out += 1
        if limit_input is not None and sm.lines_out >= limit_input:
            break
    if terms is not None and terms.pending is not None:
        terms.resolve(b"\n\0")
    rows = analysis.rows()
    if analysis.table:
        sm.lines_out = 0
    for n, row in enumerate(rows):
        if (
            analysis.table
            and o.max_lines is not None
            and n > o.max_lines - (0 if isinstance(analysis, (Servers, PerKey)) else 1)
        ):
            break
        out.write(row.encode("latin-1") + b"\n")
        if analysis.table:
            sm.lines_out += 1
    return sm


def main(argv: list[str]) -> int:
    try:
        o = parse_args(argv)
    except (UsageError, ValueError) as exc:
        if str(exc):
            sys.stderr.write(f"{exc}\n")
        sys.stderr.write(USAGE)
        return 0 if not str(exc) else 1
    out = sys.stdout.buffer
    sm = run(o, sys.stdin.buffer, out, sys.stderr)
    out.flush()
    if not o.quiet:
        sys.stderr.write(
            f"{sm.lines_in} lines in, {sm.lines_out} lines out, {sm.errors} parsing errors\n"
        )
    return 0
