"""CI smoke run of the halog speed bench: it runs, and both tools print the same rows."""

from __future__ import annotations

import pytest

from tests.bench import halog_speed


@pytest.mark.bench
def test_halog_speed_short_mode(capsys: pytest.CaptureFixture[str]) -> None:
    results = halog_speed.run(lines=20_000, repeat=1)
    assert len(results) == len(halog_speed.ANALYSES)
    for row in results:
        assert float(row["lbcore"]) > 1000  # type: ignore[arg-type]
        if "same" in row:
            assert row["same"] is True, row["args"]
    assert "lbcore l/s" in capsys.readouterr().out
