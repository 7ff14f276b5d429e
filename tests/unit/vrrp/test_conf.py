"""keepalived-dialect configuration: the model, and errors that name file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lbcore.vrrp import cli, conf
from lbcore.vrrp.conf import Command, ConfigError, Track, VirtualAddress
from tests.unit.vrrp.pcap import DATA

FULL = """\
! Configuration File for keepalived (a production-shaped example)
global_defs {
   notification_email {
     ops@example.com
   }
   smtp_server 127.0.0.1
   router_id LB1
   vrrp_version 3
   script_user root
   enable_script_security
}

vrrp_script chk_haproxy {
    script "/usr/bin/killall -0 haproxy"   # cheap liveness
    interval 2
    timeout 1
    weight -30
    rise 2
    fall 3
}

vrrp_script chk_lb {
    lbcore_socket /run/lbcore/admin.sock
    interval 0.5
}

vrrp_instance VI_1
{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    preempt_delay 5
    unicast_src_ip 10.0.0.1
    unicast_peer {
        10.0.0.2
    }
    virtual_ipaddress {
        10.0.0.100/24 dev eth0 label eth0:vip
        10.0.0.101
    }
    track_interface {
        eth1 weight -20
        eth2
    }
    track_script {
        chk_haproxy
        chk_lb weight -60
    }
    notify_master "/etc/lbcore/notify.sh master"
    notify_backup /etc/lbcore/backup.sh
    notify "/etc/lbcore/notify-all.sh" root
    garp_master_delay 1
    garp_master_repeat 3
}

vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    version 2
    nopreempt
    authentication {
        auth_type PASS
        auth_pass s3cret-password
    }
    virtual_ipaddress { 10.0.1.100/24 }
}

vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
    notify_fault "/etc/lbcore/group-fault.sh"
}
"""


def load_text(tmp_path: Path, text: str, name: str = "keepalived.conf") -> conf.Config:
    path = tmp_path / name
    path.write_text(text)
    return conf.load(path)


def test_full_configuration_maps_onto_the_model(tmp_path):
    cfg = load_text(tmp_path, FULL)
    g = cfg.global_defs
    assert (g.router_id, g.vrrp_version, g.enable_script_security, g.script_user) == (
        "LB1",
        3,
        True,
        "root",
    )
    assert any("notification_email" in w for w in cfg.warnings)
    chk = cfg.scripts["chk_haproxy"]
    assert chk.command == Command(("/usr/bin/killall", "-0", "haproxy"))
    assert (chk.interval, chk.timeout, chk.weight, chk.rise, chk.fall) == (2, 1, -30, 2, 3)
    assert cfg.scripts["chk_lb"].lbcore_socket == "/run/lbcore/admin.sock"
    vi1, vi2 = cfg.instances
    assert (vi1.name, vi1.interface, vi1.vrid, vi1.priority) == ("VI_1", "eth0", 51, 150)
    assert (vi1.initial_state, vi1.interval_cs, vi1.version, vi1.preempt) == ("MASTER", 50, 3, True)
    assert vi1.preempt_delay == 5 and vi1.unicast_src_ip == "10.0.0.1"
    assert vi1.unicast_peers == ("10.0.0.2",)
    assert vi1.addresses == (
        VirtualAddress("10.0.0.100", 24, "eth0", "eth0:vip"),
        VirtualAddress("10.0.0.101", 32),
    )
    assert [(t.name, t.weight) for t in vi1.track_interfaces] == [("eth1", -20), ("eth2", None)]
    assert [(t.name, t.weight) for t in vi1.track_scripts] == [
        ("chk_haproxy", None),
        ("chk_lb", -60),
    ]
    assert vi1.notify.master == Command(("/etc/lbcore/notify.sh", "master"))
    assert vi1.notify.backup == Command(("/etc/lbcore/backup.sh",))
    assert vi1.notify.any == Command(("/etc/lbcore/notify-all.sh",), "root")
    assert (vi1.garp_master_delay, vi1.garp_master_repeat) == (1, 3)
    assert (vi2.version, vi2.preempt, vi2.auth_pass, vi2.interval_cs) == (
        2,
        False,
        "s3cret-password",
        100,
    )
    assert vi2.priority == 100 and vi2.initial_state == "BACKUP"
    (grp,) = cfg.groups
    assert grp.members == ("VI_1", "VI_2") and grp.notify.fault == Command(
        ("/etc/lbcore/group-fault.sh",)
    )
    assert cfg.group_of("VI_2") is grp


@pytest.mark.parametrize("name", ["v2_pass", "v3_mcast", "v3_unicast"])
def test_the_configs_keepalived_ran_for_the_captures_load(name):
    cfg = conf.load(DATA / f"keepalived-{name}.conf")
    assert len(cfg.instances) == 1


def test_include_splices_files_and_errors_point_into_them(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "vi.conf").write_text(
        "vrrp_instance VI_9 {\n  interface eth0\n  virtual_router_id 9\n  priority 300\n}\n"
    )
    main = tmp_path / "main.conf"
    main.write_text("global_defs {\n router_id X\n}\ninclude conf.d/*.conf\n")
    with pytest.raises(ConfigError) as exc:
        conf.load(main)
    assert str(exc.value).startswith(
        f"{tmp_path}/conf.d/vi.conf:4: 'priority' expects an integer 1..255"
    )


BASE = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n%s}\n"

ERRORS = [
    # (text, line, fragment of the message)
    (
        BASE % " priorty 100\n",
        4,
        "unknown keyword 'priorty' in vrrp_instance VI_1 (expected one of:",
    ),
    (BASE % " priority high\n", 4, "'priority' expects an integer 1..255, got 'high'"),
    (BASE % " priority 0\n", 4, "'priority' expects an integer 1..255, got 0"),
    (
        BASE % " advert_int 0.5\n",
        4,
        "VRRPv2 advert_int must be whole seconds, got 0.5 (use version 3)",
    ),
    (BASE % " version 3\n advert_int 50\n", 5, "'advert_int' expects seconds 0.01..40.95"),
    (BASE % " state PRIMARY\n", 4, "'state' expects MASTER or BACKUP, got 'PRIMARY'"),
    (BASE % " track_script {\n  chk_x\n }\n", 5, "track_script 'chk_x' names no vrrp_script"),
    (BASE % " track_script {\n  chk_x weight\n }\n", 5, "expected 'weight N' after the name"),
    (
        BASE % " virtual_ipaddress {\n  10.0.0.300/24\n }\n",
        5,
        "expected an IPv4 address[/prefix], got '10.0.0.300/24'",
    ),
    (
        BASE % " virtual_ipaddress {\n  10.0.0.3 dev\n }\n",
        5,
        "expected 'dev IFACE' or 'label NAME'",
    ),
    (BASE % " authentication {\n  auth_type AH\n }\n", 5, "auth_type 'AH' is not supported"),
    (
        BASE % " authentication {\n  auth_pass x\n }\n",
        4,
        "authentication needs both auth_type PASS and auth_pass",
    ),
    (
        BASE % " version 3\n authentication {\n  auth_type PASS\n  auth_pass x\n }\n",
        1,
        "authentication is VRRPv2 only",
    ),
    (BASE % " notify_master\n", 4, "'notify_master' expects a command"),
    (BASE % ' notify_master "/bin/x \'unclosed"\n', 4, "'notify_master': No closing quotation"),
    (BASE % ' notify_master "/bin/x" root extra\n', 4, 'expects "COMMAND" [USER]'),
    (BASE % " nopreempt yes\n", 4, "'nopreempt' takes no arguments"),
    (BASE % " state MASTER\n nopreempt\n", 1, "nopreempt needs 'state BACKUP'"),
    (BASE % " unicast_peer {\n  10.0.0.x\n }\n", 5, "'10.0.0.x' is not an IPv4 address"),
    ("vrrp_instance VI_1 {\n interface eth0\n}\n", 1, "'virtual_router_id' is required"),
    ("vrrp_instance VI_1 {\n virtual_router_id 3\n}\n", 1, "'interface' is required"),
    (
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n",
        3,
        "missing '}' at end of file",
    ),
    ("global_defs {\n router_id x\n}\n}\n", 4, "'}' without a matching '{'"),
    ('global_defs {\n router_id "x\n}\n', 2, "unterminated quoted string"),
    ("global_defs {\n vrrp_version 4\n}\n", 2, "'vrrp_version' expects an integer 2..3, got 4"),
    ("global_defs {\n vrrp_strict\n}\n", 2, "unknown keyword 'vrrp_strict' in global_defs"),
    ("virtual_server 10.0.0.1 80 {\n}\n", 1, "unknown top-level keyword 'virtual_server'"),
    ("vrrp_script s {\n interval 1\n}\n", 1, "expected exactly one of 'script' or 'lbcore_socket'"),
    (
        "vrrp_script s {\n script /bin/true\n rise 0\n}\n",
        3,
        "'rise' expects an integer 1..1000, got 0",
    ),
    (
        "vrrp_script s {\n script /bin/true\n}\nvrrp_script s {\n script /bin/false\n}\n",
        4,
        "is defined twice (first at",
    ),
    (BASE % "" + BASE % "", 5, "vrrp_instance VI_1 is defined twice (first at"),
    (
        BASE % "" + (BASE % "").replace("VI_1", "VI_2"),
        5,
        "virtual_router_id 5 on eth0 already used by VI_1 at",
    ),
    (
        BASE % "" + "vrrp_sync_group G {\n group {\n  VI_1\n  VI_3\n }\n}\n",
        5,
        "no vrrp_instance named 'VI_3'",
    ),
    ("vrrp_sync_group G {\n group {\n }\n}\n", 1, "lists no instance"),
    ("{\n}\n", 1, "'{' must follow a keyword"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), ERRORS)
def test_errors_name_file_line_and_what_was_expected(tmp_path, text, line, fragment):
    with pytest.raises(ConfigError) as exc:
        load_text(tmp_path, text)
    assert exc.value.where is not None
    assert (exc.value.where.file, exc.value.where.line) == (str(tmp_path / "keepalived.conf"), line)
    assert fragment in exc.value.message
    assert str(exc.value).startswith(f"{tmp_path / 'keepalived.conf'}:{line}: ")


def test_missing_file_is_an_error_not_a_traceback(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        conf.load(tmp_path / "nope.conf")


def test_comments_and_one_line_blocks(tmp_path):
    cfg = load_text(
        tmp_path,
        "# hash comment\n! bang comment\n"
        "vrrp_instance V { interface eth0 ; virtual_router_id 1 }\n".replace(" ;", "\n"),
    )
    assert cfg.instances[0].vrid == 1


def test_script_security_refuses_scripts_others_can_write(tmp_path):
    script = tmp_path / "chk.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o757)
    text = (
        "global_defs {\n enable_script_security\n}\n"
        f"vrrp_script chk {{\n script {script}\n}}\n" + BASE % " track_script {\n  chk\n }\n"
    )
    cfg = load_text(tmp_path, text)
    problems = conf.script_problems(cfg)
    assert problems and "unsafe" in problems[0]
    # ... and `vrrpd --check` refuses exactly that config.
    assert cli.main(["--check", "-f", str(tmp_path / "keepalived.conf")]) == 1
    # A root-owned script in root-owned directories is fine.
    text = text.replace(str(script), "/bin/true")
    if os.stat("/bin/true").st_uid == 0:
        assert conf.script_problems(load_text(tmp_path, text)) == []


def test_check_command_exit_codes_and_messages(tmp_path, capsys):
    good = tmp_path / "good.conf"
    good.write_text(BASE % " priority 120\n")
    assert cli.main(["--check", "-f", str(good)]) == 0
    assert "is valid" in capsys.readouterr().out
    bad = tmp_path / "bad.conf"
    bad.write_text(BASE % " priority 120\n bogus 1\n")
    assert cli.main(["-t", "-f", str(bad)]) == 1
    assert f"{bad}:5: unknown keyword 'bogus'" in capsys.readouterr().err


def test_track_default_weight_is_the_scripts(tmp_path):
    cfg = load_text(
        tmp_path,
        "vrrp_script c {\n script /bin/true\n weight 10\n}\n" + BASE % " track_script {\n  c\n }\n",
    )
    (t,) = cfg.instances[0].track_scripts
    assert t == Track("c", t.where, None)
    assert cfg.scripts["c"].weight == 10
