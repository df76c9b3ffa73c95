"""A Temporal worker in its own process, so that tests can kill -9 it.

Usage: python worker_proc.py ADDRESS TASK_QUEUE SIDE_EFFECT_FILE MODE

Every activity execution appends JSON lines to SIDE_EFFECT_FILE:
  {"wf": workflow id, "act": activity type, "attempt": n, "phase": "start"|"end", "pid": pid, "t": unix time}
"start" is written when the activity function begins, "end" just before it returns its result
(after which the SDK reports the completion to the server).

MODE
  worker-crash: decrement_inventory blocks for an hour on attempt 1 (the test kills this process
                while it blocks); every other execution returns at once.
  server-crash: every activity sleeps order["sleep_s"] seconds between its start and end lines.
"""

import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from temporalio import activity  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from workflows import ORDER_ACTIVITIES, OrderWorkflow, WaitForSignalWorkflow  # noqa: E402


def main() -> None:
    address, task_queue, side_effects, mode = sys.argv[1:5]
    fd = os.open(side_effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(phase: str) -> int:
        info = activity.info()
        line = json.dumps({"wf": info.workflow_id, "act": info.activity_type, "attempt": info.attempt,
                           "phase": phase, "pid": os.getpid(), "t": time.time()})
        os.write(fd, (line + "\n").encode())  # one write() on an O_APPEND fd: lines never interleave
        return info.attempt

    def make(name: str):
        @activity.defn(name=name)
        async def run(order: dict) -> str:
            attempt = record("start")
            if mode == "worker-crash" and name == "decrement_inventory" and attempt == 1:
                await asyncio.sleep(3600)
            elif mode == "server-crash":
                await asyncio.sleep(order.get("sleep_s", 0.5))
            record("end")
            return f"{name}:{order['order_id']}"

        return run

    async def run_worker() -> None:
        # The server may be restarting when this process starts: retry the connection.
        deadline = time.monotonic() + 60
        while True:
            try:
                client = await Client.connect(address, namespace="default")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
        worker = Worker(client, task_queue=task_queue, workflows=[OrderWorkflow, WaitForSignalWorkflow],
                        activities=[make(n) for n in ORDER_ACTIVITIES], max_concurrent_activities=100)
        print(f"worker pid={os.getpid()} polling {task_queue} on {address}", flush=True)
        await worker.run()

    asyncio.run(run_worker())


if __name__ == "__main__":
    main()
