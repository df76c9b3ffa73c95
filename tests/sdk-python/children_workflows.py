"""Workflows of the child-workflow and external-signal tests (test_children.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import List

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy


@workflow.defn
class ItemWorkflow:
    """A child: fails when asked to, else echoes its item."""

    @workflow.run
    async def run(self, item: str) -> str:
        if item.startswith("bad"):
            raise ApplicationError(f"item {item} is broken", non_retryable=True)
        return f"processed {item}"


@workflow.defn
class BatchWorkflow:
    """Starts one child per ID in parallel; reports successes and failures."""

    @workflow.run
    async def run(self, child_ids: List[str]) -> dict:
        handles = [
            await workflow.start_child_workflow(
                ItemWorkflow.run,
                child_id.split("/")[0],
                id=child_id.split("/")[1],
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
            for child_id in child_ids
        ]
        ok, failed = [], []
        for handle in handles:
            try:
                ok.append(await handle)
            except ChildWorkflowError as e:
                failed.append(str(e.cause))
        return {"ok": sorted(ok), "failed": failed}


@workflow.defn
class WaitForeverWorkflow:
    """A child that only ends when told (or terminated)."""

    def __init__(self) -> None:
        self.value = None

    @workflow.signal
    def go(self, value: str) -> None:
        self.value = value

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.value is not None)
        return f"got {self.value}"


@workflow.defn
class AbandoningParentWorkflow:
    """Starts a child with the given parent-close policy and completes without waiting."""

    @workflow.run
    async def run(self, child_id: str, policy: str) -> str:
        handle = await workflow.start_child_workflow(
            WaitForeverWorkflow.run, id=child_id, parent_close_policy=ParentClosePolicy[policy]
        )
        return handle.first_execution_run_id or ""


@workflow.defn
class SignalSenderWorkflow:
    """Signals another workflow by ID, then completes."""

    @workflow.run
    async def run(self, target_id: str) -> str:
        await workflow.get_external_workflow_handle(target_id).signal(WaitForeverWorkflow.go, "hello")
        return "sent"
