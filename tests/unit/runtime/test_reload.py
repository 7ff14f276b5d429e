"""Admin states, weights and addresses set at run time survive a reload."""

from __future__ import annotations

from lbcore.config import parse_text
from lbcore.runtime.cli import CliSession
from lbcore.runtime.collect import worker_message
from lbcore.runtime.state import Level, RuntimeState

NOW = 1_800_000_000.0


def config(web1_weight: int = 10, web3: str = "disabled", web2_port: int = 8082) -> object:
    return parse_text(
        f"""
frontend www
    mode http
    bind 127.0.0.1:8080
    default_backend app
backend app
    mode http
    server web1 127.0.0.1:8081 weight {web1_weight}
    server web2 127.0.0.1:{web2_port} weight 20
    server web3 127.0.0.1:8083 {web3}
    server web4 127.0.0.1:8084
""",
        "reload.cfg",
    )


def run(state: RuntimeState, line: str) -> str:
    return CliSession(state, Level.ADMIN, NOW).receive(line.encode() + b"\n", NOW).decode()


def servers_state(state: RuntimeState) -> list[str]:
    lines = run(state, "show servers state app").splitlines()[2:]
    return [" ".join(ln.split(" ")[3:9]) + " " + ln.split(" ")[18] for ln in lines if ln]


def test_runtime_changes_survive_an_unchanged_reload() -> None:
    old = RuntimeState(config(), NOW)  # type: ignore[arg-type]
    run(old, "set server app/web1 state drain;set weight app/web2 7")
    run(old, "disable server app/web4;set server app/web2 addr 127.0.0.9 port 9000")
    new = RuntimeState(config(), NOW + 10)  # type: ignore[arg-type]
    new.carry_over(old)
    assert servers_state(new) == servers_state(old)
    web1, web2, _, web4 = new.backends["app"].servers
    assert web1.runtime.admin_state.value == "drain" and not web1.runtime.eligible
    assert (web2.runtime.weight, web2.host, web2.port) == (7, "127.0.0.9", 9000)
    assert web4.runtime.admin_state.value == "maint"
    msgs = [worker_message(c) for c in new.changed_servers()]
    assert {"op": "server", "backend": "app", "server": "web1", "admin_state": "drain"} in msgs
    assert {"op": "server", "backend": "app", "server": "web2", "weight": 7} in msgs
    assert {"op": "server", "backend": "app", "server": "web4", "admin_state": "maint"} in msgs


def test_the_new_configuration_wins_where_it_changed() -> None:
    old = RuntimeState(config(), NOW)  # type: ignore[arg-type]
    run(old, "set weight app/web1 3;set server app/web2 addr 127.0.0.9")
    new = RuntimeState(config(web1_weight=15, web3="", web2_port=9090), NOW)  # type: ignore[arg-type]
    new.carry_over(old)
    web1, web2, web3, _ = new.backends["app"].servers
    assert web1.runtime.weight == 15  # configured weight changed: it wins
    assert (web2.host, web2.port) == ("127.0.0.1", 9090)  # configured address changed
    assert web3.runtime.admin_state.value == "ready"  # 'disabled' removed from the file
    assert run(new, "get weight app/web1") == "15 (initial 15)\n\n"
