"""Server process management and history helpers for the Python end-to-end tests.

The server under test is started from the command in env PERDURA_SERVER_CMD (split like a
shell would), default ``$CARGO_TARGET_DIR/debug/perdura server start-dev``. The harness appends
the Temporal CLI dev-server flags, so the same tests run against the reference server with
``PERDURA_SERVER_CMD="temporal server start-dev"``.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from typing import Dict, Iterable, List, Optional

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

NAMESPACE = "default"

# Process groups started here (servers, workers): SIGKILLed at interpreter exit, so that a test
# interrupted by a timeout never leaves a server behind.
_LIVE_GROUPS: set = set()


@atexit.register
def _kill_leftovers() -> None:
    for pgid in list(_LIVE_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def server_cmd() -> List[str]:
    env = os.environ.get("PERDURA_SERVER_CMD", "").strip()
    if env:
        return shlex.split(env)
    target = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/perdura-target")
    return [os.path.join(target, "debug", "perdura"), "server", "start-dev"]


# Dynamic config for the reference dev server: no version check; updates (incl. the async
# accepted wait stage) and update-with-start switched on. Perdura accepts and ignores them.
DEV_SERVER_DYNAMIC_CONFIG = [
    "frontend.enableServerVersionCheck=false",
    "frontend.enableUpdateWorkflowExecution=true",
    "frontend.enableUpdateWorkflowExecutionAsyncAccepted=true",
    "frontend.enableExecuteMultiOperation=true",
]


def dev_server_dynamic_config() -> List[str]:
    out: List[str] = []
    for value in DEV_SERVER_DYNAMIC_CONFIG:
        out += ["--dynamic-config-value", value]
    return out


_PORT_LOW, _PORT_SPAN = 20000, 12000
_ports_handed_out = 0


def free_port() -> int:
    """A port for a server: bindable now, never handed out twice by this process, and below the
    kernel's ephemeral range (32768-60999 by default). A port from that range (what binding
    port 0 gives) can become an outgoing connection's source port before the server binds it.
    Each process starts at its own offset in the range."""
    global _ports_handed_out
    offset = (os.getpid() * 2654435761) % _PORT_SPAN
    while _ports_handed_out < _PORT_SPAN:
        port = _PORT_LOW + (offset + _ports_handed_out) % _PORT_SPAN
        _ports_handed_out += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("every port below the ephemeral range was handed out")


class ServerProcess:
    """One server on one port with one data location, restartable on the same port and data.

    ``data_path`` is passed as ``--db-filename``: Perdura treats it as a data directory, the
    Temporal CLI as a SQLite file. It is not created here (either form must work).
    """

    def __init__(self, workdir: str, persistent: bool = True, port: Optional[int] = None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = port or free_port()
        self.data_path = os.path.join(workdir, "data") if persistent else None
        self.log_path = os.path.join(workdir, "server.log")
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def argv(self) -> List[str]:
        argv = server_cmd() + [
            "--port", str(self.port),
            "--ip", "127.0.0.1",
            "--namespace", NAMESPACE,
            "--headless",
            "--log-format", "pretty",
            "--log-level", os.environ.get("PERDURA_SERVER_LOG_LEVEL", "warn"),
        ] + dev_server_dynamic_config()
        if self.data_path:
            argv += ["--db-filename", self.data_path]
        return argv

    def spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        argv = self.argv()
        if not os.path.exists(argv[0]) and os.sep in argv[0]:
            raise RuntimeError(
                f"server binary {argv[0]} does not exist: build it (cargo build -p perdura-node) "
                f"or set PERDURA_SERVER_CMD"
            )
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')}: {shlex.join(argv)}\n".encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
        _LIVE_GROUPS.add(self.proc.pid)
        log.close()

    async def wait_ready(self, timeout: float = 60.0) -> Client:
        """Readiness = a successful Client.connect (GetSystemInfo), as the SDK test envs do."""
        deadline = time.monotonic() + timeout
        last: Optional[BaseException] = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with code {self.proc.returncode} before becoming ready; "
                    f"log tail:\n{self.log_tail()}"
                )
            try:
                return await asyncio.wait_for(
                    Client.connect(self.address, namespace=NAMESPACE), timeout=5
                )
            except Exception as e:  # noqa: BLE001 - retry until the deadline
                last = e
                await asyncio.sleep(0.2)
        raise RuntimeError(
            f"server on {self.address} not ready after {timeout}s (last error: {last!r}); "
            f"log tail:\n{self.log_tail()}"
        )

    async def start(self, timeout: float = 60.0) -> Client:
        self.spawn()
        return await self.wait_ready(timeout)

    def kill9(self) -> None:
        """SIGKILL the server (its whole process group), like a machine crash for the process."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        _LIVE_GROUPS.discard(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
            _LIVE_GROUPS.discard(self.proc.pid)
        except subprocess.TimeoutExpired:
            self.kill9()
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 80) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode(errors="replace").splitlines()
            return "\n".join(data[-lines:])
        except FileNotFoundError:
            return "(no server log)"


