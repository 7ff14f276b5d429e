"""lbcore.fleet.pem_bundle and secrets: private keys are written 0600 whatever the umask
or the file's previous mode, and never appear in output, diffs, errors or Ansible's log
— not even at -vvvv, and not for keys read from ``key_src`` (no_log does not cover
a file's content, only the module's own care does)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trustme


@pytest.fixture(scope="module")
def pki() -> dict[str, str]:
    ca = trustme.CA()
    leaf = ca.issue_cert("shop.example.test")
    other = ca.issue_cert("other.example.test")
    return {
        "cert": leaf.cert_chain_pems[0].bytes().decode(),
        "key": leaf.private_key_pem.bytes().decode(),
        "other_key": other.private_key_pem.bytes().decode(),
    }


def _key_body(pem: str) -> list[str]:
    """Pieces of the base64 body: any of them in a log is a leak."""
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return [body[i : i + 24] for i in range(0, len(body) - 24, 97)]


def ansible(
    collections_path: Path, tmp: Path, args: dict[str, object], *flags: str, umask: int = 0o022
) -> tuple[int, str, str]:
    """Run the module ad hoc at -vvvv with a log file; return rc, all output, the log."""
    venv_bin = Path(sys.executable).parent
    log = tmp / "ansible.log"
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOG_PATH=str(log),
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
    )
    cmd = [
        str(venv_bin / "ansible"),
        "localhost",
        "-c",
        "local",
        "-vvvv",
        "-m",
        "lbcore.fleet.pem_bundle",
        "-a",
        json.dumps(args),
        *flags,
    ]
    proc = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(umask),
    )
    return proc.returncode, proc.stdout + proc.stderr, log.read_text() if log.exists() else ""


def _assert_no_key(pem: str, *texts: str) -> None:
    for text in texts:
        assert "PRIVATE KEY-----\n" not in text.replace("\\n", "\n")
        for piece in _key_body(pem):
            assert piece not in text, "private key material leaked"


def test_key_written_0600_under_umask_0_and_never_logged(
    collections_path: Path, pki: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "shop.pem"
    args = {"path": str(path), "cert": pki["cert"], "key": pki["key"]}
    rc, out, log = ansible(collections_path, tmp_path, args, "--diff", umask=0)
    assert rc == 0, out
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "PRIVATE KEY" in path.read_text()  # the key is in the file...
    _assert_no_key(pki["key"], out, log)  # ...and nowhere else
    assert log, "ANSIBLE_LOG_PATH was not written: the log check above proves nothing"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".pem_bundle.")]
    assert leftovers == []


def test_world_readable_bundle_is_tightened(
    collections_path: Path, pki: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "shop.pem"
    args = {"path": str(path), "cert": pki["cert"], "key": pki["key"]}
    assert ansible(collections_path, tmp_path, args)[0] == 0
    path.chmod(0o644)  # someone loosened it; the content is unchanged
    rc, out, _log = ansible(collections_path, tmp_path, args)
    assert rc == 0 and '"changed": true' in out, out
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_refused_keys_are_not_echoed(
    collections_path: Path, pki: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.pem"
    # a key that does not match, given inline (no_log) and from a file (no no_log)
    src = tmp_path / "other.key"
    src.write_text(pki["other_key"])
    garbage = (
        "-----BEGIN PRIVATE KEY-----\n"
        "TUlJRXZnSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NCS2d3Z2dTa0FnRUFBb0lC\n"
        "-----END PRIVATE KEY-----\n"
    )
    gsrc = tmp_path / "garbage.key"
    gsrc.write_text(garbage)
    for extra, secret in (
        ({"key": pki["other_key"]}, pki["other_key"]),
        ({"key_src": str(src)}, pki["other_key"]),
        ({"key_src": str(gsrc)}, garbage),
    ):
        rc, out, log = ansible(
            collections_path, tmp_path, {"path": str(path), "cert": pki["cert"], **extra}
        )
        assert rc != 0 and "FAILED!" in out, out
        _assert_no_key(secret, out, log)
        assert "TUlJRXZnSUJBREFOQmdrcWhra" not in out + log
        assert not path.exists()
