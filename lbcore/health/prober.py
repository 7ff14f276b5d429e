"""The I/O half of health checks: perform one TCP or HTTP check and classify it.

Kept apart from ``core`` so that the rise/fall logic stays testable without sockets,
and so that the master can run one prober per server (checks run once per server,
not once per worker) and fan the verdicts out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from typing import Any

from lbcore.health.core import CheckResult, CheckSettings, Layer

_MAX_BODY = 16384  # enough for `http-check expect string`; more is not read


async def probe(host: str, port: int, settings: CheckSettings) -> CheckResult:
    """Run one check against ``host:port`` (``addr``/``port`` overrides applied)."""
    host = settings.addr or host
    port = settings.port or port
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    tls: dict[str, Any] = {}
    if settings.tls is not None:
        from lbcore.tls.upstream import client_context

        # no SNI unless check-sni (which lbcore does not have): the chain is verified
        tls = {"ssl": client_context(settings.tls, named=False), "server_hostname": None}
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, **tls),
            settings.check_timeout,
        )
    except TimeoutError:
        return CheckResult(Layer.L4TOUT, elapsed(), info="Connection timeout")
    except ssl.SSLError as exc:
        return CheckResult(Layer.L6RSP, elapsed(), info=f"SSL handshake failure ({exc.reason})")
    except OSError as exc:
        info = os.strerror(exc.errno) if exc.errno else str(exc)
        return CheckResult(Layer.L4CON, elapsed(), info=info)
    try:
        if settings.http is None:
            return CheckResult(Layer.L6OK if tls else Layer.L4OK, elapsed())
        remaining = max(settings.check_timeout - (time.monotonic() - started), 0.001)
        try:
            return await asyncio.wait_for(_http(reader, writer, host, settings), remaining)
        except TimeoutError:
            return CheckResult(Layer.L7TOUT, elapsed())
        except (OSError, asyncio.IncompleteReadError):
            return CheckResult(Layer.L7RSP, elapsed(), info="socket error")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, s: CheckSettings
) -> CheckResult:
    assert s.http is not None
    started = time.monotonic()
    writer.write(s.http.request_bytes(host))
    await writer.drain()
    data = b""
    while len(data) < _MAX_BODY:
        chunk = await reader.read(_MAX_BODY - len(data))
        if not chunk:
            break
        data += chunk
    duration = int((time.monotonic() - started) * 1000)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return CheckResult(Layer.L7RSP, duration, info="Invalid response")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    if s.http.judge(status, body):
        return CheckResult(Layer.L7OK, duration, code=status, info=reason)
    return CheckResult(Layer.L7STS, duration, code=status, info=reason)
