"""Health-check decisions, sans I/O: rise/fall counting, intervals, slowstart, messages.

Theory of operation: ``CheckTracker`` holds one server's check health the way HAProxy
does — a counter ``health`` in ``[0, rise + fall - 1]``; the server is operationally UP
while ``health >= rise``. A success raises it, and once at or above ``rise`` fills it to
the top; a failure lowers it, and at ``rise`` takes the server DOWN and resets it to 0.
So a healthy server needs ``fall`` consecutive failures to go DOWN, and a dead one
``rise`` consecutive successes to come back, as HAProxy's manual describes.

The tracker never reads a clock: ``record(result, now)`` returns a ``Transition`` when the
state changed, and ``next_check(now)`` says when to run the next check (``inter``,
``fastinter`` while transitional, ``downinter`` while DOWN — the table under ``inter`` in
the manual). The asyncio prober (``lbcore.health.prober``) only performs checks and feeds
results in.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from lbcore.config.model import Proxy, Server
from lbcore.server import OpState


@dataclass(frozen=True, slots=True)
class HttpExpect:
    """``http-check expect [!] status|rstatus|string|rstring PATTERN``."""

    kind: str  # status | rstatus | string | rstring
    pattern: str
    negate: bool = False

    def matches(self, status: int, body: bytes) -> bool:
        if self.kind == "status":
            ok = _status_in(status, self.pattern)
        elif self.kind == "rstatus":
            ok = re.search(self.pattern, str(status)) is not None
        elif self.kind == "string":
            ok = self.pattern.encode() in body
        elif self.kind == "rstring":
            ok = re.search(self.pattern.encode(), body) is not None
        else:  # the parser only builds the kinds above
            raise ValueError(f"unknown http-check expect kind {self.kind!r}")
        return ok != self.negate


def _status_in(status: int, spec: str) -> bool:
    """``200``, ``200-399`` or a comma list of both (HAProxy 2.2+ syntax)."""
    for part in spec.split(","):
        low, _, high = part.partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """``option httpchk [METHOD URI [VERSION]]`` + ``http-check send/expect``."""

    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: tuple[tuple[str, str], ...] = ()
    expect: HttpExpect | None = None  # None = any 2xx or 3xx

    def request_bytes(self, host: str) -> bytes:
        lines = [f"{self.method} {self.uri} {self.version}"]
        names = {name.lower() for name, _ in self.headers}
        if self.version == "HTTP/1.1" and "host" not in names:
            lines.append(f"Host: {host}")
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def judge(self, status: int, body: bytes) -> bool:
        if self.expect is None:
            return 200 <= status < 400
        return self.expect.matches(status, body)


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """Per-server check parameters (``server ... check inter rise fall ...``)."""

    inter: float = 2.0
    fastinter: float | None = None
    downinter: float | None = None
    rise: int = 2
    fall: int = 3
    port: int | None = None
    addr: str | None = None
    slowstart: float = 0.0
    timeout: float | None = None  # ``timeout check``; ``inter`` when unset
    http: HttpCheck | None = None  # None = TCP connect check
    tls: Any = None  # the server's ServerTls: checks speak TLS too (HAProxy's rule)

    def __post_init__(self) -> None:
        if self.rise < 1 or self.fall < 1:
            raise ValueError("rise and fall must be at least 1")
        if self.inter <= 0:
            raise ValueError("inter must be positive")

    @property
    def check_timeout(self) -> float:
        return self.timeout if self.timeout is not None else self.inter


class Layer(enum.Enum):
    """Where a check failed or succeeded; names as in HAProxy's check_status column."""

    L4OK = "L4OK"
    L4TOUT = "L4TOUT"
    L4CON = "L4CON"
    L6OK = "L6OK"  # TLS handshake passed (a server with ``ssl``, TCP check)
    L6TOUT = "L6TOUT"
    L6RSP = "L6RSP"  # TLS handshake failed
    L7OK = "L7OK"
    L7TOUT = "L7TOUT"
    L7RSP = "L7RSP"
    L7STS = "L7STS"

    @property
    def ok(self) -> bool:
        return self in (Layer.L4OK, Layer.L6OK, Layer.L7OK)

    @property
    def reason(self) -> str:
        return _REASONS[self]


