"""The syslog envelope around a log line, as HAProxy 2.6 writes it.

:func:`frame` implements the ``log ... format`` values HAProxy 2.6 accepts: ``local`` (the
default: ``<PRI>Mmm dd hh:mm:ss tag[pid]: msg``), ``rfc3164`` (the same with a host name,
``localhost`` unless one is set), ``rfc5424``, ``short`` (``<LEVEL>msg``), ``priority``,
``timed``, ``iso`` and ``raw``; each message is cut to ``len`` bytes and terminated by a
line feed — byte for byte as the golden tests capture from HAProxy itself. Pure: the time
is an argument.
"""

from __future__ import annotations

import datetime as _dt
import functools

from lbcore.logs.format import MONTHS, LogFormatError, local_datetime, utc_offset

_FACILITY_NAMES = "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit"
FACILITIES = [
    *_FACILITY_NAMES.split(),
    "alert",
    "cron2",
    *(f"local{i}" for i in range(8)),
]
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
SYSLOG_FORMATS = ("local", "rfc3164", "rfc5424", "short", "priority", "timed", "iso", "raw")


def priority(facility: str, level: str) -> int:
    """``<PRI>`` = facility * 8 + severity (RFC 5424 §6.2.1)."""
    try:
        return FACILITIES.index(facility) * 8 + LEVELS.index(level)
    except ValueError as exc:
        raise LogFormatError(f"unknown syslog facility or level: {facility}/{level}") from exc


def frame(
    message: str,
    *,
    now: float,
    facility: str = "local0",
    level: str = "info",
    fmt: str = "local",
    tag: str = "haproxy",
    pid: int = 0,
    hostname: str | None = None,
    maxlen: int = 1024,
    tz: _dt.tzinfo | None = None,
) -> bytes:
    """One syslog datagram (or file line) as HAProxy 2.6 writes it.

    ``hostname`` (HAProxy's ``log-send-hostname``) is written by ``local`` only when set,
    always by ``rfc3164`` (``localhost`` by default, as HAProxy 2.6 does), and by
    ``rfc5424`` as ``-`` when unset. The header and message together are cut to ``maxlen``
    bytes, then a line feed is appended.
    """
    if fmt in _PER_SECOND:
        # A function of the second only: built once per second, not once per line.
        head = _head(fmt, facility, level, tag, pid, hostname, int(now), tz)
    else:
        head = _head_us(fmt, facility, level, tag, pid, hostname, now, tz)
    data = (head + message).encode("utf-8", "surrogateescape")
    return data[:maxlen] + b"\n"


class Framer:
    """:func:`frame` for one target at one level, for a sender that frames many lines: the
    header of the formats that change once per second (or never) is kept until the second
    changes, and the arguments are bound once, instead of a cache look-up keyed by eight
    of them per line. The bytes are :func:`frame`'s (``tests/unit/logs/test_fast.py``)."""

    __slots__ = (
        "_headb",
        "_sec",
        "facility",
        "fmt",
        "hostname",
        "level",
        "maxlen",
        "per_second",
        "pid",
        "tag",
        "tz",
    )

    def __init__(
        self,
        *,
        facility: str = "local0",
        level: str = "info",
        fmt: str = "local",
        tag: str = "haproxy",
        pid: int = 0,
        hostname: str | None = None,
        maxlen: int = 1024,
        tz: _dt.tzinfo | None = None,
    ) -> None:
        self.facility = facility
        self.level = level
        self.fmt = fmt
        self.tag = tag
        self.pid = pid
        self.hostname = hostname
        self.maxlen = maxlen
        self.tz = tz
        self.per_second = fmt in _PER_SECOND
        self._sec = -1  # no header built yet (a second before 1970 is not a log's)
        self._headb = b""  # the header of second _sec, encoded

    def _refresh(self, sec: int) -> None:
        self._headb = _head(
            self.fmt, self.facility, self.level, self.tag, self.pid, self.hostname, sec, self.tz
        ).encode("utf-8", "surrogateescape")
        self._sec = sec

    def frame_bytes(self, message: bytes, now: float) -> bytes:
        """The datagram of an encoded message (``lbcore.logs.fast``'s lines): the
        header's bytes are kept for the second, and the datagram is one copy of the two,
        cut to the target's ``len`` and then terminated."""
        if self.per_second:
            sec = int(now)
            if sec != self._sec:
                self._refresh(sec)
            head = self._headb
        else:
            head = _head_us(
                self.fmt, self.facility, self.level, self.tag, self.pid, self.hostname, now, self.tz
            ).encode("utf-8", "surrogateescape")
        data = b"%s%s\n" % (head, message)
        maxlen = self.maxlen
        if len(data) > maxlen + 1 or maxlen < 0:
            data = data[:-1][:maxlen] + b"\n"
        return data

    def frame(self, message: str, now: float) -> bytes:
        """:meth:`frame_bytes` of a text line (the general renderer's, ``emit``'s)."""
        return self.frame_bytes(message.encode("utf-8", "surrogateescape"), now)


#: The formats whose header is a function of the second only (or of nothing).
_PER_SECOND = frozenset(("local", "rfc3164", "short", "priority", "raw"))
PER_SECOND_FORMATS = _PER_SECOND


@functools.lru_cache(maxsize=64)
def _head(
    fmt: str,
    facility: str,
    level: str,
    tag: str,
    pid: int,
    hostname: str | None,
    sec: int,
    tz: _dt.tzinfo | None,
) -> str:
    return _head_us(fmt, facility, level, tag, pid, hostname, float(sec), tz)


def _head_us(
    fmt: str,
    facility: str,
    level: str,
    tag: str,
    pid: int,
    hostname: str | None,
    now: float,
    tz: _dt.tzinfo | None,
) -> str:
    pri = priority(facility, level)
    if fmt in ("local", "rfc3164"):
        if fmt == "rfc3164":
            hostname = hostname or "localhost"
        host = f"{hostname} " if hostname else ""
        head = f"<{pri}>{_stamp(int(now), tz)} {host}{tag}[{pid}]: "
    elif fmt == "rfc5424":
        head = f"<{pri}>1 {_iso(now, tz)} {hostname or '-'} {tag} {pid} - - "
    elif fmt == "short":
        head = f"<{LEVELS.index(level)}>"
    elif fmt == "priority":
        head = f"<{pri}>"
    elif fmt == "timed":
        head = f"<{LEVELS.index(level)}>{_iso(now, tz)} "
    elif fmt == "iso":
        head = f"{_iso(now, tz)} "
    elif fmt == "raw":
        head = ""
    else:
        raise LogFormatError(f"unknown syslog format '{fmt}', expected one of {SYSLOG_FORMATS}")
    return head


@functools.lru_cache(maxsize=16)
def _stamp(sec: int, tz: _dt.tzinfo | None) -> str:
    """``Nov  6 03:04:05``, once per second."""
    d = local_datetime(sec, tz)
    return f"{MONTHS[d.month - 1]} {d.day:2d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"


@functools.lru_cache(maxsize=16)
def _iso_second(sec: int, tz: _dt.tzinfo | None) -> tuple[str, str]:
    d = local_datetime(sec, tz)
    off = utc_offset(d)
    return d.strftime("%Y-%m-%dT%H:%M:%S"), f"{off[:3]}:{off[3:]}"


def _iso(now: float, tz: _dt.tzinfo | None) -> str:
    us = round(now * 1_000_000)
    day, off = _iso_second(us // 1_000_000, tz)
    return f"{day}.{us % 1_000_000:06d}{off}"
