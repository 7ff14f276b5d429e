"""Fixtures for proxy scenarios: backends and a worker factory, all cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import free_port, need_binary
from tests.integration.proxy.harness import Backend, Lb, raw_exchange


@pytest.fixture
def web() -> Iterator[list[Backend]]:
    """Three real HTTP backends: web[0..2] named web1..web3."""
    servers = [Backend(f"web{i + 1}") for i in range(3)]
    yield servers
    for s in servers:
        s.close()


@pytest.fixture
def lb() -> Iterator[Callable[..., tuple[Lb, int]]]:
    """``lb(template)``: run a worker on ``template.format(port=FREE, ...)``."""
    started: list[Lb] = []

    def start(template: str, channel: bool = False, **fmt: object) -> tuple[Lb, int]:
        inst = Lb()
        started.append(inst)
        port = inst.listen()
        inst.start(template.format(port=port, **fmt), channel=channel)
        return inst, port

    yield start
    for inst in started:
        inst.stop()


@pytest.fixture(params=["splice", "copy"])
def tcp_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a TCP-mode test over both adapters: the epoll one with splice(2)
    (``lbcore.proxy.tcpraw``), and the portable transport one (``lbcore.proxy.tcp``)."""
    mode: str = request.param
    if mode == "splice" and not hasattr(os, "splice"):
        pytest.skip("os.splice is not available on this platform")
    monkeypatch.setenv("LBCORE_SPLICE", "1" if mode == "splice" else "0")
    return mode


@pytest.fixture
def haproxy() -> Iterator[Callable[[str], int]]:
    binary = need_binary("haproxy")
    procs: list[subprocess.Popen[bytes]] = []
    tmp = tempfile.TemporaryDirectory()

    def start(text: str) -> int:
        port = free_port()
        path = os.path.join(tmp.name, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(text.replace("{port}", str(port)))
        proc = subprocess.Popen([binary, "-db", "-f", path], stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                raw_exchange(port, b"", timeout=0.2)
                return port
            except OSError:
                time.sleep(0.05)
        raise AssertionError("haproxy did not start")

    yield start
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.wait(5)
    tmp.cleanup()
