"""Acceptance (e): remove a node and add a fresh one; it receives a snapshot and serves.

Under the order workload (started through nodes 1 and 2, a worker on each), node 3 is SIGKILLed
and removed with `perdura cluster remove-node` (a dead node can be removed: two of three voters
remain reachable). The survivors snapshot every group and purge their logs, so a new replica can
only catch up by snapshot. A fresh node 4 starts with `--join` and is added with
`perdura cluster add-node`; it becomes a voter of every group, its groups report a snapshot
index (it installed the leaders' snapshots, it did not replay the log), a worker polls it and
workflows started through it complete. Workflows parked on a task queue that no worker polled
before node 4 joined are then run by a worker on node 4 alone: the tasks it learned only from
the snapshot are in its queues (a regression test for queues rebuilt after a snapshot install).
Every workflow completes with the right result, no
acknowledged activity runs again, node 3's id cannot be used again, and the three members end
with equal applied indexes and state digests in every group.
"""

import asyncio
import os
import uuid

from workload import (Clients, Tracker, check_histories, check_ledger, read_ledger, start_orders,
                      summarize)

N_WORKFLOWS = int(os.environ.get("PERDURA_CLUSTER_MEMBERSHIP_WORKFLOWS", "60"))


def test_remove_a_dead_node_and_add_a_fresh_one_under_load(cluster, workers, task_queue, tmp_path):
    ledger = str(tmp_path / "ledger.jsonl")
    n1, n2, n3 = cluster.node(1), cluster.node(2), cluster.node(3)
    run = uuid.uuid4().hex[:6]
    first = [f"order-e-{run}-a{i:03d}" for i in range(N_WORKFLOWS)]
    later = [f"order-e-{run}-b{i:03d}" for i in range(N_WORKFLOWS // 2)]
    parked = [f"order-e-{run}-p{i:03d}" for i in range(10)]
    parked_queue = f"{task_queue}-parked"

    async def main():
        ws = workers([n1, n2], task_queue, ledger, sleep_s=0.1)
        clients = Clients(cluster)
        await start_orders(clients, [n1, n2], task_queue, first, start_to_close_s=5)
        await start_orders(clients, [n1, n2], parked_queue, parked, start_to_close_s=5)
        tracker = Tracker(clients, first)
        await tracker.sweep()

        # Node 3 dies and is removed while the workload runs.
        cluster.kill9(n3)
        removed = n1.cli("remove-node", "--node-id", "3", timeout=120)
        assert removed.returncode == 0, f"remove-node failed: {removed.stderr}"
        cluster.retire(n3)
        status = cluster.status(via=n1)
        assert {n["id"]: n["state"] for n in status["nodes"]}[3] == "removed", status["nodes"]
        for group in status["groups"]:
            assert sorted(group["voters"]) == [1, 2], group

        # The survivors snapshot and purge: a new replica cannot replay the log from index 1.
        for node in (n1, n2):
            snap = node.cli("snapshot", "--purge", timeout=120)
            assert snap.returncode == 0, f"snapshot on {node} failed: {snap.stderr}"

        # A fresh node 4 joins and is added; its id is the next one, id 3 is never reused.
        n4 = cluster.new_node(join_via=n1)
        assert n4.node_id == 4
        n4.spawn()
        added = n2.cli("add-node", "--node-id", "4", "--peer-addr", n4.peer_address,
                       "--catch-up-timeout", "120", timeout=900)
        assert added.returncode == 0, f"add-node failed: {added.stderr}\n{n4.log_tail()}"
        await cluster.wait_node_serving(n4)
        status = cluster.status(via=n4)
        assert {n["id"]: n["state"] for n in status["nodes"]}[4] == "active", status["nodes"]
        for group in status["groups"]:
            assert sorted(group["voters"]) == [1, 2, 4], group
            replica = next(r for r in group["replicas"] if r["node"] == 4)
            assert replica["reachable"], group
            assert replica["snapshot_index"], \
                f"group {group['group']}: node 4 caught up without a snapshot: {replica}"
        reused = n1.cli("add-node", "--node-id", "3", "--peer-addr", "127.0.0.1:1")
        assert reused.returncode != 0 and "3" in reused.stderr, reused

        # Node 4 serves: a worker polls it and new workflows start through it.
        ws += workers([n4], task_queue, ledger, sleep_s=0.1)
        ws += workers([n4], parked_queue, ledger, sleep_s=0.1)
        await start_orders(clients, [n4], task_queue, later, start_to_close_s=5)
        ids = first + later + parked
        tracker.add(later + parked)
        await tracker.run(ids, timeout=300)

        problems = check_histories(tracker.final, ids)
        problems += check_ledger(read_ledger(ledger), tracker.final, ids, tracker.first_acked,
                                 exactly_once=False)
        assert not problems, summarize(problems)
        ran_on = {r["node"] for r in read_ledger(ledger) if r["phase"] == "start"}
        assert n4.address in ran_on, f"no activity ran on node 4's worker: {sorted(ran_on)}"
        print(f"\nactivities ran on the workers of {sorted(ran_on)}")
        for w in ws:
            assert w.alive(), f"worker on {w.node} died:\n{w.log_tail()}"
        applied = await cluster.wait_converged(timeout=90)
        print(f"nodes {sorted(applied)} converged: equal applied indexes and state digests in "
              f"{len(cluster.all_groups())} groups")

    asyncio.run(main())
