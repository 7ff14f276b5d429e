"""The control channel framing over a real SOCK_SEQPACKET socketpair."""

from __future__ import annotations

import asyncio
import socket

import pytest

from lbcore import control


def test_one_message_per_packet_both_ways() -> None:
    a, b = control.channel_pair()
    with a, b:
        control.send(a, {"op": "stop", "grace": True})
        control.send(a, {"op": "weight", "server": "be/s1", "weight": 0})
        control.send(b, {"op": "stats", "conns": 3})
        assert control.recv(b) == {"op": "stop", "grace": True}
        assert control.recv(b) == {"op": "weight", "server": "be/s1", "weight": 0}
        assert control.recv(a) == {"op": "stats", "conns": 3}


def test_eof_when_the_peer_is_gone() -> None:
    a, b = control.channel_pair()
    a.close()
    with b:
        assert control.recv(b) is None


def test_malformed_message_is_refused_and_consumed() -> None:
    a, b = control.channel_pair()
    with a, b:
        a.send(b"not json")
        a.send(b"[1, 2]")
        control.send(a, {"op": "ok"})
        with pytest.raises(control.ChannelError, match="malformed"):
            control.recv(b)
        with pytest.raises(control.ChannelError, match="JSON object"):
            control.recv(b)
        assert control.recv(b) == {"op": "ok"}


def test_oversized_messages_are_refused_on_both_sides() -> None:
    a, b = control.channel_pair()
    with a, b:
        with pytest.raises(control.ChannelError, match="exceeds"):
            control.send(a, {"blob": "x" * control.MAX_MESSAGE})
        a.send(b"x" * (control.MAX_MESSAGE + 10))  # a peer that ignores the limit
        control.send(a, {"op": "next"})
        with pytest.raises(control.ChannelError, match="larger than"):
            control.recv(b)
        assert control.recv(b) == {"op": "next"}


def test_nonblocking_recv_with_nothing_to_read() -> None:
    a, b = control.channel_pair()
    with a, b:
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            control.recv(b)


def test_async_channel_receives_sends_and_notices_close() -> None:
    master, worker = control.channel_pair()

    async def scenario() -> tuple[list[dict[str, object]], bool, int]:
        got: list[dict[str, object]] = []
        closed = asyncio.Event()
        ch = control.AsyncChannel(worker, got.append, on_close=closed.set)
        control.send(master, {"op": "stop", "grace": True})
        master.send(b"{broken")
        control.send(master, {"op": "after"})
        for _ in range(100):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        # Many sends while the master is not reading: queued, none lost, in order.
        for i in range(2000):
            ch.send({"op": "stats", "i": i, "pad": "y" * 2000})
        received = []
        master.setblocking(False)
        deadline = asyncio.get_running_loop().time() + 10
        while len(received) < 2000 and asyncio.get_running_loop().time() < deadline:
            try:
                msg = control.recv(master)
            except BlockingIOError:
                await asyncio.sleep(0.005)  # let the channel flush its queue
                continue
            assert msg is not None
            received.append(msg["i"])
        assert received == list(range(2000))
        master.close()
        await asyncio.wait_for(closed.wait(), 5)
        return got, closed.is_set(), ch.errors

    got, closed, errors = asyncio.run(scenario())
    assert got == [{"op": "stop", "grace": True}, {"op": "after"}]
    assert closed and errors == 1


def test_channel_is_seqpacket() -> None:
    a, b = control.channel_pair()
    with a, b:
        assert a.type == socket.SOCK_SEQPACKET and a.family == socket.AF_UNIX
