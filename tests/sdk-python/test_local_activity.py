"""A local activity that runs longer than the workflow task timeout: the SDK keeps the workflow
task alive with workflow-task heartbeats (RespondWorkflowTaskCompleted with
force_create_new_workflow_task), each of which must get a new workflow task at once — otherwise
the task would time out and the local activity would run again."""

import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker

from harness import assert_contiguous, event_types, history_dump


@workflow.defn(name="LongLocalActivityWorkflow")
class LongLocalActivityWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_local_activity(
            "slow_local", start_to_close_timeout=timedelta(seconds=30))


def test_long_local_activity_heartbeats_its_workflow_task(server, task_queue):
    async def main():
        client = await server.wait_ready()
        runs = []

        @activity.defn(name="slow_local")
        async def slow_local() -> str:
            runs.append(1)
            await asyncio.sleep(5)
            return "slow done"

        async with Worker(client, task_queue=task_queue, workflows=[LongLocalActivityWorkflow],
                          activities=[slow_local]):
            handle = await client.start_workflow(
                LongLocalActivityWorkflow.run, id=f"long-la-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue, task_timeout=timedelta(seconds=2))
            result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result == "slow done"
        assert runs == [1], "the local activity ran once"
        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        types = event_types(events)
        assert "WORKFLOW_TASK_TIMED_OUT" not in types, history_dump(events)
        # At least one heartbeat: a WorkflowTaskCompleted directly followed by a new
        # WorkflowTaskScheduled, with no command event between them.
        heartbeats = sum(1 for a, b in zip(types, types[1:])
                         if (a, b) == ("WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED"))
        assert heartbeats >= 1, history_dump(events)
        assert types[-2:] == ["MARKER_RECORDED", "WORKFLOW_EXECUTION_COMPLETED"], \
            history_dump(events)

    asyncio.run(main())
