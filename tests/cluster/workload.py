"""The order workload of the cluster tests: starting workflows through the nodes, following them
to completion, and checking histories against the activity ledger.

Acknowledged completions. An activity cannot see when the server durably records its
completion, so `Tracker` observes it from outside: it reads the histories of the unfinished
workflows over and over (through any live node) and notes, for every (workflow, activity) pair,
the first time it saw ActivityTaskCompleted. Once a client has read a completion it was
acknowledged; an execution of that pair that STARTS after that moment is a completed activity
being run again, which must never happen, crash or not. That check holds over the whole run,
across kills and restarts, without stopping the workload.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Dict, Iterable, List, Optional, Set, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sdk-python"))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.api.history.v1 import HistoryEvent  # noqa: E402
from temporalio.client import Client, WorkflowHandle  # noqa: E402
from temporalio.exceptions import WorkflowAlreadyStartedError  # noqa: E402

from cluster import Cluster, Node  # noqa: E402
from workflows import ORDER_ACTIVITIES  # noqa: E402

Pair = Tuple[str, str]


def order(wf_id: str, start_to_close_s: float = 30.0) -> dict:
    return {"order_id": wf_id, "amount": 10, "item": "bolt", "qty": 1,
            "start_to_close_s": start_to_close_s, "initial_interval_ms": 200,
            "maximum_attempts": 20}


def expected_result(wf_id: str) -> dict:
    return {"order_id": wf_id, "steps": [f"{a}:{wf_id}" for a in ORDER_ACTIVITIES]}


def read_ledger(path: str) -> List[dict]:
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


class Clients:
    """One SDK client per node incarnation; `live()` yields clients of running nodes, starting
    with a preferred node."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self._cache: Dict[Tuple[int, int], Client] = {}

    async def get(self, node: Node) -> Client:
        key = (node.node_id, node.starts)
        if key not in self._cache:
            self._cache[key] = await self.cluster.client(node)
        return self._cache[key]

    def order_from(self, preferred: Optional[Node]) -> List[Node]:
        live = self.cluster.live()
        if preferred is not None and preferred in live:
            live.remove(preferred)
            live.insert(0, preferred)
        return live


