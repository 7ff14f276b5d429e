"""Split one configuration line into words, exactly as HAProxy's ``parse_line`` does.

Theory of operation: HAProxy does not have a grammar for its configuration, only
words. A line is cut at unquoted, unescaped white space; ``#`` outside quotes starts a
comment, even in the middle of a word; ``"..."`` and ``'...'`` quote (and may be glued
to other text: ``ab"c d"`` is one word ``abc d``); a backslash outside single quotes
escapes a space, ``\\``, ``#``, ``'``, ``"`` (and ``$`` inside double quotes) and
produces ``\\t``, ``\\n``, ``\\r`` and ``\\xHH``; any other backslash stays as it is (so
regular expressions such as ``\\.`` keep theirs). Environment variables ``$NAME``,
``${NAME}``, ``${NAME-default}`` and ``${NAME[*]}`` (one word per space-separated
value) are expanded inside double quotes only. There is no line continuation.

The caller passes the environment as a mapping, so this module reads nothing itself.
Text is bytes decoded as Latin-1 (``lbcore.config.load`` reads files so): every
character is one byte of the file, and a character above U+00FF is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from lbcore.config.errors import ConfigError

#: HAProxy refuses lines with more words than this (MAX_LINE_ARGS)
MAX_WORDS = 64

_HEX = "0123456789abcdefABCDEF"
_SPACE = " \t\f\v"


def tokenize(line: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The words of ``line`` (without its comment), or ``ConfigError`` on bad quoting."""
    env = env or {}
    wide = next((i for i, c in enumerate(line) if c > "\xff"), None)
    if wide is not None:
        raise ConfigError(
            f"character U+{ord(line[wide]):04X} at column {wide + 1} is not a byte "
            "(configuration text is bytes read as Latin-1)"
        )
    words: list[str] = []
    current: list[str] = []
    started = False  # the current word exists (it may be empty: "")
    squote = dquote = False
    quote_at = 0
    i, n = 0, len(line)

    def end_word() -> None:
        nonlocal started
        if started:
            words.append("".join(current))
            current.clear()
            started = False

    while i < n:
        c = line[i]
        if c in "\r\n":
            break
        if c == "#" and not squote and not dquote:
            break
        if c == '"' and not squote:
            dquote, quote_at, started = not dquote, i, True
            i += 1
        elif c == "'" and not dquote:
            squote, quote_at, started = not squote, i, True
            i += 1
        elif c == "\\" and not squote:
            i = _escape(line, i, dquote, current)
            started = True
        elif c in _SPACE and not squote and not dquote:
            end_word()
            while i < n and line[i] in _SPACE:
                i += 1
        elif c == "$" and dquote:
            i = _expand(line, i, env, words, current)
            started = True
        else:
            current.append(c)
            started = True
            i += 1
    if squote or dquote:
        raise ConfigError(f"unmatched quote at column {quote_at + 1}")
    # like HAProxy, an empty word at the very end ('foo ""') is no word at all
    if started and current:
        end_word()
    if len(words) > MAX_WORDS:
        raise ConfigError(f"too many words on one line ({len(words)}, the maximum is {MAX_WORDS})")
    return words


def _escape(line: str, i: int, dquote: bool, out: list[str]) -> int:
    """Handle the backslash at ``line[i]``; return the index after the sequence."""
    nxt = line[i + 1] if i + 1 < len(line) else ""
    simple = {" ": " ", "\\": "\\", "t": "\t", "n": "\n", "r": "\r", "#": "#", "'": "'"}
    simple['"'] = '"'
    if nxt in simple and nxt:
        out.append(simple[nxt])
        return i + 2
    if nxt == "$" and dquote:
        out.append("$")
        return i + 2
    if nxt == "x":
        digits = line[i + 2 : i + 4]
        if len(digits) != 2 or any(d not in _HEX for d in digits):
            raise ConfigError(f"invalid hex escape sequence at column {i + 1}")
        out.append(chr(int(digits, 16)))
        return i + 4
    out.append("\\")  # not an escape sequence: the backslash stays
    return i + 1


def _expand(line: str, i: int, env: Mapping[str, str], words: list[str], cur: list[str]) -> int:
    """Expand the variable at ``line[i] == '$'``; return the index after it."""
    start = i
    i += 1
    brace = i < len(line) and line[i] == "{"
    if brace:
        i += 1
    if i >= len(line) or not (line[i].isalpha() or line[i] in "_."):
        raise ConfigError(f"invalid variable name at column {i + 1}")
    name_start = i
    if line[i] == ".":
        i += 1
    while i < len(line) and (line[i].isalnum() or line[i] == "_"):
        i += 1
    name = line[name_start:i]
    value = env.get(name)
    if name.startswith(".") and value is None:
        raise ConfigError(f"unsupported internal variable '{name}' at column {name_start + 1}")
    word_expand = False
    if brace:
        if line.startswith("[*]", i):
            word_expand = True
            i += 3
        if i < len(line) and line[i] == "-":
            end = line.find("}", i)
            if end < 0:
                raise ConfigError(f"unmatched brace at column {start + 2}")
            if value is None:
                value = line[i + 1 : end]
            i = end
        if i >= len(line) or line[i] != "}":
            raise ConfigError(f"unmatched brace at column {start + 2}")
        i += 1
    if value:
        if word_expand:
            parts = value.split()
            for part in parts[:-1]:
                cur.append(part)
                words.append("".join(cur))
                cur.clear()
            cur.append(parts[-1] if parts else "")
        else:
            cur.append(value)
    return i


def word_set(text: str) -> frozenset[str]:
    """The space-separated words of ``text``: how keyword vocabularies are written here."""
    return frozenset(text.split())
