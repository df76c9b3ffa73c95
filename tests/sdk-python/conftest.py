import asyncio
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import ServerProcess  # noqa: E402

# Servers alive during the current test; their log tails are attached to failure reports.
ACTIVE_SERVERS = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in list(ACTIVE_SERVERS):
            rep.sections.append(
                (f"server log tail ({s.log_path})", s.log_tail(120))
            )


def make_server(tmp_path_factory, name: str, persistent: bool = True) -> ServerProcess:
    workdir = str(tmp_path_factory.mktemp(name))
    s = ServerProcess(workdir, persistent=persistent)
    ACTIVE_SERVERS.append(s)
    return s


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """A server of its own for each test file, on a free port with its own data path."""
    s = make_server(tmp_path_factory, request.module.__name__.split(".")[-1])
    s.spawn()
    asyncio.run(s.wait_ready())
    yield s
    s.stop()
    ACTIVE_SERVERS.remove(s)


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """One server for all seed-scenario tests of the session (they never restart it); each test
    uses task queues and workflow ids of its own."""
    s = make_server(tmp_path_factory, "seeds")
    s.spawn()
    asyncio.run(s.wait_ready())
    yield s
    s.stop()
    ACTIVE_SERVERS.remove(s)


@pytest.fixture
def fresh_server(request, tmp_path_factory):
    """A server of its own for one test (crash tests kill and restart it)."""
    s = make_server(tmp_path_factory, request.node.name[:40])
    yield s
    s.kill9()
    ACTIVE_SERVERS.remove(s)


@pytest.fixture
def task_queue(request) -> str:
    return f"tq-{request.node.name[:30]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def worker_procs(tmp_path):
    """Factory for worker_proc.py subprocesses; all are SIGKILLed at teardown."""
    from harness import WorkerProcess

    made = []

    def make(address: str, task_queue: str, side_effects: str, mode: str) -> WorkerProcess:
        w = WorkerProcess(str(tmp_path), address, task_queue, side_effects, mode)
        made.append(w)
        ACTIVE_SERVERS.append(w)
        return w

    yield make
    for w in made:
        w.kill9()
        ACTIVE_SERVERS.remove(w)
