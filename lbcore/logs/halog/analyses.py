"""The analyses of ``lbcore halog``: each folds matching lines into a small aggregate and
prints halog's rows for it at the end."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import BinaryIO

from lbcore.logs.halog.fields import (
    F_BYTES,
    F_DATE,
    F_REST,
    F_SRV,
    F_STATUS,
    F_TERM,
    F_TIMERS,
    Skip,
    Truncated,
    accept_ms_of_day,
    atoi,
    timers,
)

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


_BLOCK_OR_REQUEST = re.compile(rb'(?:^| )([{"])')


class CapturedHeader(Analysis):
    """``-hdr B:F``: field F of the B-th ``{...}`` block of captured headers, one line per
    log line (an empty one when the request comes before that block, or the block has no
    such field; none when the line does not read as blocks then a quoted request)."""

    table = False
    needs = F_REST

    def __init__(self, out: BinaryIO, block: int, field: int) -> None:
        self.out, self.block, self.field = out, block, field

    def add(self, line: bytes, f: list[bytes]) -> None:
        rest = f[F_REST]
        for b in range(self.block):
            m = _BLOCK_OR_REQUEST.search(rest)  # other fields in between are skipped
            if m is None:
                raise Truncated
            rest = rest[m.start(1) :]
            if rest[:1] == b'"':  # the request already: no such block
                self.out.write(b"\n")
                return
            end = rest.find(b"}")
            if end < 0:
                raise Truncated
            if b == self.block - 1:
                values = rest[1:end].split(b"|")
                value = values[self.field - 1] if self.field <= len(values) else b""
                self.out.write(value + b"\n")
                return
            rest = rest[end + 1 :].lstrip(b" ")
            if not rest:
                raise Truncated

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
            main = tr
            err = tq < 0 or tw < 0 or tc < 0 or tr < 0 or ta < 0
        else:
            main = tq
            err = tq < 0 or ta < 0
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
            b = f[F_BYTES]
            s[4] += int(b) if len(b) < 10 and b.isdigit() else atoi(b)

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

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self.hist: list[Counter[int]] = [Counter(), Counter(), Counter(), Counter()]
        self.n = 0
        self.warn = warn

    def add(self, line: bytes, f: list[bytes]) -> None:
        tq, tw, tc, tr, ta = timers(f, 5)
        if tq < 0 or tw < 0 or tc < 0 or tr < 0 or ta < 0:
            raise Skip
        self.n += 1
        h = self.hist
        td = ta - (tq + tw + tc + tr)
        if td < 0 and self.warn is not None:  # counted all the same, as halog does
            self.warn(f"ERR: {line.decode('latin-1')} ({tq} {tw} {tc} {tr} {ta} => {td})")
        h[0][tq] += 1
        h[1][tc] += 1
        h[2][tr] += 1
        h[3][td] += 1

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
