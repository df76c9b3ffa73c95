"""Test 4: the worker process is killed (SIGKILL) while activity 2 runs; a new worker finishes.

Activity 1 (charge_payment) must not run again: its completion is in the history, and the new
worker replays the workflow from that history instead of re-executing it. Activity 2
(decrement_inventory) is retried by the server after its 5 s start-to-close timeout.
"""

import asyncio
import os
import time
import uuid
from datetime import timedelta

from temporalio.api.enums.v1 import EventType, TimeoutType

from harness import (
    ORDER_ACTIVITIES,
    activity_events,
    assert_contiguous,
    event_time,
    event_types,
    history_dump,
    read_side_effects,
    wait_for,
)
from workflows import OrderWorkflow

START_TO_CLOSE_S = 5


def test_worker_killed_mid_activity(fresh_server, worker_procs, task_queue, tmp_path):
    server = fresh_server
    side = str(tmp_path / "side-effects.jsonl")

    async def main():
        client = await server.start()
        worker = worker_procs(server.address, task_queue, side, "worker-crash")
        pid_a = worker.spawn()

        wf_id = f"order-wcrash-{uuid.uuid4().hex[:8]}"
        order = {"order_id": wf_id, "amount": 7, "item": "gadget", "qty": 1,
                 "start_to_close_s": START_TO_CLOSE_S}
        handle = await client.start_workflow(OrderWorkflow.run, order, id=wf_id, task_queue=task_queue,
                                             task_timeout=timedelta(seconds=4))

        def act2_running():
            return [r for r in read_side_effects(side)
                    if r["act"] == "decrement_inventory" and r["phase"] == "start"]

        await wait_for(act2_running, 60, "activity 2 (decrement_inventory) to start on worker A")
        assert worker.alive(), f"worker A died by itself:\n{worker.log_tail()}"
        before = read_side_effects(side)
        assert [(r["act"], r["phase"]) for r in before] == [
            ("charge_payment", "start"), ("charge_payment", "end"), ("decrement_inventory", "start")]
        worker.kill9()
        t_kill = time.time()

        pid_b = worker.spawn()
        assert pid_b != pid_a
        result = await asyncio.wait_for(handle.result(), timeout=120)
        assert result == {"order_id": wf_id, "steps": [f"{n}:{wf_id}" for n in ORDER_ACTIVITIES]}

        lines = read_side_effects(side)
        starts = {n: [r for r in lines if r["act"] == n and r["phase"] == "start"] for n in ORDER_ACTIVITIES}
        # Activity 1 ran exactly once, on worker A, before the kill.
        assert len(starts["charge_payment"]) == 1, starts["charge_payment"]
        assert starts["charge_payment"][0]["pid"] == pid_a
        # Activity 2: attempt 1 on A (killed), then a retry on B no sooner than its start-to-close timeout.
        a2 = starts["decrement_inventory"]
        assert [(r["attempt"], r["pid"]) for r in a2] == [(1, pid_a), (2, pid_b)], a2
        assert not any(r["act"] == "decrement_inventory" and r["phase"] == "end" and r["pid"] == pid_a
                       for r in lines)
        retry_gap = a2[1]["t"] - a2[0]["t"]
        assert retry_gap >= START_TO_CLOSE_S - 0.5, f"activity 2 retried {retry_gap:.2f}s after attempt 1"
        assert a2[1]["t"] > t_kill
        # Activities 3 and 4 ran once each, on worker B.
        for n in ORDER_ACTIVITIES[2:]:
            assert [(r["attempt"], r["pid"]) for r in starts[n]] == [(1, pid_b)], starts[n]

        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        types = event_types(events)
        assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED", history_dump(events)
        completed = activity_events(events, "COMPLETED")
        started = activity_events(events, "STARTED")
        for n in ORDER_ACTIVITIES:
            assert len(completed.get(n, [])) == 1, f"{n} completed {len(completed.get(n, []))}x\n" + history_dump(events)
            assert len(started.get(n, [])) == 1, history_dump(events)
        assert types.count("ACTIVITY_TASK_SCHEDULED") == 4, history_dump(events)
        assert "ACTIVITY_TASK_TIMED_OUT" not in types and "ACTIVITY_TASK_FAILED" not in types
        a2_started = started["decrement_inventory"][0].activity_task_started_event_attributes
        assert a2_started.attempt == 2
        # The retried attempt's Started event carries the start-to-close timeout of attempt 1.
        lf = a2_started.last_failure
        assert lf.HasField("timeout_failure_info"), lf
        assert lf.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
        for n in ("charge_payment", "send_confirmation", "notify_warehouse"):
            assert started[n][0].activity_task_started_event_attributes.attempt == 1
        # Activity 1 completed in history before worker A was killed.
        c1 = completed["charge_payment"][0]
        assert event_time(c1) < t_kill
        assert events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED

    asyncio.run(main())
