import subprocess

from lbcore import __version__
from lbcore.cli import main
from tests.conftest import lbcore_cmd, lbcore_env


def test_version_subcommand(capsys):
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"lbcore {__version__}"


def test_unknown_subcommand_fails_with_usage(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err
    assert "usage: lbcore" in err


def test_module_entry_point_runs_as_a_process():
    out = subprocess.run(
        lbcore_cmd("--version"), env=lbcore_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("lbcore ")
