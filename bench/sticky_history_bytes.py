"""History bytes a worker receives in workflow tasks, full vs sticky, for a 50-activity workflow.

Runs one workflow (50 sequential activities) against the server at ADDRESS, reads its final
history, and sums the encoded sizes of the events each workflow task carries: events
1..started (full history, non-sticky) vs previous_started+1..started (sticky).
"""
import asyncio, sys, uuid
from datetime import timedelta
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

@activity.defn
async def step(i: int) -> int:
    return i

@workflow.defn
class FiftySteps:
    @workflow.run
    async def run(self) -> int:
        total = 0
        for i in range(50):
            total += await workflow.execute_activity(step, i, start_to_close_timeout=timedelta(seconds=30))
        return total

async def main(address):
    client = await Client.connect(address)
    tq = f"bench-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=tq, workflows=[FiftySteps], activities=[step]):
        h = await client.start_workflow(FiftySteps.run, id=f"fifty-{uuid.uuid4().hex[:6]}", task_queue=tq)
        await h.result()
    events = (await h.fetch_history()).events
    sizes = {e.event_id: e.ByteSize() for e in events}
    full = sticky = tasks = 0
    prev_started = 0
    for e in events:
        name = e.WhichOneof("attributes")
        if name == "workflow_task_started_event_attributes":
            tasks += 1
            s = e.event_id
            full += sum(sizes[i] for i in range(1, s + 1))
            sticky += sum(sizes[i] for i in range(prev_started + 1, s + 1))
        if name == "workflow_task_completed_event_attributes":
            prev_started = e.workflow_task_completed_event_attributes.started_event_id
    print(f"events={len(events)} workflow_tasks={tasks} full_history_bytes={full} sticky_bytes={sticky} ratio={full/sticky:.1f}")

if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
