"""Test 6: malformed requests get the right gRPC errors and the server keeps serving."""

import asyncio
import uuid

import pytest
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from workflows import WaitForSignalWorkflow


def test_bad_input(server, task_queue):
    async def main():
        client = await server.wait_ready()

        # 1. Empty workflow id.
        with pytest.raises(RPCError) as e1:
            await client.start_workflow(WaitForSignalWorkflow.run, id="", task_queue=task_queue)
        assert e1.value.status == RPCStatusCode.INVALID_ARGUMENT, (e1.value.status, e1.value.message)

        # 2. Describe with a run id that is not a UUID (the temporalio/features readiness probe).
        with pytest.raises(RPCError) as e2:
            await client.get_workflow_handle("superneverexistwf!", run_id="!sonotreal").describe()
        assert e2.value.status == RPCStatusCode.INVALID_ARGUMENT, (e2.value.status, e2.value.message)
        assert "Invalid RunId" in e2.value.message, e2.value.message

        # 3. Starting a second workflow with the id of a running one.
        wf_id = f"dup-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[WaitForSignalWorkflow]):
            first = await client.start_workflow(WaitForSignalWorkflow.run, id=wf_id, task_queue=task_queue)
            with pytest.raises(WorkflowAlreadyStartedError) as e3:
                await client.start_workflow(WaitForSignalWorkflow.run, id=wf_id, task_queue=task_queue)
            assert e3.value.workflow_id == wf_id
            assert e3.value.run_id == first.result_run_id, (e3.value.run_id, first.result_run_id)

            # 4. The server still serves: the first run is alive, takes a signal and completes.
            await first.signal(WaitForSignalWorkflow.finish, "ok")
            assert await asyncio.wait_for(first.result(), timeout=60) == "finished:ok"
            # ... and a brand-new workflow runs end to end.
            other = await client.start_workflow(
                WaitForSignalWorkflow.run, id=f"after-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
            await other.signal(WaitForSignalWorkflow.finish, "again")
            assert await asyncio.wait_for(other.result(), timeout=60) == "finished:again"

        # The duplicate start left exactly one run behind.
        desc = await client.get_workflow_handle(wf_id).describe()
        assert desc.run_id == first.result_run_id

    asyncio.run(main())
