"""The TLS sites' rendering, run by real ansible on localhost (issue 9, Must show 2, part).

The play does what the site and the tls playbooks do on a balancer: `lbcore.fleet.tls`
writes the bundles and the crt-list into a temporary directory and computes the sections,
then the balancer role's own preflight and configure tasks render the one configuration
(validated by this checkout's `lbcore check`, through a stand-in install directory). No
variable is handed from one role to the other in the play: the balancer role picks the TLS
sections up itself, which is why a site run after a tls run keeps them. HAProxy 2.6
(`haproxy -c`) is the oracle that the result is valid HAProxy configuration. The failure
paths are the play's: a key that does not match its certificate, a bad site, sites given
to a balancer role that runs without the tls role.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
import yaml

from tests.conftest import REPO, lbcore_cmd, lbcore_env
from tests.lab.labctl import ansible_bin

PLAYBOOK = """
- name: Render TLS sites like the site and tls playbooks do on a balancer
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: {python}
    lbcore_balancer_install_dir: {tmp}/install
    lbcore_balancer_config_file: {tmp}/lbcore.cfg
    lbcore_balancer_run_dir: {tmp}/run
    lbcore_balancer_log_file: {tmp}/log/lbcore.log
    lbcore_balancer_service_manager: daemon
    lbcore_tls_dir: {tmp}/tls
    # Nothing runs here to reload: the handlers skip, as after a start by this run.
    __lbcore_balancer_started: true
  tasks:
    - name: The tls role (skipped where the site skips it)
      ansible.builtin.include_role:
        name: lbcore.fleet.tls
      when: {with_tls} and lbcore_tls_sites | default([]) | length > 0
    - name: The balancer role's preflight and configuration, as in the site
      ansible.builtin.include_role:
        name: lbcore.fleet.balancer
        tasks_from: "{{{{ item }}}}"
      loop: [preflight, configure]
"""

INVENTORY = """
all:
  hosts:
    localhost: {}
  children:
    backends:
      hosts:
        web1: {ansible_host: 127.0.0.1}
        web2: {ansible_host: 127.0.0.2}
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    inter = ca.create_child_ca()
    shop = inter.issue_cert("shop.example.test", "www.shop.example.test")
    blog = ca.issue_cert("blog.example.test")
    files = {
        "shop_cert": shop.cert_chain_pems[0].bytes(),
        "shop_chain": inter.cert_pem.bytes(),
        "shop_key": shop.private_key_pem.bytes(),
        "blog_cert": blog.cert_chain_pems[0].bytes(),
        "blog_key": blog.private_key_pem.bytes(),
    }
    out = {}
    for name, data in files.items():
        (d / name).write_bytes(data)
        out[name] = str(d / name)
    out["blog_key_text"] = files["blog_key"].decode()
    out["blog_cert_text"] = files["blog_cert"].decode()
    return out


