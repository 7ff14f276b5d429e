"""community.general.haproxy's wire protocol against lbcore's stats socket.

The module itself is not installed here; this client does what it does on the wire
(see /work/shared/research/ansible-anchors.md section 1 and the module's source): a
new unix connection per command line, ``CMD\\n`` sent without half-closing, read to
EOF; state read from ``show stat`` with ``lstrip('# ')`` + ``csv.DictReader``
(status, weight, scur of the pxname/svname row); drain only when the "Version:"
line's major.minor parse as integers >= (1, 5); the composite lines it builds for
enabled/disabled; waits by substring match on the status.
"""

from __future__ import annotations

import csv
import socket
import time
from pathlib import Path

from lbcore.stats import Counters
from tests.integration.runtime.conftest import Served


class ModuleLike:
    def __init__(self, path: str, interval: float = 0.05, retries: int = 60) -> None:
        self.path, self.interval, self.retries = path, interval, retries
        self.commands: list[str] = []

    def execute(self, cmd: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(5)
            c.connect(self.path)
            c.sendall(f"{cmd}\n".encode())
            out = b""
            while buf := c.recv(1024):
                out += buf
        self.commands.append(cmd)
        return out.decode()

    def state(self, px: str, sv: str) -> list[dict[str, str]] | None:
        rows = csv.DictReader(self.execute("show stat").lstrip("# ").splitlines())
        found = [
            {"status": r["status"], "weight": r["weight"], "scur": r["scur"]}
            for r in rows
            if r["pxname"] == px and r["svname"] == sv
        ]
        return found or None

    def backends(self) -> list[str]:
        rows = csv.DictReader(self.execute("show stat").lstrip("# ").splitlines())
        return [r["pxname"] for r in rows if r["svname"] == "BACKEND"]

    def version(self) -> tuple[int, int] | None:
        line = [x for x in self.execute("show info").splitlines() if "Version:" in x]
        try:
            parts = line[0].partition(":")[2].strip().split(".", 3)
            return int(parts[0]), int(parts[1])
        except (ValueError, IndexError):
            return None

    def wait(self, px: str, sv: str, status: str, drain: bool = False) -> None:
        for _ in range(1, self.retries):
            st = self.state(px, sv)
            assert st is not None
            if status in st[0]["status"] and (not drain or st[0]["scur"] == "0"):
                return
            time.sleep(self.interval)
        raise AssertionError(f"{px}/{sv} never reached {status}: {st}")


def test_disable_with_drain_then_enable_with_weight(
    served: tuple[Served, Path, int],
) -> None:
    s, directory, _ = served
    m = ModuleLike(str(directory / "admin.sock"))
    assert m.backends() == ["app", "static", "db"]
    assert m.version() is not None and m.version() >= (1, 5)  # or drain is skipped

    # two sessions still open on web1: drain must wait for scur == 0
    counters = s.state.counters
    s.call(lambda: counters.__setitem__(("app", "web1"), Counters(scur=2)))
    before = m.state("app", "web1")
    assert before == [{"status": "no check", "weight": "10", "scur": "2"}]
    s.call(lambda: s.loop.call_later(0.3, counters.__setitem__, ("app", "web1"), Counters()))
    m.execute("set server app/web1 state drain")
    started = time.monotonic()
    m.wait("app", "web1", "DRAIN", drain=True)
    assert time.monotonic() - started >= 0.2  # it did wait for the sessions
    m.execute("get weight app/web1; disable server app/web1; shutdown sessions server app/web1")
    m.wait("app", "web1", "MAINT")
    after = m.state("app", "web1")
    assert after == [{"status": "MAINT", "weight": "10", "scur": "0"}]
    assert s.state.backends["app"].servers[0].runtime.admin_state.value == "maint"

    out = m.execute("get weight app/web1; enable server app/web1; set weight app/web1 50%")
    assert out == "10 (initial 10)\n\n\n\n"
    assert m.state("app", "web1") == [{"status": "no check", "weight": "5", "scur": "0"}]

    # idempotence by observation: the same enable again changes nothing
    before = m.state("app", "web1")
    m.execute("get weight app/web1; enable server app/web1; set weight app/web1 50%")
    assert m.state("app", "web1") == before
