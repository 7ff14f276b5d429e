"""Run one lbcore worker in this process: the test harness's stand-in for the master.

Reads a pickled ``{"config": Config | None, "config_text": str | None,
"listeners": {(host, port): fd}}`` from stdin, wraps the inherited file descriptors in
sockets and calls ``lbcore.worker.run_worker``, as the master does after forking. A
channel fd, when given, is passed through as the worker's channel.
"""

from __future__ import annotations

import pickle
import socket
import sys


def main() -> int:
    spec = pickle.load(sys.stdin.buffer)
    config = spec.get("config")
    if config is None:
        from lbcore.config.parser import parse_text  # type: ignore[attr-defined]

        config = parse_text(spec["config_text"], "test.cfg")
    listeners = {key: socket.socket(fileno=fd) for key, fd in spec["listeners"].items()}
    channel = spec.get("channel")
    chan = socket.socket(fileno=channel) if channel is not None else None
    from lbcore.worker import run_worker

    run_worker(config, listeners, chan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