def sites(pki: dict[str, str]) -> list[dict]:
    """Two sites: one from controller files (with a chain), one from PEM text."""
    return [
        {
            "name": "shop",
            "hostnames": ["shop.example.test", "www.shop.example.test"],
            "cert": pki["shop_cert"],
            "chain": pki["shop_chain"],
            "key": pki["shop_key"],
            "hsts": True,
        },
        {
            "name": "blog",
            "hostnames": ["blog.example.test"],
            "cert": pki["blog_cert_text"],
            "key": pki["blog_key_text"],
            "redirect_http": False,
            "min_version": "TLSv1.3",
        },
    ]


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection source tree mounted as lbcore.fleet (collection/ + roles/)."""
    root = tmp_path_factory.mktemp("coll")
    fleet = root / "ansible_collections" / "lbcore" / "fleet"
    shutil.copytree(REPO / "collection", fleet, symlinks=True)
    (fleet / "roles").symlink_to(REPO / "roles")
    return root


def stand_in_install(tmp: Path) -> None:
    """{tmp}/install/venv/bin/lbcore runs this checkout's lbcore (the role's validate)."""
    binary = tmp / "install" / "venv" / "bin" / "lbcore"
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = lbcore_env()
    binary.write_text(
        f'#!/bin/sh\nPYTHONPATH={env["PYTHONPATH"]} exec {" ".join(lbcore_cmd())} "$@"\n'
    )
    binary.chmod(0o755)


def play(
    tmp: Path, collections: Path, site_list: list[dict], with_tls: bool = True
) -> subprocess.CompletedProcess[str]:
    if ansible_bin("ansible-playbook") is None:
        pytest.skip("ansible-core is not installed")
    stand_in_install(tmp)
    (tmp / "play.yml").write_text(
        PLAYBOOK.format(tmp=tmp, python=sys.executable, with_tls=with_tls)
    )
    (tmp / "inventory.yml").write_text(INVENTORY)
    (tmp / "vars.yml").write_text(yaml.safe_dump({"lbcore_tls_sites": site_list}))
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    cmd = [str(ansible_bin("ansible-playbook")), "-i", str(tmp / "inventory.yml")]
    cmd += [str(tmp / "play.yml"), "-e", f"@{tmp / 'vars.yml'}"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def test_two_sites_render_a_valid_sni_frontend(tmp_path: Path, collections: Path, pki) -> None:
    proc = play(tmp_path, collections, sites(pki))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    tls = tmp_path / "tls"
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    for name in ("shop", "blog"):
        bundle = tls / f"{name}.pem"
        assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
        body = bundle.read_text()
        assert body.index("BEGIN CERTIFICATE") < body.index("PRIVATE KEY")
    assert (tls / "shop.pem").read_text().count("BEGIN CERTIFICATE") == 2  # leaf + chain
    # Key material is never printed, whether it came as a file or as text.
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr
    assert pki["blog_key_text"].splitlines()[1] not in proc.stdout + proc.stderr
    crt_list = [
        line for line in (tls / "crt-list").read_text().splitlines() if not line.startswith("#")
    ]
    assert crt_list == [
        f"{tls}/shop.pem [alpn http/1.1 ssl-min-ver TLSv1.2] "
        "shop.example.test www.shop.example.test",
        f"{tls}/blog.pem [alpn http/1.1 ssl-min-ver TLSv1.3] blog.example.test",
    ]
    cfg = (tmp_path / "lbcore.cfg").read_text()
    assert f"bind *:443 ssl crt-list {tls}/crt-list" in cfg
    assert "use_backend app if { ssl_fc_sni -i shop.example.test www.shop.example.test }" in cfg
    assert "use_backend app if { ssl_fc_sni -i blog.example.test }" in cfg
    # HSTS for shop only; the redirect on port 80 for shop only (blog said no).
    assert cfg.count("Strict-Transport-Security") == 1
    assert 'set-header Strict-Transport-Security "max-age=31536000" if { ssl_fc_sni -i shop' in cfg
    www = cfg.split("frontend www", 1)[1].split("\nbackend app", 1)[0]
    assert (
        "http-request redirect scheme https code 301 "
        "if { hdr(host) -i shop.example.test www.shop.example.test }" in www
    )
    assert "blog.example.test" not in www
    # The oracle: HAProxy reads it (and loads the bundles through the crt-list).
    if shutil.which("haproxy"):
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(tmp_path / "lbcore.cfg")], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    ours = subprocess.run(
        lbcore_cmd("check", "-f", str(tmp_path / "lbcore.cfg")),
        env=lbcore_env(),
        capture_output=True,
        text=True,
    )
    assert ours.returncode == 0, ours.stderr + ours.stdout  # and lbcore, as `run` would

    # Second run: nothing changes (bundles, crt-list and config are idempotent).
    again = play(tmp_path, collections, sites(pki))
    assert again.returncode == 0
    assert "changed=0" in again.stdout, again.stdout[-3000:]
    assert (tmp_path / "lbcore.cfg").read_text() == cfg


def test_without_sites_the_configuration_has_no_tls_sections(
    tmp_path: Path, collections: Path
) -> None:
    proc = play(tmp_path, collections, [])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    cfg = (tmp_path / "lbcore.cfg").read_text()
    assert "frontend www" in cfg and "ssl" not in cfg and "redirect" not in cfg, cfg
    assert not (tmp_path / "tls").exists()


def test_sites_without_the_tls_role_fail_instead_of_dropping_the_tls_sections(
    tmp_path: Path, collections: Path, pki
) -> None:
    """The balancer role alone, given sites: it refuses rather than render a file without
    them (which a reload would then serve, with the HTTPS sites gone)."""
    proc = play(tmp_path, collections, sites(pki), with_tls=False)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "the lbcore.fleet.tls role has not run before the balancer role" in out, out[-3000:]
    assert not (tmp_path / "lbcore.cfg").exists()


def test_a_key_that_does_not_match_fails_with_a_clear_message(
    tmp_path: Path, collections: Path, pki
) -> None:
    bad = sites(pki)
    bad[0]["key"] = pki["blog_key"]  # shop's certificate with blog's key
    proc = play(tmp_path, collections, bad)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "TLS site 'shop': " in out and "the private key does not match the certificate" in out
    assert "PRIVATE KEY" not in out and pki["blog_key_text"].splitlines()[1] not in out
    assert not (tmp_path / "tls" / "shop.pem").exists()  # nothing written for it
    assert not (tmp_path / "lbcore.cfg").exists()  # and the play stopped before the config


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"min_version": "SSLv3"}, "min_version among TLSv1.0-TLSv1.3 (got SSLv3)"),
        ({"hostnames": "shop.example.test"}, "hostnames (a list of DNS names)"),
        ({"cert": "/nonexistent/shop.crt"}, "TLS site 'shop': needs"),
    ],
)
def test_a_bad_site_fails_the_preflight(
    tmp_path: Path, collections: Path, pki, change: dict, expected: str
) -> None:
    bad = sites(pki)
    bad[0].update(change)
    proc = play(tmp_path, collections, bad)
    assert proc.returncode != 0
    assert expected in " ".join((proc.stdout + proc.stderr).split()), proc.stdout[-3000:]
    assert not (tmp_path / "tls").exists()


def test_the_same_hostname_in_two_sites_is_refused(tmp_path: Path, collections: Path, pki) -> None:
    bad = sites(pki)
    bad[1]["hostnames"] = ["shop.example.test"]
    proc = play(tmp_path, collections, bad)
    assert proc.returncode != 0
    assert "each hostname in one site only" in " ".join(proc.stdout.split())
