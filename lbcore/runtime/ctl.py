"""``lbcore ctl -S SOCKET [COMMAND...]``: talk to a stats socket, like socat.

With a command (its words joined by spaces, so ``lbcore ctl -S S show stat`` and
``lbcore ctl -S S "show stat"`` are the same), it sends that one line, half-closes
and prints the answer: what ``echo CMD | socat stdio SOCKET`` does. Several commands
go in one argument separated by ``;``. Without a command it copies standard input
to the socket and the answers to standard output until both ends are done, so
``printf 'prompt\\nshow info\\n' | lbcore ctl -S S`` works; at a terminal it starts
HAProxy's interactive mode itself (``prompt``), so commands can be typed one after
the other until ``quit`` or end of input. SOCKET is a path, or HOST:PORT for a TCP
stats socket.

Exit status: 0 when an answer was read, 1 when the socket could not be reached.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys

from lbcore.runtime.address import parse_address


def connect(address: str, timeout: float) -> socket.socket:
    kind, host, port = parse_address(address)
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(host)
        return sock
    return socket.create_connection((host, port), timeout=timeout)


def ask(address: str, data: bytes, timeout: float = 30.0) -> bytes:
    """Send ``data``, half-close, return everything read until the server closes."""
    with connect(address, timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _pump(sock: socket.socket, stdin_fd: int, stdout_fd: int) -> None:
    """Copy stdin -> socket and socket -> stdout until the socket closes."""
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    sel.register(stdin_fd, selectors.EVENT_READ, "stdin")
    sock.setblocking(True)
    stdin_open = True
    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                data = os.read(stdin_fd, 65536)
                if data:
                    sock.sendall(data)
                else:
                    stdin_open = False
                    sel.unregister(stdin_fd)
                    sock.shutdown(socket.SHUT_WR)
            else:
                data = sock.recv(65536)
                if not data:
                    sel.close()
                    return
                os.write(stdout_fd, data)
        if not stdin_open and not sel.get_map():
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lbcore ctl", description="send runtime API commands to a stats socket"
    )
    parser.add_argument("-S", "--socket", required=True, help="socket path or HOST:PORT")
    parser.add_argument(
        "-t", "--timeout", type=float, default=30.0, help="seconds to wait for the answer"
    )
    parser.add_argument("command", nargs="*", help="the command line (words are joined)")
    args = parser.parse_args(argv)
    try:
        if args.command:
            out = ask(args.socket, (" ".join(args.command) + "\n").encode(), args.timeout)
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
            return 0
        with connect(args.socket, args.timeout) as sock:
            if sys.stdin.isatty():
                # a person at a terminal: keep the session open, with HAProxy's prompt
                sock.sendall(b"prompt\n")
            sys.stdout.flush()
            _pump(sock, sys.stdin.fileno(), sys.stdout.fileno())
        return 0
    except OSError as err:
        print(f"lbcore ctl: {args.socket}: {err.strerror or err}", file=sys.stderr)
        return 1
