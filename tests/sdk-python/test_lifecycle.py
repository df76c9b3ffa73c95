"""Run lifecycle through the Python SDK: cancellation and continue-as-new (more below as the
features land)."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from temporalio.api.enums.v1 import ContinueAsNewInitiator, IndexedValueType, RetryState
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.service import RPCError, RPCStatusCode

from harness import assert_contiguous, event_types, history_dump
from pending import is_reference_server
from lifecycle_workflows import (
    STAGE,
    CountingLoopWorkflow,
    CronWorkflow,
    FlakyWorkflow,
    PropertiesWorkflow,
    SignalCollectorWorkflow,
    SleepUntilCancelledWorkflow,
)


def wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_cancel_from_the_client(server, task_queue):
    async def main():
        client = await server.wait_ready()
        async with Worker(client, task_queue=task_queue, workflows=[SleepUntilCancelledWorkflow]):
            handle = await client.start_workflow(
                SleepUntilCancelledWorkflow.run, id=wid("cancel"), task_queue=task_queue)
            # Wait until the workflow is asleep (its timer started) before cancelling.
            for _ in range(100):
                events = (await handle.fetch_history()).events
                if any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in events):
                    break
                await asyncio.sleep(0.1)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as failure:
                await asyncio.wait_for(handle.result(), timeout=30)
            assert isinstance(failure.value.cause, CancelledError), failure.value.cause
            # A second cancel of the closed workflow is accepted, as by Temporal.
            await handle.cancel()

        described = await handle.describe()
        assert described.status == WorkflowExecutionStatus.CANCELED
        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        types = event_types(events)
        assert "WORKFLOW_EXECUTION_CANCEL_REQUESTED" in types, history_dump(events)
        assert types[-1] == "WORKFLOW_EXECUTION_CANCELED", history_dump(events)
        requested = next(e for e in events
                         if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
        assert requested.workflow_execution_cancel_requested_event_attributes.identity == client.identity

    asyncio.run(main())


def test_continue_as_new_chain_result_is_the_last_run(server, task_queue):
    async def main():
        client = await server.wait_ready()
        workflow_id = wid("loop")
        async with Worker(client, task_queue=task_queue, workflows=[CountingLoopWorkflow]):
            handle = await client.start_workflow(
                CountingLoopWorkflow.run, args=[0, 3], id=workflow_id, task_queue=task_queue)
            result = await asyncio.wait_for(handle.result(), timeout=60)

        first_run = handle.result_run_id
        assert result.startswith("count=3 "), result
        assert f"first={first_run}" in result, result
        last_run = result.split("run=")[1].split()[0]
        assert last_run != first_run
        # The first run ends with ContinuedAsNew naming the next run; the chain has 4 runs.
        run_id, runs = first_run, 0
        while True:
            runs += 1
            events = (await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events
            assert_contiguous(events)
            last = events[-1]
            if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
                break
            started = events[0].workflow_execution_started_event_attributes
            assert started.first_execution_run_id == first_run
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        assert (runs, run_id) == (4, last_run)
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.run_id == last_run
        assert described.status == WorkflowExecutionStatus.COMPLETED
        first = await client.get_workflow_handle(workflow_id, run_id=first_run).describe()
        assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW

    asyncio.run(main())


async def register_keyword_attribute(client, name: str) -> None:
    """The reference server only accepts registered custom search attributes; Perdura accepts
    typed ones without registration."""
    if not is_reference_server():
        return
    request = AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD})
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as e:
        if e.status != RPCStatusCode.ALREADY_EXISTS:
            raise


def test_search_attributes_and_memo_upserts_show_in_describe(server, task_queue):
    async def main():
        client = await server.wait_ready()
        await register_keyword_attribute(client, STAGE.name)
        async with Worker(client, task_queue=task_queue, workflows=[PropertiesWorkflow]):
            handle = await client.start_workflow(
                PropertiesWorkflow.run, id=wid("props"), task_queue=task_queue,
                memo={"note": "initial", "owner": "ops"})
            for _ in range(100):
                events = (await handle.fetch_history()).events
                if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED for e in events):
                    break
                await asyncio.sleep(0.1)
            described = await handle.describe()
            assert described.typed_search_attributes.get(STAGE) == "stage-2"
            assert await described.memo_value("note") == "updated"
            assert await described.memo_value("owner") == "ops"
            await handle.signal(PropertiesWorkflow.finish)
            assert await asyncio.wait_for(handle.result(), timeout=30) == "done"
        types = event_types((await handle.fetch_history()).events)
        assert "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" in types and "WORKFLOW_PROPERTIES_MODIFIED" in types

    asyncio.run(main())


def test_signal_with_start_starts_then_signals_the_running_run(server, task_queue):
    async def main():
        client = await server.wait_ready()
        workflow_id = wid("sws")
        async with Worker(client, task_queue=task_queue, workflows=[SignalCollectorWorkflow]):
            first = await client.start_workflow(
                SignalCollectorWorkflow.run, 2, id=workflow_id, task_queue=task_queue,
                start_signal="add", start_signal_args=["one"])
            second = await client.start_workflow(
                SignalCollectorWorkflow.run, 2, id=workflow_id, task_queue=task_queue,
                start_signal="add", start_signal_args=["two"],
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
            assert second.result_run_id == first.result_run_id
            assert await asyncio.wait_for(first.result(), timeout=30) == ["one", "two"]
        types = event_types((await first.fetch_history()).events)
        assert types[:3] == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_EXECUTION_SIGNALED",
                             "WORKFLOW_TASK_SCHEDULED"], types
        assert types.count("WORKFLOW_EXECUTION_SIGNALED") == 2, types

    asyncio.run(main())


def test_workflow_retry_policy_runs_the_next_attempt(server, task_queue):
    async def main():
        client = await server.wait_ready()
        workflow_id = wid("flaky")
        policy = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)
        async with Worker(client, task_queue=task_queue, workflows=[FlakyWorkflow]):
            handle = await client.start_workflow(
                FlakyWorkflow.run, 3, id=workflow_id, task_queue=task_queue, retry_policy=policy)
            assert await asyncio.wait_for(handle.result(), timeout=60) == "succeeded on attempt 3"
        first = (await client.get_workflow_handle(
            workflow_id, run_id=handle.result_run_id).fetch_history()).events
        failed = first[-1]
        assert failed.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, history_dump(first)
        attrs = failed.workflow_execution_failed_event_attributes
        assert attrs.retry_state == RetryState.RETRY_STATE_IN_PROGRESS
        second = (await client.get_workflow_handle(
            workflow_id, run_id=attrs.new_execution_run_id).fetch_history()).events
        started = second[0].workflow_execution_started_event_attributes
        assert started.attempt == 2
        assert started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_RETRY
        assert started.continued_failure.message == "attempt 1 fails"

    asyncio.run(main())


def test_cron_workflow_runs_on_schedule_with_the_last_result(server, task_queue):
    async def main():
        client = await server.wait_ready()
        workflow_id = wid("cron")
        async with Worker(client, task_queue=task_queue, workflows=[CronWorkflow]):
            handle = await client.start_workflow(
                CronWorkflow.run, id=workflow_id, task_queue=task_queue, cron_schedule="* * * * *")
            first = client.get_workflow_handle(workflow_id, run_id=handle.result_run_id)
            # The first run starts at the next minute boundary and completes; its close event
            # names the next run, which waits for the following minute.
            events = []
            for _ in range(750):
                events = (await first.fetch_history()).events
                if events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                    break
                await asyncio.sleep(0.1)
            completed = events[-1].workflow_execution_completed_event_attributes
            assert completed.new_execution_run_id, history_dump(events)
            started = events[0].workflow_execution_started_event_attributes
            assert started.cron_schedule == "* * * * *"
            assert started.first_workflow_task_backoff.ToTimedelta().total_seconds() <= 60
            second = (await client.get_workflow_handle(
                workflow_id, run_id=completed.new_execution_run_id).fetch_history()).events
            attrs = second[0].workflow_execution_started_event_attributes
            assert attrs.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
            assert attrs.last_completion_result.payloads[0].data == b'"after:None"'
            await client.get_workflow_handle(workflow_id).terminate(reason="test over")

    asyncio.run(main())