_REASONS = {
    Layer.L4OK: "Layer4 check passed",
    Layer.L4TOUT: "Layer4 timeout",
    Layer.L4CON: "Layer4 connection problem",
    Layer.L6OK: "Layer6 check passed",
    Layer.L6TOUT: "Layer6 timeout",
    Layer.L6RSP: "Layer6 invalid response",
    Layer.L7OK: "Layer7 check passed",
    Layer.L7TOUT: "Layer7 timeout",
    Layer.L7RSP: "Layer7 invalid response",
    Layer.L7STS: "Layer7 wrong status",
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    layer: Layer
    duration_ms: int = 0
    code: int | None = None  # HTTP status for L7 checks
    info: str = ""  # e.g. "Connection refused", or the status line's reason


@dataclass(frozen=True, slots=True)
class Transition:
    """The server's operational state changed; ``message`` is HAProxy's wording."""

    old: OpState
    new: OpState
    result: CheckResult


class CheckTracker:
    """One server's rise/fall state machine (see the module docstring)."""

    def __init__(self, settings: CheckSettings, start_up: bool = True) -> None:
        self.settings = settings
        # HAProxy starts a checked server at ``rise``: UP, but one failed check from
        # DOWN, so a dead server leaves the farm at the first check after start.
        self.health = settings.rise if start_up else 0
        self.last: CheckResult | None = None
        self.streak = 0  # consecutive results of the same kind as ``last``
        self.enabled = True
        self._up_since: float | None = None

    @property
    def up(self) -> bool:
        return self.health >= self.settings.rise

    @property
    def state(self) -> OpState:
        """UP/DOWN, or transitional when the latest checks disagree with the state."""
        failing = self.last is not None and not self.last.layer.ok
        if self.up:
            return OpState.GOING_DOWN if failing else OpState.UP
        return OpState.GOING_UP if self.last is not None and not failing else OpState.DOWN

    @property
    def progress(self) -> str:
        """HAProxy's ``UP 1/3`` / ``DOWN 1/2`` form for transitional states."""
        s = self.settings
        if self.state is OpState.GOING_DOWN:
            return f"UP {self.streak}/{s.fall}"
        if self.state is OpState.GOING_UP:
            return f"DOWN {self.streak}/{s.rise}"
        return self.state.value

    def record(self, result: CheckResult, now: float) -> Transition | None:
        """Account one check result; return the transition if UP/DOWN changed."""
        s = self.settings
        was_up = self.up
        old = self.state
        same = self.last is not None and self.last.layer.ok == result.layer.ok
        self.streak = self.streak + 1 if same else 1
        self.last = result
        if result.layer.ok:
            # one success while UP restores full health; while DOWN it climbs by one
            self.health = min(self.health + 1, s.rise + s.fall - 1)
            if self.health >= s.rise:
                self.health = s.rise + s.fall - 1
                if not was_up:
                    self._up_since = now
        else:
            # above ``rise`` a failure only erodes health; at ``rise`` it takes the
            # server DOWN, and below it (coming up) it restarts the climb from 0
            self.health = self.health - 1 if self.health > s.rise else 0
        if was_up != self.up:
            return Transition(old, self.state, result)
        return None

    def next_check(self, now: float) -> float:
        s = self.settings
        state = self.state
        if state is OpState.DOWN:
            interval = s.downinter or s.inter
        elif state is OpState.UP:
            interval = s.inter
        else:
            interval = s.fastinter or s.inter
        return now + interval

    def weight_factor(self, now: float) -> float:
        """Slowstart: the share of its weight a freshly UP server gets at ``now``."""
        s = self.settings
        if not self.up or s.slowstart <= 0 or self._up_since is None:
            return 1.0 if self.up else 0.0
        elapsed = now - self._up_since
        if elapsed >= s.slowstart:
            return 1.0
        return max(elapsed / s.slowstart, 0.01)


def describe(result: CheckResult) -> str:
    """``reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms``."""
    text = f"reason: {result.layer.reason}"
    if result.code is not None:
        text += f", code: {result.code}"
    if result.info and not result.layer.ok:
        text += f', info: "{result.info}"'
    return text + f", check duration: {result.duration_ms}ms"


def transition_message(
    backend: str, server: str, transition: Transition, active_left: int, backup_left: int
) -> str:
    """The log line HAProxy writes when a check moves a server UP or DOWN."""
    head = f"Server {backend}/{server} is "
    counts = f"{active_left} active and {backup_left} backup servers"
    if transition.new.serves:
        return (
            f"{head}UP, {describe(transition.result)}. {counts} online. "
            "0 sessions requeued, 0 total in queue."
        )
    return (
        f"{head}DOWN, {describe(transition.result)}. {counts} left. "
        "0 sessions active, 0 requeued, 0 remaining in queue."
    )


def settings_for(proxy: Proxy, server: Server) -> CheckSettings | None:
    """The check of ``server`` in ``proxy`` as configured, or None if it has none."""
    spec = server.check
    if spec is None:
        return None
    http = None
    hc = proxy.httpchk
    if hc is not None:
        expect = None
        if hc.expect_kind is not None:
            expect = HttpExpect(hc.expect_kind, hc.expect_pattern, hc.expect_negate)
        http = HttpCheck(hc.method, hc.uri, hc.version, hc.headers, expect)
    return CheckSettings(
        inter=spec.inter,
        fastinter=spec.fastinter,
        downinter=spec.downinter,
        rise=spec.rise,
        fall=spec.fall,
        port=spec.port,
        addr=spec.addr,
        slowstart=spec.slowstart,
        timeout=proxy.timeouts.check,
        http=http,
        # As HAProxy: with 'ssl' on the server, checks use TLS unless port/addr redirect them
        tls=server.tls if spec.port is None and spec.addr is None else None,
    )
