"""``lbcore halog``: HAProxy's log analyzer, same flags, same output, streaming.

Theory of operation: lines are read from stdin as bytes, one at a time, and never kept:
each analysis (:mod:`.analyses`) folds a line into a small aggregate — a counter per
status, per server, per URL, per client address, a histogram per timer — and prints it at
the end. Memory is therefore bounded by the number of *distinct* keys (servers, URLs,
addresses, timer values, milliseconds of the day for ``-ad``), not by the size of the log:
1 GiB of log piped through ``-u`` stays at 14 MiB resident (``tests/bench/halog_speed.py
--feed-mb 1024``).

Fields are read the way halog reads them (:mod:`.fields`): runs of spaces separate fields,
``-s N`` fields (default 5: ``Mmm dd hh:mm:ss host proc[pid]:``) are skipped, then field 0
is the client address, 1 the accept date, 3 ``backend/server``, 4 the timers, 5 the status,
6 the bytes, 9 the termination state, 11 the queues, and the request is the first later
field that starts with a double quote. A TCP line is not special-cased: its three timers
do not parse as five and its bytes sit where the status would be. The behaviour was learnt
by running halog on crafted and damaged inputs (``tests/unit/logs/test_halog*.py``),
including its orderings: ties in the ``-u*``/``-ic`` tables come out in descending key
order, ``-m`` limits the rows of table outputs but the input lines of the others, and
``-ad``/``-ac`` work on the time of day, sorted.

Not reproduced: ``-gt``, ``-m 0`` and several output flags at once (halog
picks one by its own precedence; lbcore refuses); ``-time`` on a line cut inside its date
(halog then reads the next line's bytes). stderr (``Truncated line``, ``ERR:`` and the
closing summary) is halog's too.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from lbcore.logs.halog.analyses import (
    URL_SORTS,
    AcceptHoles,
    Analysis,
    CapturedHeader,
    CountLines,
    Percentiles,
    PerKey,
    PrintLines,
    Servers,
    Statuses,
    TermCodes,
)
from lbcore.logs.halog.fields import (
    _DATE_START,
    F_DATE,
    F_QUEUE,
    F_REST,
    F_SRC,
    F_STATUS,
    F_TERM,
    F_TIMERS,
    ParseError,
    Skip,
    Truncated,
    _int32,
    accept_epoch,
    atoi,
    request_url,
    timers,
)

USAGE = """\
Usage:
  lbcore halog [-h|--help] for long help
  lbcore halog [input_filters]* [modifiers]* [output_format] < log
    inp = [-e|-E] [-H] [-Q|-QS] [-rt|-RT <time>] [-ad <delay>] [-ac <count>]
          [-hs|-HS [min][:[max]]] [-tcn|-TCN <termcode>] [-time [min][:max]]
    mod = [-q] [-v] [-m <lines>] [-s <skipflds>] [-query]
    out = {-c|-u|-uc|-ue|-ua|-ut|-uao|-uto|-uba|-ubt|-hdr <block>:<field>|
           -cc|-pct|-st|-tc|-srv|-ic}
