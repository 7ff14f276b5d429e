"""Real HAProxy (Debian's /usr/sbin/haproxy) accepts every valid configuration we test.

This keeps lbcore's dialect HAProxy's: a keyword form that lbcore accepts but HAProxy
refuses would be an invention. Rows marked ``haproxy=False`` differ on purpose (the
reason is beside each). The error table's rows marked ``haproxy_rejects`` are checked the
other way round: HAProxy refuses them too.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lbcore.config import load_config
from tests.conftest import need_binary
from tests.unit.config import test_check_cmd, test_model_whole
from tests.unit.config.test_errors import ERRORS
from tests.unit.config.test_keywords import ROWS

SAMPLES = sorted((Path(__file__).parent / "cfg").glob("*.cfg"))


def haproxy_check(
    haproxy: str, tmp: Path, name: str, text: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    path = tmp / f"{name}.cfg"
    path.write_text(text)
    proc = subprocess.run(
        [haproxy, "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stdout + proc.stderr


def run_all(texts: dict[str, str], tmp_path: Path) -> dict[str, tuple[int, str]]:
    haproxy = need_binary("haproxy")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            name: pool.submit(haproxy_check, haproxy, tmp_path, f"c{i}", text)
            for i, (name, text) in enumerate(texts.items())
        }
        return {name: f.result() for name, f in futures.items()}


def test_haproxy_accepts_every_valid_keyword_row(tmp_path):
    rows = [row for row in ROWS if row.haproxy]
    assert len(rows) > 100
    # fast path: all rows in one file (each with its own proxy names), one haproxy run
    together = "\n".join(row.config(sfx=f"_{i}") for i, row in enumerate(rows))
    rc, out = haproxy_check(need_binary("haproxy"), tmp_path, "all", together)
    if rc == 0:
        assert "Configuration file is valid" in out
        return
    # slow path, to name the culprits: one run per row
    results = run_all({row.id: row.config() for row in rows}, tmp_path)
    refused = {name: out for name, (rc, out) in results.items() if rc != 0}
    assert not refused, "HAProxy refuses rows lbcore accepts:\n" + "\n".join(
        f"--- {name}\n{out}" for name, out in refused.items()
    )


def test_haproxy_refuses_what_it_should(tmp_path):
    rows = {e.id: e.config() for e in ERRORS if e.haproxy_rejects}
    assert len(rows) > 20
    results = run_all(rows, tmp_path)
    accepted = [name for name, (rc, _) in results.items() if rc == 0]
    assert not accepted, f"HAProxy accepts rows marked as refused by it: {accepted}"


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_sample_files_are_valid_for_both(sample, tmp_path):
    config, warnings = load_config([str(sample)])
    assert config.proxies and warnings == []
    rc, out = haproxy_check(need_binary("haproxy"), tmp_path, "s", sample.read_text())
    assert rc == 0, out
    assert "Warnings were found" not in out, out


@pytest.mark.parametrize(
    ("text", "env"),
    [
        (test_model_whole.OVERRIDES, {}),
        (test_check_cmd.VALID, {"LBCORE_T_PORT": "18001"}),
    ],
    ids=["overrides", "check-valid"],
)
def test_other_valid_configs_of_the_tests_are_valid_for_haproxy(text, env, tmp_path):
    rc, out = haproxy_check(need_binary("haproxy"), tmp_path, "v", text, env)
    assert rc == 0, out
