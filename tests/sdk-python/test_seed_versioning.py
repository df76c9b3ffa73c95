"""Seed 8: versioning. A workflow started on old code (worker A, no patch) blocks on a signal;
worker A stops and worker B starts with new code that uses ``patched('add-loyalty-points')``.
The old workflow finishes by the old path; a new workflow takes the new path."""

import asyncio
import uuid

from temporalio import activity
from temporalio.worker import Worker

from harness import wait_blocked
from seed_workflows import LoyaltyOrderV1, LoyaltyOrderV2
from shapes import ShapeCheck


def test_patched_keeps_running_workflows_on_the_old_path(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        calls = []

        @activity.defn(name="ship_order")
        async def ship_order(order: str) -> str:
            calls.append(("ship_order", order))
            return f"shipped {order}"

        @activity.defn(name="add_loyalty_points")
        async def add_loyalty_points(order: str) -> int:
            calls.append(("add_loyalty_points", order))
            return 10

        shapes = ShapeCheck("versioning")
        old_id = f"loyalty-old-{uuid.uuid4().hex[:8]}"
        new_id = f"loyalty-new-{uuid.uuid4().hex[:8]}"
        acts = [ship_order, add_loyalty_points]
        async with Worker(client, task_queue=task_queue, workflows=[LoyaltyOrderV1], activities=acts):
            old = await client.start_workflow("LoyaltyOrder", "order-old", id=old_id, task_queue=task_queue)
            await wait_blocked(old)
        # Worker A is gone; worker B runs the new code.
        async with Worker(client, task_queue=task_queue, workflows=[LoyaltyOrderV2], activities=acts):
            await old.signal("approve")
            assert await asyncio.wait_for(old.result(), timeout=30) == "shipped order-old"
            new = await client.start_workflow("LoyaltyOrder", "order-new", id=new_id, task_queue=task_queue)
            await wait_blocked(new)
            await new.signal("approve")
            assert await asyncio.wait_for(new.result(), timeout=30) == "shipped order-new +10 points"

        assert calls == [("ship_order", "order-old"), ("ship_order", "order-new"),
                         ("add_loyalty_points", "order-new")]
        await shapes.add_run(client, "started_on_old_code", old_id)
        await shapes.add_run(client, "started_on_new_code", new_id)
        shapes.check()

    asyncio.run(main())
