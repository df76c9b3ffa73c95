"""Acceptance (d): a rolling restart of all three nodes, one at a time, under load.

Workflows are started continuously through all three nodes (a start whose node is down goes to
another live node) until the last restart is over, while a worker polls each node. Each node in
turn is stopped gracefully (SIGTERM), restarted on its data dir and waited for until it serves
and has applied everything the others had applied when it came back, before the next one goes. Every workflow completes with the right result (zero failed
workflows), no acknowledged activity runs again, and afterwards the three replicas agree."""

import asyncio
import os
import time
import uuid

from workload import (Clients, Tracker, check_histories, check_ledger, read_ledger, start_orders,
                      summarize)

MIN_WORKFLOWS = int(os.environ.get("PERDURA_CLUSTER_ROLLING_WORKFLOWS", "60"))


def test_rolling_restart_under_load_fails_no_workflow(cluster, workers, task_queue, tmp_path):
    ledger = str(tmp_path / "ledger.jsonl")
    nodes = [cluster.node(1), cluster.node(2), cluster.node(3)]
    run = uuid.uuid4().hex[:6]
    ids = []

    async def main():
        ws = workers(nodes, task_queue, ledger, sleep_s=0.1)
        clients = Clients(cluster)
        tracker = Tracker(clients, [])
        restarts = []

        async def roll():
            await asyncio.sleep(2)
            for node in nodes:
                t0 = time.monotonic()
                node.stop()
                stopped = time.monotonic() - t0
                await asyncio.sleep(1)
                await cluster.restart(node)
                await cluster.wait_caught_up(node, timeout=90)
                restarts.append((node, stopped, time.monotonic() - t0, len(ids)))
                await asyncio.sleep(1)

        async def load():
            # Batches of starts, one every 0.2 s, until the last restart is over.
            while not roller.done() or len(ids) < MIN_WORKFLOWS:
                batch = [f"order-d-{run}-{len(ids) + i:04d}" for i in range(3)]
                ids.extend(batch)
                await start_orders(clients, nodes, task_queue, batch, concurrency=3,
                                   start_to_close_s=10)
                await asyncio.sleep(0.2)

        async def follow():
            while not (starter.done() and roller.done()):
                tracker.add(ids)
                await tracker.sweep()
                await asyncio.sleep(0.5)

        starter = asyncio.create_task(load())
        roller = asyncio.create_task(roll())
        follower = asyncio.create_task(follow())
        await asyncio.gather(starter, roller, follower)
        for node, stopped, total, started in restarts:
            print(f"\nrestarted {node}: stopped in {stopped:.1f}s, serving and caught up "
                  f"{total:.1f}s after the stop began ({started} workflows started by then)")
        print(f"{len(ids)} workflows started during the rolling restart")
        assert [r[0] for r in restarts] == nodes
        assert restarts[-1][3] < len(ids), "no workflow was started after the last restart"
        tracker.add(ids)
        await tracker.run(ids, timeout=240)

        problems = check_histories(tracker.final, ids)
        problems += check_ledger(read_ledger(ledger), tracker.final, ids, tracker.first_acked,
                                 exactly_once=False)
        assert not problems, summarize(problems)
        for w in ws:
            assert w.alive(), f"worker on {w.node} died:\n{w.log_tail()}"
        await cluster.wait_converged(timeout=60)

    asyncio.run(main())
