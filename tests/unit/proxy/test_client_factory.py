"""The listener's protocol factory (``lbcore.worker._factory``): plain HTTP frontends get
the compiled ``http.ClientFactory``, which makes a fresh ``HttpClient`` of the frontend
on the worker's loop per call; other protocols keep ``functools.partial``."""

from __future__ import annotations

import functools

from lbcore.proxy.http import ClientFactory, HttpClient
from lbcore.proxy.tcp import TcpClient
from lbcore.worker import _factory
from tests.bench import hotpath


def test_http_frontends_get_a_client_factory_making_new_clients() -> None:
    factory, loop, sink = hotpath._frontend(log=True)
    try:
        assert type(factory) is ClientFactory
        one, two = factory(), factory()
        assert type(one) is HttpClient and one is not two
        assert one.fe is factory.fe and one.loop is loop
        assert one.transport is None and one.reader is not two.reader
    finally:
        sink.close()


def test_other_protocols_keep_a_partial() -> None:
    factory, _loop, sink = hotpath._frontend(log=False)
    sink.close()
    tcp = _factory(TcpClient, factory.fe, factory.loop)
    assert type(tcp) is functools.partial and tcp.func is TcpClient
