"""``lbcore run`` with the real worker, which a test can make fail at start.

A worker whose configuration loads fine can still fail to start (a resource it opens
is missing, a permission it lacks after dropping to ``user``): the reload must then
fail and the old workers keep serving. To provoke that on demand without changing the
configuration, this wrapper fails a *new* worker at start while the file named by
``LBCORE_TEST_FAIL_START`` exists, with the kind of error a real start failure
raises; otherwise it is the real worker, unchanged.

Run as ``python -m tests.integration.master.faulty run ARGS...`` (the arguments of
``lbcore run``).
"""

from __future__ import annotations

import errno
import os
import socket
import sys

from lbcore import cmd_run
from lbcore.config.model import Config
from lbcore.worker import run_worker  # imported here, in the master: preloaded for forks

FLAG = "LBCORE_TEST_FAIL_START"


def worker(
    config: Config, listeners: dict[tuple[str, int], socket.socket], channel: socket.socket | None
) -> None:
    flag = os.environ.get(FLAG)
    if flag and os.path.exists(flag):
        raise PermissionError(errno.EACCES, "Permission denied (test fault)", flag)
    run_worker(config, listeners, channel)


if __name__ == "__main__":
    if sys.argv[1:2] != ["run"]:
        print("usage: python -m tests.integration.master.faulty run ARGS...", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(cmd_run.run(sys.argv[2:], worker_fn=worker))
