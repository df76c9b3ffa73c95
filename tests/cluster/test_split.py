"""Acceptance (f): a group split under load loses and duplicates nothing.

While order workflows are started through all three nodes and a worker polls each node, two
workflow groups are split with `perdura cluster split-group` (through different nodes): each
moves the upper half of its slot range, with the workflows in it, to a new Raft group. Every
workflow completes with the right result and exactly one history (none lost, none duplicated),
every activity ran exactly once (no node failed, so nothing may run twice), the new groups are
led and replicated on all three nodes, and the replicas end with equal applied indexes and
state digests in every group, old and new.
"""

import asyncio
import json
import os
import uuid

from workload import (Clients, Tracker, check_histories, check_ledger, read_ledger, start_orders,
                      summarize)

N_WORKFLOWS = int(os.environ.get("PERDURA_CLUSTER_SPLIT_WORKFLOWS", "90"))


def test_group_split_under_load_loses_and_duplicates_nothing(cluster, workers, task_queue, tmp_path):
    ledger = str(tmp_path / "ledger.jsonl")
    nodes = [cluster.node(1), cluster.node(2), cluster.node(3)]
    run = uuid.uuid4().hex[:6]
    ids = [f"order-f-{run}-{i:03d}" for i in range(N_WORKFLOWS)]
    groups_before = cluster.all_groups()

    async def main():
        ws = workers(nodes, task_queue, ledger, sleep_s=0.1)
        clients = Clients(cluster)
        tracker = Tracker(clients, [])
        splits = []
        started = []

        async def load():
            for i in range(0, len(ids), 6):
                batch = ids[i:i + 6]
                await start_orders(clients, nodes, task_queue, batch, concurrency=6,
                                   start_to_close_s=10)
                tracker.add(batch)
                started.extend(batch)
                await asyncio.sleep(0.15)

        async def split():
            # Mid-load: a third of the starts are in, activities are running.
            while len(started) < len(ids) // 3:
                await asyncio.sleep(0.1)
            for source, via in ((1, nodes[0]), (2, nodes[2])):
                out = await asyncio.to_thread(via.cli, "split-group", "--group", str(source),
                                              "--json", timeout=120)
                assert out.returncode == 0, f"split of group {source} failed: {out.stderr}"
                splits.append((json.loads(out.stdout), len(started)))
                await asyncio.sleep(1)

        async def follow():
            while not (starter.done() and splitter.done()):
                await tracker.sweep()
                await asyncio.sleep(0.5)

        starter = asyncio.create_task(load())
        splitter = asyncio.create_task(split())
        await asyncio.gather(starter, splitter, asyncio.create_task(follow()))
        for result, started in splits:
            print(f"\nsplit group {result['source']} -> new group {result['new_group']} "
                  f"(slots {result['new_group_slots']}) after {started} starts")
        assert splits[-1][1] < len(ids), "the last split did not happen under load"
        await tracker.run(ids, timeout=300)

        problems = check_histories(tracker.final, ids)
        problems += check_ledger(read_ledger(ledger), tracker.final, ids, tracker.first_acked,
                                 exactly_once=True)
        assert not problems, summarize(problems)
        for w in ws:
            assert w.alive(), f"worker on {w.node} died:\n{w.log_tail()}"

        new_groups = {s["new_group"] for s, _ in splits}
        assert len(new_groups) == 2 and not new_groups & set(groups_before), splits
        assert set(cluster.all_groups()) == set(groups_before) | new_groups
        await cluster.wait_all_leaders(30)
        applied = await cluster.wait_converged(timeout=90)
        for group in new_groups:
            assert all(applied[n][group] > 0 for n in applied), applied
        print(f"replicas converged in {len(cluster.all_groups())} groups (new: {sorted(new_groups)})")

    asyncio.run(main())
