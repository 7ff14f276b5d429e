"""Field-by-field comparison of a runtime API answer with HAProxy's golden one.

Deterministic fields must be equal: names, states, weights, ids, addresses, column
order, error texts. Masked: what depends on the process or the clock (PIDs, uptimes,
dates, memory, versions, seconds since a change, session pointers) and the parts
where lbcore implements a subset on purpose (the help lists only the commands
lbcore has, each with HAProxy's exact usage line).
"""

from __future__ import annotations

import csv
import io
import re

from lbcore.runtime.cli import split_commands

HAPROXY_VERSION = re.compile(r"2\.6\.\d+[^\s]*")

#: show info keys whose values are the process's own (or lbcore's by design).
INFO_MASKED = frozenset(
    {
        *("Name", "Version", "Release_date", "Nbthread", "Pid", "Uptime", "Uptime_sec"),
        *("Memmax_MB", "PoolAlloc_MB", "PoolUsed_MB", "Ulimit-n", "Maxsock", "CurrConns"),
        *("CumConns", "CumReq", "ConnRate", "MaxConnRate", "SessRate", "MaxSessRate"),
        *("Tasks", "Run_queue", "Idle_pct", "node", "Jobs", "Listeners", "TotalBytesOut"),
        *("BytesOutRate", "Memmax_bytes", "PoolAlloc_bytes", "PoolUsed_bytes"),
        *("Start_time_sec", "Build info"),
    }
)
STAT_MASKED = frozenset({"lastchg", "downtime"})
SERVERS_STATE_MASKED = {9}  # srv_time_since_last_change


