"""Test 2: a non-retryable activity failure fails the workflow after exactly one attempt."""

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType, RetryState
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from harness import activity_events, assert_contiguous, event_types, history_dump
from workflows import PaymentWorkflow


@pytest.mark.parametrize("mode", ["flag", "type"])
def test_non_retryable_failure(server, task_queue, mode):
    async def main():
        client = await server.wait_ready()
        invocations = []

        @activity.defn(name="charge_card")
        async def charge_card(req: dict) -> str:
            invocations.append(activity.info().attempt)
            if req["mode"] == "flag":
                raise ApplicationError("card declined", {"code": 51}, type="CardDeclined",
                                       non_retryable=True)
            # Retryable by itself; the retry policy lists InvalidAccount as non-retryable.
            raise ApplicationError("account does not exist", type="InvalidAccount")

        wf_id = f"pay-{mode}-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[PaymentWorkflow],
                          activities=[charge_card]):
            handle = await client.start_workflow(
                PaymentWorkflow.run, {"mode": mode}, id=wf_id, task_queue=task_queue)
            with pytest.raises(WorkflowFailureError) as excinfo:
                await asyncio.wait_for(handle.result(), timeout=60)
            # Give a wrongly scheduled retry (back-off 100 ms) the chance to show up.
            await asyncio.sleep(1.0)

        assert invocations == [1], f"activity ran {len(invocations)} times: attempts {invocations}"

        cause = excinfo.value.cause
        assert isinstance(cause, ActivityError), f"cause is {type(cause)}: {cause!r}"
        assert cause.activity_type == "charge_card"
        assert cause.retry_state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE
        app = cause.cause
        assert isinstance(app, ApplicationError), f"activity failure cause is {app!r}"
        if mode == "flag":
            assert app.type == "CardDeclined" and app.message == "card declined"
            assert app.non_retryable
            assert list(app.details) == [{"code": 51}]
        else:
            assert app.type == "InvalidAccount" and app.message == "account does not exist"

        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        types = event_types(events)
        assert types == [
            "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED", "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_STARTED",
            "ACTIVITY_TASK_FAILED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_FAILED",
        ], history_dump(events)
        started = activity_events(events, "STARTED")["charge_card"]
        assert len(started) == 1 and started[0].activity_task_started_event_attributes.attempt == 1
        failed = activity_events(events, "FAILED")["charge_card"]
        assert len(failed) == 1
        fattrs = failed[0].activity_task_failed_event_attributes
        assert fattrs.retry_state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE
        assert fattrs.failure.application_failure_info.type == app.type
        assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED

        desc = await handle.describe()
        assert desc.status is not None and desc.status.name == "FAILED"

    asyncio.run(main())
