"""A loop turn's writes made together (``lbcore.proxy.common.Sends``), and the HTTP
adapter's use of it: keep-alive answers and whole bodiless requests wait for the end
of the turn; nothing that must follow them (the next request's answer, a close, the
reuse of the server connection) overtakes them. Why: docs/performance.md, "Fourth
session: system time" — on loopback each write to a sleeping peer wakes it."""

from __future__ import annotations

import asyncio
from typing import Any

from lbcore.proxy.common import Sends, sends_of
from tests.bench import configs, hotpath


class Recorder:
    """A transport that records writes and closes, in order, into a shared list."""

    def __init__(self, name: str, log: list[tuple[str, bytes]]) -> None:
        self.name = name
        self.log = log
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        assert not self.closing, "written after close"
        self.log.append((self.name, data))

    def writelines(self, parts: list[bytes]) -> None:
        self.write(b"".join(parts))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.log.append((self.name, b"<close>"))

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_writes_wait_for_the_end_of_the_turn_in_order() -> None:
    loop = asyncio.new_event_loop()
    try:
        s = Sends(loop)
        log: list[tuple[str, bytes]] = []
        a, b = Recorder("a", log), Recorder("b", log)
        turn = s.write(a, b"1")
        s.write(b, b"2")
        s.write(a, b"3")
        assert log == [] and s.pending(turn)
        loop.run_until_complete(asyncio.sleep(0))
        assert log == [("a", b"1"), ("b", b"2"), ("a", b"3")]
        assert not s.pending(turn)
        assert sends_of(loop) is sends_of(loop)
    finally:
        loop.close()


def test_one_callback_per_turn_and_closed_transports_are_skipped() -> None:
    loop = hotpath.FakeLoop()
    s = Sends(loop)  # type: ignore[arg-type]
    log: list[tuple[str, bytes]] = []
    a, b = Recorder("a", log), Recorder("b", log)
    for i in range(3):
        s.write(a, b"%d" % i)
    s.write(b, b"x")
    assert len(loop.soon) == 1
    a.close()  # reset before the turn ended: its bytes have nowhere to go
    loop.run_soon()
    assert log == [("a", b"<close>"), ("b", b"x")]


def test_a_closed_loop_writes_at_once() -> None:
    loop = asyncio.new_event_loop()
    s = Sends(loop)
    loop.close()
    log: list[tuple[str, bytes]] = []
    assert s.write(Recorder("a", log), b"1") == 0
    assert log == [("a", b"1")]


def _client(log: list[tuple[str, bytes]]) -> tuple[Any, hotpath.FakeLoop, Any]:
    factory, loop, sink = hotpath._frontend(log=False)
    client = factory()
    client.connection_made(Recorder("client", log))
    return client, loop, sink


def test_a_keep_alive_exchange_is_written_at_the_end_of_its_turns() -> None:
    log: list[tuple[str, bytes]] = []
    client, loop, sink = _client(log)
    try:
        client.data_received(hotpath.REQUEST)
        up = client.upstream
        assert up is not None and up.transport.writes == 0  # the request waits for the turn
        loop.run_soon()
        assert up.transport.writes == 1 and up.transport.last.startswith(b"GET /small ")
        up.data_received(hotpath.RESPONSE)
        assert log == []  # the answer waits for the turn
        loop.run_soon()
        assert len(log) == 1 and log[0][1].endswith(configs.SMALL_BODY)
        assert log[0][1].startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        sink.close()


def test_the_next_request_does_not_overtake_a_queued_answer() -> None:
    """A client that sends again in the same turn (it pipelined): the queued answer goes
    first, then what its next request gets (here a 400 and the close)."""
    log: list[tuple[str, bytes]] = []
    client, loop, sink = _client(log)
    try:
        client.data_received(hotpath.REQUEST)
        loop.run_soon()
        up = client.upstream
        assert up is not None
        up.data_received(hotpath.RESPONSE)
        assert log == []
        client.data_received(b"BAD\r\n\r\n")
        assert [d[:12] for _n, d in log] == [b"HTTP/1.1 200", b"HTTP/1.1 400", b"<close>"]
        loop.run_soon()  # nothing left to write, nothing written twice
        assert len(log) == 3
    finally:
        sink.close()


def test_a_closing_answer_is_written_before_the_close() -> None:
    log: list[tuple[str, bytes]] = []
    client, loop, sink = _client(log)
    try:
        client.data_received(hotpath.CLOSE_REQUEST)
        loop.run_soon()
        up = client.upstream
        assert up is not None
        up.data_received(hotpath.RESPONSE)
        # not queued: the close follows at once, and must not overtake it
        assert [d[:12] for _n, d in log] == [b"HTTP/1.1 200", b"<close>"]
    finally:
        sink.close()


def test_an_aborted_clients_queued_request_is_written_before_never_after() -> None:
    """The client is aborted in the turn its request was queued: the request is written
    first, as it was before requests were queued, and never after the abort."""
    log: list[tuple[str, bytes]] = []
    client, loop, sink = _client(log)
    try:
        client.data_received(hotpath.REQUEST)
        up = client.upstream
        assert up is not None and up.transport.writes == 0
        client.abort()
        assert up.transport.writes == 1
        assert log == [("client", b"<close>")]
        loop.run_soon()
        assert up.transport.writes == 1
    finally:
        sink.close()


def test_each_loop_has_its_own_sends_whichever_was_asked_last() -> None:
    """``sends_of`` keeps the last loop's Sends aside (one loop per worker): asking for
    another loop, then the first again, still gives each loop its own."""
    one, two = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        a = sends_of(one)
        b = sends_of(two)
        assert a is not b
        assert sends_of(one) is a and sends_of(two) is b and sends_of(one) is a
        assert a.loop() is one and b.loop() is two
    finally:
        one.close()
        two.close()
    three = asyncio.new_event_loop()  # a loop made after the others are gone
    try:
        c = sends_of(three)
        assert c.loop() is three
    finally:
        three.close()
