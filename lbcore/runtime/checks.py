"""From the health checker's tracker to the runtime API's view of a server's check.

The checker (lbcore.health) runs once per server in the master; after each result it
calls ``RuntimeState.record_check(backend, server, *check_view(tracker), now)`` so
that ``show stat`` / ``show servers state`` show HAProxy's check columns.
"""

from __future__ import annotations

from lbcore.health.core import CheckTracker
from lbcore.server import OpState
from lbcore.stats import CheckStats


def check_view(tracker: CheckTracker) -> tuple[CheckStats, OpState]:
    """HAProxy's check columns: INI/Initializing until the first result, then the
    result's layer, code, duration and (for failures) the reason in last_chk."""
    s, last = tracker.settings, tracker.last
    if last is None:
        stats = CheckStats(rise=s.rise, fall=s.fall, health=tracker.health)
    else:
        stats = CheckStats(
            status=last.layer.value,
            code=last.code,
            duration_ms=last.duration_ms,
            desc=last.layer.reason,
            rise=s.rise,
            fall=s.fall,
            health=tracker.health,
            last=last.info,
        )
    return stats, tracker.state
