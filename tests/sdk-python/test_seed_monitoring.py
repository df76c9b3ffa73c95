"""Seed 6: a monitoring loop that continues as new three times; the client's ``result()``
follows the chain to the last run's result."""

import asyncio
import uuid

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from seed_workflows import MonitoringLoop
from shapes import ShapeCheck


def test_monitoring_loop_continues_as_new(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        checks = []

        @activity.defn(name="check_service")
        async def check_service(service: str) -> str:
            checks.append(activity.info().workflow_run_id)
            return f"ok#{len(checks)}"

        shapes = ShapeCheck("monitoring")
        wf_id = f"monitor-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[MonitoringLoop], activities=[check_service]):
            handle = await client.start_workflow(
                MonitoringLoop.run, {"service": "billing-api", "max_runs": 4, "interval_s": 0.1},
                id=wf_id, task_queue=task_queue)
            result = await asyncio.wait_for(handle.result(), timeout=60)

        assert result == {"service": "billing-api", "checks": ["ok#1", "ok#2", "ok#3", "ok#4"], "run": 4}
        # Follow the chain from the first run: each run but the last continued as new.
        runs = [handle.first_execution_run_id or handle.result_run_id]
        while True:
            events = (await client.get_workflow_handle(wf_id, run_id=runs[-1]).fetch_history()).events
            last = events[-1]
            if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, last
                break
            runs.append(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)
            assert len(runs) <= 4, f"chain longer than 4 runs: {runs}"
        assert len(runs) == 4 and len(set(runs)) == 4, runs
        assert checks == runs, "each run checked the service once, in chain order"
        desc = await client.get_workflow_handle(wf_id).describe()
        assert desc.run_id == runs[-1] and desc.status is not None and desc.status.name == "COMPLETED"
        for i, run_id in enumerate(runs, start=1):
            await shapes.add_run(client, f"run {i} of 4", wf_id, run_id)
        shapes.check()

    asyncio.run(main())
