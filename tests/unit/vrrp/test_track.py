"""Tracking policy (pure): weights, faults, rise/fall; the admin-socket CSV verdict."""

from __future__ import annotations

from lbcore.config.model import Source
from lbcore.vrrp.checks import frontend_open
from lbcore.vrrp.conf import Command, Track, VrrpInstance, VrrpScript
from lbcore.vrrp.track import ScriptStatus, tracked, tracker_verdict

W = Source("k.conf", 1)


def script(name: str, weight: int = 0, **kw) -> ScriptStatus:
    return ScriptStatus(VrrpScript(name, W, Command(("/bin/true",)), weight=weight, **kw))


def instance(**kw) -> VrrpInstance:
    return VrrpInstance("VI_1", W, "eth0", 1, **kw)


def test_weights_and_faults_follow_keepalived_rules():
    scripts = {
        "neg": script("neg", -30),
        "pos": script("pos", 20),
        "zero": script("zero", 0),
        "over": script("over", 5),
    }
    inst = instance(
        track_scripts=(Track("neg", W), Track("pos", W), Track("zero", W), Track("over", W, -50)),
        track_interfaces=(Track("eth1", W), Track("eth2", W, -10), Track("eth3", W, 15)),
    )
    links = {"eth0": True, "eth1": True, "eth2": True, "eth3": True}
    weights, faults = tracked(inst, scripts, links)
    assert sorted(weights) == [15, 20]  # positive weights while up
    assert faults == {"interface:eth0": False, "interface:eth1": False, "script:zero": False}

    for st in scripts.values():
        st.ok = False
    links = {"eth0": False, "eth1": False, "eth2": False, "eth3": False}
    weights, faults = tracked(inst, scripts, links)
    # negative weights while down; the per-instance override (-50) beats the script's (+5)
    assert sorted(weights) == [-50, -30, -10]
    assert faults == {"interface:eth0": True, "interface:eth1": True, "script:zero": True}


def test_rise_and_fall():
    st = script("chk", rise=2, fall=3)
    assert [tracker_verdict(st, False) for _ in range(3)] == [False, False, True]
    assert st.ok is False
    assert tracker_verdict(st, True) is False  # one success is not enough
    assert tracker_verdict(st, False) is False  # the streak resets
    assert [tracker_verdict(st, True) for _ in range(2)] == [False, True]
    assert st.ok is True


STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
    "wretr,wredis,status,weight\n"
    "fe,FRONTEND,,,0,0,262,0,0,0,0,0,0,,,,,{fe},,\n"
    "be,s1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1\n"
    "be,BACKEND,0,0,0,0,26,0,0,0,0,0,,0,0,0,0,UP,1\n"
)


def test_frontend_open_reads_the_stat_csv():
    assert frontend_open(STAT.format(fe="OPEN")) is True
    assert frontend_open(STAT.format(fe="STOP")) is False
    assert frontend_open("") is False
    assert frontend_open("Unknown command\n") is False