"""

OUTPUTS = {"-c", "-cc", "-pct", "-st", "-tc", "-srv", "-ic", *URL_SORTS}


class UsageError(Exception):
    pass


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
    header: tuple[int, int] = (0, 0)  # -hdr block:field
    filters: list[tuple[int, Callable[[list[bytes]], bool]]] = field(default_factory=list)


def parse_args(argv: list[str]) -> Options:
    o = Options()
    args = list(argv)
    kinds: dict[str, str | bool] = {}

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
            # as halog 2.6 reads it: "-s N" skips N + 4 fields, so the default of 5 is
            # "-s 1" and a log without host name ("Mmm dd hh:mm:ss proc[pid]:") is "-s 0"
            o.skip = int(value(a)) + 4
            if o.skip < 0:
                raise UsageError("-s: cannot skip fewer than 0 fields")
        elif a == "-ad":
            o.accept_delay = int(value(a))
        elif a == "-ac":
            o.accept_count = int(value(a))
        elif a == "-hdr":
            if o.output is not None:
                raise UsageError("only one output format may be used")
            block, _, fld = value(a).partition(":")
            o.output, o.header = a, (int(block or 0), int(fld or 0))
            if min(o.header) < 1:
                raise UsageError("block and field must be at least 1 for -hdr (<block>:<field>)")
        elif a in OUTPUTS:
            if o.output is not None:
                raise UsageError("only one output format may be used")
            o.output = a
        elif a in ("-H", "-e", "-E", "-Q", "-QS"):
            kinds[a] = True
        elif a in ("-rt", "-RT", "-tcn", "-TCN", "-hs", "-HS", "-time"):
            # one setting per kind, as in halog: the last value counts, and the inverted
            # form wins as soon as it is given once
            kind = a.lower()
            kinds[kind] = value(a)
            if a != kind:
                kinds[kind + "!"] = True
        else:
            raise UsageError(f"unknown option '{a}'")
    o.filters = _filters(kinds)
    if o.output is None and (o.accept_delay is not None or o.accept_count is not None):
        o.output = "-ad"
    if o.output is None and not o.filters and not o.quiet:
        raise UsageError("No action specified.")
    return o


Filter = Callable[[list[bytes]], bool]


def _filters(k: dict[str, str | bool]) -> list[tuple[int, Filter]]:
    """The filters the options asked for, each with the highest field it reads."""
    out: list[tuple[int, Filter]] = []
    if k.get("-H"):
        out.append((F_TIMERS, _is_http))
    if k.get("-E") or k.get("-e"):
        out.append((F_STATUS, _errors(not k.get("-E"))))  # -E wins over -e
    if k.get("-QS") or k.get("-Q"):
        out.append((F_QUEUE, _queued(bool(k.get("-QS")))))  # -QS wins over -Q
    if "-rt" in k:
        out.append((F_TIMERS, _response_time(int(str(k["-rt"])), not k.get("-rt!"))))
    if "-tcn" in k:
        out.append((F_TERM, _termcode(str(k["-tcn"]).encode(), not k.get("-tcn!"))))
    if "-hs" in k:
        lo, hi = _range(str(k["-hs"]), status=True)
        out.append((F_STATUS, _status_in(lo, hi, not k.get("-hs!"))))
    if "-time" in k:
        lo, hi = _range(str(k["-time"]), status=False)
        out.append((F_DATE, _time_in(lo, hi)))
    return out


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


def _client_key(skip: int) -> Callable[[bytes, list[bytes]], bytes]:
    def key(line: bytes, f: list[bytes]) -> bytes:
        src = f[F_SRC]
        if b":" in src:
            return src.rpartition(b":")[0]
        return line.split(None, skip)[-1]  # halog's key then runs to the end of the line

    return key


def make_analysis(o: Options, out: BinaryIO, err: TextIO | None = None) -> Analysis:
    if o.output is None:
        return PrintLines(out)
    if o.output == "-c":
        return CountLines()
    if o.output == "-hdr":
        return CapturedHeader(out, *o.header)
    if o.output == "-st":
        return Statuses()
    if o.output in ("-tc", "-cc"):
        return TermCodes(cookie=o.output == "-cc", skip=o.skip)
    if o.output == "-srv":
        return Servers()
    if o.output == "-pct":
        if o.quiet or err is None:
            return Percentiles()
        stream = err

        def warn(text: str) -> None:
            stream.write(text + "\n")

        return Percentiles(warn)
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
    analysis = make_analysis(o, out, err)
    need = max(analysis.needs, F_DATE)
    split_at = o.skip + F_REST  # fields past the queues stay in one piece
    skip = o.skip
    add = analysis.add
    filters = sorted(o.filters, key=lambda nf: nf[0])  # the date first, as halog
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
            if filters:
                ok = True
                for field_needed, fn in filters:
                    if n <= field_needed:
                        raise Truncated
                    if not fn(f):
                        ok = False
                        break
                if ok == invert:
                    continue
            elif invert:
                continue
            if n <= need:
                raise Truncated
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
    header = 1 if isinstance(analysis, (Servers, PerKey)) else 0
    if analysis.table:
        sm.lines_out = 0  # for tables, halog reports the rows printed (header aside)
    for n, row in enumerate(rows):
        if analysis.table and o.max_lines is not None and n >= o.max_lines + header:
            break
        out.write(row.encode("latin-1") + b"\n")
        if analysis.table and n >= header:
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
    try:
        sm = run(o, sys.stdin.buffer, out, sys.stderr)
        out.flush()
    except BrokenPipeError:  # "| head": the reader is gone, stop quietly like halog
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    sys.stderr.write(summary(o, sm))
    return 0


def summary(o: Options, sm: Summary) -> str:
    """halog's closing line on stderr (none with -q, nor for a bare count)."""
    if o.quiet or o.output == "-c":
        return ""
    return f"{sm.lines_in} lines in, {sm.lines_out} lines out, {sm.errors} parsing errors\n"
