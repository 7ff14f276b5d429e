"""Read configuration files and parse them: the only I/O of ``lbcore.config``.

``-f`` may name a file or a directory; a directory contributes its ``*.cfg`` files in
lexical order, as HAProxy does. ``lbcore check`` and ``lbcore run`` both load through
``load_config``, so ``check`` validates exactly what ``run`` would accept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lbcore.config.errors import ConfigError, ConfigErrors
from lbcore.config.model import Config
from lbcore.config.parser import parse_texts


def expand_paths(paths: Sequence[str]) -> list[str]:
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(str(p) for p in Path(path).glob("*.cfg") if p.is_file())
        else:
            files.append(path)
    return files


def load_config(
    paths: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[Config, list[str]]:
    """Parse the files (in order, as one configuration): ``(config, warnings)``.

    Files and environment values are read as bytes decoded as Latin-1 (see
    ``units.os_string`` for names the OS interprets).

    Raises ``ConfigErrors`` for unreadable files and for every problem in their text.
    """
    texts: list[tuple[str, str]] = []
    unreadable: list[ConfigError] = []
    files = expand_paths(paths)
    if not files:
        raise ConfigErrors([ConfigError("no configuration file given")])
    for name in files:
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            unreadable.append(ConfigError(f"{name}: cannot read: {exc.strerror}"))
            continue
        # bytes as Latin-1: every byte is kept, headers and patterns go out as written
        texts.append((name, data.decode("latin-1")))
    if unreadable:
        raise ConfigErrors(unreadable)
    if env is None:
        env = {k.decode("latin-1"): v.decode("latin-1") for k, v in os.environb.items()}
    config, warnings = parse_texts(texts, env)
    # Certificates are read here, not by the parser: a missing file, an unreadable PEM
    # or a key that does not match its certificate is reported at the line naming it.
    from lbcore.tls.context import preload

    problems = preload(config)
    if problems:
        raise ConfigErrors([ConfigError(message, source) for source, message in problems])
    return config, warnings
