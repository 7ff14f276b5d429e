"""The inlined eligibility rule of lbcore.balance agrees with ServerRuntime's."""

from __future__ import annotations

import itertools

from lbcore.balance import available, candidates, with_room
from lbcore.config.model import Server
from lbcore.server import AdminState, OpState, ServerRuntime


def test_inlined_rule_matches_server_runtime() -> None:
    for op, admin, weight, backup, active in itertools.product(
        OpState, AdminState, (0, 1, 7), (False, True), (0, 2)
    ):
        s = ServerRuntime(Server("s", "127.0.0.1", 1, backup=backup, maxconn=2), "be")
        s.op_state, s.admin_state, s.weight, s.active = op, admin, weight, active
        expected = s.eligible
        assert (s in candidates([s])) is expected, (op, admin, weight, backup)
        assert available([s]) is expected
        assert (s in with_room([s])) is (expected and s.has_room)
