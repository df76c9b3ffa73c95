"""An activity failure's next_retry_delay overrides the retry policy's back-off (the server
schedules the next attempt after exactly that delay)."""

import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker


@workflow.defn(name="RetryDelayWorkflow")
class RetryDelayWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            "flaky_with_delay", start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100),
                                     maximum_attempts=3))


def test_next_retry_delay_overrides_the_backoff(server, task_queue):
    async def main():
        client = await server.wait_ready()
        starts = []

        @activity.defn(name="flaky_with_delay")
        async def flaky_with_delay() -> str:
            starts.append(time.monotonic())
            if activity.info().attempt == 1:
                raise ApplicationError("come back later", next_retry_delay=timedelta(seconds=3))
            return f"attempt {activity.info().attempt}"

        async with Worker(client, task_queue=task_queue, workflows=[RetryDelayWorkflow],
                          activities=[flaky_with_delay]):
            handle = await client.start_workflow(
                RetryDelayWorkflow.run, id=f"retry-delay-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue)
            result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result == "attempt 2"
        gap = starts[1] - starts[0]
        assert 2.8 <= gap < 8, f"attempt 2 started {gap:.2f}s after attempt 1, not after ~3 s"

    asyncio.run(main())
