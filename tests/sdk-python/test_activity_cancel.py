"""Activity cancellation and the activity …ById RPCs, through the Python SDK.

* A started, heartbeating activity is canceled by its workflow: the heartbeat reply carries
  cancel_requested, the SDK raises CancelledError in the activity, the worker reports
  RespondActivityTaskCanceled, and the workflow sees the cancellation.
* An activity nobody polls is canceled at once (no ActivityTaskStarted).
* Async activity completion by ID: heartbeat, complete, fail and report-cancellation through an
  AsyncActivityHandle built from (workflow ID, run ID, activity ID); unknown or finished activities
  are NOT_FOUND; reporting a cancellation nobody requested is INVALID_ARGUMENT (as the real
  server answers).
"""

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import AsyncActivityCancelledError, RPCError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.service import RPCStatusCode
from temporalio.worker import Worker

from harness import assert_contiguous, event_types, history_dump, wait_for


@workflow.defn(name="CancelActivityWorkflow")
class CancelActivityWorkflow:
    def __init__(self) -> None:
        self.stop = False

    @workflow.signal
    def stop_it(self) -> None:
        self.stop = True

    @workflow.run
    async def run(self, task_queue: str) -> str:
        handle = workflow.start_activity(
            "slow_beat",
            task_queue=task_queue,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.wait_condition(lambda: self.stop)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                return "canceled"
            raise
        return "not canceled"


@workflow.defn(name="AsyncCompletionWorkflow")
class AsyncCompletionWorkflow:
    def __init__(self) -> None:
        self.cancel = False

    @workflow.signal
    def cancel_it(self) -> None:
        self.cancel = True

    @workflow.run
    async def run(self, activity_id: str) -> str:
        handle = workflow.start_activity(
            "completed_elsewhere",
            activity_id=activity_id,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.wait_condition(lambda: self.cancel or handle.done())
        if not handle.done():
            handle.cancel()
        try:
            return await handle
        except ActivityError as err:
            return f"{type(err.cause).__name__}: {err.cause}"


def test_started_activity_is_canceled_through_its_heartbeat(server, task_queue):
    async def main():
        client = await server.wait_ready()
        beats = []
        outcome = []

        @activity.defn(name="slow_beat")
        async def slow_beat() -> str:
            try:
                while True:
                    beats.append(1)
                    activity.heartbeat(len(beats))
                    await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise

        wf_id = f"cancel-act-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[CancelActivityWorkflow],
                          activities=[slow_beat]):
            handle = await client.start_workflow(
                CancelActivityWorkflow.run, task_queue, id=wf_id, task_queue=task_queue)
            await wait_for(lambda: len(beats) >= 3, 30, "activity heartbeating")
            await handle.signal(CancelActivityWorkflow.stop_it)
            result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result == "canceled"
        assert outcome == ["cancelled"]
        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        types = event_types(events)
        tail = [t for t in types if t.startswith("ACTIVITY_TASK")]
        assert tail == ["ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_CANCEL_REQUESTED",
                        "ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_CANCELED"], history_dump(events)
        by_type = {event_types([e])[0]: e for e in events}
        requested = by_type["ACTIVITY_TASK_CANCEL_REQUESTED"]
        canceled = by_type["ACTIVITY_TASK_CANCELED"].activity_task_canceled_event_attributes
        assert canceled.latest_cancel_requested_event_id == requested.event_id
        assert canceled.started_event_id == by_type["ACTIVITY_TASK_STARTED"].event_id
        assert canceled.scheduled_event_id == by_type["ACTIVITY_TASK_SCHEDULED"].event_id

    asyncio.run(main())


def test_activity_nobody_polls_is_canceled_at_once(server, task_queue):
    async def main():
        client = await server.wait_ready()
        wf_id = f"cancel-unstarted-{uuid.uuid4().hex[:8]}"
        # The activity goes to a queue without workers: its attempt never starts.
        async with Worker(client, task_queue=task_queue, workflows=[CancelActivityWorkflow]):
            handle = await client.start_workflow(
                CancelActivityWorkflow.run, f"{task_queue}-nobody", id=wf_id,
                task_queue=task_queue)

            for _ in range(300):
                events = (await handle.fetch_history()).events
                if "ACTIVITY_TASK_SCHEDULED" in event_types(events):
                    break
                await asyncio.sleep(0.1)
            await handle.signal(CancelActivityWorkflow.stop_it)
            result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result == "canceled"
        events = (await handle.fetch_history()).events
        types = [t for t in event_types(events) if t.startswith("ACTIVITY_TASK")]
        assert types == ["ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_CANCEL_REQUESTED",
                         "ACTIVITY_TASK_CANCELED"], history_dump(events)
        canceled = [e for e in events if e.HasField("activity_task_canceled_event_attributes")]
        assert canceled[0].activity_task_canceled_event_attributes.started_event_id == 0

    asyncio.run(main())


@pytest.mark.parametrize("ending", ["complete", "fail", "cancel"])
def test_async_completion_by_id(server, task_queue, ending):
    async def main():
        client = await server.wait_ready()
        started = []

        @activity.defn(name="completed_elsewhere")
        async def completed_elsewhere() -> str:
            started.append(activity.info())
            activity.raise_complete_async()

        wf_id = f"by-id-{ending}-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[AsyncCompletionWorkflow],
                          activities=[completed_elsewhere]):
            handle = await client.start_workflow(
                AsyncCompletionWorkflow.run, "act-1", id=wf_id, task_queue=task_queue)
            await wait_for(lambda: started, 30, "activity started")
            await asyncio.sleep(0.3)  # let the worker finish its part (no completion sent)

            by_id = client.get_async_activity_handle(
                workflow_id=wf_id, run_id=handle.result_run_id, activity_id="act-1")
            await by_id.heartbeat("halfway")
            # Without a run ID the current run is meant.
            await client.get_async_activity_handle(
                workflow_id=wf_id, run_id=None, activity_id="act-1").heartbeat("again")
            # An activity ID the workflow does not have is NOT_FOUND.
            with pytest.raises(RPCError) as unknown:
                await client.get_async_activity_handle(
                    workflow_id=wf_id, run_id=None, activity_id="act-2").heartbeat()
            assert unknown.value.status == RPCStatusCode.NOT_FOUND
            if ending == "complete":
                await by_id.complete("done by id")
            elif ending == "fail":
                await by_id.fail(ApplicationError("failed by id", non_retryable=True))
            else:
                # Canceling an attempt the workflow did not ask to cancel is refused.
                with pytest.raises(RPCError) as unrequested:
                    await by_id.report_cancellation("gave up")
                assert unrequested.value.status == RPCStatusCode.INVALID_ARGUMENT
                await handle.signal(AsyncCompletionWorkflow.cancel_it)
                for _ in range(300):
                    try:
                        await by_id.heartbeat("still here")
                    except AsyncActivityCancelledError:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("heartbeat by ID never reported cancel_requested")
                await by_id.report_cancellation("gave up")
            result = await asyncio.wait_for(handle.result(), timeout=60)
            # The attempt is over: a second completion is NOT_FOUND.
            with pytest.raises(RPCError) as late:
                await by_id.complete("twice")
            assert late.value.status == RPCStatusCode.NOT_FOUND

        expected = {
            "complete": "done by id",
            "fail": "ApplicationError: failed by id",
            "cancel": "CancelledError: Cancelled",
        }[ending]
        assert result == expected
        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        terminal = {"complete": "ACTIVITY_TASK_COMPLETED", "fail": "ACTIVITY_TASK_FAILED",
                    "cancel": "ACTIVITY_TASK_CANCELED"}[ending]
        types = [t for t in event_types(events) if t.startswith("ACTIVITY_TASK")]
        requested = ["ACTIVITY_TASK_CANCEL_REQUESTED"] if ending == "cancel" else []
        assert types == ["ACTIVITY_TASK_SCHEDULED", *requested, "ACTIVITY_TASK_STARTED",
                         terminal], history_dump(events)

    asyncio.run(main())
