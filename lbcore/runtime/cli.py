"""One CLI session on the stats socket, sans-I/O: bytes in, bytes out.

Theory of operation (management guide 9.3): a session starts non-interactive; each
received line holds one or more commands separated by ``;`` (``\\;`` is a literal
semicolon, a backslash escapes any character), words are separated by blanks. Each
command's answer is followed by an empty line, so a script can split the answers of
several commands. ``prompt`` toggles the interactive mode, where "> " is printed
after each answer and the session stays open; ``quit`` closes at once. In the
non-interactive mode the session closes once the complete lines it has received are
answered (HAProxy answers every line already buffered before closing). A trailing
line without its newline is never run.

The adapter feeds ``receive(data, now)``, writes what it returns, and closes the
connection when ``closed`` becomes true; ``receive_eof()`` on end of input.
"""

from __future__ import annotations

from lbcore.runtime.commands import execute
from lbcore.runtime.context import Context
from lbcore.runtime.state import Level, RuntimeState, SessionInfo

MAX_LINE = 16384  # tune.bufsize: a longer line is refused, as HAProxy does


def split_commands(line: str) -> list[list[str]]:
    """Split a request line into commands (``;``) and words, honouring backslashes."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            word.append(line[i + 1])
            in_word = True
            i += 2
            continue
        if ch in " \t":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        elif ch == ";":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            commands.append(words)
            words = []
        else:
            word.append(ch)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    commands.append(words)
    return commands


class CliSession:
    """The state of one connection to the stats socket."""

    def __init__(
        self,
        state: RuntimeState,
        level: Level,
        now: float,
        session: SessionInfo | None = None,
    ) -> None:
        self.ctx = Context(state, level, now, session)
        self.interactive = False
        self.closed = False
        self._buf = b""
        self._session = session
        if session is not None:
            state.sessions.append(session)

    def receive(self, data: bytes, now: float) -> bytes:
        """Feed received bytes; return the bytes to send back."""
        if self.closed:
            return b""
        self._buf += data
        out: list[str] = []
        ran = False
        while not self.closed:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE:
                    self._close()
                break
            raw, self._buf = self._buf[:nl], self._buf[nl + 1 :]
            ran = True
            out.append(self._run_line(raw.decode("utf-8", "replace").rstrip("\r"), now))
        if ran and not self.interactive and b"\n" not in self._buf:
            self._close()
        return "".join(out).encode()

    def receive_eof(self) -> None:
        self._close()

    def _run_line(self, line: str, now: float) -> str:
        self.ctx.now = now
        out: list[str] = []
        for args in split_commands(line):
            if args[:1] == ["quit"]:
                self._close()
                break
            if args[:1] == ["prompt"]:
                self.interactive = not self.interactive
                answer = ""
            else:
                answer = execute(self.ctx, args)
            out.append(answer + "\n" + ("> " if self.interactive else ""))
        return "".join(out)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._session is not None and self._session in self.ctx.state.sessions:
                self.ctx.state.sessions.remove(self._session)
