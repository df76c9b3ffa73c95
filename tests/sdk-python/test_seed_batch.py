"""Seed 5: batch. A parent starts 5 child workflows in parallel with explicit ids; one fails and
the parent reports 4 succeeded / 1 failed. On Perdura the children's ids hash to different shard
groups, so the parent's shard starts and hears from children in other shards.

To keep the history shapes deterministic each child's activity waits for a gate the test opens
one child at a time, after the parent has recorded the previous outcome and is idle. The parent's
workflow-task events during the parallel starts depend on timing (how many started events one
task sees), so the parent's shape is compared without workflow-task events."""

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from harness import NAMESPACE, wait_blocked, wait_for
from pending import is_perdura
from seed_workflows import BatchItem, BatchParent
from shapes import ShapeCheck

CHILD_IDS = [f"payroll-2026-11-item-{i}" for i in range(1, 6)]
FAILING = "payroll-2026-11-item-3"

# Perdura's placement (engine/src/slots.rs): FNV-1a 64 over namespace, 0x00, workflow id; slot =
# hash mod 4096; dev mode splits the slots over 4 groups in equal contiguous ranges.
SLOT_COUNT = 4096
DEV_GROUPS = 4


def slot_of(namespace: str, workflow_id: str) -> int:
    h = 0xCBF29CE484222325
    for byte in namespace.encode() + b"\x00" + workflow_id.encode():
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % SLOT_COUNT


def dev_group_of(namespace: str, workflow_id: str) -> int:
    per = -(-SLOT_COUNT // DEV_GROUPS)
    return slot_of(namespace, workflow_id) // per + 1


def test_slot_hash_matches_perdura():
    # The pinned vector of engine/src/slots.rs (slot_hash_is_stable).
    assert slot_of("", "") == 0xAF63BD4C8601B7DF % 4096


def test_batch_of_children(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        if is_perdura():
            groups = {dev_group_of(NAMESPACE, c) for c in CHILD_IDS}
            assert len(groups) >= 2, f"children all in shard group {groups}"
        entered = []
        gates = {c: asyncio.Event() for c in CHILD_IDS}
        processed = []

        @activity.defn(name="process_item")
        async def process_item(item: str) -> str:
            entered.append(item)
            await gates[item].wait()
            processed.append(item)
            if item == FAILING:
                raise ApplicationError(f"{item}: malformed bank details", type="BadInput", non_retryable=True)
            return f"{item}: paid"

        shapes = ShapeCheck("batch")
        parent_id = "payroll-2026-11"
        async with Worker(client, task_queue=task_queue, workflows=[BatchParent, BatchItem],
                          activities=[process_item]):
            handle = await client.start_workflow(
                BatchParent.run, {"child_ids": CHILD_IDS}, id=parent_id, task_queue=task_queue)
            await wait_for(lambda: len(entered) == 5, 30, "all five children to reach their activity")
            await wait_blocked(handle, "CHILD_WORKFLOW_EXECUTION_STARTED", count=5)
            for n, child in enumerate(CHILD_IDS, start=1):
                gates[child].set()
                await wait_blocked(handle, also=lambda t, n=n: (
                    t.count("CHILD_WORKFLOW_EXECUTION_COMPLETED") + t.count("CHILD_WORKFLOW_EXECUTION_FAILED") == n))
            result = await asyncio.wait_for(handle.result(), timeout=30)

        assert result == {"succeeded": 4, "failed": 1, "failed_ids": [FAILING]}
        assert sorted(processed) == sorted(CHILD_IDS) and len(processed) == 5
        for child in CHILD_IDS:
            desc = await client.get_workflow_handle(child).describe()
            assert desc.status is not None
            assert desc.status.name == ("FAILED" if child == FAILING else "COMPLETED"), (child, desc.status)
            assert desc.parent_id == parent_id, (child, desc.parent_id)
        await shapes.add_run(client, "parent (workflow-task events omitted)", parent_id, without_workflow_tasks=True)
        await shapes.add_run(client, "child (succeeded)", CHILD_IDS[0])
        await shapes.add_run(client, "child (failed)", FAILING)
        shapes.check()

    asyncio.run(main())
