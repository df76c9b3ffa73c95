"""Seed 9: updates. One accepted and completed, one rejected by its validator (the client sees
the rejection), one deduplicated by update id (the handler runs once; same result)."""

import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from harness import wait_blocked
from seed_workflows import ShoppingCart
from shapes import ShapeCheck


def test_updates_accepted_rejected_deduplicated(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        shapes = ShapeCheck("updates")
        wf_id = f"cart-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[ShoppingCart]):
            handle = await client.start_workflow(ShoppingCart.run, id=wf_id, task_queue=task_queue)
            await wait_blocked(handle)

            first = await handle.execute_update(ShoppingCart.add_item, "book", id="add-book")
            assert first == {"items": ["book"], "handler_runs": 1}
            await wait_blocked(handle, "WORKFLOW_EXECUTION_UPDATE_COMPLETED")

            with pytest.raises(WorkflowUpdateFailedError) as rejected:
                await handle.execute_update(ShoppingCart.add_item, "-1", id="add-negative")
            cause = rejected.value.cause
            assert isinstance(cause, ApplicationError), repr(cause)
            assert "invalid item '-1'" in cause.message, cause.message
            await wait_blocked(handle)

            again = await handle.execute_update(ShoppingCart.add_item, "book", id="add-book")
            assert again == first, "the same update id returns the first outcome"
            await wait_blocked(handle)

            await handle.signal(ShoppingCart.checkout)
            result = await asyncio.wait_for(handle.result(), timeout=30)

        assert result == {"items": ["book"], "handler_runs": 1}
        events = (await handle.fetch_history()).events
        types = [e.event_type for e in events]
        assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 1
        assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) == 1
        await shapes.add_run(client, "one_update_accepted", wf_id)
        shapes.check()

    asyncio.run(main())
