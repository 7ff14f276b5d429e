"""A stdout callback that prints the whole run as one JSON document, for tests to read.

ansible-core 2.19 no longer ships the `json` callback (it moved to ansible.posix, which the
project does not install), so tests carry this small equivalent: the same shape
({"plays": [{"tasks": [{"task": {"name"}, "hosts": {HOST: RESULT}}]}], "stats": {HOST: ...}}).
"""

from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: lab_json
type: stdout
short_description: the run as one JSON document (tests only)
description: Collects every task result and the final stats and prints them as JSON.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "lab_json"

    def __init__(self) -> None:
        super().__init__()
        self.plays: list[dict] = []

    def v2_playbook_on_play_start(self, play) -> None:
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        if not self.plays:
            self.plays.append({"play": {"name": ""}, "tasks": []})
        self.plays[-1]["tasks"].append({"task": {"name": task.get_name()}, "hosts": {}})

    def _record(self, result, **flags) -> None:
        if not self.plays or not self.plays[-1]["tasks"]:
            self.v2_playbook_on_task_start(result._task, False)
        data = dict(result._result)
        data.update(flags)
        self.plays[-1]["tasks"][-1]["hosts"][result._host.get_name()] = data

    def v2_runner_on_ok(self, result, **kwargs) -> None:
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs) -> None:
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result, **kwargs) -> None:
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result, **kwargs) -> None:
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats) -> None:
        hosts = sorted(stats.processed)
        summary = {h: stats.summarize(h) for h in hosts}
        self._display.display(json.dumps({"plays": self.plays, "stats": summary}, default=str))
