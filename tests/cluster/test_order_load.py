"""Acceptance (a): 200 order workflows (4 activities each) are started through node 1 while the
only workers poll nodes 2 and 3. Every workflow completes with the right result and every
activity's side effect happens exactly once (the ledger has one execution per activity), so the
tasks of every group reached pollers on other nodes, and no task went to two pollers."""

import asyncio
import os
import time
import uuid

from workload import (Clients, Tracker, check_histories, check_ledger, read_ledger, start_orders,
                      summarize)

N_WORKFLOWS = int(os.environ.get("PERDURA_CLUSTER_WORKFLOWS", "200"))


def test_orders_started_on_node1_run_by_workers_on_nodes_2_and_3(cluster, workers, task_queue,
                                                                  tmp_path):
    ledger = str(tmp_path / "ledger.jsonl")
    n1, n2, n3 = cluster.node(1), cluster.node(2), cluster.node(3)
    ids = [f"order-a-{uuid.uuid4().hex[:6]}-{i:03d}" for i in range(N_WORKFLOWS)]

    async def main():
        ws = workers([n2, n3], task_queue, ledger, sleep_s=0.05)
        clients = Clients(cluster)
        t0 = time.monotonic()
        await start_orders(clients, [n1], task_queue, ids)
        t_started = time.monotonic() - t0
        tracker = Tracker(clients, ids)
        await tracker.run(ids, timeout=300)
        t_done = time.monotonic() - t0
        print(f"\n{N_WORKFLOWS} workflows: started through {n1} in {t_started:.1f}s, all closed "
              f"after {t_done:.1f}s ({N_WORKFLOWS / t_done:.1f} workflows/s; {tracker.sweeps} history "
              f"sweeps took {tracker.sweep_seconds:.1f}s)")

        entries = read_ledger(ledger)
        problems = check_histories(tracker.final, ids)
        problems += check_ledger(entries, tracker.final, ids, tracker.first_acked, exactly_once=True)
        assert not problems, summarize(problems)
        by_node = {}
        for r in entries:
            if r["phase"] == "start":
                by_node[r["node"]] = by_node.get(r["node"], 0) + 1
        print(f"activity executions by the worker's node: {by_node}")
        assert set(by_node) == {n2.address, n3.address}, by_node
        for w in ws:
            assert w.alive(), f"worker on {w.node} died:\n{w.log_tail()}"

    asyncio.run(main())
