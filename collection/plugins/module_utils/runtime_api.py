# Copyright: lbcore contributors
# Apache License 2.0 (see LICENSE)
"""A small client for HAProxy's runtime API, as lbcore's admin socket speaks it.

Standard library only: modules run under the managed host's interpreter, where lbcore
itself may not be importable. Every module of the collection goes through this client,
so socket handling, CSV parsing and error mapping are written (and tested) once —
unlike community.general.haproxy, which buries its client inside the module.

It works against lbcore and against real HAProxy alike: one command per connection,
``\\n``-terminated, answer read until the server closes (the non-interactive mode).
"""

from __future__ import annotations

import csv
import io
import socket
import time

#: ``srv_admin_state`` bits of ``show servers state`` (HAProxy's SRV_ADMF_*)
ADMF_FMAINT = 0x01
ADMF_IMAINT = 0x02
ADMF_CMAINT = 0x04
ADMF_FDRAIN = 0x08
ADMF_IDRAIN = 0x10
ADMF_RMAINT = 0x20
ADMF_HMAINT = 0x40
_MAINT = ADMF_FMAINT | ADMF_IMAINT | ADMF_CMAINT | ADMF_RMAINT | ADMF_HMAINT
_DRAIN = ADMF_FDRAIN | ADMF_IDRAIN


class RuntimeError_(Exception):
    """The socket could not be used, or answered with an error."""


class NotFound(RuntimeError_):
    """An unknown backend or server (the message is HAProxy's own wording)."""


class RuntimeClient:
    def __init__(self, address, timeout=5.0):
        """``address``: a unix socket path, or ``host:port`` for a TCP admin socket."""
        self.address = address
        self.timeout = timeout

    def _connect(self):
        if self.address.startswith("/") or ":" not in self.address:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = self.address
        else:
            host, _sep, port = self.address.rpartition(":")
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            target = (host.strip("[]"), int(port))
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except OSError as exc:
            sock.close()
            raise RuntimeError_("cannot connect to %s: %s" % (self.address, exc)) from None
        return sock

    def command(self, line):
        """Send one command line; return the whole answer as text."""
        sock = self._connect()
        try:
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except OSError as exc:
            raise RuntimeError_("%s: %s" % (self.address, exc)) from None
        finally:
            sock.close()
        return b"".join(chunks).decode("utf-8", "replace")

    def checked(self, line):
        """``command`` that turns HAProxy's error answers into exceptions."""
        answer = self.command(line)
        text = answer.strip()
        if text in ("No such backend.", "No such server.") or text.startswith("No such backend"):
            raise NotFound(text)
        if text.startswith(("Unknown command", "Permission denied")) or "Require " in text:
            raise RuntimeError_("%s: %s" % (line, text))
        return answer

    # ---- reading ----------------------------------------------------------------

    def show_stat(self):
        """``show stat`` as a list of dicts keyed by the CSV header."""
        answer = self.checked("show stat")
        body = answer.lstrip("# ")
        return [dict(row) for row in csv.DictReader(io.StringIO(body)) if row.get("pxname")]

    def servers_state(self, backend=None):
        """``show servers state [backend]`` as dicts keyed by its header's names."""
        answer = self.checked("show servers state" + (" " + backend if backend else ""))
        lines = [ln for ln in answer.splitlines() if ln.strip()]
        header = None
        rows = []
        for line in lines:
            if line.startswith("#"):
                header = line.lstrip("# ").split()
                continue
            if header is None or line.strip() == "1":
                continue  # the format version line
            rows.append(dict(zip(header, line.split(), strict=False)))
        return rows

    def info(self):
        answer = self.checked("show info")
        out = {}
        for line in answer.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def server(self, backend, server):
        """The observed state of one server, or ``NotFound``."""
        stat = [r for r in self.show_stat() if r["pxname"] == backend]
        if not stat:
            raise NotFound("No such backend.")
        row = next((r for r in stat if r["svname"] == server), None)
        if row is None:
            raise NotFound("No such server.")
        state = next((s for s in self.servers_state(backend) if s.get("srv_name") == server), None)
        admin = int(state["srv_admin_state"]) if state else 0
        return ServerView(
            backend=backend,
            server=server,
            status=row.get("status", ""),
            admin=admin_name(admin),
            weight=int(state["srv_uweight"]) if state else int(row.get("weight") or 0),
            sessions=int(row.get("scur") or 0),
        )


class ServerView:
    """What a module reports about a server (and compares before/after)."""

    __slots__ = ("admin", "backend", "server", "sessions", "status", "weight")

    def __init__(self, backend, server, status, admin, weight, sessions):
        self.backend = backend
        self.server = server
        self.status = status
        self.admin = admin
        self.weight = weight
        self.sessions = sessions

    def as_dict(self):
        return {
            "status": self.status,
            "admin_state": self.admin,
            "weight": self.weight,
            "sessions": self.sessions,
        }

    @property
    def up(self):
        return self.status == "UP" or self.status == "no check" or self.status.startswith("UP ")


def admin_name(flags):
    """``maint``, ``drain`` or ``ready`` from ``srv_admin_state`` bits."""
    if flags & _MAINT:
        return "maint"
    if flags & _DRAIN:
        return "drain"
    return "ready"


def wait_until(predicate, timeout, interval=0.5, clock=time.monotonic, sleep=time.sleep):
    """Poll ``predicate()`` until it returns a true value or ``timeout`` passes."""
    deadline = clock() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if clock() >= deadline:
            return value
        sleep(interval)
