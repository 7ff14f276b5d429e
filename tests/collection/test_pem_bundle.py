"""lbcore.fleet.pem_bundle run by ansible: checks, idempotence, check mode, diff, no key leak."""

from __future__ import annotations

import datetime
import os
import stat

import pytest
import trustme


@pytest.fixture(scope="module")
def pki():
    root = trustme.CA()
    inter = root.create_child_ca()
    leaf = inter.issue_cert("shop.example.test", "www.shop.example.test")
    other = root.issue_cert("other.example.test")
    soon = root.issue_cert(
        "soon.example.test",
        not_after=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=10),
    )
    return {
        "cert": leaf.cert_chain_pems[0].bytes().decode(),
        "chain": inter.cert_pem.bytes().decode(),
        "key": leaf.private_key_pem.bytes().decode(),
        "other_key": other.private_key_pem.bytes().decode(),
        "root": root.cert_pem.bytes().decode(),
        "soon_cert": soon.cert_chain_pems[0].bytes().decode(),
        "soon_key": soon.private_key_pem.bytes().decode(),
    }


def test_bundle_is_written_checked_and_idempotent(run_module, pki, tmp_path):
    path = tmp_path / "shop.pem"
    args = {"path": str(path), "cert": pki["cert"], "chain": pki["chain"], "key": pki["key"]}
    rc, res = run_module("pem_bundle", args, check=True)
    assert rc == 0 and res["changed"] is True and not path.exists()  # check mode writes nothing
    rc, res = run_module("pem_bundle", args, diff=True)
    assert rc == 0 and res["changed"] is True
    assert sorted(res["sans"]) == ["shop.example.test", "www.shop.example.test"]
    assert res["days_to_expiry"] > 300
    body = path.read_text()
    assert body.index("BEGIN CERTIFICATE") < body.index("PRIVATE KEY")
    assert body.count("BEGIN CERTIFICATE") == 2
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert f"+{res['subject']} {res['fingerprint_sha256']}" in res["_stdout"]  # diff: certs...
    assert "PRIVATE" not in res["_stdout"] and pki["key"][40:80] not in str(res)  # ...not keys
    rc, res = run_module("pem_bundle", args)
    assert rc == 0 and res["changed"] is False


def test_key_that_does_not_match_fails_and_writes_nothing(run_module, pki, tmp_path):
    path = tmp_path / "bad.pem"
    rc, res = run_module(
        "pem_bundle", {"path": str(path), "cert": pki["cert"], "key": pki["other_key"]}
    )
    assert rc != 0 and "FAILED!" in res["_stdout"]
    assert "does not match the certificate" in res["msg"]
    assert not path.exists()


def test_chain_out_of_order_is_refused(run_module, pki, tmp_path):
    rc, res = run_module(
        "pem_bundle",
        {
            "path": str(tmp_path / "x.pem"),
            "cert": pki["cert"],
            "chain": pki["root"],
            "key": pki["key"],
        },
    )
    assert rc != 0 and "chain is not in order" in res["msg"]


def test_expiry_warning_threshold(run_module, pki, tmp_path):
    rc, res = run_module(
        "pem_bundle",
        {
            "path": str(tmp_path / "w.pem"),
            "cert": pki["soon_cert"],
            "key": pki["soon_key"],
            "warn_days": 30,
        },
    )
    assert rc == 0, res
    assert "expires in" in res["_stderr"] + res["_stdout"], res


def test_absent_removes_and_is_idempotent(run_module, pki, tmp_path):
    path = tmp_path / "gone.pem"
    path.write_text("x")
    rc, res = run_module("pem_bundle", {"path": str(path), "state": "absent"})
    assert rc == 0 and res["changed"] and not path.exists()
    rc, res = run_module("pem_bundle", {"path": str(path), "state": "absent"})
    assert rc == 0 and not res["changed"]


def test_module_utils_describe_days(pki):
    from cryptography import x509

    from tests.collection.util import load_module_utils

    pem = load_module_utils("pem")
    leaf = x509.load_pem_x509_certificate(pki["cert"].encode())
    later = leaf.not_valid_after_utc - datetime.timedelta(days=10)
    assert pem.describe(leaf, now=later)["days_to_expiry"] == 10
