"""Reading the fields of a log line the way halog reads them.

halog is a C program with its own way of reading numbers and fields, and ``lbcore halog``
must print what it prints, damaged lines included. Each reader here says what it
reproduces; all of it was learnt by running halog on crafted lines (see
``tests/unit/logs/test_halog_damaged.py``), not from its source.
"""

from __future__ import annotations

import re
import time

F_SRC, F_DATE, F_SRV, F_TIMERS, F_STATUS, F_BYTES, F_TERM, F_QUEUE = 0, 1, 3, 4, 5, 6, 9, 11
F_REST = 12  # captured headers and the request, kept in one piece
_MONTHS = {
    m: i + 1 for i, m in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
}


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
        return int(b) if len(b) < 10 else _wrap32(int(b))
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


#: What halog makes of a date it cannot read for ``-time``: later than any bound.
NEVER = 1 << 40
_TIME_DATE = re.compile(rb"\[\d\d/")


def accept_epoch(fields: list[bytes]) -> int:
    """The accept date as a Unix time, read in the local time zone as halog does; a date
    halog cannot read (an unknown month, or cut before the ``:`` after the hour) counts as
    later than any time, so ``-time MIN`` keeps the line and ``-time MIN:MAX`` drops it."""
    d = fields[F_DATE]
    if not _TIME_DATE.match(d) or (len(d) < 25 and d.count(b":") < 2):
        return NEVER
    day, mon, year, h, m, sec, _ = _date(fields)
    month = _MONTHS.get(mon)
    if month is None:
        return NEVER
    tm = (_num(year), month, _num(day), _num(h), _num(m), _num(sec), 0, 0, -1)
    try:
        return int(time.mktime(tm))
    except (OverflowError, ValueError):
        return NEVER
