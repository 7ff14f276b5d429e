"""HAProxy's usage message: ``help``, and "Unknown command" with close matches.

A port of the behaviour of HAProxy's cli_gen_usage_msg: keywords matching the
leading words exactly narrow the list; the remaining words are compared with
character-transition fingerprints and the closest (at most five, within 5/2 of the
best distance) are proposed; ``help``, ``prompt`` and ``quit`` always end the list.
Checked against HAProxy's own keyword table in tests/unit/runtime/test_usage.py.
"""

from __future__ import annotations

from lbcore.runtime.context import HELP_TRAILER, Command

_MAX_MATCHES = 5
_PREFIX_KW_NB = 5


def _fingerprint(words: list[str] | tuple[str, ...]) -> dict[int, int]:
    """Character-transition counts of the words (HAProxy's word fingerprints, a
    1024-cell array kept sparse here): positions 1..26 letters, 27 digits, 28
    anything else and word boundaries; cell ``to`` marks presence, ``32*from+to``
    counts transitions."""
    fp: dict[int, int] = {}
    for word in words:
        frm = 28
        for ch in word.lower():
            if "a" <= ch <= "z":
                to = ord(ch) - ord("a") + 1
            elif "0" <= ch <= "9":
                to = 27
            else:
                to = 28
            fp[to] = 1
            fp[32 * frm + to] = fp.get(32 * frm + to, 0) + 1
            frm = to
        fp[32 * frm + 28] = fp.get(32 * frm + 28, 0) + 1
    return fp


def _distance(a: dict[int, int], b: dict[int, int]) -> int:
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in a.keys() | b.keys())


def usage(args: list[str], table: tuple[Command, ...]) -> str:
    """The help text, or the "Unknown command" answer with the closest commands."""
    ishelp = bool(args) and args[0] == "help"
    if ishelp:
        args = args[1:]
    length = 0
    for cmd in table:
        for idx, word in enumerate(cmd.words[:_PREFIX_KW_NB]):
            if idx >= len(args) or not args[idx] or word != args[idx]:
                break
            length = max(length, idx + 1)
    if ishelp:
        head = "The following commands are valid at this level:\n"
    elif not length and (not args or not args[0]):
        head = "Unknown command. Please enter one of the following commands only:\n"
    else:
        head = "Unknown command, but maybe one of the following ones is a better match:\n"

    def prefix_matches(cmd: Command) -> bool:
        return all(
            idx < len(cmd.words) and idx < len(args) and args[idx] and cmd.words[idx] == args[idx]
            for idx in range(length)
        )

    entries: list[Command] = []
    if length < len(args) and args[length]:
        words: list[str] = []
        for a in args[length:_PREFIX_KW_NB]:
            if not a:
                break
            words.append(a)
        word_fp = _fingerprint(words)
        matches: list[tuple[int, Command]] = []
        for cmd in table:
            if not prefix_matches(cmd):
                continue
            kw_words = cmd.words[length:_PREFIX_KW_NB]
            totlen = sum(len(w) for w in words) + sum(len(w) for w in kw_words)
            dist = _distance(word_fp, _fingerprint(kw_words))
            if dist < 5 * totlen // 2:
                matches.append((dist, cmd))
        matches.sort(key=lambda m: m[0])  # stable: ties keep table order, as HAProxy's
        matches = matches[:_MAX_MATCHES]
        if matches:
            best = matches[0][0]
            entries = [cmd for dist, cmd in matches if dist <= 5 * best // 2]
    if not entries:
        entries = [cmd for cmd in table if prefix_matches(cmd)]
    entries.sort(key=lambda c: c.words)
    return head + "".join(f"  {c.usage}\n" for c in entries) + HELP_TRAILER
