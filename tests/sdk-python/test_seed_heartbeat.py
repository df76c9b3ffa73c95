"""Seed 7: a long activity heartbeats its progress, stalls past its heartbeat timeout on
attempt 1, and its retry (attempt 2) resumes from the last heartbeat details."""

import asyncio
import uuid

from temporalio import activity
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.worker import Worker

from seed_workflows import LongExport
from shapes import ShapeCheck

TOTAL_ROWS = 10
STALL_AFTER = 5


def test_heartbeat_details_carry_over_to_the_retry(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        starts = []  # (attempt, row it resumed from)

        @activity.defn(name="export_rows")
        async def export_rows(job: dict) -> dict:
            info = activity.info()
            start = info.heartbeat_details[0] if info.heartbeat_details else 0
            starts.append((info.attempt, start))
            for row in range(start, job["rows"]):
                await asyncio.sleep(0.05)  # "export" one row
                activity.heartbeat(row + 1)
                if info.attempt == 1 and row + 1 == STALL_AFTER:
                    await asyncio.sleep(120)  # stalls: no more heartbeats (cancelled at worker shutdown)
            return {"rows": job["rows"], "attempt": info.attempt, "resumed_from": start}

        shapes = ShapeCheck("heartbeat")
        wf_id = f"export-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[LongExport], activities=[export_rows]):
            handle = await client.start_workflow(
                LongExport.run, {"rows": TOTAL_ROWS, "heartbeat_timeout_s": 1}, id=wf_id, task_queue=task_queue)
            result = await asyncio.wait_for(handle.result(), timeout=60)

        assert starts == [(1, 0), (2, STALL_AFTER)], starts
        assert result == {"rows": TOTAL_ROWS, "attempt": 2, "resumed_from": STALL_AFTER}
        events = (await handle.fetch_history()).events
        started = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
        assert len(started) == 1
        attrs = started[0].activity_task_started_event_attributes
        assert attrs.attempt == 2
        assert attrs.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT, attrs.last_failure
        await shapes.add_run(client, "resumed_after_heartbeat_timeout", wf_id)
        shapes.check()

    asyncio.run(main())
