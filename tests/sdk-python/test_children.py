"""Child workflows and external signals across shards: a batch whose children land on
different Raft groups with one failing child, the TERMINATE parent-close policy, and a signal
from one workflow to another on a different group."""

import asyncio
import uuid

from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

from children_workflows import (
    AbandoningParentWorkflow,
    BatchWorkflow,
    ItemWorkflow,
    SignalSenderWorkflow,
    WaitForeverWorkflow,
)
from harness import NAMESPACE, assert_contiguous, event_types, history_dump

WORKFLOWS = [BatchWorkflow, ItemWorkflow, WaitForeverWorkflow, AbandoningParentWorkflow, SignalSenderWorkflow]
SLOTS = 4096
DEV_GROUPS = 4


def group_of(workflow_id: str) -> int:
    """The Raft group of a workflow in `perdura dev` (engine/src/slots.rs: FNV-1a, even map)."""
    h = 0xCBF29CE484222325
    for b in NAMESPACE.encode() + b"\0" + workflow_id.encode():
        h ^= b
        h = (h * 0x100000001B3) % (1 << 64)
    per = -(-SLOTS // DEV_GROUPS)
    return (h % SLOTS) // per + 1


def ids_on_distinct_groups(prefix: str, count: int, avoid: int) -> list:
    """`count` workflow IDs, each on a different group, none on group `avoid` when possible."""
    chosen, groups = [], set()
    n = 0
    while len(chosen) < count:
        candidate = f"{prefix}-{n}-{uuid.uuid4().hex[:6]}"
        g = group_of(candidate)
        if g not in groups and (g != avoid or len(groups) >= DEV_GROUPS - 1):
            chosen.append(candidate)
            groups.add(g)
        n += 1
    return chosen


def count(types, name):
    return sum(1 for t in types if t == name)


def test_batch_children_on_different_shards_one_fails(server, task_queue):
    async def main():
        client = await server.wait_ready()
        parent_id = f"batch-{uuid.uuid4().hex[:8]}"
        child_ids = ids_on_distinct_groups("item", 3, group_of(parent_id))
        items = ["a", "b", "bad-c"]
        async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
            handle = await client.start_workflow(
                BatchWorkflow.run,
                [f"{item}/{cid}" for item, cid in zip(items, child_ids)],
                id=parent_id,
                task_queue=task_queue,
            )
            result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result["ok"] == ["processed a", "processed b"], result
        assert len(result["failed"]) == 1 and "bad-c is broken" in result["failed"][0], result

        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        types = event_types(events)
        assert count(types, "START_CHILD_WORKFLOW_EXECUTION_INITIATED") == 3, history_dump(events)
        assert count(types, "CHILD_WORKFLOW_EXECUTION_STARTED") == 3, history_dump(events)
        assert count(types, "CHILD_WORKFLOW_EXECUTION_COMPLETED") == 2, history_dump(events)
        assert count(types, "CHILD_WORKFLOW_EXECUTION_FAILED") == 1, history_dump(events)
        assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"

        # Each child's start event names the parent and the root.
        parent_run = handle.result_run_id
        for cid in child_ids:
            child_events = (await client.get_workflow_handle(cid).fetch_history()).events
            attrs = child_events[0].workflow_execution_started_event_attributes
            assert attrs.parent_workflow_execution.workflow_id == parent_id
            assert attrs.parent_workflow_execution.run_id == parent_run
            assert attrs.root_workflow_execution.workflow_id == parent_id
            assert attrs.parent_initiated_event_id > 0
            desc = await client.get_workflow_handle(cid).describe()
            assert desc.raw_description.workflow_execution_info.parent_execution.workflow_id == parent_id

    asyncio.run(main())


def test_parent_close_terminate_terminates_the_child(server, task_queue):
    async def main():
        client = await server.wait_ready()
        parent_id = f"closing-parent-{uuid.uuid4().hex[:8]}"
        child_id = ids_on_distinct_groups("doomed-child", 1, group_of(parent_id))[0]
        async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
            await client.execute_workflow(
                AbandoningParentWorkflow.run, args=[child_id, "TERMINATE"], id=parent_id,
                task_queue=task_queue, execution_timeout=None,
            )
            child = client.get_workflow_handle(child_id)

            for _ in range(300):
                desc = await child.describe()
                if desc.raw_description.workflow_execution_info.status == \
                        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the child was not terminated within 30 s")
        events = (await child.fetch_history()).events
        last = events[-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, history_dump(events)
        assert last.workflow_execution_terminated_event_attributes.reason == "by parent close policy"

    asyncio.run(main())


def test_parent_close_abandon_leaves_the_child_running(server, task_queue):
    async def main():
        client = await server.wait_ready()
        parent_id = f"abandoning-parent-{uuid.uuid4().hex[:8]}"
        child_id = ids_on_distinct_groups("abandoned-child", 1, group_of(parent_id))[0]
        async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
            await client.execute_workflow(
                AbandoningParentWorkflow.run, args=[child_id, "ABANDON"], id=parent_id,
                task_queue=task_queue,
            )
            child = client.get_workflow_handle(child_id)
            await asyncio.sleep(1.0)
            desc = await child.describe()
            assert desc.raw_description.workflow_execution_info.status == \
                WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
            await child.signal(WaitForeverWorkflow.go, "late")
            assert await asyncio.wait_for(child.result(), timeout=30) == "got late"

    asyncio.run(main())


def test_external_signal_between_workflows_on_different_shards(server, task_queue):
    async def main():
        client = await server.wait_ready()
        target_id = f"signal-target-{uuid.uuid4().hex[:8]}"
        sender_id = ids_on_distinct_groups("signal-sender", 1, group_of(target_id))[0]
        async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
            target = await client.start_workflow(WaitForeverWorkflow.run, id=target_id, task_queue=task_queue)
            sender = await client.start_workflow(SignalSenderWorkflow.run, target_id, id=sender_id, task_queue=task_queue)
            assert await asyncio.wait_for(sender.result(), timeout=30) == "sent"
            assert await asyncio.wait_for(target.result(), timeout=30) == "got hello"
        sender_types = event_types((await sender.fetch_history()).events)
        assert "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" in sender_types
        assert "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED" in sender_types
        target_events = (await target.fetch_history()).events
        signaled = [e for e in target_events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        assert len(signaled) == 1, history_dump(target_events)
        assert signaled[0].workflow_execution_signaled_event_attributes.external_workflow_execution.workflow_id == sender_id

    asyncio.run(main())


def test_signal_to_a_missing_workflow_fails_the_sender(server, task_queue):
    async def main():
        client = await server.wait_ready()
        sender_id = f"lonely-sender-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
            sender = await client.start_workflow(
                SignalSenderWorkflow.run, f"nobody-{uuid.uuid4().hex[:8]}", id=sender_id, task_queue=task_queue)
            try:
                await asyncio.wait_for(sender.result(), timeout=30)
                raise AssertionError("the signal to a missing workflow succeeded")
            except WorkflowFailureError:
                pass
        types = event_types((await sender.fetch_history()).events)
        assert "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED" in types, types

    asyncio.run(main())
