"""Addresses as HAProxy writes them in ``bind``, ``server``, ``log`` and ``stats socket``.

``bind`` takes a comma-separated list of ``[family@]host:port[-port]`` where the host
may be empty or ``*`` (every IPv4 address), ``::`` or ``[::]`` (IPv6), and
``ipv4@``/``ipv6@`` force the family. The port is after the *last* colon, so
``:::80`` is ``::`` port 80, as in HAProxy's ``str2sa_range``. Unix sockets,
``fd@``, ``abns@`` and friends are recognised and not supported yet.
"""

from __future__ import annotations

import ipaddress
import re

from lbcore.config.errors import ConfigError, NotSupportedYet
from lbcore.config.tokenizer import word_set
from lbcore.config.units import parse_port

#: address families HAProxy knows that lbcore does not listen on or connect to yet
_LATER_FAMILIES = tuple(
    word_set("unix@ abns@ fd@ sockpair@ udp@ udp4@ udp6@ quic4@ quic6@ uxst@ uxdg@ tcp@ tcp4@")
    | word_set("tcp6@ rhttp@")
)


def split_host_port(text: str, what: str) -> tuple[str, str, str]:
    """``(family, host, port_text)``: family is ``""``, ``"ipv4"`` or ``"ipv6"``."""
    family = ""
    for prefix in ("ipv4@", "ipv6@"):
        if text.startswith(prefix):
            family, text = prefix[:-1], text[len(prefix) :]
    if text.startswith(_LATER_FAMILIES) or text.startswith("/"):
        raise NotSupportedYet(text, f"{what} address")
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1 : close + 2] != ":":
            raise ConfigError(f"{what}: invalid address '{text}' (expected [IPv6]:PORT)")
        return family or "ipv6", text[1:close], text[close + 2 :]
    host, colon, port = text.rpartition(":")
    if not colon:
        raise ConfigError(f"{what}: missing port in '{text}' (expected ADDRESS:PORT)")
    return family, host, port


def parse_bind_address(text: str) -> list[tuple[str, int]]:
    """One element of a ``bind`` list: ``[(host, port), ...]`` (a port range gives several).

    The host is ``""`` for every IPv4 address (``*`` and an empty host), ``"::"`` for
    every IPv6 address, else the literal address or name as written.
    """
    family, host, port_text = split_host_port(text, "bind")
    if host == "*":
        host = ""
    if family == "ipv6" and host == "":
        host = "::"
    _check_family(host, family, "bind")
    low, dash, high = port_text.partition("-")
    first = parse_port(low, "bind")
    last = parse_port(high, "bind") if dash else first
    if last < first:
        raise ConfigError(f"bind: invalid port range '{port_text}'")
    return [(host, port) for port in range(first, last + 1)]


def parse_server_address(text: str) -> tuple[str, int]:
    """``server``'s ``ADDR:PORT``: an IPv4/IPv6 literal or a host name resolved at start."""
    family, host, port_text = split_host_port(text, "server")
    if not host:
        raise ConfigError(f"server: missing address in '{text}'")
    if port_text.startswith(("+", "-")):
        raise NotSupportedYet(port_text, "server port offset")
    _check_family(host, family, "server")
    return host, parse_port(port_text, "server")


_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")


def _check_family(host: str, family: str, what: str) -> None:
    """``host`` is an address literal (of ``family`` if one was forced) or a host name."""
    if not host:
        return
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        if ":" in host:
            raise ConfigError(f"{what}: invalid IPv6 address '{host}'") from None
        if re.fullmatch(r"[0-9.]+", host):
            raise ConfigError(f"{what}: invalid IPv4 address '{host}'") from None
        if not _HOST_NAME.fullmatch(host):
            raise ConfigError(f"{what}: invalid host name '{host}'") from None
        return  # a host name: resolved when the balancer starts, as HAProxy does
    if family and (family == "ipv4") != (addr.version == 4):
        raise ConfigError(f"{what}: '{host}' is not an {family} address")
