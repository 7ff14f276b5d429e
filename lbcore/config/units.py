"""Numbers, durations and sizes written the way HAProxy writes them.

HAProxy's time values are integers with an optional unit (``us``, ``ms``, ``s``, ``m``,
``h``, ``d``); without a unit a timeout is in milliseconds. Fractions are not accepted
("1.5s" is an error in HAProxy too), and timers are limited to 2^31-1 ms (about 24.8
days), beyond which HAProxy reports an overflow. The model stores seconds as ``float``.
"""

from __future__ import annotations

import re

from lbcore.config.errors import ConfigError

#: seconds per unit, as in HAProxy's ``parse_time_err``
TIME_UNITS: dict[str, float] = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
MAX_TIMER_MS = 2**31 - 1

_DURATION = re.compile(r"^(\d+)([a-z]*)$")


def parse_duration(text: str, what: str, default_unit: str = "ms") -> float:
    """``text`` (``"30s"``, ``"500"``, ``"2m"``) as seconds; ``what`` names it in errors."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(
            f"{what}: invalid duration '{text}' (expected an integer with an optional unit "
            "us, ms, s, m, h or d; the default unit is ms)"
        )
    number, unit = int(match.group(1)), match.group(2) or default_unit
    if unit not in TIME_UNITS:
        raise ConfigError(
            f"{what}: unknown time unit '{unit}' in '{text}' (expected us, ms, s, m, h or d)"
        )
    seconds = number * TIME_UNITS[unit]
    if seconds * 1000 > MAX_TIMER_MS:
        raise ConfigError(f"{what}: timer overflow in '{text}' (the maximum is 24d20h31m23s)")
    return seconds


def parse_int(text: str, what: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    """A decimal integer within ``[lo, hi]``."""
    if not re.fullmatch(r"-?\d+", text):
        raise ConfigError(f"{what}: expected an integer, got '{text}'")
    value = int(text)
    if not lo <= value <= hi:
        raise ConfigError(f"{what}: {value} is out of range ({lo}..{hi})")
    return value


def parse_port(text: str, what: str) -> int:
    return parse_int(text, f"{what}: port", 1, 65535)


def parse_file_mode(text: str, what: str) -> int:
    """An octal file mode such as ``600`` or ``0660``."""
    if not re.fullmatch(r"[0-7]{1,4}", text):
        raise ConfigError(f"{what}: expected an octal file mode such as 600, got '{text}'")
    return int(text, 8)


def os_string(text: str) -> str:
    """A file name or user name from the configuration, as the OS names it.

    Configuration text is bytes read as Latin-1 (so that header values and patterns go
    on the wire exactly as written, as HAProxy sends them); names the OS interprets are
    turned back into the str Python uses for those bytes (UTF-8, surrogateescape).
    """
    return text.encode("latin-1").decode("utf-8", "surrogateescape")
