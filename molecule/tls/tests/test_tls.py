"""Two TLS sites on one VIP:443 (issue 9, Must show 2), checked from the root namespace.

Clients verify every certificate against the scenario's test CA (prepare.yml made it next
to molecule's inventory). The play's failure path and the rotation run lbcore.fleet.tls
again, as an operator would, with the sites given as extra vars.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import ssl
import threading
from pathlib import Path

import pytest

from tests.ops.load import Load, get
from tests.ops.verify import group, playbook, report, variables

testinfra_hosts = ["ansible://lb1"]

SHOP = ("shop.example.test", "www.shop.example.test")
BLOG = "blog.example.test"


def pki(host) -> Path:
    return Path(host.backend.ansible_inventory).parent / "pki"


def sites(host, shop_key: str = "shop", blog_cert: str = "blog") -> list[dict]:
    """The converge's two sites (molecule/tls/converge.yml), with files swapped at will."""
    d = pki(host)
    return [
        {
            "name": "shop",
            "hostnames": list(SHOP),
            "cert": f"{d}/shop.crt",
            "chain": f"{d}/shop.chain",
            "key": f"{d}/{shop_key}.key",
            "hsts": True,
        },
        {
            "name": "blog",
            "hostnames": [BLOG],
            "cert": f"{d}/{blog_cert}.crt",
            "key": f"{d}/{blog_cert}.key",
            "redirect_http": False,
        },
    ]


def tls_play(host, tmp_path: Path, site_list: list[dict]):
    extra = tmp_path / "sites.json"
    extra.write_text(json.dumps({"lbcore_tls_sites": site_list}))
    return playbook(host, "tls", "-e", f"@{extra}")


def client(host) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki(host) / "ca.pem"))
    ctx.check_hostname = True
    return ctx


def handshake(vip: str, ctx: ssl.SSLContext, name: str) -> str:
    """SHA-256 of the certificate the VIP presents for SNI `name` (verified by `ctx`)."""
    with (
        socket.create_connection((vip, 443), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()


def fingerprint(path: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(path.read_text())).hexdigest()


def https(vip: str, ctx: ssl.SSLContext, name: str, path: str = "/") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(vip, 443, timeout=10)
    conn.sock = ctx.wrap_socket(
        socket.create_connection((vip, 443), timeout=10), server_hostname=name
    )
    conn.request("GET", path, headers={"Host": name, "Connection": "close"})
    resp = conn.getresponse()
    resp.read()
    return resp


def test_each_sni_name_gets_its_own_certificate(host) -> None:
    vip, ctx, d = variables(host)["lbcore_lab_vip"], client(host), pki(host)
    for name in SHOP:
        assert handshake(vip, ctx, name) == fingerprint(d / "shop.crt"), name
    assert handshake(vip, ctx, BLOG) == fingerprint(d / "blog.crt")
    # A name of the other site is refused by verification: the certificates are distinct.
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(vip, ctx, "other.example.test")
    for name in (*SHOP, BLOG):
        resp = https(vip, ctx, name)
        assert resp.status == 200 and resp.getheader("X-Served-By"), name


def test_http_redirects_to_https_and_hsts_is_sent(host) -> None:
    vip, ctx = variables(host)["lbcore_lab_vip"], client(host)
    conn = http.client.HTTPConnection(vip, 80, timeout=10)
    conn.request("GET", "/cart?x=1", headers={"Host": SHOP[0]})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 301
    assert resp.getheader("Location") == f"https://{SHOP[0]}/cart?x=1"
    assert http_status(vip, BLOG) == 200  # blog keeps plain HTTP (redirect_http: false)
    hsts = https(vip, ctx, SHOP[0]).getheader("Strict-Transport-Security")
    assert hsts == "max-age=31536000", hsts
    assert https(vip, ctx, BLOG).getheader("Strict-Transport-Security") is None


def http_status(vip: str, name: str) -> int:
    conn = http.client.HTTPConnection(vip, 80, timeout=10)
    conn.request("GET", "/", headers={"Host": name})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def master_pids(balancers) -> dict[str, str]:
    return {b.backend.host: b.check_output("cat /run/lbcore/lbcore.pid").strip() for b in balancers}


def config_digests(balancers) -> dict[str, str]:
    return {
        b.backend.host: b.check_output("md5sum /etc/lbcore/lbcore.cfg").split()[0]
        for b in balancers
    }


def test_a_site_run_after_tls_keeps_the_https_sites(host, tmp_path: Path) -> None:
    """The site renders the balancer's configuration through the same template as the tls
    playbook, TLS sections included: run after it with the same sites, it changes nothing
    (same file, no reload) and both HTTPS sites still answer with their certificates."""
    vip, ctx, d = variables(host)["lbcore_lab_vip"], client(host), pki(host)
    balancers = group(host, "balancers")
    before = (config_digests(balancers), master_pids(balancers))
    extra = tmp_path / "sites.json"
    extra.write_text(json.dumps({"lbcore_tls_sites": sites(host)}))
    proc = playbook(host, "site", "-e", f"@{extra}")
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # molecule colours
    assert proc.returncode == 0, out[-3000:]
    recap = re.findall(r"(lb\d)\s+:\s+ok=\d+\s+changed=(\d+)", out)
    assert sorted(recap) == [("lb1", "0"), ("lb2", "0")], out[-3000:]
    assert (config_digests(balancers), master_pids(balancers)) == before
    for b in balancers:
        assert "frontend https" in b.check_output("cat /etc/lbcore/lbcore.cfg")
    for name in SHOP:
        assert handshake(vip, ctx, name) == fingerprint(d / "shop.crt"), name
    assert handshake(vip, ctx, BLOG) == fingerprint(d / "blog.crt")
    for name in (*SHOP, BLOG):
        assert https(vip, ctx, name).status == 200, name


def test_a_key_that_does_not_match_fails_and_the_running_config_keeps_serving(
    host, tmp_path: Path
) -> None:
    vip, ctx, d = variables(host)["lbcore_lab_vip"], client(host), pki(host)
    proc = tls_play(host, tmp_path, sites(host, shop_key="blog"))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "TLS site 'shop'" in out and "does not match the certificate" in out, out[-3000:]
    assert "PRIVATE KEY" not in out
    assert handshake(vip, ctx, SHOP[0]) == fingerprint(d / "shop.crt")
    assert https(vip, ctx, SHOP[0]).status == 200


def test_rotating_a_certificate_reloads_without_dropping_a_connection(host, tmp_path: Path) -> None:
    vip, ctx, d = variables(host)["lbcore_lab_vip"], client(host), pki(host)
    balancers = group(host, "balancers")
    before = master_pids(balancers)
    assert handshake(vip, ctx, BLOG) == fingerprint(d / "blog.crt")
    slow: dict[str, object] = {}

    def long_request() -> None:  # in flight across the reload
        slow["shot"] = get(vip, 443, "/?delay=6", timeout=20, tls=ctx, sni=BLOG)

    t = threading.Thread(target=long_request)
    with Load(
        vip, 443, rate=20.0, threads=4, timeout=5.0, tls=ctx, sni=BLOG, max_seconds=400
    ) as load:
        t.start()
        proc = tls_play(host, tmp_path, sites(host, blog_cert="blog2"))
        t.join(timeout=30)
    summary = load.summary()
    report("tls", step="rotation", **summary)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert summary["failed"] == 0, summary
    assert slow["shot"].ok, slow["shot"]  # type: ignore[attr-defined]
    assert handshake(vip, ctx, BLOG) == fingerprint(d / "blog2.crt")  # new handshakes: new cert
    assert master_pids(balancers) == before  # reloaded, not restarted
