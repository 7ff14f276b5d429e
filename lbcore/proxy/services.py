"""Answers a worker's HTTP frontend gives itself: the stats page and the exporter.

Theory of operation: ``HttpClient`` calls ``intercept`` once a request head passed
the frontend's ``http-request`` rules (and again with the backend's proxy); a proxy
with ``stats ...`` lines claims requests whose URI starts with its ``stats uri``.
``http-request use-service prometheus-exporter`` is a rule verdict handed to
``use_service``. Both make the client wait (phase WAITING, nothing sent upstream)
until the request is read whole — a posted admin form has a body — then ``run``
asks the master over the worker's channel (``MasterLink``) and writes its answer.

Why the master answers: it holds the merged counters of all workers and the server
states; the worker only does the HTTP part (URI, ``stats auth`` → 401, ``stats
admin if ...`` evaluated for this client, the form's body). The message contract and
the master's side are in ``lbcore.runtime.page``; admin actions run there through the
runtime-API dispatcher with its level checks, exactly as on a stats socket.

Without a master (a worker run alone) the page answers 503.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lbcore.config.model import Mode, Proxy, StatsPage
from lbcore.http.acl import Predicate, compile_condition
from lbcore.http.h1 import Request

if TYPE_CHECKING:
    from lbcore.proxy.http import HttpClient

#: Seconds a page waits for the master's answer before answering 503.
REPLY_TIMEOUT = 5.0
#: Largest request body (an admin form) a service reads.
MAX_BODY = 65536

_SERVER_NAME = {"stats": "<STATS>", "prometheus-exporter": "<PROMEX>"}


class MasterLink:
    """Request/reply over the worker's channel: ``ask`` sends, ``deliver`` resolves."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self.send = send
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def ask(self, request: dict[str, Any], timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            self.send({"op": "service", "id": rid, **request})
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiting.pop(rid, None)

    def deliver(self, msg: dict[str, Any]) -> None:
        fut = self._waiting.get(msg.get("id"))  # type: ignore[arg-type]
        if fut is not None and not fut.done():
            fut.set_result(msg)


@dataclass(slots=True)
class Call:
    """One request a service answers."""

    request: dict[str, Any]
    post: bool = False
    started: bool = False
    body: list[bytes] = field(default_factory=list)


# Compiled ``stats admin`` conditions, per proxy (the config is frozen per worker).
_ADMIN: dict[int, tuple[Proxy, list[Predicate]]] = {}


def _admin_allowed(proxy: Proxy, page: StatsPage, req: Request, src: str) -> bool:
    entry = _ADMIN.get(id(proxy))
    if entry is None or entry[0] is not proxy:
        entry = (proxy, [compile_condition(c, proxy.acls) for c in page.admin])
        _ADMIN[id(proxy)] = entry
    return any(pred(req, src) for pred in entry[1])


def _authorized(page: StatsPage, req: Request) -> bool:
    if not page.auth:
        return True
    value = req.header(b"authorization") or b""
    scheme, _, token = value.partition(b" ")
    if scheme.lower() != b"basic":
        return False
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return False
    pair = (user.decode("latin-1"), password.decode("latin-1"))
    return bool(sep) and pair in page.auth


def intercept(client: HttpClient, proxy: Proxy, req: Request, src: str) -> bool:
    """Claim ``req`` for ``proxy``'s stats page (True: the client now waits for it)."""
    page = proxy.stats
    if page is None or proxy.mode is not Mode.HTTP:
        return False
    uri = page.uri.encode("latin-1")
    if not req.target.startswith(uri):
        return False
    if not _authorized(page, req):
        realm = page.realm.replace('"', "")
        client.answer_local(
            401,
            b"text/html",
            b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password "
            b"to access this content.\n</body></html>\n",
            [(b"www-authenticate", f'Basic realm="{realm}"'.encode("latin-1"))],
        )
        return True
    rest = req.target[len(uri) :]
    view = "csv" if b";csv" in rest else "json" if b";json" in rest else "html"
    post = req.method == b"POST"
    start(
        client,
        Call(
            {
                "service": "stats",
                "view": view,
                "admin": _admin_allowed(proxy, page, req, src),
                "uri": page.uri,
                "refresh": None if b";norefresh" in rest else page.refresh,
                "hide_version": page.hide_version,
            },
            post=post,
        ),
    )
    return True


def use_service(client: HttpClient, name: str) -> None:
    """``http-request use-service NAME`` matched: answer with that service."""
    start(client, Call({"service": name}))


def start(client: HttpClient, call: Call) -> None:
    client.service = call
    client.pending = []  # nothing goes to a server; the body is collected instead
    client.deadline.set_in(client.fe.timeout_client or REPLY_TIMEOUT * 2)


def feed(client: HttpClient, data: list[bytes]) -> None:
    """Body bytes of a request a service answers (the adapter calls this after each
    pass over the request); once the request is whole, ask the master, once."""
    call = client.service
    if call is None:
        return
    if data and sum(map(len, call.body)) <= MAX_BODY:
        call.body.extend(data)
    if not client.req_done or call.started:
        return
    call.started = True
    client.deadline.set_in(None)  # bounded by REPLY_TIMEOUT instead
    client.loop.create_task(_serve(client, call))


async def _serve(client: HttpClient, call: Call) -> None:
    request = dict(call.request)
    if call.post:
        body = b"".join(call.body)
        if len(body) > MAX_BODY:
            _finish(client, call, 413, b"text/plain", b"form too large\n")
            return
        request["form"] = body.decode("latin-1")
    link: MasterLink | None = client.fe.registry.link
    if link is None:
        _finish(client, call, 503, b"text/plain", b"no master to ask\n")
        return
    try:
        reply = await link.ask(request)
    except (TimeoutError, OSError):
        _finish(client, call, 503, b"text/plain", b"the master did not answer\n")
        return
    body_text = str(reply.get("body", ""))
    ctype = str(reply.get("content_type", "text/plain"))
    status = int(reply.get("status", 500))
    _finish(client, call, status, ctype.encode(), body_text.encode("utf-8"))


def _finish(client: HttpClient, call: Call, status: int, ctype: bytes, body: bytes) -> None:
    if client.service is not call or client.transport is None:
        return
    client.service = None
    client.log_server = _SERVER_NAME.get(str(call.request.get("service")), "")
    client.answer_local(status, ctype, body)
