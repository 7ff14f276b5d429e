"""Must-show 4 through the real process: the golden transcript of HAProxy 2.6, replayed
on the stats sockets of ``lbcore run`` (the master's control plane, real workers behind
it), compared field by field as the dispatcher-level test does.

Every recorded step is replayed in order, each on a new connection to the socket of its
level, exactly as it was recorded from HAProxy (tests/integration/runtime/golden.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lbcore.runtime.ctl import ask
from tests.conftest import free_port
from tests.integration.control.harness import Lb
from tests.integration.runtime import golden
from tests.integration.runtime.compare import compare

STEPS = golden.load()
ALL_USAGE = set(STEPS[0]["answer"].split("\n"))


@pytest.mark.timeout(120)
def test_recorded_haproxy_answers_through_lbcore_runs_sockets(tmp_path: Path, lb: Lb) -> None:
    lb.cfg.write_text(golden.render_config(str(tmp_path), free_port(), free_port()))
    lb.start("--workers", "2")
    problems = []
    for i, step in enumerate(STEPS):
        sock = os.path.join(tmp_path, f"{step['level']}.sock")
        actual = ask(sock, step["input"].encode(), timeout=10).decode()
        for p in compare(step["input"], step["answer"], actual, ALL_USAGE):
            problems.append(f"step {i} {step['level']} {step['input']!r}: {p}")
    assert not problems, "\n".join(problems[:40])
    assert len(STEPS) > 100
