"""`molecule test --all`, exactly as CI and a developer run it (issue 9, Must show 4).

One command runs every scenario under molecule/ (default, failover, rolling_drain, tls):
syntax, [prepare], converge, [idempotence], verify, on one lab that the default scenario's
create builds before the first and its destroy removes after the last (`shared_state:
true`; molecule/shared/README.md says why and why the order does not matter). Here it
runs on a private lab (tests/ops/opsctl.py: bridge lbco0,
198.18.9.0/24) picked through LBCORE_MOLECULE_INVENTORY, with the collection built and
installed as `make test` has it. The whole output is streamed to
artifacts/molecule-all.log as it comes; the test then checks, scenario by scenario, that
every step of its sequence ran and succeeded, that the idempotence steps found nothing to
change and that each verifier's tests passed, none skipped. The figures the verifiers
measure (load, failures, VIP move times) come back through $LBCORE_OPS_REPORT.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, need_root
from tests.lab.labctl import Ansible, ansible_bin
from tests.ops.opsctl import write_inventory

pytestmark = [pytest.mark.root, pytest.mark.slow]

LOG = REPO / "artifacts" / "molecule-all.log"
BUDGET = 1500  # seconds; about 11 minutes here in a quiet hour (see the report's figures)


def scenarios() -> dict[str, list[str]]:
    """Every scenario under molecule/ and the steps `--all` runs of its test sequence
    (with shared state, create and destroy are the default scenario's, run once)."""
    found = {}
    for config in sorted((REPO / "molecule").glob("*/molecule.yml")):
        data = yaml.safe_load(config.read_text())
        steps = list(data["scenario"]["test_sequence"])
        if data.get("shared_state"):
            steps = [s for s in steps if s not in ("create", "destroy")]
        found[config.parent.name] = steps
    return found


@pytest.fixture(scope="module")
def molecule_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The collection built and installed once, a private lab's inventory; the lab
    removed at the end whatever happened (each scenario removes its own already)."""
    need_root()
    molecule = ansible_bin("molecule")
    if molecule is None:
        pytest.skip("molecule is not installed (make venv installs it)")
    tmp = tmp_path_factory.mktemp("molecule-all")
    built = Ansible.build(tmp)
    inventory = write_inventory(tmp / "inventory")
    env = {k: v for k, v in built.env.items() if "CALLBACK" not in k}
    env.update(
        PATH=f"{Path(molecule).parent}{os.pathsep}{env.get('PATH', '')}",
        LBCORE_MOLECULE_INVENTORY=str(inventory),
        LBCORE_OPS_REPORT=str(tmp / "report.jsonl"),
        XDG_CACHE_HOME=str(tmp / "cache"),  # molecule's ephemeral directories
        MOLECULE_NO_LOG="false",
        NO_COLOR="1",  # plain "[scenario > step] Executed: Successful" lines
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s",
    )
    try:
        yield env
    finally:
        subprocess.run(
            [
                str(ansible_bin("ansible-playbook")),
                *("-i", str(inventory), "lbcore.fleet.lab", "-e", "lab_state=absent"),
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            timeout=300,
            check=False,
        )


STEP = re.compile(r"^\S*\s*\[(\w+) > (\w+)\] (Executing|Executed)")


def run_streamed(
    cmd: list[str], env: dict[str, str], timeout: float
) -> tuple[int, str, dict[str, float]]:
    """Run `cmd` with stdout and stderr as one stream, written to LOG line by line as it
    comes (a CI job killed half-way still leaves what ran); (exit status, output, seconds
    each "scenario > step" took, from its Executing line to its Executed line)."""
    LOG.parent.mkdir(exist_ok=True)
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    began: dict[str, float] = {}
    took: dict[str, float] = {}
    with LOG.open("w", encoding="utf-8") as log:
        log.write(f"$ cd {REPO} && {Path(cmd[0]).name} {' '.join(cmd[1:])}\n")
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                lines.append(line)
                step = STEP.match(line.strip())
                if step:
                    key = f"{step[1]} > {step[2]}"
                    if step[3] == "Executing":
                        began.setdefault(key, time.monotonic())
                    elif key in began:  # a step that runs twice (destroy) adds up
                        took[key] = round(took.get(key, 0.0) + time.monotonic() - began.pop(key), 1)
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(cmd, timeout)
            rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()  # molecule, which we started; its lab goes in the finalizer
            proc.wait()
            log.write(f"\n*** killed after {timeout:.0f}s\n")
            raise
    return rc, "".join(lines), took


def step_output(output: str, scenario: str, step: str) -> str:
    """What molecule printed for one step of one scenario, from "[SCENARIO > STEP]
    Executing" to its "Executed: ..." line (included)."""
    mark = rf"\[{re.escape(scenario)} > {re.escape(step)}\]"
    start = re.search(mark + r" Executing", output)
    assert start, f"{scenario}: no {step} step in the output"
    end = re.search(mark + r" Executed: .*", output[start.end() :])
    assert end, f"{scenario}: the {step} step did not finish:\n{output[start.start() :][-3000:]}"
    return output[start.start() : start.end() + end.end()]


@pytest.mark.timeout(BUDGET + 120)
def test_molecule_test_all_passes_every_scenario(molecule_env: dict[str, str]) -> None:
    expected = scenarios()
    assert {"default", "failover", "rolling_drain", "tls"} <= set(expected), expected
    load_before = os.getloadavg()
    started = time.monotonic()
    rc, out, steps = run_streamed(
        [str(ansible_bin("molecule")), "test", "--all"], molecule_env, timeout=BUDGET
    )
    took = time.monotonic() - started
    report = Path(molecule_env["LBCORE_OPS_REPORT"])
    figures = report.read_text().splitlines() if report.exists() else []
    print(
        f"molecule test --all: {took:.0f}s (log: {LOG}); load average before "
        f"{load_before[0]:.1f}, after (1/5/15 min) {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print("seconds per step:", json.dumps(steps))
    for line in figures:
        print(line)
    assert rc == 0, f"molecule test --all exited {rc}; see {LOG}:\n{out[-6000:]}"
    for step in ("create", "destroy"):  # the shared lab: built once, removed once
        assert len(re.findall(rf"\[default > {step}\] Executing", out)) == 1, step
        assert step_output(out, "default", step).rstrip().endswith("Executed: Successful")
    for scenario, sequence in expected.items():
        for step in sequence:
            text = step_output(out, scenario, step)
            assert text.rstrip().endswith("Executed: Successful"), text[-3000:]
        if "idempotence" in sequence:
            idem = step_output(out, scenario, "idempotence")
            recap = re.findall(r"^\s*[│|]?\s*(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", idem, re.M)
            assert recap and all(n == "0" for _, n in recap), idem[-3000:]
        verify = step_output(out, scenario, "verify")
        summary = re.findall(r"=+ (.*) in [\d.]+s", verify)
        assert summary, f"{scenario}: no pytest summary in verify:\n{verify[-3000:]}"
        counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) (\w+)", summary[-1]))
        assert counts.get("passed", 0) > 0, (scenario, summary[-1])
        assert set(counts) == {"passed"}, (scenario, summary[-1])  # no failed/skipped/error
    # The verifiers that measure report their figures, each under its own scenario.
    reported = {json.loads(line)["scenario"] for line in figures}
    assert {"failover", "rolling_drain", "tls"} <= reported, figures
