"""Fixtures of the cluster suite: a fresh three-node cluster per test, and worker processes.
A failing test's report carries the tail of every node's and worker's log."""

import asyncio
import atexit
import os
import signal
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster import LIVE_GROUPS, Cluster  # noqa: E402
from workers import start_workers  # noqa: E402

# Everything alive during the current test whose log tail belongs in a failure report.
ACTIVE = []


@atexit.register
def _kill_leftovers() -> None:
    for pgid in list(LIVE_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for thing in list(ACTIVE):
            if hasattr(thing, "nodes"):
                for n in thing.nodes.values():
                    rep.sections.append((f"{n} log tail ({n.log_path})", n.log_tail(100)))
            else:
                rep.sections.append((f"worker log tail ({thing.log_path})", thing.log_tail(40)))


@pytest.fixture
def cluster(request, tmp_path_factory):
    """Three `perdura server start` nodes on free 127.0.0.1 ports, serving; killed at teardown."""
    c = Cluster(str(tmp_path_factory.mktemp(request.node.name[:40])))
    ACTIVE.append(c)
    try:
        asyncio.run(c.start())
        yield c
    finally:
        c.kill_all()
        ACTIVE.remove(c)


@pytest.fixture
def task_queue(request) -> str:
    return f"tq-{request.node.name[:24]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def workers(tmp_path):
    """workers(nodes, task_queue, ledger, sleep_s): one ledger_worker.py process per node;
    all are SIGKILLed at teardown."""
    made = []

    def make(nodes, task_queue, ledger, sleep_s=0.05):
        ws = start_workers(str(tmp_path), nodes, task_queue, ledger, sleep_s)
        made.extend(ws)
        ACTIVE.extend(ws)
        return ws

    yield make
    for w in made:
        w.kill9()
        ACTIVE.remove(w)
