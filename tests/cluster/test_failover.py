"""Acceptance (b) and (c): kill -9 the node that leads the most groups in the middle of the
order workload, then restart it.

(b) While 200 order workflows run (started through node 1, workers on nodes 2 and 3, each
activity 0.2 s), the node leading the most Raft groups is SIGKILLed once a quarter of the
activities were acknowledged and others are in flight. Every group gets a leader on the two
survivors (the time is measured and printed; bound 15 s), every workflow completes with the
right result (none lost), and no activity whose completion a client had read before runs again
(see workload.py: the ledger's start times against the first time a read showed the completion).
Activities whose completion was not yet acknowledged may run again (at-least-once), but never
the same attempt twice, and the history's attempt is the last one that ran.

(c) The killed node restarts on its data dir, catches up, and then all three nodes have applied
the same index and equal state digests (`perdura cluster status --json`) in every group, and every
workflow's history read through each node is byte-identical.
"""

import asyncio
import os
import time
import uuid

from workload import (Clients, Tracker, check_histories, check_ledger, read_ledger,
                      replica_histories, start_orders, summarize)

N_WORKFLOWS = int(os.environ.get("PERDURA_CLUSTER_WORKFLOWS", "200"))
LEADER_BOUND_S = 15.0


def test_kill9_busiest_leader_mid_workload_then_restart_it(cluster, workers, task_queue, tmp_path):
    ledger = str(tmp_path / "ledger.jsonl")
    n1, n2, n3 = cluster.node(1), cluster.node(2), cluster.node(3)
    ids = [f"order-b-{uuid.uuid4().hex[:6]}-{i:03d}" for i in range(N_WORKFLOWS)]
    total = N_WORKFLOWS * 4

    async def main():
        ws = workers([n2, n3], task_queue, ledger, sleep_s=0.2)
        clients = Clients(cluster)
        # A 5 s start-to-close timeout: work leased through the killed node is retried soon.
        await start_orders(clients, [n1], task_queue, ids, start_to_close_s=5)
        tracker = Tracker(clients, ids)
        kill = {}

        async def maybe_kill():
            if kill:
                return
            started = {(r["wf"], r["act"]) for r in read_ledger(ledger) if r["phase"] == "start"}
            acked = set(tracker.first_acked)
            if len(acked) < total // 4 or not (started - acked):
                return
            leaders = cluster.leaders()
            victim = cluster.most_leading_node()
            led = sorted(g for g, n in leaders.items() if n == victim.node_id)
            kill.update(victim=victim, led=led, leaders=leaders, acked=len(acked),
                        in_flight=len(started - acked), t_wall=time.time())
            cluster.kill9(victim)
            kill["leaders_s"] = await cluster.wait_all_leaders(LEADER_BOUND_S + 15)
            kill["leaders_after"] = cluster.leaders()

        await tracker.run(ids, timeout=360, on_sweep=maybe_kill)
        assert kill, "the workload finished before the kill condition was met: nothing was tested"
        victim = kill["victim"]
        print(f"\nkilled {victim} (led groups {kill['led']} of {cluster.all_groups()}; leaders "
              f"before {kill['leaders']}) with {kill['acked']}/{total} activities acknowledged "
              f"and {kill['in_flight']} in flight")
        print(f"FAILOVER: every group had a leader on a live node {kill['leaders_s']:.2f}s after "
              f"the kill (leaders after: {kill['leaders_after']})")
        assert kill["acked"] < total, "everything was acknowledged before the kill"
        assert kill["leaders_s"] <= LEADER_BOUND_S, f"new leaders took {kill['leaders_s']:.1f}s"
        assert victim.node_id not in kill["leaders_after"].values()

        entries = read_ledger(ledger)
        problems = check_histories(tracker.final, ids)
        problems += check_ledger(entries, tracker.final, ids, tracker.first_acked,
                                 exactly_once=False)
        assert not problems, summarize(problems)
        reruns = sum(1 for r in entries if r["phase"] == "start") - total
        assert any(r["t"] > kill["t_wall"] for r in entries), "no activity ran after the kill"
        print(f"all {N_WORKFLOWS} workflows completed; {reruns} activity re-executions of "
              f"unacknowledged work")
        for w in ws:
            assert w.alive(), f"worker on {w.node} died:\n{w.log_tail()}"

        # (c) restart the killed node: it catches up and the replicas agree.
        t0 = time.monotonic()
        await cluster.restart(victim)
        applied = await cluster.wait_converged(timeout=90)
        print(f"restarted {victim}: serving and caught up after {time.monotonic() - t0:.2f}s; "
              f"applied index per group (equal on all nodes): {applied[victim.node_id]}")
        digests = cluster.digests()
        assert digests is not None, "perdura cluster status --json gives per-group digests"
        assert set(digests) == {1, 2, 3}, digests
        for group in cluster.all_groups():
            assert len({digests[n].get(group) for n in digests}) == 1, \
                f"group {group}: replicas differ: {[digests[n].get(group) for n in digests]}"
        print(f"state digests equal on all three nodes in all {len(cluster.all_groups())} groups")
        diffs = await replica_histories(clients, [n1, n2, n3], ids)
        assert not diffs, summarize(diffs)

    asyncio.run(main())
