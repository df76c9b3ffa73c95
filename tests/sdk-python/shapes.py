"""History shapes: the event-type sequence of every workflow run a seed scenario creates,
compared with fixtures recorded from the real Temporal server.

Fixtures live in ``tests/fixtures/history-shapes/<scenario>.json``::

    {"recorded_with": "<temporal CLI version, date>",
     "workflows": {"<logical name>": ["WorkflowExecutionStarted", ...]}}

Normal mode: ``ShapeCheck.check()`` asserts that each sequence the test collected equals the
fixture's (unified diff on mismatch). Record mode (``PERDURA_RECORD_SHAPES=1``, refused unless the
server under test is the reference Temporal dev server) writes the collected sequences into the
fixture instead; the first test of a scenario in a session starts the file afresh, later tests of
the same scenario add their workflows. Recording again and checking ``git diff`` confirms that
the shapes are stable.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import subprocess
import time
from typing import Dict, Iterable, List

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from pending import is_reference_server

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "history-shapes")

# Scenarios whose fixture was (re)started in this session's record mode.
_RECORDED_THIS_SESSION: set = set()


def recording() -> bool:
    return os.environ.get("PERDURA_RECORD_SHAPES", "") not in ("", "0")


def camel(event_type: int) -> str:
    """EVENT_TYPE_WORKFLOW_EXECUTION_STARTED -> WorkflowExecutionStarted."""
    name = EventType.Name(event_type)
    name = name[len("EVENT_TYPE_"):] if name.startswith("EVENT_TYPE_") else name
    return "".join(part.capitalize() for part in name.split("_"))


WORKFLOW_TASK_EVENTS = {
    "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted",
    "WorkflowTaskFailed", "WorkflowTaskTimedOut",
}


def shape(events: Iterable[HistoryEvent], without_workflow_tasks: bool = False) -> List[str]:
    types = [camel(e.event_type) for e in events]
    if without_workflow_tasks:
        types = [t for t in types if t not in WORKFLOW_TASK_EVENTS]
    return types


def reference_version() -> str:
    cmd = shlex.split(os.environ.get("PERDURA_SERVER_CMD", ""))
    try:
        out = subprocess.run([cmd[0], "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, IndexError, subprocess.TimeoutExpired) as e:
        out = f"version unknown ({e})"
    label = os.environ.get("PERDURA_REFERENCE_LABEL", "Temporal CLI v1.9.1 dev server")
    return f"{label} ({out}), {time.strftime('%Y-%m-%d', time.gmtime())}"


def fixture_path(scenario: str) -> str:
    return os.path.normpath(os.path.join(FIXTURE_DIR, f"{scenario}.json"))


def load_fixture(scenario: str) -> dict:
    with open(fixture_path(scenario)) as f:
        return json.load(f)


class ShapeCheck:
    """Collects the shapes of one test's workflow runs; ``check()`` compares or records them."""

    def __init__(self, scenario: str):
        self.scenario = scenario
        self.workflows: Dict[str, List[str]] = {}

    def add(self, name: str, events: Iterable[HistoryEvent], without_workflow_tasks: bool = False) -> None:
        assert name not in self.workflows, f"shape {name!r} collected twice"
        self.workflows[name] = shape(events, without_workflow_tasks)

    async def add_run(self, client, name: str, workflow_id: str, run_id: str | None = None,
                      without_workflow_tasks: bool = False) -> None:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        self.add(name, history.events, without_workflow_tasks)

    def check(self) -> None:
        if recording():
            self._record()
            return
        path = fixture_path(self.scenario)
        assert os.path.exists(path), (
            f"no history-shape fixture {path}: record it against the reference server "
            f"(PERDURA_RECORD_SHAPES=1, see tests/README.md)")
        expected = load_fixture(self.scenario)["workflows"]
        problems = []
        for name, got in self.workflows.items():
            want = expected.get(name)
            if want is None:
                problems.append(f"{name}: not in fixture {path}")
            elif got != want:
                diff = "\n".join(difflib.unified_diff(want, got, "reference server", "this server", lineterm=""))
                problems.append(f"{name}: event types differ from the fixture:\n{diff}")
        assert not problems, f"history shapes of scenario {self.scenario!r}:\n" + "\n\n".join(problems)

    def _record(self) -> None:
        assert is_reference_server(), (
            "PERDURA_RECORD_SHAPES=1 is allowed only against the reference Temporal server "
            "(PERDURA_SERVER_CMD=\"/path/to/temporal server start-dev\")")
        path = fixture_path(self.scenario)
        data = {"recorded_with": reference_version(), "workflows": {}}
        if self.scenario in _RECORDED_THIS_SESSION and os.path.exists(path):
            data["workflows"] = load_fixture(self.scenario)["workflows"]
        elif os.path.exists(path):
            old = load_fixture(self.scenario)["workflows"]
            for name, seq in self.workflows.items():
                if name in old and old[name] != seq:
                    print(f"[record] {self.scenario}/{name} changed from the previous recording")
        _RECORDED_THIS_SESSION.add(self.scenario)
        data["workflows"].update(self.workflows)
        data["workflows"] = dict(sorted(data["workflows"].items()))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