def _csv(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [ln for ln in text.split("\n") if ln]
    header = lines[0][2:].split(",")
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
    return header, rows


def compare_stat(expected: str, actual: str) -> list[str]:
    problems: list[str] = []
    if not actual.endswith(",\n\n"):
        problems.append(f"show stat answer does not end like HAProxy's: {actual[-20:]!r}")
    eh, erows = _csv(expected)
    ah, arows = _csv(actual)
    if eh != ah:
        problems.append(f"header differs:\n  {eh}\n  {ah}")
        return problems
    ekeys = [r[:2] for r in erows]
    akeys = [r[:2] for r in arows]
    if ekeys != akeys:
        problems.append(f"rows differ: {ekeys} != {akeys}")
        return problems
    for er, ar in zip(erows, arows, strict=True):
        for name, ev, av in zip(eh, er, ar, strict=True):
            if name in STAT_MASKED:
                if (ev == "") != (av == ""):
                    problems.append(f"{er[0]}/{er[1]} {name}: presence {ev!r} vs {av!r}")
            elif ev != av:
                problems.append(f"{er[0]}/{er[1]} {name}: haproxy {ev!r} lbcore {av!r}")
    return problems


def compare_typed(expected: str, actual: str) -> list[str]:
    """``show stat typed``: same objects, positions, names, tags, types and values."""

    def parse(text: str) -> list[tuple[str, str, str, str]]:
        out = []
        for line in text.split("\n"):
            if line:
                head, tags, typ, value = line.split(":", 3)
                name = head.split(".")[4]
                out.append((head, tags, typ, "<masked>" if name in STAT_MASKED else value))
        return out

    e, a = parse(expected), parse(actual)
    if e == a:
        return []
    diff = [f"haproxy {x} lbcore {y}" for x, y in zip(e, a, strict=False) if x != y]
    return [f"typed output differs ({len(e)} vs {len(a)} values): {diff[:5]}"]


def compare_json(expected: str, actual: str) -> list[str]:
    import json

    def parse(text: str) -> list[list[dict[str, object]]]:
        data: list[list[dict[str, object]]] = json.loads(text)
        for row in data:
            for field in row:
                name = field["field"]["name"]  # type: ignore[index]
                if name in STAT_MASKED:
                    field["value"] = "<masked>"
        return data

    if parse(expected) != parse(actual):
        return [f"json differs:\n  {expected[:300]}\n  {actual[:300]}"]
    return []


def compare_info(expected: str, actual: str) -> list[str]:
    def pairs(text: str) -> list[tuple[str, str]]:
        return [tuple(ln.split(": ", 1)) for ln in text.split("\n") if ln]  # type: ignore[misc]

    ep, ap = pairs(expected), pairs(actual)
    problems = []
    if [k for k, _ in ep] != [k for k, _ in ap]:
        problems.append(f"show info keys differ:\n  {[k for k, _ in ep]}\n  {[k for k, _ in ap]}")
        return problems
    if ap[0] != ("Name", "lbcore"):
        problems.append(f"first line is {ap[0]}, not Name: lbcore")
    for (k, ev), (_, av) in zip(ep, ap, strict=True):
        if k not in INFO_MASKED and ev != av:
            problems.append(f"show info {k}: haproxy {ev!r} lbcore {av!r}")
    if not actual.endswith("\n\n"):
        problems.append("show info does not end with an empty line")
    return problems


def compare_info_typed(expected: str, actual: str) -> list[str]:
    """Same fields, positions, tags and types; values where deterministic."""

    def parse(text: str) -> list[tuple[str, str, str, str]]:
        out = []
        for line in text.split("\n"):
            if line:
                head, tags, typ, value = line.split(":", 3)
                name = head.split(".", 1)[1].rsplit(".", 1)[0]
                out.append((head, tags, typ, "<masked>" if name in INFO_MASKED else value))
        return out

    e, a = parse(expected), parse(actual)
    diff = [f"haproxy {x} lbcore {y}" for x, y in zip(e, a, strict=False) if x != y]
    if len(e) != len(a) or diff:
        return [f"show info typed differs ({len(e)} vs {len(a)}): {diff[:5]}"]
    return []


def compare_info_json(expected: str, actual: str) -> list[str]:
    import json

    def parse(text: str) -> list[dict[str, object]]:
        data: list[dict[str, object]] = json.loads(text)
        for obj in data:
            if obj["field"]["name"] in INFO_MASKED:  # type: ignore[index]
                obj["value"] = "<masked>"
        return data

    if parse(expected) != parse(actual):
        return [f"show info json differs:\n  {expected[:300]}\n  {actual[:300]}"]
    return []


def compare_servers_state(expected: str, actual: str) -> list[str]:
    el, al = expected.split("\n"), actual.split("\n")
    if len(el) != len(al):
        return [f"line count differs: {len(el)} vs {len(al)}\n{expected}\n{actual}"]
    problems = []
    for e, a in zip(el, al, strict=True):
        ef, af = e.split(" "), a.split(" ")
        if len(ef) != len(af):
            problems.append(f"fields differ:\n  {e}\n  {a}")
            continue
        for i, (x, y) in enumerate(zip(ef, af, strict=True)):
            masked = i in SERVERS_STATE_MASKED and not e.startswith("#") and len(ef) >= 10
            if not masked and x != y:
                problems.append(f"servers state field {i}: {x!r} vs {y!r}\n  {e}\n  {a}")
    return problems


def compare_sess(expected: str, actual: str) -> list[str]:
    def shape(text: str) -> list[list[str]]:
        out = []
        for line in text.split("\n"):
            if not line:
                continue
            keys = []
            for tok in line.split(" ")[1:]:
                key = tok.partition("=")[0]
                keep = key in ("proto", "fe", "be", "srv", "ts", "rc")
                keys.append(tok if keep else key)
            out.append(keys)
        return out

    if shape(expected) != shape(actual):
        return [f"show sess differs:\n  {expected}\n  {actual}"]
    return []


def compare_usage(expected: str, actual: str, all_usage: set[str]) -> list[str]:
    el, al = expected.split("\n"), actual.split("\n")
    problems = []
    if el[0] != al[0]:
        problems.append(f"usage header: {el[0]!r} vs {al[0]!r}")
    if el[-5:] != al[-5:]:
        problems.append(f"usage trailer: {el[-5:]!r} vs {al[-5:]!r}")
    for line in al[1:-5]:
        if line not in all_usage:
            problems.append(f"usage line not HAProxy's: {line!r}")
    return problems


def normalize(text: str) -> str:
    from lbcore import __version__
    from lbcore.runtime.state import version_string

    text = text.replace(version_string(), "<VERSION>")
    return HAPROXY_VERSION.sub("<VERSION>", text).replace(__version__, "<VERSION>")


def compare(step_input: str, expected: str, actual: str, all_usage: set[str]) -> list[str]:
    """Problems found comparing lbcore's answer with HAProxy's (empty: they agree)."""
    first = split_commands(step_input.split("\n")[0].rstrip("\r"))[0]
    single = step_input.count("\n") <= 1 and ";" not in step_input
    if single and first[:2] == ["show", "stat"] and "typed" in first:
        return compare_typed(expected, actual)
    if single and first[:2] == ["show", "stat"] and "json" in first:
        return compare_json(expected, actual)
    if single and first[:2] == ["show", "stat"] and expected.startswith("# pxname"):
        return compare_stat(expected, actual)
    if single and first[:2] == ["show", "info"] and "typed" in first:
        return compare_info_typed(expected, actual)
    if single and first[:2] == ["show", "info"] and "json" in first:
        return compare_info_json(expected, actual)
    if single and first[:2] == ["show", "info"]:
        return compare_info(expected, actual)
    if single and first[:3] == ["show", "servers", "state"] and expected.startswith("1\n"):
        return compare_servers_state(expected, actual)
    if single and first[:2] == ["show", "sess"] and expected.startswith("0x"):
        return compare_sess(expected, actual)
    if single and (expected.startswith("Unknown command") or expected.startswith("The following")):
        return compare_usage(expected, actual, all_usage)
    if normalize(expected) != normalize(actual):
        return [f"answer differs:\n  haproxy {expected!r}\n  lbcore  {actual!r}"]
    return []
