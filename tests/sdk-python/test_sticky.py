"""Sticky execution (TEMPORAL-WIRE.md §1.6), through raw WorkflowService calls and the SDK.

* After a completion with sticky_attributes, the next workflow task goes to the worker's sticky
  queue and carries only the events after previous_started_event_id (starting with the previous
  WorkflowTaskCompleted); its WorkflowTaskScheduled names the sticky queue.
* If nobody polls the sticky queue within schedule_to_start_timeout, the task times out
  (WorkflowTaskTimedOut SCHEDULE_TO_START) and is rescheduled on the normal queue, full history.
* ShutdownWorker drops the stickiness at once: the next task goes to the normal queue.
* return_new_workflow_task: a task the completion creates comes back inline, started, with the
  sticky (partial) history.
* An SDK worker killed while sticky (no ShutdownWorker): another worker continues the workflow
  once the sticky schedule-to-start timeout (the SDK's default, 10 s) moved the task.
"""

import asyncio
import uuid
from datetime import timedelta
from typing import List, Optional

from temporalio.api.command.v1 import Command, StartTimerCommandAttributes
from temporalio.api.command.v1 import CompleteWorkflowExecutionCommandAttributes
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.enums.v1 import CommandType, EventType, TaskQueueKind, TimeoutType
from temporalio.api.taskqueue.v1 import StickyExecutionAttributes, TaskQueue
from temporalio.api.workflowservice.v1 import (
    PollWorkflowTaskQueueRequest,
    PollWorkflowTaskQueueResponse,
    RespondWorkflowTaskCompletedRequest,
    ShutdownWorkerRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client

from temporalio.worker import Worker

from harness import NAMESPACE, event_types, history_dump
from workflows import WaitForSignalWorkflow


def timer(timer_id: str, seconds: float) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_START_TIMER,
        start_timer_command_attributes=StartTimerCommandAttributes(
            timer_id=timer_id, start_to_fire_timeout=timedelta(seconds=seconds)),
    )


def complete() -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(),
    )


def sticky_queue(name: str, normal: str) -> TaskQueue:
    return TaskQueue(name=name, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=normal)


async def poll(client: Client, queue: TaskQueue, seconds: float = 20) -> PollWorkflowTaskQueueResponse:
    request = PollWorkflowTaskQueueRequest(namespace=NAMESPACE, task_queue=queue, identity="raw")
    return await client.workflow_service.poll_workflow_task_queue(
        request, timeout=timedelta(seconds=seconds))


async def respond(client: Client, task: PollWorkflowTaskQueueResponse, commands: List[Command],
                  sticky: Optional[TaskQueue] = None, sticky_timeout: float = 10) -> None:
    attributes = None
    if sticky is not None:
        attributes = StickyExecutionAttributes(
            worker_task_queue=sticky, schedule_to_start_timeout=timedelta(seconds=sticky_timeout))
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(
            namespace=NAMESPACE, task_token=task.task_token, commands=commands,
            identity="raw", sticky_attributes=attributes))


async def start(client: Client, task_queue: str) -> str:
    wf_id = f"sticky-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.start_workflow_execution(StartWorkflowExecutionRequest(
        namespace=NAMESPACE, workflow_id=wf_id, workflow_type=WorkflowType(name="Raw"),
        task_queue=TaskQueue(name=task_queue), request_id=str(uuid.uuid4()), identity="raw"))
    return wf_id


def test_sticky_task_carries_only_the_new_events(server, task_queue):
    async def main():
        client = await server.wait_ready()
        normal = TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL)
        sticky = sticky_queue(f"{task_queue}-sticky-{uuid.uuid4().hex[:6]}", task_queue)
        await start(client, task_queue)
        first = await poll(client, normal)
        assert [e.event_id for e in first.history.events] == [1, 2, 3]
        # A sticky poller is waiting before the task is scheduled (as SDK workers are).
        second_poll = asyncio.ensure_future(poll(client, sticky))
        await asyncio.sleep(0.5)
        await respond(client, first, [timer("t1", 0.5)], sticky=sticky)
        second = await second_poll
        events = second.history.events
        assert second.previous_started_event_id == 3
        assert [e.event_id for e in events] == list(range(4, second.started_event_id + 1)), \
            history_dump(events)
        assert event_types(events) == [
            "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED", "TIMER_FIRED",
            "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"], history_dump(events)
        scheduled = events[3].workflow_task_scheduled_event_attributes.task_queue
        assert (scheduled.name, scheduled.kind, scheduled.normal_name) == (
            sticky.name, TaskQueueKind.TASK_QUEUE_KIND_STICKY, task_queue)
        assert second.workflow_execution_task_queue.name == task_queue
        await respond(client, second, [complete()], sticky=sticky)

    asyncio.run(main())


