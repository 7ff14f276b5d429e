"""``lbcore check``: exit 0 for a valid configuration, 1 otherwise, errors as FILE:LINE.

Exit codes are checked on real processes (that is what Ansible's ``validate:`` runs);
the finer points of the output through ``main()`` in-process, which is faster.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lbcore.cmd_check import main
from lbcore.config import ConfigErrors, load_config, parse_text
from tests.conftest import lbcore_cmd, lbcore_env

VALID = """\
global
    maxconn 100
defaults
    mode http
    timeout client 5s
    timeout connect 5s
    timeout server 5s
frontend web
    bind "127.0.0.1:${LBCORE_T_PORT}"
    default_backend app
backend app
    server s1 127.0.0.1:18009
"""
BROKEN = """\
frontend web
    bind 127.0.0.1:18001
    default_backend app
    timout client 5s
backend app
    server s1 127.0.0.1:18009 agent-check
"""


def run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = lbcore_env() | {"LBCORE_T_PORT": "18001"} | (env_extra or {})
    return subprocess.run(
        lbcore_cmd("check", *args), env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "valid.cfg").write_text(VALID)
    (tmp_path / "broken.cfg").write_text(BROKEN)
    return {"valid": str(tmp_path / "valid.cfg"), "broken": str(tmp_path / "broken.cfg")}


def test_valid_config_exits_0(files):
    proc = run("-f", files["valid"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Configuration file is valid")
    assert proc.stderr == ""


def test_haproxy_style_dash_c_is_accepted(files):
    proc = run("-c", "-f", files["valid"])
    assert proc.returncode == 0, proc.stderr


def test_invalid_config_exits_1_with_file_line_messages(files):
    proc = run("-f", files["broken"])
    assert proc.returncode == 1
    path = files["broken"]
    assert proc.stderr.splitlines() == [
        f"{path}:4: unknown keyword 'timout' in 'frontend' section (did you mean 'timeout'?)",
        f"{path}:6: 'agent-check' is not supported yet (server option)",
        "lbcore check: 2 error(s) found",
    ]
    assert proc.stdout == ""


def test_unreadable_file_and_no_file_exit_1(files, tmp_path):
    missing = run("-f", str(tmp_path / "nope.cfg"))
    assert missing.returncode == 1
    assert "nope.cfg: cannot read: No such file or directory" in missing.stderr
    assert run().returncode == 1
    assert run("--frobnicate").returncode == 1


def test_environment_variables_are_expanded(files):
    # the port comes from "${LBCORE_T_PORT}"; a non-number there is an error
    assert run("-f", files["valid"], env_extra={"LBCORE_T_PORT": "x"}).returncode == 1


def test_several_files_are_one_configuration(tmp_path, capsys):
    first = tmp_path / "1.cfg"
    second = tmp_path / "2.cfg"
    first.write_text("frontend web\n    bind 127.0.0.1:18001\n    default_backend app\n")
    second.write_text("backend app\n    server s1 127.0.0.1:18009 weight 300\n")
    assert main(["-f", str(first), "-f", str(second)]) == 1
    assert f"{second}:2: server s1: weight: 300 is out of range" in capsys.readouterr().err
    second.write_text("backend app\n    server s1 127.0.0.1:18009\n")
    assert main(["-q", "-f", str(first), "-f", str(second)]) == 0
    assert capsys.readouterr().out == ""
    # without the second file, the backend is missing
    assert main(["-f", str(first)]) == 1
    assert "unknown backend 'app'" in capsys.readouterr().err


def test_a_directory_contributes_its_cfg_files_in_order(tmp_path, capsys):
    (tmp_path / "20-backend.cfg").write_text("backend app\n    server s1 127.0.0.1:18009\n")
    (tmp_path / "10-frontend.cfg").write_text(
        "frontend web\n    bind 127.0.0.1:18001\n    default_backend app\n"
    )
    (tmp_path / "notes.txt").write_text("not a config\n")
    assert main(["-f", str(tmp_path)]) == 0
    assert "valid" in capsys.readouterr().out


def test_warnings_do_not_fail_the_check(tmp_path, capsys):
    cfg = tmp_path / "w.cfg"
    cfg.write_text(
        "frontend web\n    bind 127.0.0.1:18001\n    retries 3\n    default_backend app\n"
        "backend app\n    server s1 127.0.0.1:18009\n"
    )
    assert main(["-f", str(cfg)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {cfg}:3: 'retries' is ignored in a frontend section" in err


def test_bytes_go_out_as_written_and_paths_stay_os_strings(tmp_path):
    # HAProxy's configuration is bytes: a UTF-8 header value is sent as those bytes,
    # a Latin-1 one too; file names are what the OS calls them
    cfg = tmp_path / "bytes.cfg"
    cfg.write_bytes(
        b"global\n    pidfile /tmp/caf\xc3\xa9.pid\n"
        b"frontend web\n    bind :18001\n    http-request set-header X caf\xc3\xa9\n"
        b'    http-request set-header Y caf\xe9\n    http-request set-header Z "\\xe9"\n'
    )
    config, _ = load_config([str(cfg)])
    values = [r.value.encode("latin-1") for r in config.proxies[0].http_request_rules]
    assert values == [b"caf\xc3\xa9", b"caf\xe9", b"\xe9"]
    assert config.global_.pidfile == "/tmp/caf\u00e9.pid"


def test_text_that_is_not_bytes_is_refused():
    with pytest.raises(ConfigErrors, match=r"t.cfg:2: character U\+65E5 at column 11"):
        parse_text("frontend f\n    bind :\u65e5\n", "t.cfg")