class WorkerProcess:
    """worker_proc.py in a subprocess of its own (its own process group), killable with SIGKILL."""

    def __init__(self, workdir: str, address: str, task_queue: str, side_effects: str, mode: str):
        self.workdir = workdir
        self.args = [address, task_queue, side_effects, mode]
        self.log_path = os.path.join(workdir, "worker.log")
        self.proc: Optional[subprocess.Popen] = None
        self.pids: List[int] = []

    def spawn(self) -> int:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker_proc.py")
        log = open(self.log_path, "ab")
        log.write(f"\n===== worker start #{len(self.pids) + 1} at {time.strftime('%H:%M:%S')}\n".encode())
        log.flush()
        self.proc = subprocess.Popen([sys.executable, script] + self.args, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        _LIVE_GROUPS.add(self.proc.pid)
        log.close()
        self.pids.append(self.proc.pid)
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
            _LIVE_GROUPS.discard(self.proc.pid)

    stop = kill9

    def log_tail(self, lines: int = 60) -> str:
        return ServerProcess.log_tail(self, lines)  # same file-tail logic


# ---------------------------------------------------------------- history helpers


def etype(e: HistoryEvent) -> str:
    name = EventType.Name(e.event_type)
    return name[len("EVENT_TYPE_"):] if name.startswith("EVENT_TYPE_") else name


def event_types(events: Iterable[HistoryEvent]) -> List[str]:
    return [etype(e) for e in events]


def assert_contiguous(events: List[HistoryEvent]) -> None:
    ids = [e.event_id for e in events]
    assert ids == list(range(1, len(ids) + 1)), f"event ids are not 1..N contiguous: {ids}"


def activity_types_by_scheduled_id(events: List[HistoryEvent]) -> Dict[int, str]:
    out = {}
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            out[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
    return out


def activity_events(events: List[HistoryEvent], kind: str) -> Dict[str, List[HistoryEvent]]:
    """Events of one activity kind ("STARTED", "COMPLETED", "FAILED", ...) grouped by activity type."""
    sched = activity_types_by_scheduled_id(events)
    attr_name = {
        "STARTED": "activity_task_started_event_attributes",
        "COMPLETED": "activity_task_completed_event_attributes",
        "FAILED": "activity_task_failed_event_attributes",
        "TIMED_OUT": "activity_task_timed_out_event_attributes",
    }[kind]
    want = getattr(EventType, f"EVENT_TYPE_ACTIVITY_TASK_{kind}")
    out: Dict[str, List[HistoryEvent]] = {}
    for e in events:
        if e.event_type == want:
            sid = getattr(e, attr_name).scheduled_event_id
            assert sid in sched, f"event {e.event_id} refers to unknown scheduled event {sid}"
            out.setdefault(sched[sid], []).append(e)
    return out


def event_time(e: HistoryEvent) -> float:
    return e.event_time.seconds + e.event_time.nanos / 1e9


def history_dump(events: List[HistoryEvent]) -> str:
    return "\n".join(f"  {e.event_id:3d} {etype(e)}" for e in events)


ORDER_ACTIVITIES = ["charge_payment", "decrement_inventory", "send_confirmation", "notify_warehouse"]


def expected_order_history() -> List[str]:
    seq = ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
           "WORKFLOW_TASK_COMPLETED"]
    for _ in ORDER_ACTIVITIES:
        seq += ["ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED",
                "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED"]
    seq.append("WORKFLOW_EXECUTION_COMPLETED")
    return seq


def td(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def read_side_effects(path: str) -> List[dict]:
    import json

    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def workflow_task_idle(types: List[str]) -> bool:
    """The workflow's last workflow task completed and no new one is scheduled: it is blocked."""
    wft = [t for t in types if t.startswith("WORKFLOW_TASK_")]
    return bool(wft) and wft[-1] == "WORKFLOW_TASK_COMPLETED"


async def wait_blocked(handle, event: Optional[str] = None, count: int = 1, timeout: float = 30.0,
                       also=None) -> List[HistoryEvent]:
    """Polls the history until the workflow is idle (last workflow task completed, none scheduled)
    and holds at least ``count`` events of type ``event`` (e.g. "TIMER_STARTED"); ``also`` is an
    extra predicate on the event-type list. Returns the events. Sending a signal, query or update
    only after this keeps the history shape independent of timing."""
    deadline = time.monotonic() + timeout
    types: List[str] = []
    while True:
        events = list((await handle.fetch_history()).events)
        types = event_types(events)
        if (workflow_task_idle(types) and (event is None or types.count(event) >= count)
                and (also is None or also(types))):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(
                f"workflow {handle.id} not blocked with {count}x {event} after {timeout}s; history:\n"
                + "\n".join(f"  {i + 1:3d} {t}" for i, t in enumerate(types)))
        await asyncio.sleep(0.05)
