"""Workflow queries: direct query tasks, queries riding on a pending workflow task, queries on a
closed workflow, reject conditions, failing queries, and no worker to answer."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from harness import event_types, history_dump


@workflow.defn
class StepsWorkflow:
    """Waits for `advance` signals; `step` reports how far it got, `explode` always fails."""

    def __init__(self) -> None:
        self.step = "waiting-for-verification"
        self.signals = 0

    @workflow.run
    async def run(self, needed: int) -> str:
        await workflow.wait_condition(lambda: self.signals >= needed)
        self.step = "done"
        return "finished"

    @workflow.signal
    def advance(self) -> None:
        self.signals += 1
        self.step = f"advanced-{self.signals}"

    @workflow.query
    def current_step(self) -> str:
        return self.step

    @workflow.query
    def explode(self) -> str:
        raise ValueError("query handler exploded")


def wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_direct_query_and_query_after_completion(server, task_queue):
    async def main():
        client = await server.wait_ready()
        async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow]):
            handle = await client.start_workflow(
                StepsWorkflow.run, 1, id=wid("q-direct"), task_queue=task_queue)
            # The first workflow task runs; afterwards no task is pending: direct query.
            for _ in range(100):
                if await handle.query(StepsWorkflow.current_step) == "waiting-for-verification":
                    break
                await asyncio.sleep(0.05)
            assert await handle.query(StepsWorkflow.current_step) == "waiting-for-verification"
            await handle.signal(StepsWorkflow.advance)
            assert await asyncio.wait_for(handle.result(), 30) == "finished"
            assert await handle.query(StepsWorkflow.current_step) == "done"
            before = (await handle.fetch_history()).events

        # A closed workflow is queried through a fresh worker replaying its history.
        async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow],
                          max_cached_workflows=0):
            assert await handle.query(StepsWorkflow.current_step) == "done"
        after = (await handle.fetch_history()).events
        # Queries are never written to history.
        assert event_types(after) == event_types(before), history_dump(after)
        assert "WORKFLOW_EXECUTION_COMPLETED" == event_types(after)[-1]

    asyncio.run(main())


def test_query_rides_on_the_pending_workflow_task(server, task_queue):
    async def main():
        client = await server.wait_ready()
        # No worker yet: the first workflow task stays scheduled, so the query must wait for it.
        handle = await client.start_workflow(
            StepsWorkflow.run, 1, id=wid("q-attached"), task_queue=task_queue)
        query = asyncio.create_task(handle.query(StepsWorkflow.current_step))
        await asyncio.sleep(1.0)
        assert not query.done()
        async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow]):
            assert await asyncio.wait_for(query, 30) == "waiting-for-verification"
            # A query racing a signal sees the signal: it rides on the signal's task.
            await handle.signal(StepsWorkflow.advance)
            step = await handle.query(StepsWorkflow.current_step)
            assert step in ("advanced-1", "done"), step
            assert await asyncio.wait_for(handle.result(), 30) == "finished"

    asyncio.run(main())


def test_reject_condition_and_failed_query(server, task_queue):
    async def main():
        client = await server.wait_ready()
        async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow]):
            handle = await client.start_workflow(
                StepsWorkflow.run, 0, id=wid("q-reject"), task_queue=task_queue)
            # Open workflow: a NOT_OPEN condition does not reject.
            with pytest.raises(WorkflowQueryFailedError) as failed:
                await handle.query(StepsWorkflow.explode)
            assert "query handler exploded" in str(failed.value)
            assert await asyncio.wait_for(handle.result(), 30) == "finished"

            with pytest.raises(WorkflowQueryRejectedError) as rejected:
                await handle.query(StepsWorkflow.current_step,
                                   reject_condition=QueryRejectCondition.NOT_OPEN)
            assert rejected.value.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED
            # Completed cleanly: NOT_COMPLETED_CLEANLY lets the query through.
            assert await handle.query(
                StepsWorkflow.current_step,
                reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY) == "done"

            failing = await client.start_workflow(
                StepsWorkflow.run, 5, id=wid("q-reject-term"), task_queue=task_queue)
            assert await failing.query(StepsWorkflow.current_step) == "waiting-for-verification"
            await failing.terminate("test")
            with pytest.raises(WorkflowQueryRejectedError) as rejected:
                await failing.query(StepsWorkflow.current_step,
                                    reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY)
            assert rejected.value.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED

    asyncio.run(main())


def test_query_without_a_worker_times_out(server, task_queue):
    async def main():
        client = await server.wait_ready()
        async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow]):
            handle = await client.start_workflow(
                StepsWorkflow.run, 1, id=wid("q-noworker"), task_queue=task_queue)
            assert await handle.query(StepsWorkflow.current_step) == "waiting-for-verification"
        # The worker is gone: nobody answers, the client's own deadline ends the call.
        with pytest.raises(RPCError) as err:
            await handle.query(StepsWorkflow.current_step, rpc_timeout=timedelta(seconds=1))
        assert err.value.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
        # A new worker answers again, and the workflow still finishes.
        async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow]):
            assert await handle.query(StepsWorkflow.current_step) == "waiting-for-verification"
            await handle.signal(StepsWorkflow.advance)
            assert await asyncio.wait_for(handle.result(), 30) == "finished"

    asyncio.run(main())
