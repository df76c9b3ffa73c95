"""Seed 10: cancel and terminate from the client, with the right final status in Describe;
starting a second workflow with a running id fails with WorkflowAlreadyStartedError; the
USE_EXISTING conflict policy returns the running run."""

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import CancelledError, TerminatedError, WorkflowAlreadyStartedError
from temporalio.worker import Worker

from harness import wait_blocked
from seed_workflows import LongRunningJob
from shapes import ShapeCheck


def test_client_cancel(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        shapes = ShapeCheck("lifecycle")
        wf_id = f"job-cancel-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[LongRunningJob]):
            handle = await client.start_workflow(LongRunningJob.run, 24.0, id=wf_id, task_queue=task_queue)
            await wait_blocked(handle, "TIMER_STARTED")
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as err:
                await asyncio.wait_for(handle.result(), timeout=30)
            assert isinstance(err.value.cause, CancelledError), repr(err.value.cause)
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.CANCELED, desc.status
        await shapes.add_run(client, "cancelled", wf_id)
        shapes.check()

    asyncio.run(main())


def test_client_terminate(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        shapes = ShapeCheck("lifecycle")
        wf_id = f"job-terminate-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[LongRunningJob]):
            handle = await client.start_workflow(LongRunningJob.run, 24.0, id=wf_id, task_queue=task_queue)
            await wait_blocked(handle, "TIMER_STARTED")
            await handle.terminate(reason="operator stopped the job")
            with pytest.raises(WorkflowFailureError) as err:
                await asyncio.wait_for(handle.result(), timeout=30)
            assert isinstance(err.value.cause, TerminatedError), repr(err.value.cause)
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.TERMINATED, desc.status
        await shapes.add_run(client, "terminated", wf_id)
        shapes.check()

    asyncio.run(main())


def test_second_start_of_a_running_id(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        wf_id = f"job-dup-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[LongRunningJob]):
            first = await client.start_workflow(LongRunningJob.run, 24.0, id=wf_id, task_queue=task_queue)
            with pytest.raises(WorkflowAlreadyStartedError) as err:
                await client.start_workflow(LongRunningJob.run, 24.0, id=wf_id, task_queue=task_queue)
            assert err.value.workflow_id == wf_id
            assert err.value.run_id == first.result_run_id
            await first.terminate(reason="cleanup")

    asyncio.run(main())


def test_use_existing_returns_the_running_run(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        shapes = ShapeCheck("lifecycle")
        wf_id = f"job-existing-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[LongRunningJob]):
            first = await client.start_workflow(LongRunningJob.run, 24.0, id=wf_id, task_queue=task_queue)
            await wait_blocked(first, "TIMER_STARTED")
            second = await client.start_workflow(
                LongRunningJob.run, 24.0, id=wf_id, task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
            assert second.result_run_id == first.result_run_id, (second.result_run_id, first.result_run_id)
            desc = await client.get_workflow_handle(wf_id).describe()
            assert desc.run_id == first.result_run_id
            assert desc.status == WorkflowExecutionStatus.RUNNING
            await first.terminate(reason="cleanup")
        await shapes.add_run(client, "use_existing_then_terminated", wf_id)
        shapes.check()

    asyncio.run(main())
