"""The stats model: summing worker snapshots, CSV quoting, the JSON renderer."""

from __future__ import annotations

import json

from lbcore.runtime.show import stat_rows
from lbcore.runtime.state import RuntimeState
from lbcore.stats import (
    FIELDS,
    Counters,
    merge,
    render_csv,
    render_json,
    render_typed,
    snapshot_from_json,
    snapshot_to_json,
)
from tests.unit.runtime.fixed import fixed_config

NOW = 1_800_000_000.0


def test_header_is_haproxy_26_column_order() -> None:
    assert FIELDS[:8] == ("pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot")
    assert FIELDS.index("check_status") == 36 and FIELDS.index("hrsp_1xx") == 39
    assert FIELDS[48:51] == ("req_tot", "cli_abrt", "srv_abrt")
    assert FIELDS.index("uweight") == 99 and FIELDS[103] == "-"


def test_merge_sums_counters_and_keeps_maxima() -> None:
    a, b = Counters(stot=3, scur=1, smax=2, hrsp_2xx=3), Counters(stot=4, scur=2, smax=5)
    a.last_sess, b.last_sess = 100.0, 200.0
    total = merge([{("app", "web1"): a}, {("app", "web1"): b, ("app", "BACKEND"): b}])
    assert total[("app", "web1")].stot == 7
    assert total[("app", "web1")].scur == 3
    assert total[("app", "web1")].smax == 5
    assert total[("app", "web1")].hrsp_2xx == 3
    assert total[("app", "web1")].last_sess == 200.0
    assert total[("app", "BACKEND")].stot == 4


def test_snapshots_survive_json() -> None:
    c = Counters(stot=9, bin=1234)
    c.count_response(204)
    c.count_response(503)
    c.count_response(99)
    wire = json.loads(json.dumps(snapshot_to_json({("www", "FRONTEND"): c})))
    back = snapshot_from_json(wire)[("www", "FRONTEND")]
    assert back == c
    assert (back.hrsp_2xx, back.hrsp_5xx, back.hrsp_other) == (1, 1, 1)


def test_summed_counters_reach_show_stat() -> None:
    state = RuntimeState(fixed_config(), NOW)
    w1 = {("app", "web1"): Counters(stot=2, hrsp_2xx=2), ("www", "FRONTEND"): Counters(stot=2)}
    w2 = {("app", "web1"): Counters(stot=5, hrsp_2xx=4, hrsp_5xx=1)}
    state.counters = merge([w1, w2])
    csv = render_csv(stat_rows(state, NOW))
    row = next(line for line in csv.splitlines() if line.startswith("app,web1,"))
    cells = row.split(",")
    assert cells[FIELDS.index("stot")] == "7"
    assert cells[FIELDS.index("hrsp_2xx")] == "6"
    assert cells[FIELDS.index("hrsp_5xx")] == "1"


def test_csv_quotes_ambiguous_text() -> None:
    rows = [{"pxname": 'a,"b', "svname": "FRONTEND", "type": 0, "mode": "http", "stot": 1}]
    line = render_csv(rows, header=False)
    assert line.startswith('"a,""b",FRONTEND,')


def test_json_and_typed_carry_haproxy_tags() -> None:
    state = RuntimeState(fixed_config(), NOW)
    rows = list(stat_rows(state, NOW, types=1))
    typed = render_typed(rows).splitlines()
    assert typed[0] == "F.2.0.0.pxname.1:KNS:str:www"
    assert "F.2.0.6.slim.1:CLP:u32:4096" in typed
    objs = json.loads(render_json(rows))
    first = objs[0][0]
    assert first["tags"] == {"origin": "Key", "nature": "Name", "scope": "Service"}
    assert first["value"] == {"type": "str", "value": "www"}
