"""The lab's `lab_json` stdout callback, with handlers recorded as tasks of their own.

Same shape as tests/lab/callback_plugins/lab_json.py ({"plays": [{"tasks": [{"task":
{"name"}, "hosts": {HOST: RESULT}}]}], "stats": {HOST: ...}}); the fleet tests need to see
that a handler (the reload) ran, which that callback folds into the task before it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "lbcore_lab_json", Path(__file__).parents[2] / "lab" / "callback_plugins" / "lab_json.py"
)
assert _spec is not None and _spec.loader is not None
_lab_json = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lab_json)

DOCUMENTATION = """
name: fleet_json
type: stdout
short_description: the run as one JSON document, handlers included (tests only)
description: lab_json plus a task entry for each handler that runs.
"""


class CallbackModule(_lab_json.CallbackModule):
    CALLBACK_NAME = "fleet_json"

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.v2_playbook_on_task_start(task, False)
