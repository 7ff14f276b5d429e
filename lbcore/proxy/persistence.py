"""Cookie persistence in the HTTP adapter: ``lbcore.persist`` applied to live heads.

Theory of operation: a backend with a ``cookie`` line gets one ``Policy`` (its
settings and the servers by cookie value). ``HttpClient`` calls three hooks:

* ``on_request`` when the request head is in: the sans-I/O ``inspect_request`` finds
  the cookie, the ``Cookie`` headers the server is to see replace the client's (an
  ``indirect`` insert cookie is removed, a prefix is stripped), and the server the
  cookie names is returned when it still takes persistent traffic (UP, or DRAIN: a
  drained server keeps its sessions). A cookie naming a DOWN or MAINT server is
  reported as ``D`` and the request is load-balanced anew (redispatched).
* ``take`` when a server is to be assigned: the persistent server, counted as the
  algorithm counts its picks (``lbcore.balance.assign``), if it has room.
* ``on_response`` on the response head: ``on_response`` of ``lbcore.persist`` sets,
  rewrites or prefixes the cookie naming the server that answered, and adds
  ``Cache-control: private`` for ``nocache``.

The two persistence characters of the log's termination state come out of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbcore.balance import assign
from lbcore.config.model import Proxy
from lbcore.http.h1 import Request, Response
from lbcore.persist import (
    ClientCookie,
    CookieSettings,
    RequestCookie,
    ServerCookie,
    inspect_request,
)
from lbcore.persist import (
    on_response as persist_response,
)
from lbcore.server import ServerRuntime

_COOKIE = b"cookie"
_SET_COOKIE = b"set-cookie"


class Policy:
    """One backend's ``cookie`` settings and its servers by cookie value."""

    __slots__ = ("by_value", "known", "settings")

    def __init__(self, settings: CookieSettings, servers: list[ServerRuntime]) -> None:
        self.settings = settings
        self.by_value = {s.config.cookie: s for s in servers if s.config.cookie}
        self.known = set(self.by_value)


def for_backend(proxy: Proxy, servers: list[ServerRuntime]) -> Policy | None:
    if proxy.cookie is None:
        return None
    return Policy(proxy.cookie, servers)


@dataclass(slots=True)
class Outcome:
    """One request's persistence: what the client sent, where it sticks, the log."""

    request: RequestCookie
    server: ServerRuntime | None  # the server the cookie names, if it takes the request
    client_flag: str
    now: float  # wall clock at the request (cookie dates)
    server_flag: str = ServerCookie.NONE.value


def on_request(policy: Policy, req: Request, now: float) -> Outcome:
    """Read the persistence cookie of ``req`` and rewrite its ``Cookie`` headers."""
    values = [v.decode("latin-1") for n, v in req.fields if n == _COOKIE]
    found = inspect_request(policy.settings, values, policy.known, now)
    if values:
        forward = [(_COOKIE, v.encode("latin-1")) for v in found.forward]
        if forward != [(n, v) for n, v in req.fields if n == _COOKIE]:
            kept = [(n, v) for n, v in req.fields if n != _COOKIE]
            req.headers = kept + forward
    status = found.status
    server = None
    if status is ClientCookie.VALID and found.value is not None:
        target = policy.by_value.get(found.value)
        if target is not None and target.accepts_persistent:
            server = target
        else:
            status = ClientCookie.DOWN
    return Outcome(found, server, status.value, now)


def take(outcome: Outcome | None) -> ServerRuntime | None:
    """The persistent server, counted as assigned; None to load-balance."""
    if outcome is None or outcome.server is None:
        return None
    server = outcome.server
    if not server.accepts_persistent or not server.has_room:
        return None
    return assign(server)


def on_response(
    policy: Policy,
    outcome: Outcome,
    resp: Response,
    server: ServerRuntime,
    method: bytes,
    now: float | None = None,
) -> None:
    """Set, rewrite or prefix the cookie on ``resp`` for ``server`` (in place)."""
    set_cookies = [v.decode("latin-1") for n, v in resp.fields if n == _SET_COOKIE]
    others = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in resp.fields]
    result = persist_response(
        policy.settings,
        set_cookies,
        others,
        server.config.cookie,
        outcome.request,
        method.decode("latin-1"),
        outcome.now if now is None else now,
    )
    outcome.server_flag = result.status.value
    if tuple(set_cookies) == result.set_cookies and not result.add_headers:
        return
    headers = [(n, v) for n, v in resp.fields if n != _SET_COOKIE]
    headers += [(_SET_COOKIE, sc.encode("latin-1")) for sc in result.set_cookies]
    headers += [(n.lower().encode(), v.encode("latin-1")) for n, v in result.add_headers]
    resp.headers = headers
