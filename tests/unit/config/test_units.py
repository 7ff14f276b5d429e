"""Durations and numbers as HAProxy writes them."""

import pytest

from lbcore.config.errors import ConfigError
from lbcore.config.units import parse_duration, parse_file_mode, parse_int

DURATIONS = [
    ("100", 0.1),  # no unit: milliseconds
    ("0", 0.0),
    ("250us", 0.00025),
    ("1500ms", 1.5),
    ("30s", 30.0),
    ("2m", 120.0),
    ("1h", 3600.0),
    ("1d", 86400.0),
    ("24d", 24 * 86400.0),
    ("2147483647", 2147483.647),  # the largest timer HAProxy accepts
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_duration(text, seconds):
    assert parse_duration(text, "timeout client") == pytest.approx(seconds)


def test_duration_default_unit_can_be_seconds():
    assert parse_duration("5", "x", default_unit="s") == 5.0


BAD_DURATIONS = [
    ("1.5s", "invalid duration '1.5s'"),
    ("", "invalid duration ''"),
    ("-1s", "invalid duration '-1s'"),
    ("10x", "unknown time unit 'x' in '10x'"),
    ("5sec", "unknown time unit 'sec'"),
    ("25d", "timer overflow in '25d'"),
    ("2147483648", "timer overflow"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DURATIONS)
def test_bad_duration(text, message):
    with pytest.raises(ConfigError, match="timeout client: ") as exc:
        parse_duration(text, "timeout client")
    assert message in str(exc.value)


def test_int_range_and_syntax():
    assert parse_int("42", "maxconn") == 42
    with pytest.raises(ConfigError, match="expected an integer, got '4k'"):
        parse_int("4k", "maxconn")
    with pytest.raises(ConfigError, match=r"300 is out of range \(0..256\)"):
        parse_int("300", "weight", 0, 256)


def test_file_mode_is_octal():
    assert parse_file_mode("600", "mode") == 0o600
    assert parse_file_mode("0660", "mode") == 0o660
    with pytest.raises(ConfigError, match="octal file mode"):
        parse_file_mode("689", "mode")
