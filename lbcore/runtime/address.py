"""``stats socket`` addresses, shared by the server adapter and ``lbcore ctl``.

Kept apart (and free of heavy imports) so that ``lbcore ctl`` starts fast.
"""

from __future__ import annotations


def parse_address(address: str) -> tuple[str, str, int]:
    """("unix", path, 0) or ("tcp", host, port) for a ``stats socket`` address:
    a path or ``unix@PATH``; ``[ipv4@|ipv6@]HOST:PORT`` for TCP."""
    if address.startswith("unix@"):
        return "unix", address[5:], 0
    for prefix in ("ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"):
        if address.startswith(prefix):
            address = address[len(prefix) :]
            break
    else:
        if address.startswith("/") or ":" not in address:
            return "unix", address, 0
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return "tcp", host, int(port)
