"""Configuration errors: every one names the file and line it came from.

The parser does not stop at the first problem: like ``haproxy -c`` it reports every
bad line it can, so that an operator fixes a file in one round. Each problem is a
``ConfigError``; the parser collects them and raises one ``ConfigErrors`` at the end.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from lbcore.config.model import Source


class ConfigError(Exception):
    """One problem in a configuration, with the ``Source`` (file:line) it is about."""

    def __init__(self, message: str, source: Source | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source

    def at(self, source: Source) -> ConfigError:
        """This error, located at ``source`` unless it already names a place."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


class ConfigErrors(Exception):
    """All the problems found in a configuration, in file order."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = tuple(errors)


class NotSupportedYet(ConfigError):
    """A keyword HAProxy knows and lbcore will support later (or not at all yet)."""

    def __init__(self, what: str, detail: str = "", source: Source | None = None) -> None:
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"'{what}' is not supported yet{suffix}", source)


def hint(word: str, *vocabularies: Iterable[str]) -> str:
    """``" (did you mean 'X'?)"`` for the closest known word, or ``""``."""
    known = [w for vocab in vocabularies for w in vocab]
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
