"""Tracking policy, sans I/O: what script and interface results do to an instance.

keepalived's rules (keepalived.conf(5), vrrp_track.c):

- a tracked item with weight 0 (the default for scripts, and for interfaces
  listed without a weight) puts the instance in FAULT while it is down;
- a positive weight is added to the priority while the item is up;
- a negative weight is added (subtracted) while it is down;
- a script's state flips only after ``fall`` consecutive failures or ``rise``
  consecutive successes;
- the instance's own interface going down is a FAULT.

The agent feeds results in and applies :func:`tracked` to each instance; the
resulting weights go through :func:`lbcore.vrrp.fsm.effective_priority`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lbcore.vrrp.model import VrrpInstance, VrrpScript


@dataclass
class ScriptStatus:
    """One ``vrrp_script``'s current verdict after rise/fall."""

    spec: VrrpScript
    ok: bool = True
    streak: int = 0
    last_rc: int | None = None


def tracker_verdict(st: ScriptStatus, success: bool) -> bool:
    """Apply one check result; returns True when ``st.ok`` flipped."""
    if success == st.ok:
        st.streak = 0
        return False
    st.streak += 1
    if st.streak >= (st.spec.rise if success else st.spec.fall):
        st.ok, st.streak = success, 0
        return True
    return False


def _weigh(key: str, weight: int, up: bool, weights: list[int], faults: dict[str, bool]) -> None:
    if weight == 0:
        faults[key] = not up
    elif (weight > 0 and up) or (weight < 0 and not up):
        weights.append(weight)


def tracked(
    inst: VrrpInstance, scripts: Mapping[str, ScriptStatus], links: Mapping[str, bool]
) -> tuple[list[int], dict[str, bool]]:
    """The weights that apply now, and every fault key with whether it is active."""
    weights: list[int] = []
    faults: dict[str, bool] = {}
    if inst.interface:
        faults[f"interface:{inst.interface}"] = not links.get(inst.interface, True)
    for t in inst.track_interfaces:
        _weigh(f"interface:{t.name}", t.weight or 0, links.get(t.name, False), weights, faults)
    for t in inst.track_scripts:
        st = scripts[t.name]
        weight = st.spec.weight if t.weight is None else t.weight
        _weigh(f"script:{t.name}", weight, st.ok, weights, faults)
    return weights, faults
