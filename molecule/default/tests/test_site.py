"""Verify the site as a whole: the VIP on exactly one balancer, traffic through it.

`host` is lb1 only (these tests look at the group once); the requests go from here, the
root namespace, the way a client outside the fleet reaches the VIP.
"""

from __future__ import annotations

import collections
import urllib.request

import testinfra

testinfra_hosts = ["ansible://lb1"]


def test_the_vip_is_on_exactly_one_balancer(host) -> None:
    variables = host.backend.get_variables()
    vip = variables["lbcore_lab_vip"]
    holders = []
    for name in variables["groups"]["balancers"]:
        balancer = testinfra.get_host(
            f"ansible://{name}",
            ansible_inventory=host.backend.ansible_inventory,
            force_ansible=True,
        )
        if f" {vip}/" in balancer.check_output("ip -o -4 addr show"):
            holders.append(name)
    assert len(holders) == 1, holders


def test_requests_through_the_vip_spread_over_the_backends(host) -> None:
    variables = host.backend.get_variables()
    vip = variables["lbcore_lab_vip"]
    backends = set(variables["groups"]["backends"])
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(3 * len(backends)):
        req = urllib.request.Request(f"http://{vip}/", headers={"Connection": "close"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
            counts[r.headers["X-Served-By"]] += 1
    assert set(counts) == backends, counts
