"""Test 3: a durable 2 s timer never fires early."""

import asyncio
import time
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from harness import assert_contiguous, event_time, event_types, history_dump
from workflows import TimerWorkflow

SLEEP_S = 2.0


def test_durable_timer(server, task_queue):
    async def main():
        client = await server.wait_ready()
        async with Worker(client, task_queue=task_queue, workflows=[TimerWorkflow]):
            t0 = time.monotonic()
            handle = await client.start_workflow(
                TimerWorkflow.run, SLEEP_S, id=f"timer-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
            result = await asyncio.wait_for(handle.result(), timeout=60)
            elapsed = time.monotonic() - t0

        assert elapsed >= SLEEP_S, f"workflow completed after {elapsed:.3f}s, before its {SLEEP_S}s timer"
        assert elapsed < SLEEP_S + 15, f"timer took {elapsed:.3f}s"
        # Workflow time comes from WorkflowTaskStarted event times: the timer spanned >= 2 s.
        assert result.startswith("slept ") and float(result.split()[1]) >= SLEEP_S - 0.001, result

        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        assert event_types(events) == [
            "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED", "TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED",
        ], history_dump(events)
        started = next(e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
        fired = next(e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED)
        sattrs = started.timer_started_event_attributes
        assert sattrs.start_to_fire_timeout.ToTimedelta().total_seconds() == SLEEP_S
        fattrs = fired.timer_fired_event_attributes
        assert fattrs.started_event_id == started.event_id
        assert fattrs.timer_id == sattrs.timer_id
        gap = event_time(fired) - event_time(started)
        assert gap >= SLEEP_S - 0.001, f"TimerFired only {gap:.3f}s after TimerStarted"

    asyncio.run(main())
