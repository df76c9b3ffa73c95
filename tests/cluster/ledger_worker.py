"""A Temporal worker process for the cluster tests: runs OrderWorkflow and its four activities
(and TimerWorkflow, one durable sleep),
polling one node, and keeps a ledger of every activity execution.

Usage: python ledger_worker.py ADDRESS TASK_QUEUE LEDGER_FILE ACTIVITY_SLEEP_S

Each activity execution appends two JSON lines to LEDGER_FILE (one write() each on an O_APPEND
fd, so the lines of several workers never interleave):
  {"wf", "act", "attempt", "phase": "start"|"end", "pid", "node": ADDRESS, "t": unix time}
"start" when the activity function begins (the side effect), "end" just before it returns (the
SDK then reports the completion to the node). The workflow logic is the SDK suite's
OrderWorkflow (tests/sdk-python/workflows.py); each activity returns "<activity>:<workflow id>".
"""

import asyncio
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sdk-python"))

from temporalio import activity  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from workflows import ORDER_ACTIVITIES, OrderWorkflow, TimerWorkflow  # noqa: E402


def main() -> None:
    address, task_queue, ledger, sleep_s = sys.argv[1:5]
    sleep_s = float(sleep_s)
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(phase: str) -> None:
        info = activity.info()
        line = json.dumps({"wf": info.workflow_id, "act": info.activity_type, "attempt": info.attempt,
                           "phase": phase, "pid": os.getpid(), "node": address, "t": time.time()})
        os.write(fd, (line + "\n").encode())

    def make(name: str):
        @activity.defn(name=name)
        async def run(order: dict) -> str:
            record("start")
            await asyncio.sleep(sleep_s)
            record("end")
            return f"{name}:{order['order_id']}"

        return run

    async def run_worker() -> None:
        # The node may be down or still starting when this process starts: retry the connection.
        deadline = time.monotonic() + 120
        while True:
            try:
                client = await Client.connect(address, namespace="default")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
        # Unsandboxed: OrderWorkflow is deterministic, and the sandbox's per-run module
        # re-imports cost CPU that the three server processes on two cores need.
        worker = Worker(client, task_queue=task_queue, workflows=[OrderWorkflow, TimerWorkflow],
                        activities=[make(n) for n in ORDER_ACTIVITIES],
                        workflow_runner=UnsandboxedWorkflowRunner(),
                        max_concurrent_activities=100)
        print(f"worker pid={os.getpid()} polling {task_queue} on {address}", flush=True)
        await worker.run()

    asyncio.run(run_worker())


if __name__ == "__main__":
    main()
