"""Seed 4: saga transfer. Step 3 fails (non-retryable); the compensations of steps 2 and 1 run
in reverse order, each exactly once."""

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from seed_workflows import SagaTransfer
from shapes import ShapeCheck


def test_saga_compensates_in_reverse(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        side_effects = []

        def step(name, fail=False):
            @activity.defn(name=name)
            async def act(transfer: dict) -> str:
                side_effects.append(name)
                if fail:
                    raise ApplicationError("notification service rejected the transfer",
                                           type="NotifyRejected", non_retryable=True)
                return name
            return act

        acts = [step("withdraw"), step("deposit"), step("notify_parties", fail=True),
                step("undo_deposit"), step("undo_withdraw")]
        shapes = ShapeCheck("saga")
        wf_id = f"saga-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[SagaTransfer], activities=acts):
            handle = await client.start_workflow(
                SagaTransfer.run, {"from": "acct-1", "to": "acct-2", "amount": 100}, id=wf_id, task_queue=task_queue)
            with pytest.raises(WorkflowFailureError) as err:
                await asyncio.wait_for(handle.result(), timeout=30)
            # A wrongly repeated compensation would show up within this second.
            await asyncio.sleep(1.0)

        assert isinstance(err.value.cause, ApplicationError)
        assert err.value.cause.type == "TransferRolledBack"
        assert "notification service rejected" in err.value.cause.message
        assert side_effects == ["withdraw", "deposit", "notify_parties", "undo_deposit", "undo_withdraw"]
        desc = await handle.describe()
        assert desc.status is not None and desc.status.name == "FAILED"
        await shapes.add_run(client, "step3_failed", wf_id)
        shapes.check()

    asyncio.run(main())
