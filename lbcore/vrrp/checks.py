"""Running checks and notify scripts: subprocesses and the balancer's admin socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import signal

from lbcore.vrrp.model import Command

log = logging.getLogger("lbcore.vrrpd")


async def run_command(
    cmd: Command, extra: list[str], user: str | None, timeout: float | None
) -> int:
    """Run a script with arguments; its exit status, or -1 if it could not run or timed out.

    The script runs in its own session so that a timeout kills its whole process
    group (a shell script's children included), as keepalived does.
    """
    kw: dict[str, object] = {}
    who = cmd.user or user
    if who and os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(who)
        except KeyError:
            log.error("script user %s does not exist; not running %s", who, cmd.argv[0])
            return -1
        kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd.argv,
            *extra,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            **kw,  # type: ignore[arg-type]
        )
    except OSError as exc:
        log.error("cannot run %s: %s", cmd.argv[0], exc)
        return -1
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return -1


async def check_balancer(path: str, timeout: float) -> bool:
    """The built-in tracker: the admin socket answers ``show info`` and a frontend is OPEN.

    Speaks the HAProxy runtime API (one command per connection), which lbcore's
    admin socket implements, so it tracks a real HAProxy as well. No process is
    spawned per check, unlike a ``vrrp_script`` running socat.
    """

    async def ask(command: str) -> str:
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            return (await reader.read(1 << 20)).decode(errors="replace")
        finally:
            writer.close()

    try:
        async with asyncio.timeout(timeout):
            info = await ask("show info")
            if "Name:" not in info and "Pid:" not in info:
                return False
            stat = await ask("show stat")
    except (OSError, TimeoutError):
        return False
    return frontend_open(stat)


def frontend_open(stat_csv: str) -> bool:
    """Does a ``show stat`` CSV list at least one FRONTEND row with status OPEN?"""
    header: list[str] = []
    for line in stat_csv.splitlines():
        if line.startswith("# "):
            header = line[2:].split(",")
            continue
        row = line.split(",")
        if not header or len(row) < len(header):
            continue
        rec = dict(zip(header, row, strict=False))
        if rec.get("svname") == "FRONTEND" and rec.get("status") == "OPEN":
            return True
    return False