def test_unpolled_sticky_queue_falls_back_to_the_normal_queue(server, task_queue):
    async def main():
        client = await server.wait_ready()
        normal = TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL)
        sticky = sticky_queue(f"{task_queue}-sticky-{uuid.uuid4().hex[:6]}", task_queue)
        await start(client, task_queue)
        first = await poll(client, normal)
        # The sticky worker polled once (so the server knows the queue), then died.
        try:
            await asyncio.wait_for(poll(client, sticky), 1)
        except asyncio.TimeoutError:
            pass
        await respond(client, first, [timer("t1", 0.2)], sticky=sticky, sticky_timeout=1)
        second = await poll(client, normal)
        events = second.history.events
        assert events[0].event_id == 1, "full history on the normal queue"
        types = event_types(events)
        assert types[3:] == [
            "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED", "TIMER_FIRED",
            "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_TIMED_OUT",
            "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"], history_dump(events)
        timed_out = events[7].workflow_task_timed_out_event_attributes
        assert timed_out.timeout_type == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
        assert timed_out.scheduled_event_id == 7 and timed_out.started_event_id == 0
        rescheduled = events[8].workflow_task_scheduled_event_attributes
        assert rescheduled.task_queue.name == task_queue
        assert rescheduled.task_queue.kind == TaskQueueKind.TASK_QUEUE_KIND_NORMAL
        # The attempt is not incremented by a sticky schedule-to-start timeout.
        assert rescheduled.attempt == 1 and second.attempt == 1
        await respond(client, second, [complete()])

    asyncio.run(main())


def test_shutdown_worker_drops_stickiness(server, task_queue):
    async def main():
        client = await server.wait_ready()
        normal = TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL)
        sticky = sticky_queue(f"{task_queue}-sticky-{uuid.uuid4().hex[:6]}", task_queue)
        await start(client, task_queue)
        first = await poll(client, normal)
        try:
            await asyncio.wait_for(poll(client, sticky), 1)
        except asyncio.TimeoutError:
            pass
        await respond(client, first, [timer("t1", 1.0)], sticky=sticky, sticky_timeout=30)
        await client.workflow_service.shutdown_worker(ShutdownWorkerRequest(
            namespace=NAMESPACE, sticky_task_queue=sticky.name, identity="raw", reason="test"))
        loop = asyncio.get_running_loop()
        began = loop.time()
        second = await poll(client, normal)
        assert loop.time() - began < 15, "no sticky schedule-to-start wait"
        events = second.history.events
        assert events[0].event_id == 1, "full history on the normal queue"
        assert event_types(events)[3:] == [
            "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED", "TIMER_FIRED",
            "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"], history_dump(events)
        # (The real server still names the sticky queue in that WorkflowTaskScheduled and lets
        # matching redirect it; Perdura drops the stickiness itself, so it names the normal one.)
        await respond(client, second, [complete()])

    asyncio.run(main())


def test_worker_killed_while_sticky_another_worker_continues(server, worker_procs, task_queue,
                                                            tmp_path):
    async def main():
        client = await server.wait_ready()
        worker_a = worker_procs(server.address, task_queue, str(tmp_path / "side.jsonl"), "none")
        worker_a.spawn()
        wf_id = f"sticky-kill-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(WaitForSignalWorkflow.run, id=wf_id,
                                             task_queue=task_queue)
        # Worker A completes the first task with sticky_attributes: the run is now sticky to A.
        for _ in range(600):
            if "WORKFLOW_TASK_COMPLETED" in event_types((await handle.fetch_history()).events):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"worker A never completed a task:\n{worker_a.log_tail()}")
        worker_a.kill9()  # no ShutdownWorker: the server only learns by the sticky timeout
        loop = asyncio.get_running_loop()
        began = loop.time()
        await handle.signal(WaitForSignalWorkflow.finish, "b")
        async with Worker(client, task_queue=task_queue, workflows=[WaitForSignalWorkflow]):
            result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result == "finished:b"
        took = loop.time() - began
        events = (await handle.fetch_history()).events
        types = event_types(events)
        assert types[3:] == [
            "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED"], history_dump(events)
        timed_out = events[6].workflow_task_timed_out_event_attributes
        assert timed_out.timeout_type == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
        assert took >= 9, f"the task left A's sticky queue after {took:.1f}s, before the 10 s timeout"

    asyncio.run(main())


def test_new_task_returned_inline_with_partial_history(server, task_queue):
    async def main():
        client = await server.wait_ready()
        normal = TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL)
        sticky = sticky_queue(f"{task_queue}-sticky-{uuid.uuid4().hex[:6]}", task_queue)
        await start(client, task_queue)
        first = await poll(client, normal)
        # A workflow-task heartbeat (as a long local activity sends) asking for the next task.
        response = await client.workflow_service.respond_workflow_task_completed(
            RespondWorkflowTaskCompletedRequest(
                namespace=NAMESPACE, task_token=first.task_token, identity="raw",
                force_create_new_workflow_task=True, return_new_workflow_task=True,
                sticky_attributes=StickyExecutionAttributes(
                    worker_task_queue=sticky,
                    schedule_to_start_timeout=timedelta(seconds=10))))
        task = response.workflow_task
        assert task.task_token, "a task came back inline"
        assert (task.previous_started_event_id, task.started_event_id) == (3, 6)
        assert event_types(task.history.events) == [
            "WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]
        await respond(client, task, [complete()])

    asyncio.run(main())
