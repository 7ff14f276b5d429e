"""pem_bundle's checks under the managed hosts' interpreter: Debian 12's /usr/bin/python3
with its python3-cryptography 38, older than the venv's (no load_pem_x509_certificates,
no not_valid_after_utc)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import trustme

from tests.conftest import REPO

PYTHON = "/usr/bin/python3"
PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("pem", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
cert, chain, key, other = (open(p, "rb").read() for p in sys.argv[2:6])
leaf, ch, k = m.check_bundle(cert, chain, key)
out = {"info": m.describe(leaf), "bundle": m.assemble(leaf, ch, k).decode().count("BEGIN")}
for name, args in (("mismatch", (cert, b"", other)), ("order", (cert, cert, key))):
    try:
        m.check_bundle(*args)
    except m.BundleError as e:
        out[name] = str(e)
print(json.dumps(out))
"""


def test_checks_run_under_debians_python(tmp_path) -> None:
    if not os.path.exists(PYTHON):
        pytest.skip(f"{PYTHON} (the managed hosts' interpreter) is missing")
    if subprocess.run([PYTHON, "-c", "import cryptography"], check=False).returncode:
        pytest.skip("python3-cryptography is not installed for /usr/bin/python3")
    ca = trustme.CA()
    inter = ca.create_child_ca()
    leaf = inter.issue_cert("shop.example.test")
    other = ca.issue_cert("other.example.test")
    files = {
        "cert": leaf.cert_chain_pems[0].bytes(),
        "chain": inter.cert_pem.bytes(),
        "key": leaf.private_key_pem.bytes(),
        "other": other.private_key_pem.bytes(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    module = REPO / "collection" / "plugins" / "module_utils" / "pem.py"
    proc = subprocess.run(
        [PYTHON, "-c", PROBE, str(module), *(str(tmp_path / n) for n in files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["info"]["sans"] == ["shop.example.test"]
    assert out["info"]["days_to_expiry"] > 300
    assert out["bundle"] == 3  # leaf, chain, key
    assert out["mismatch"] == "the private key does not match the certificate"
    assert out["order"].startswith("the chain is not in order")