async def call_any(clients: Clients, preferred: Optional[Node], fn, timeout: float = 60.0,
                   attempt_timeout: float = 8.0):
    """Runs `fn(client)` against the preferred node, else any other live node, until it succeeds
    or `timeout` passes (a node may die or restart under the call)."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        for node in clients.order_from(preferred):
            try:
                client = await clients.get(node)
                return await asyncio.wait_for(fn(client), attempt_timeout)
            except WorkflowAlreadyStartedError:
                raise
            except Exception as e:  # noqa: BLE001 - next node, then retry until the deadline
                last = e
        await asyncio.sleep(0.2)
    raise AssertionError(f"no node answered within {timeout}s: last error {last!r}")


async def start_orders(clients: Clients, nodes: List[Node], task_queue: str, ids: Iterable[str],
                       concurrency: int = 16, start_to_close_s: float = 30.0,
                       pace_s: float = 0.0) -> None:
    """Starts one OrderWorkflow per id, the i-th through nodes[i % len(nodes)] (another live node
    if that one is down). A start that an earlier, unanswered attempt already made counts."""
    limit = asyncio.Semaphore(concurrency)

    async def start(i: int, wf_id: str) -> None:
        async with limit:
            async def go(client: Client):
                await client.start_workflow("OrderWorkflow", order(wf_id, start_to_close_s),
                                            id=wf_id, task_queue=task_queue)
            try:
                await call_any(clients, nodes[i % len(nodes)], go)
            except WorkflowAlreadyStartedError:
                pass

    tasks = []
    for i, wf_id in enumerate(ids):
        tasks.append(asyncio.create_task(start(i, wf_id)))
        if pace_s:
            await asyncio.sleep(pace_s)
    await asyncio.gather(*tasks)


def completed_pairs(wf_id: str, events: List[HistoryEvent]) -> Set[Pair]:
    sched = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
             for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    out = set()
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            out.add((wf_id, sched[e.activity_task_completed_event_attributes.scheduled_event_id]))
    return out


CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


async def fetch_history(client: Client, wf_id: str) -> List[HistoryEvent]:
    handle: WorkflowHandle = client.get_workflow_handle(wf_id)
    return list((await handle.fetch_history()).events)


class Tracker:
    """Follows a set of workflows until they close, through whichever nodes are alive.

    first_acked[pair]: monotonic and wall time of the first read that showed the pair completed.
    final[wf_id]: the history that showed the workflow closed.
    """

    def __init__(self, clients: Clients, ids: Iterable[str], concurrency: int = 12):
        self.clients = clients
        self.pending: List[str] = list(ids)
        self.first_acked: Dict[Pair, float] = {}  # wall time (time.time()), comparable to the ledger
        self.final: Dict[str, List[HistoryEvent]] = {}
        self.concurrency = concurrency
        self.sweeps = 0
        self.sweep_seconds = 0.0

    def add(self, ids: Iterable[str]) -> None:
        self.pending.extend(i for i in ids if i not in self.final and i not in self.pending)

    async def _read(self, i: int, wf_id: str, limit: asyncio.Semaphore) -> None:
        async with limit:
            live = self.clients.cluster.live()
            if not live:
                return
            node = live[i % len(live)]
            try:
                client = await self.clients.get(node)
                events = await asyncio.wait_for(fetch_history(client, wf_id), 10)
            except Exception:  # noqa: BLE001 - not started yet, or the node went away: next sweep
                return
            seen = time.time()
            for pair in completed_pairs(wf_id, events):
                self.first_acked.setdefault(pair, seen)
            if events and events[-1].event_type in CLOSED:
                self.final[wf_id] = events

    async def sweep(self) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        ids = [i for i in self.pending if i not in self.final]
        await asyncio.gather(*(self._read(i, wf_id, limit) for i, wf_id in enumerate(ids)))
        self.pending = [i for i in self.pending if i not in self.final]
        self.sweeps += 1

    async def run(self, until_closed: Iterable[str], timeout: float, on_sweep=None,
                  pause: float = 0.3) -> None:
        """Sweeps until every workflow in `until_closed` has closed. Between sweeps it rests at
        least `pause` and at least as long as the sweep took, so that reading histories takes
        no more than about half a core from the cluster under test."""
        want = list(until_closed)
        deadline = time.monotonic() + timeout
        while True:
            t0 = time.monotonic()
            await self.sweep()
            took = time.monotonic() - t0
            self.sweep_seconds += took
            if on_sweep is not None:
                await on_sweep()
            missing = [w for w in want if w not in self.final]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(missing)} of {len(want)} workflows not closed after "
                                     f"{timeout}s, e.g. {missing[:5]}")
            await asyncio.sleep(max(pause, took))


def result_of(events: List[HistoryEvent]):
    last = events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return None
    payloads = last.workflow_execution_completed_event_attributes.result.payloads
    return json.loads(payloads[0].data) if payloads else None


def _activity_events(events: List[HistoryEvent], want: int, attr: str) -> Dict[str, List[HistoryEvent]]:
    sched = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
             for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    out: Dict[str, List[HistoryEvent]] = {}
    for e in events:
        if e.event_type == want:
            out.setdefault(sched.get(getattr(e, attr).scheduled_event_id, "?"), []).append(e)
    return out


def check_histories(final: Dict[str, List[HistoryEvent]], ids: Iterable[str]) -> List[str]:
    """Every workflow completed with the right result, contiguous event IDs, each activity
    scheduled, started and completed exactly once."""
    problems = []
    for wf_id in ids:
        events = final.get(wf_id)
        if events is None:
            problems.append(f"{wf_id}: never seen closed")
            continue
        ids_seen = [e.event_id for e in events]
        if ids_seen != list(range(1, len(ids_seen) + 1)):
            problems.append(f"{wf_id}: event ids not contiguous: {ids_seen}")
        result = result_of(events)
        if result != expected_result(wf_id):
            problems.append(f"{wf_id}: closed with {EventType.Name(events[-1].event_type)}, "
                            f"result {result!r}")
            continue
        started = _activity_events(events, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                                   "activity_task_started_event_attributes")
        completed = _activity_events(events, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                                     "activity_task_completed_event_attributes")
        for act in ORDER_ACTIVITIES:
            if len(started.get(act, [])) != 1 or len(completed.get(act, [])) != 1:
                problems.append(f"{wf_id}/{act}: started {len(started.get(act, []))}x, "
                                f"completed {len(completed.get(act, []))}x in history")
    return problems


def history_attempts(events: List[HistoryEvent]) -> Dict[str, int]:
    started = _activity_events(events, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                               "activity_task_started_event_attributes")
    return {act: evs[-1].activity_task_started_event_attributes.attempt for act, evs in started.items()}


def check_ledger(ledger: List[dict], final: Dict[str, List[HistoryEvent]], ids: Iterable[str],
                 first_acked: Dict[Pair, float], exactly_once: bool) -> List[str]:
    """The side effects against the histories.

    exactly_once: every activity ran exactly once (one start and one end line).
    Always: no execution of a pair started after its completion had been acknowledged; no attempt
    ran twice; the attempt the history recorded is the highest one that ran; every completed
    activity actually ran.
    """
    starts: Dict[Pair, List[dict]] = {}
    ends: Dict[Pair, List[dict]] = {}
    for r in ledger:
        (starts if r["phase"] == "start" else ends).setdefault((r["wf"], r["act"]), []).append(r)
    problems = []
    for wf_id in ids:
        attempts_in_history = history_attempts(final.get(wf_id, []))
        for act in ORDER_ACTIVITIES:
            pair = (wf_id, act)
            runs = starts.get(pair, [])
            attempts = sorted(r["attempt"] for r in runs)
            if not runs:
                problems.append(f"{pair}: completed in history but never executed")
                continue
            if exactly_once and (len(runs) != 1 or len(ends.get(pair, [])) != 1):
                problems.append(f"{pair}: side effect ran {len(runs)}x (attempts {attempts}, nodes "
                                f"{[r['node'] for r in runs]}), {len(ends.get(pair, []))} end lines")
            if len(set(attempts)) != len(attempts):
                problems.append(f"{pair}: the same attempt was dispatched twice: {attempts}")
            acked = first_acked.get(pair)
            late = [r for r in runs if acked is not None and r["t"] > acked]
            if late:
                problems.append(f"{pair}: completion acknowledged at {acked:.3f} but ran again at "
                                f"{[round(r['t'], 3) for r in late]} (attempts {attempts})")
            h = attempts_in_history.get(act)
            if h is not None and h != max(attempts):
                problems.append(f"{pair}: history says attempt {h}, executions {attempts}")
    return problems


async def replica_histories(clients: Clients, nodes: List[Node], ids: Iterable[str]) -> List[str]:
    """Reads every workflow's history through each node and reports the workflows whose
    serialized histories differ between nodes."""
    problems = []
    limit = asyncio.Semaphore(12)

    async def one(wf_id: str) -> None:
        async with limit:
            blobs = {}
            for node in nodes:
                client = await clients.get(node)
                events = await asyncio.wait_for(fetch_history(client, wf_id), 30)
                blobs[node.node_id] = [e.SerializeToString(deterministic=True) for e in events]
            first = next(iter(blobs.values()))
            differ = [n for n, b in blobs.items() if b != first]
            if differ:
                problems.append(f"{wf_id}: history differs on nodes {differ} "
                                f"({ {n: len(b) for n, b in blobs.items()} } events)")

    await asyncio.gather(*(one(w) for w in ids))
    return problems


def summarize(problems: List[str], limit: int = 30) -> str:
    head = "\n".join(problems[:limit])
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} problems:\n{head}{more}"
